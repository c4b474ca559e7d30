"""requantize: change the quantization of an integer tensor.

``y = saturate(round((x - zp_x) * s_x / s_y) + zp_y)``, where the rounding
and the way the real multiplier s_x / s_y is applied are the model's
requantization recipe (spec/arithmetic.md). Per-axis input and output
scales are supported (both on the same axis, or either per-tensor).
"""
from __future__ import annotations

import numpy as np

from ..arith import RequantParams, combine_scales, prepare_requant, requantize_output
from ..errors import ValidationError
from .registry import REQUIRED, Attr, Op, Slot, register
from ._common import scale, zero_point

IN_DTYPES = ("int4", "uint4", "int8", "uint8", "int16", "int32")
OUT_DTYPES = ("int4", "uint4", "int8", "uint8", "int16")


def requantize(x: np.ndarray, x_zero_point: np.ndarray, params: RequantParams,
               y_zero_point: np.ndarray, y_dtype: str) -> np.ndarray:
    # Step 1: remove the input zero point. Exact: int64 holds any int32 difference.
    acc = x.astype(np.int64) - x_zero_point
    # Step 2: scale by s_x / s_y and round, both as the recipe says; add the
    # output zero point; saturate to the output dtype.
    return requantize_output(acc, params, y_zero_point, y_dtype)


@register
class Requantize(Op):
    name = "requantize"
    inputs = (Slot("x", doc="quantized integer tensor"),)
    outputs = (Slot("y", doc="quantized integer tensor, same shape"),)
    attrs = (Attr("dtype", "str", REQUIRED, "output dtype"),)

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, IN_DTYPES, "input x")
        if ctx.attrs["dtype"] not in OUT_DTYPES:
            raise ctx.error(f"attribute dtype must be one of {', '.join(OUT_DTYPES)}, got {ctx.attrs['dtype']!r}")
        return [(ctx.attrs["dtype"], x.shape)]

    def prepare(self, ctx):
        x, y = ctx.inputs[0], ctx.outputs[0]
        qx = ctx.require_quant(x, "input x", ("per-tensor", "per-axis"))
        qy = ctx.require_quant(y, "output", ("per-tensor", "per-axis"))
        if x.dtype == "int32" and np.any(zero_point(qx)):
            # x - zp_x would not fit int32, beyond what the recipes admit
            # (|acc| <= 2^31; int64 products could wrap), and int32 tensors
            # (biases, accumulators) are symmetric in every framework.
            raise ctx.error(f"input x {x.name!r} is int32: its zero point must be 0")
        if qx.axis is not None and qy.axis is not None and qx.axis != qy.axis:
            raise ctx.error(f"input and output are quantized on different axes ({qx.axis} vs {qy.axis})")
        axis = qx.axis if qx.axis is not None else qy.axis
        bshape = () if axis is None else tuple(-1 if i == axis else 1 for i in range(len(x.shape)))
        real = combine_scales([scale(qx)], scale(qy), ctx.recipe.scale_dtype)
        try:
            params = prepare_requant(real, ctx.recipe)
        except ValidationError as e:
            raise ctx.error(f"multiplier s_x / s_y: {e}") from None
        ctx.prepared["params"] = params.reshaped(bshape)
        ctx.prepared["x_zp"] = zero_point(qx).astype(np.int64).reshape(bshape if qx.axis is not None else ())
        ctx.prepared["y_zp"] = zero_point(qy).astype(np.int64).reshape(bshape if qy.axis is not None else ())

    def run(self, ctx, args):
        p = ctx.prepared
        return [requantize(args[0], p["x_zp"], p["params"], p["y_zp"], ctx.outputs[0].dtype)]
