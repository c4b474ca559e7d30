"""conv2d: quantized 2-D convolution, NHWC activations, OHWI weights.

``acc[n, oh, ow, co] = sum_{kh, kw, c} (x_pad[n, oh*sh + kh*dh, ow*sw + kw*dw, g*Cg + c] - zp_x)
* (w[co, kh, kw, c] - zp_w[co]) + bias[co]`` with ``g = co // (C_out / groups)``
and ``Cg = C_in / groups``, where ``x_pad`` is ``x`` padded with its zero
point (padded taps contribute exactly 0). Then the same int32 contract and
requantization as matmul (or, with output dtype int32, the accumulator
itself: ONNX's ConvInteger). Grouped and depthwise (groups == C_in)
convolutions are the same formula.

The reference computes it as im2col (gather the patches) followed by the
exact matrix product of :mod:`qnnref.ops.matmul`, one per group. Under a
profile with pairwise int16 saturation (u8 x and s8 w), the products are
summed in pairs along the (kh, kw, c) order of the im2col rows, as ONNX
Runtime's im2col GEMM does (spec/arithmetic.md, "Pairwise int16 saturation").

As in matmul, in int32-output mode only, the zero point of ``x`` may be a
run-time input (``x_zero_point``: ONNX Runtime's dynamic quantization,
DynamicQuantizeLinear -> ConvInteger); ``x`` is then unquantized, and the
padding uses that zero point.
"""
from __future__ import annotations

import numpy as np

from .. import graph as _graph
from ..arith import RequantParams, check_accumulator, requantize_output
from ._common import ACT_ATTRS_DOC, act_range, scale, zero_point
from .matmul import (A_DTYPES, B_DTYPES, PAIRWISE_ATTR, S8_AS_U8_ATTR, accumulator_output, centered, check_bias,
                     check_bias_quant, check_int32_output_quant, check_out_dtype, check_runtime_zero_point,
                     exact_matmul, pairwise_int16_accumulator, pairwise_int16_applies, prepare_params,
                     prepare_runtime_zero_point, s8_as_u8, zero_point_arg)
from .registry import Attr, Op, Slot, register


