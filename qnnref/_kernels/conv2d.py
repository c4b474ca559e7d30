"""Kernel glue for conv2d.

Depthwise convolutions go to the depthwise kernel (depthwise.py) when it
takes them; every other convolution (general, grouped, 1x1) runs as one
packed GEMM per group over an im2col view of x (include/qnnref/conv2d.h),
with the weights packed once here, one [KH*KW*C_in/groups, C_out/groups]
matrix per group.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from . import ISA_CODES, Kernel, NeedsReference, Unsupported, _ext, register_kernel
from ._common import DTYPE_CODES, pack_requant
from .matmul import check_accumulator_bound, check_zero_points, int4_in_range, max_centered, pack_weights


class ConvState:
    __slots__ = ("x_code", "zp_x", "x_dtype", "w_dtype", "geometry", "groups", "cout_g", "k", "zp_w",
                 "packed", "bias", "bias_runtime", "requant", "out_shape", "out_numpy", "out_code", "empty")


def try_depthwise(ctx, isa):
    """The depthwise kernel's state, or None when it does not take this node
    (not depthwise-eligible, or that kernel is not there yet)."""
    try:
        from . import depthwise
        return depthwise.prepare(ctx, isa)
    except (Unsupported, AttributeError, ImportError):
        return None


@register_kernel
class Conv2DKernel(Kernel):
    op = "conv2d"

    def prepare(self, ctx, isa):
        dw = try_depthwise(ctx, isa)
        if dw is not None:
            return ("depthwise", dw)
        return ("gemm", self.prepare_gemm(ctx))

    def prepare_gemm(self, ctx) -> ConvState:
        p = ctx.prepared
        x_t, w_t, y_t = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
        bias_t = ctx.inputs[2] if len(ctx.inputs) > 2 else None
        n, h, wd, c_in = x_t.shape
        c_out, kh, kw, cg = w_t.shape
        strides, dilations, pads, groups = p["geometry"]
        _, oh, ow, _ = y_t.shape
        s = ConvState()
        s.out_shape = tuple(y_t.shape)
        s.out_numpy = dtypes.get(y_t.dtype).numpy
        s.out_code = DTYPE_CODES[y_t.dtype]
        s.empty = math.prod(s.out_shape) == 0
        if s.empty:
            return s
        if math.prod(x_t.shape) == 0:
            raise Unsupported("empty input x (every tap is padding)")
        s.x_dtype, s.w_dtype = x_t.dtype, w_t.dtype
        s.x_code = DTYPE_CODES[x_t.dtype]
        s.zp_x = int(np.asarray(p["x_zp"]).reshape(-1)[0])
        s.groups, s.cout_g, s.k = groups, c_out // groups, kh * kw * cg
        # zero points of w: one per output channel (per group: [groups, cout_g]) or one for all
        zp_w = np.asarray(p["w_zp"]).reshape(-1)
        s.zp_w = np.ascontiguousarray(
            zp_w.reshape(groups, s.cout_g) if zp_w.size > 1 else np.broadcast_to(zp_w, (groups, 1)), dtype=np.int32)
        s.geometry = (n, h, wd, c_in, groups, s.cout_g, kh, kw, strides[0], strides[1], dilations[0],
                      dilations[1], pads[0], pads[1], oh, ow)
        check_zero_points(x_t.dtype, s.zp_x, "x")
        check_zero_points(w_t.dtype, zp_w, "w")
        x_max = max_centered(x_t.dtype, s.zp_x)
        if w_t.data is not None:
            s.packed = self.pack(s, np.asarray(w_t.data))
            check_accumulator_bound(x_max, s.packed.column_bound, "max_co sum |w - zp_w|")
        else:
            check_accumulator_bound(x_max, s.k * max_centered(w_t.dtype, zp_w), "K * max |w - zp_w|")
            s.packed = None
        s.bias_runtime = bias_t is not None and bias_t.data is None
        s.bias = (np.ascontiguousarray(bias_t.data, dtype=np.int32)
                  if bias_t is not None and bias_t.data is not None else None)
        s.requant = pack_requant(p["params"], p["y_zp"], y_t.dtype, *p["act"])
        return s

    @staticmethod
    def pack(s: ConvState, w: np.ndarray):
        # OHWI: group g's matrix B[k, j] = w[g * cout_g + j].flat[k], k in (kh, kw, c) order
        mats = np.ascontiguousarray(w).reshape(s.groups, s.cout_g * s.k)
        return pack_weights(mats, s.w_dtype, s.k, s.cout_g, 1, s.k, s.zp_w, s.x_dtype, s.zp_x)

    def run(self, ctx, state, args, isa, threads):
        kind, s = state
        if kind == "depthwise":
            from . import depthwise
            return depthwise.run(ctx, s, args, isa, threads)
        if s.empty:
            return [np.empty(s.out_shape, s.out_numpy)]
        x = np.ascontiguousarray(args[0])
        packed = s.packed
        if packed is None:
            w = args[1]
            if s.w_dtype == "int4" and not int4_in_range(w):
                raise NeedsReference
            packed = self.pack(s, w)
        bias = np.ascontiguousarray(args[2], dtype=np.int32) if s.bias_runtime else s.bias
        out = np.empty(s.out_shape, s.out_numpy)
        status = _ext.conv2d_run(ISA_CODES[isa], x, s.x_code, s.zp_x, s.geometry, packed.format, packed.data,
                                 packed.row_coef, packed.col_term, packed.any_row_coef, bias, out, s.out_code,
                                 s.requant, threads)
        if status:
            raise NeedsReference
        return [out]
