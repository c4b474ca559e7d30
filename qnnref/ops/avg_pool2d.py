"""avg_pool2d: the average over each 2-D window of an NHWC tensor.

Two paths, both exact and specified:

* output quantization == input quantization: the average of the integer
  codes, ``round(S / count)`` with an exact integer division rounded by the
  ``rounding`` attribute (default half_away_from_zero: TFLite's reference
  int8 and uint8 kernels);
* otherwise: the exact integer sum of (x - zp_x) is requantized with the real
  multiplier s_x / (s_y * count) through the node's recipe, one prepared
  multiplier per distinct count.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..arith import (RequantParams, apply_requant, check_accumulator,
                     check_rounding, prepare_requant, rounding_divide)
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
            rows = [oh * sh - pad_top + i * dh for i in range(kh)]
            rows = [r for r in rows if 0 <= r < H]
            cols = [ow * sw - pad_left + j * dw for j in range(kw)]
            cols = [c for c in cols if 0 <= c < W]
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
        return [avg_pool2d(args[0], tuple(a["kernel"]), tuple(a["strides"]), tuple(a["dilations"]),
                           tuple(a["pads"]), a["count_include_pad"], p["x_zp"], a["rounding"],
                           p["params_by_count"], p["y_zp"], ctx.outputs[0].dtype, act_min, act_max)]