def output_size(size: int, kernel: int, stride: int, dilation: int, pad_before: int,
                pad_after: int) -> int:
    """Output length along one spatial axis (may be < 1 for an invalid model)."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def im2col(x_pad: np.ndarray, kh: int, kw: int, oh: int, ow: int, strides, dilations) -> np.ndarray:
    """The patches of a padded [..., H, W, C] array: ``[..., OH, OW, KH, KW, C]`` with
    ``patches[..., i, j, p, q, c] = x_pad[..., i*sh + p*dh, j*sw + q*dw, c]``
    (one strided slice per kernel tap)."""
    (sh, sw), (dh, dw) = strides, dilations
    patches = np.empty((*x_pad.shape[:-3], oh, ow, kh, kw, x_pad.shape[-1]), x_pad.dtype)
    for p in range(kh):
        for q in range(kw):
            patches[..., p, q, :] = x_pad[..., p * dh: p * dh + sh * (oh - 1) + 1: sh,
                                          q * dw: q * dw + sw * (ow - 1) + 1: sw, :]
    return patches


def weight_matrix(w: np.ndarray, w_zero_point, groups: int) -> np.ndarray:
    """OHWI weights minus their zero points (float64, exact) as one matrix
    per group: ``[groups, KH*KW*Cg, C_out/groups]``, rows in (kh, kw, c) order."""
    c_out, kh, kw, cg = w.shape
    w_c = centered(w, w_zero_point).reshape(groups, c_out // groups, kh * kw * cg)
    return np.ascontiguousarray(w_c.transpose(0, 2, 1))


def conv2d(x: np.ndarray, x_zero_point, w: np.ndarray, w_zero_point, bias: np.ndarray | None,
           params: RequantParams | None, y_zero_point, y_dtype: str, strides, dilations, pads,
           groups: int, act_min=None, act_max=None, w_matrix: np.ndarray | None = None,
           pairwise_int16: bool = False) -> np.ndarray:
    n, h, wd, c_in = x.shape
    c_out, kh, kw, cg = w.shape
    top, left, bottom, right = pads
    oh = output_size(h, kh, strides[0], dilations[0], top, bottom)
    ow = output_size(wd, kw, strides[1], dilations[1], left, right)
    # Step 1: pad x with its zero point, so that padded taps contribute
    # (zp_x - zp_x) * w = 0, then remove the zero point (exact). The
    # pairwise int16 path keeps the raw codes (VPMADDUBSW multiplies those;
    # int8 x (s8_activations_as_u8) as the uint8 codes x + 128, zp + 128).
    if pairwise_int16 and x.dtype == np.int8:
        x, x_zero_point = s8_as_u8(x, x_zero_point)
    x_pad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)),
                   constant_values=np.asarray(x_zero_point).astype(x.dtype))
    x_c = x_pad.astype(np.float64) if pairwise_int16 else centered(x_pad, x_zero_point)
    # Step 2: split the channels into groups: [groups, N, H + top + bottom, W + left + right, Cg].
    x_g = np.ascontiguousarray(x_c.reshape(n, *x_c.shape[1:3], groups, cg).transpose(3, 0, 1, 2, 4))
    # Step 3: im2col: each output position's receptive field becomes one row,
    # [groups, N*OH*OW, KH*KW*Cg], columns in (kh, kw, c) order.
    patches = im2col(x_g, kh, kw, oh, ow, strides, dilations)
    patches = patches.reshape(groups, n * oh * ow, kh * kw * cg)
    if pairwise_int16:
        # Steps 4-5 as ONNX Runtime's u8 x s8 GEMM on x86 without VNNI: the raw
        # weights as one [KH*KW*Cg, C_out/groups] matrix per group, raw products
        # summed in pairs along the (kh, kw, c) rows, each pair saturated to
        # int16, then the zero points corrected (zp_w per column j of group g).
        w_zp = np.broadcast_to(np.asarray(w_zero_point).reshape(-1), (c_out,)).reshape(groups, 1, -1)
        acc = pairwise_int16_accumulator(patches, x_zero_point, weight_matrix(w, 0, groups), w_zp)
    else:
        # Step 4: w - zp_w[co] as one [KH*KW*Cg, C_out/groups] matrix per group,
        # rows in the same (kh, kw, c) order (for a constant w, done once at
        # load time and passed in as w_matrix).
        if w_matrix is None:
            w_matrix = weight_matrix(w, w_zero_point, groups)
        # Step 5: the exact accumulator, one matrix product per group
        # ([groups, N*OH*OW, C_out/groups]); output channel co = g * (C_out/groups) + j.
        acc = exact_matmul(patches, w_matrix)
    acc = acc.transpose(1, 0, 2).reshape(n, oh, ow, c_out)
    # Step 6: add the int32 bias (one value per output channel), exactly.
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    # Step 7: the int32 accumulator contract: every exact sum must fit int32.
    acc = check_accumulator(acc)
    if y_dtype == "int32":
        # Step 8 (int32 output, ONNX's ConvInteger): the accumulator itself.
        return accumulator_output(acc, act_min, act_max)
    # Step 8: scale by s_x * s_w[co] / s_y and round as the recipe says, add
    # zp_y, clamp to the fused activation range and the output dtype.
    return requantize_output(acc, params, y_zero_point, y_dtype, act_min, act_max)


def _check_ints(ctx, name: str, length: int, minimum: int) -> list[int]:
    v = ctx.attrs[name]
    if len(v) != length:
        raise ctx.error(f"attribute {name} must have {length} values, got {v}")
    if any(e < minimum for e in v):
        raise ctx.error(f"attribute {name} values must be >= {minimum}, got {v}")
    return list(v)


def check_geometry(ctx, x, w, float_macs: bool = False) -> tuple[int, int, int, int]:
    """ERROR_IF checks of an NHWC input ``x`` and OHWI weights ``w`` and the
    attributes strides, dilations, pads and groups, at infer time; returns
    (N, OH, OW, C_out). Shared with float_conv2d (``float_macs``: its
    multiply-adds are float32 FMAs, and its dot products loop over K twice)."""
    if len(x.shape) != 4:
        raise ctx.error(f"input x {x.name!r} must have rank 4 ([N, H, W, C_in]), got {list(x.shape)}")
    if len(w.shape) != 4:
        raise ctx.error(f"weight w {w.name!r} must have rank 4 ([C_out, KH, KW, C_in/groups]), "
                        f"got {list(w.shape)}")
    strides = _check_ints(ctx, "strides", 2, 1)
    dilations = _check_ints(ctx, "dilations", 2, 1)
    pads = _check_ints(ctx, "pads", 4, 0)
    groups = ctx.attrs["groups"]
    if groups < 1:
        raise ctx.error(f"attribute groups must be >= 1, got {groups}")
    n, h, wd, c_in = x.shape
    c_out, kh, kw, cg = w.shape
    if kh < 1 or kw < 1:
        raise ctx.error(f"weight w {w.name!r} has an empty kernel ({kh} x {kw})")
    if c_in % groups:
        raise ctx.error(f"input channels C_in = {c_in} are not a multiple of groups = {groups} "
                        "(C_in and C_out must be multiples of groups)")
    if c_out % groups:
        raise ctx.error(f"output channels C_out = {c_out} (weight w {w.name!r}) are not a "
                        f"multiple of groups = {groups} (C_in and C_out must be multiples of groups)")
    if cg != c_in // groups:
        raise ctx.error(f"weight w {w.name!r} has shape {list(w.shape)}; its last dimension must be "
                        f"C_in / groups = {c_in} / {groups} = {c_in // groups}")
    oh = output_size(h, kh, strides[0], dilations[0], pads[0], pads[2])
    ow = output_size(wd, kw, strides[1], dilations[1], pads[1], pads[3])
    if oh < 1 or ow < 1:
        raise ctx.error(f"empty output: the dilated kernel ({dilations[0] * (kh - 1) + 1} x "
                        f"{dilations[1] * (kw - 1) + 1}) does not fit the padded input "
                        f"({h + pads[0] + pads[2]} x {wd + pads[1] + pads[3]})")
    # The reference materializes the padded input and the im2col patches
    # (it loops over the KH*KW taps even when N*C_in is 0).
    ctx.check_size(n * (h + pads[0] + pads[2]) * (wd + pads[1] + pads[3]) * c_in, "the padded input x")
    ctx.check_size(max(n * c_in, 1) * oh * ow * kh * kw, "the im2col patches (N*OH*OW*KH*KW*C_in)")
    # The node work limit: N*OH*OW*C_out*K multiply-adds with K = KH*KW*Cg,
    # and Python loops over at most K steps (the KH*KW taps of im2col; the
    # K/2 pairs of pairwise int16; the K terms, then K blocks, of float32).
    k = kh * kw * cg
    if float_macs:
        work = _graph.FLOAT_MAC_WORK * n * oh * ow * c_out * k + _graph.LOOP_WORK * 2 * k
    else:
        work = _graph.INT_MAC_WORK * n * oh * ow * c_out * k + _graph.LOOP_WORK * k
    ctx.check_work(work, f"the {n * oh * ow * c_out * k} multiply-adds (N*OH*OW*C_out*KH*KW*C_in/groups)")
    return n, oh, ow, c_out


@register
class Conv2D(Op):
    name = "conv2d"
    inputs = (Slot("x", doc="quantized activations [N, H, W, C_in] (NHWC)"),
              Slot("w", doc="quantized weights [C_out, KH, KW, C_in/groups] (OHWI)"),
              Slot("bias", optional=True, doc="int32 [C_out], added to the accumulator"),
              Slot("x_zero_point", optional=True,
                   doc="scalar of x's dtype: the zero point of x, computed at run time (output dtype "
                       "int32 only; x is then unquantized)"))
    outputs = (Slot("y", doc="quantized [N, OH, OW, C_out]; int32: the accumulator"),)
    attrs = (Attr("strides", "ints", [1, 1], "[sh, sw], each >= 1"),
             Attr("dilations", "ints", [1, 1], "[dh, dw], each >= 1"),
             Attr("pads", "ints", [0, 0, 0, 0], "[top, left, bottom, right], each >= 0"),
             Attr("groups", "int", 1, "number of groups; C_in and C_out are multiples of it"),
             Attr("dtype", "str", None, "output dtype (default: the dtype of x); int32: the accumulator"),
             Attr("act_min", "int", None, ACT_ATTRS_DOC),
             Attr("act_max", "int", None, ACT_ATTRS_DOC),
             PAIRWISE_ATTR, S8_AS_U8_ATTR)

    def infer(self, ctx):
        x, w = ctx.input(0), ctx.input(1)
        ctx.require_dtype(x, A_DTYPES, "input x")
        ctx.require_dtype(w, B_DTYPES, "weight w")
        n, oh, ow, c_out = check_geometry(ctx, x, w)
        check_bias(ctx, 2, c_out, "C_out")
        dtype = check_out_dtype(ctx, x.dtype)
        check_runtime_zero_point(ctx, 3, x, dtype, "x")
        return [(dtype, (n, oh, ow, c_out))]

    def prepare(self, ctx):
        x, w, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
        runtime_zp = ctx.inputs[3] is not None
        if runtime_zp:
            prepare_runtime_zero_point(ctx, 3, "x")
        qx = None if runtime_zp else ctx.require_quant(x, "input x")
        qw = ctx.require_quant(w, "weight w", ("per-tensor", "per-axis"), axis=0)
        check_bias_quant(ctx, 2)
        p = ctx.prepared
        p["act"] = act_range(ctx)
        # one input and one output channel per group: ONNX Runtime's direct depthwise kernel
        depthwise = w.shape[3] == 1 and w.shape[0] == ctx.attrs["groups"]
        p["pairwise_int16"] = pairwise_int16_applies(ctx, x.dtype, w.dtype, depthwise)
        if runtime_zp:
            # the accumulator with the run-time zero point of x (see run)
            p["params"] = None
            p["y_zp"] = np.int64(0)
        elif y.dtype == "int32":
            # the output is the accumulator: no multiplier, no output zero point
            check_int32_output_quant(ctx, scale(qx), scale(qw), 3)
            p["params"] = None
            p["y_zp"] = np.int64(0)
        else:
            qy = ctx.out_quant(0)
            # per-channel values have shape (C_out,) and broadcast on the last axis of [N, OH, OW, C_out]
            p["params"] = prepare_params(ctx, scale(qx), scale(qw), scale(qy), "s_x * s_w / s_y")
            p["y_zp"] = zero_point(qy).astype(np.int64)
        p["x_zp"] = None if runtime_zp else zero_point(qx).astype(np.int64)
        p["w_zp"] = zero_point(qw).astype(np.int64).reshape(qw.broadcast_shape(4))
        a = ctx.attrs
        # the float64 weight matrix of a constant w (8 bytes per weight) is
        # built on the first reference run: the kernels backend never needs it.
        p["w_matrix"] = None
        p["y_dtype"] = y.dtype
        p["geometry"] = (list(a["strides"]), list(a["dilations"]), list(a["pads"]), a["groups"])

    def run(self, ctx, args):
        p = ctx.prepared
        x, w = args[0], args[1]
        bias = args[2] if len(args) > 2 else None
        if p["w_matrix"] is None and ctx.inputs[1].data is not None and not p["pairwise_int16"]:
            p["w_matrix"] = weight_matrix(w, p["w_zp"], p["geometry"][3])
        y = conv2d(x, zero_point_arg(args, 3, p["x_zp"]), w, p["w_zp"], bias, p["params"], p["y_zp"], p["y_dtype"],
                   *p["geometry"], *p["act"], w_matrix=p["w_matrix"], pairwise_int16=p["pairwise_int16"])
        return [y]
