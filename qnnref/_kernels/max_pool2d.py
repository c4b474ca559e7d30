"""Kernel glue for max_pool2d (include/qnnref/max_pool2d.h), and the pool
geometry shared with avg_pool2d's glue."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from . import ISA_CODES, Kernel, Unsupported, _ext, register_kernel
from ._common import DTYPE_CODES

#: Every attribute and dimension the C++ geometry uses must be below this, so
#: that no index expression (o * stride - pad + i * dilation, ...) overflows int64.
MAX_GEOMETRY_VALUE = 2**40


def pool_geometry(ctx) -> tuple[int, ...]:
    """(N, H, W, C, OH, OW, kh, kw, sh, sw, dh, dw, pad_top, pad_left) of a
    validated pool node (the tuple make_pool_geometry in max_pool2d.pxi takes)."""
    a = ctx.attrs
    N, H, W, C = ctx.inputs[0].shape
    _, OH, OW, _ = ctx.outputs[0].shape
    (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["strides"], a["dilations"]
    pt, pl, pb, pr = a["pads"]
    geo = (N, H, W, C, OH, OW, kh, kw, sh, sw, dh, dw, pt, pl)
    if max(geo + (pb, pr)) >= MAX_GEOMETRY_VALUE:
        raise Unsupported(f"a pool attribute or dimension is >= 2^40 ({list(geo)})")
    return tuple(int(v) for v in geo)


def clamp_range(dtype_name: str, act) -> tuple[int, int]:
    """[lo, hi]: the dtype's range narrowed by the fused activation range."""
    dt = dtypes.get(dtype_name)
    act_min, act_max = act
    return (dt.min if act_min is None else max(dt.min, int(act_min)),
            dt.max if act_max is None else min(dt.max, int(act_max)))


class MaxPoolState:
    __slots__ = ("dtype", "dtype_code", "geo", "hi", "lo", "out_shape")


@register_kernel
class MaxPool2dKernel(Kernel):
    op = "max_pool2d"

    def prepare(self, ctx, isa):
        x, y = ctx.inputs[0], ctx.outputs[0]
        if x.dtype not in ("int4", "uint4", "int8", "uint8", "int16"):
            raise Unsupported(f"dtype {x.dtype}")
        s = MaxPoolState()
        s.geo = pool_geometry(ctx)
        s.dtype = x.dt.numpy
        s.dtype_code = DTYPE_CODES[x.dtype]
        s.lo, s.hi = clamp_range(y.dtype, ctx.prepared["act"])
        s.out_shape = tuple(y.shape)
        return s

    def run(self, ctx, state, args, isa, threads):
        x = np.ascontiguousarray(args[0])
        y = np.empty(state.out_shape, dtype=state.dtype)
        if y.size:
            _ext.max_pool2d_run(ISA_CODES[isa], x, y, state.geo, state.dtype_code, state.lo, state.hi, threads)
        return [y]

