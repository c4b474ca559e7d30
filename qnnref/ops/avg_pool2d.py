"""avg_pool2d: the average over each 2-D window of an NHWC tensor.

Two paths, both exact and specified:

* output quantization == input quantization: the average of the integer
  codes, ``round(S / count)`` with an exact integer division rounded by the
  ``rounding`` attribute (default half_away_from_zero: TFLite's reference
  int8 and uint8 kernels);
* otherwise: the exact integer sum of (x - zp_x) is requantized with the real
  multiplier s_x / (s_y * count) through the node's recipe, one prepared
  multiplier per distinct count.

A recipe with ``average_form = "float_average"`` replaces both by ONNX
Runtime's QLinearAveragePool, :func:`avg_pool2d_float`: the taps dequantized,
summed, divided by the count and by s_y in floating point, then rounded.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .. import graph as _graph
from ..arith import (RequantParams, apply_requant, check_accumulator, check_rounding,
                     prepare_requant, round_float, rounding_divide, saturate_float_to_int)
from ..errors import ValidationError
from .registry import Attr, Op, Slot, register
from ._common import act_range, same_quant, scale, zero_point
from .max_pool2d import ACT_ATTRS, GEOMETRY_ATTRS, check_pool_geometry, window_taps
from .mean import mean_multiplier

DTYPES = dtypes.QUANT_DTYPES


def avg_pool2d(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
               dilations: tuple[int, int], pads: tuple[int, int, int, int],
               count_include_pad: bool, x_zero_point: int, rounding: str,
               params_by_count: dict[int, RequantParams] | None, y_zero_point: int,
               y_dtype: str, act_min: int | None, act_max: int | None) -> np.ndarray:
    N, H, W, C = x.shape
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    pad_top, pad_left, pad_bottom, pad_right = pads
    # Step 1: output size (no ceil mode): the windows that fit in the padded input.
    OH = (H + pad_top + pad_bottom - ((kh - 1) * dh + 1)) // sh + 1
    OW = (W + pad_left + pad_right - ((kw - 1) * dw + 1)) // sw + 1
    v = np.empty((N, OH, OW, C), dtype=np.int64)
    for oh in range(OH):
        for ow in range(OW):
            # Step 2: the window's taps that lie inside the input (validation
            # guarantees at least one row and one column).
            # (window_taps: the oh * sh - pad_top + i * dh, i in [0, kh), that
            # lie in [0, H), found without enumerating all kh of them).
            rows = list(window_taps(oh, sh, pad_top, kh, dh, H))
            cols = list(window_taps(ow, sw, pad_left, kw, dw, W))
            window = x[:, rows][:, :, cols].astype(np.int64)
            # Step 3: the exact sum of (x - zp_x) over those taps. A padded tap
            # is real 0, i.e. x = zp_x: it adds 0 to this sum.
            acc = (window - x_zero_point).sum(axis=(1, 2))
            # Step 4: the divisor: every tap, or only the taps inside the input.
            count = kh * kw if count_include_pad else len(rows) * len(cols)
            if params_by_count is None:
                # Step 5a (output quantization == input quantization): the average
                # of the integer codes, padded taps counting as zp_x, divided
                # exactly and rounded by `rounding`.
                codes_sum = check_accumulator(acc + count * x_zero_point, "window sum")
                v[:, oh, ow, :] = rounding_divide(codes_sum, count, rounding)
            else:
                # Step 5b (different quantization): scale the sum by
                # s_x / (s_y * count) as the recipe says, add zp_y.
                acc = check_accumulator(acc, "window sum")
                v[:, oh, ow, :] = apply_requant(acc, params_by_count[count]) + y_zero_point
    # Step 6: clamp to the fused activation range and the output dtype; cast.
    dt = dtypes.get(y_dtype)
    lo = dt.min if act_min is None else max(dt.min, act_min)
    hi = dt.max if act_max is None else min(dt.max, act_max)
    return np.clip(v, lo, hi).astype(dt.numpy)


def avg_pool2d_float(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
                     dilations: tuple[int, int], pads: tuple[int, int, int, int],
                     count_include_pad: bool, x_scale: np.float32, x_zero_point: int,
                     y_scale: np.float32, y_zero_point: int, float_dtype: str, rounding: str,
                     zero_point_in_float: bool, y_dtype: str, act_min: int | None,
                     act_max: int | None) -> np.ndarray:
    ft = np.float32 if float_dtype == "float32" else np.float64
    N, H, W, C = x.shape
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    pad_top, pad_left, pad_bottom, pad_right = pads
    OH = (H + pad_top + pad_bottom - ((kh - 1) * dh + 1)) // sh + 1
    OW = (W + pad_left + pad_right - ((kw - 1) * dw + 1)) // sw + 1
    # IEEE arithmetic throughout: a result beyond the float range is +-inf
    # (saturated in step 6), not an error.
    with np.errstate(over="ignore"):
        # Step 1: dequantize every input value, fl(s_x * (x - zp_x)): x - zp_x is
        # an integer below 2^17 in magnitude, exact in ft; the product rounds once.
        sx, sy = ft(x_scale), ft(y_scale)
        real = (sx * (x.astype(np.int64) - x_zero_point).astype(ft)).astype(ft)
        # Step 2: the padded input, padded taps real 0; `inside` marks the input.
        padded = np.zeros((N, H + pad_top + pad_bottom, W + pad_left + pad_right, C), dtype=ft)
        padded[:, pad_top:pad_top + H, pad_left:pad_left + W, :] = real
        inside = np.zeros(padded.shape[1:3], dtype=np.int64)
        inside[pad_top:pad_top + H, pad_left:pad_left + W] = 1
        # Step 3: each window's sum in ft, one rounding per addition, the taps in
        # row-major order (kernel row i, then column j), every window at once. A
        # padded tap adds +0.0, which leaves any sum unchanged (up to the sign of
        # a zero), so this is the sum over the taps inside the input, in order.
        total = np.zeros((N, OH, OW, C), dtype=ft)
        count = np.zeros((OH, OW), dtype=np.int64)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + (OH - 1) * sh + 1, sh)
                cols = slice(j * dw, j * dw + (OW - 1) * sw + 1, sw)
                total = (total + padded[:, rows, cols, :]).astype(ft)
                count += inside[rows, cols]
        # Step 4: the divisor: every tap, or only the taps inside the input.
        if count_include_pad:
            count[:] = kh * kw
        # Step 5: the average, then divided by s_y: two more roundings to ft
        # (count < 2^24 is exact in ft).
        avg = (total / count[None, :, :, None].astype(ft)).astype(ft)
        v = (avg / sy).astype(ft)
        # Step 6: round by `rounding`, the zero point added before (one more ft
        # addition) or after; saturating (a huge or infinite v gives the bound).
        if zero_point_in_float:
            q = saturate_float_to_int(round_float((v + ft(y_zero_point)).astype(ft), rounding), "int32")
            q = q.astype(np.int64)
        else:
            q = saturate_float_to_int(round_float(v, rounding), "int32").astype(np.int64) + y_zero_point
    # Step 7: clamp to the fused activation range and the output dtype; cast.
    dt = dtypes.get(y_dtype)
    lo = dt.min if act_min is None else max(dt.min, act_min)
    hi = dt.max if act_max is None else min(dt.max, act_max)
    return np.clip(q, lo, hi).astype(dt.numpy)


def window_counts(shape, kernel, strides, dilations, pads, count_include_pad) -> set[int]:
    """The distinct divisors ``count`` that the windows of this geometry use."""
    _, H, W, _ = shape
    if count_include_pad:
        return {kernel[0] * kernel[1]}
    OH = (H + pads[0] + pads[2] - ((kernel[0] - 1) * dilations[0] + 1)) // strides[0] + 1
    OW = (W + pads[1] + pads[3] - ((kernel[1] - 1) * dilations[1] + 1)) // strides[1] + 1
    nr = {len(window_taps(o, strides[0], pads[0], kernel[0], dilations[0], H)) for o in range(OH)}
    nc = {len(window_taps(o, strides[1], pads[1], kernel[1], dilations[1], W)) for o in range(OW)}
    return {r * c for r in nr for c in nc}


@register
class AvgPool2d(Op):
    name = "avg_pool2d"
    inputs = (Slot("x", doc="quantized NHWC tensor"),)
    outputs = (Slot("y", doc="NHWC tensor, the dtype of x"),)
    attrs = GEOMETRY_ATTRS + (
        Attr("count_include_pad", "bool", False, "divide by kh*kw (true) or by the taps inside the input"),
        Attr("rounding", "str", "half_away_from_zero",
             "rounding of the division when y's quantization equals x's"),
    ) + ACT_ATTRS

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, DTYPES, "input x")
        OH, OW = check_pool_geometry(ctx, x.shape)
        try:
            check_rounding(ctx.attrs["rounding"])
        except ValidationError as e:
            raise ctx.error(f"attribute 'rounding': {e}") from None
        return [(x.dtype, (x.shape[0], OH, OW, x.shape[3]))]

    def prepare(self, ctx):
        x, y = ctx.inputs[0], ctx.outputs[0]
        qx = ctx.require_quant(x, "input x")
        qy = ctx.out_quant()
        a = ctx.attrs
        p = ctx.prepared
        p["act"] = act_range(ctx)
        p["x_zp"] = int(zero_point(qx))
        p["y_zp"] = int(zero_point(qy))
        p["float_average"] = None
        recipe = ctx.recipe
        if recipe.average_form == "float_average":
            # this form materializes the padded input (in float) and loops over the taps
            n, h, w, c = x.shape
            (kh, kw), pads = a["kernel"], a["pads"]
            # (and an [H + pads, W + pads] mask of the inside taps, even when N*C is 0)
            ctx.check_size(max(n * c, 1) * (h + pads[0] + pads[2]) * (w + pads[1] + pads[3]),
                           "the padded input x (average_form 'float_average')")
            ctx.check_work(_graph.TAP_WORK * max(n * c, 1) * y.shape[1] * y.shape[2] * kh * kw
                           + _graph.LOOP_WORK * kh * kw,
                           f"the {kh}x{kw} taps of every window (average_form 'float_average')")
            # ONNX Runtime's form, for equal and different quantizations alike:
            # the recipe rounds (a 'rounding' attribute may only repeat it).
            if "rounding" in ctx.node.attrs and a["rounding"] != recipe.rounding:
                raise ctx.error(f"attribute 'rounding' {a['rounding']!r} contradicts the recipe "
                                f"(average_form 'float_average' rounds {recipe.rounding!r})")
            sx = scale(qx).reshape(())
            ft = np.float32 if recipe.float_dtype == "float32" else np.float64
            span = max(p["x_zp"] - x.dt.min, x.dt.max - p["x_zp"])       # the largest |x - zp_x|
            with np.errstate(over="ignore"):
                if not np.isfinite(ft(sx) * ft(span)):
                    # +inf and -inf taps in one window would sum to NaN
                    raise ctx.error(f"s_x * (x - zp_x) overflows {recipe.float_dtype} "
                                    "(average_form 'float_average' dequantizes every tap)")
            p["params_by_count"] = None
            p["float_average"] = {"x_scale": sx, "y_scale": scale(qy).reshape(()), "recipe": recipe}
            return
        if same_quant(x, y):
            p["params_by_count"] = None
            return
        if "rounding" in ctx.node.attrs:
            raise ctx.error("attribute 'rounding' applies only when the output quantization equals "
                            "the input's; here the recipe rounds (set attribute 'recipe' instead)")
        counts = window_counts(x.shape, a["kernel"], a["strides"], a["dilations"], a["pads"],
                               a["count_include_pad"])
        p["params_by_count"] = {}
        for count in sorted(counts):
            real = mean_multiplier(scale(qx), scale(qy), count, ctx.recipe.scale_dtype)
            try:
                p["params_by_count"][count] = prepare_requant(real, ctx.recipe)
            except ValidationError as e:
                raise ctx.error(f"multiplier s_x / (s_y * {count}): {e}") from None

    def run(self, ctx, args):
        a, p = ctx.attrs, ctx.prepared
        act_min, act_max = p["act"]
        f = p["float_average"]
        if f is not None:
            r = f["recipe"]
            return [avg_pool2d_float(args[0], tuple(a["kernel"]), tuple(a["strides"]), tuple(a["dilations"]),
                                     tuple(a["pads"]), a["count_include_pad"], f["x_scale"], p["x_zp"],
                                     f["y_scale"], p["y_zp"], r.float_dtype, r.rounding, r.zero_point_in_float,
                                     ctx.outputs[0].dtype, act_min, act_max)]
        return [avg_pool2d(args[0], tuple(a["kernel"]), tuple(a["strides"]), tuple(a["dilations"]),
                           tuple(a["pads"]), a["count_include_pad"], p["x_zp"], a["rounding"],
                           p["params_by_count"], p["y_zp"], ctx.outputs[0].dtype, act_min, act_max)]

