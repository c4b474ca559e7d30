"""quantize: float tensor -> quantized integer tensor (ONNX QuantizeLinear).

``y = saturate(round(x / s_y) + zp_y)`` with the output tensor's
quantization (per-tensor, per-axis or blocked), where the division, its
float width and the rounding are the model's quantize recipe
(``arith.QuantizeRecipe``; spec/arithmetic.md, "Quantize").
"""
from __future__ import annotations

import numpy as np

from ..arith import QuantizeRecipe, quantize_values
from .registry import REQUIRED, Attr, Op, Slot, register

IN_DTYPES = ("float32", "float16")
OUT_DTYPES = ("int4", "uint4", "int8", "uint8", "int16")


def quantize(x: np.ndarray, y_scale: np.ndarray, y_zero_point: np.ndarray, y_dtype: str,
             recipe: QuantizeRecipe) -> np.ndarray:
    # y_scale (float32) and y_zero_point (int32) broadcast against x: a scalar
    # (per-tensor), one value per index of the axis (per-axis), or one value
    # per element, each block's parameter repeated (blocked).
    # Step 1: v = x / s_y ("divide") or x * (1 / s_y) ("reciprocal"), x and s_y
    # converted exactly to recipe.float_dtype, each IEEE operation rounded to
    # nearest even in that width. Overflow gives +-inf.
    # Step 2: round v to an integer by recipe.rounding (NaN: RuntimeCheckError),
    # add zp_y, saturate to y_dtype (+-inf saturate too).
    return quantize_values(x, y_scale, y_zero_point, y_dtype, recipe)


@register
class Quantize(Op):
    name = "quantize"
    inputs = (Slot("x", doc="float32 or float16 tensor"),)
    outputs = (Slot("y", doc="quantized integer tensor, same shape"),)
    attrs = (Attr("dtype", "str", REQUIRED, "output dtype"),)

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, IN_DTYPES, "input x")
        if ctx.attrs["dtype"] not in OUT_DTYPES:
            raise ctx.error(f"attribute dtype must be one of {', '.join(OUT_DTYPES)}, "
                            f"got {ctx.attrs['dtype']!r}")
        return [(ctx.attrs["dtype"], x.shape)]

    def prepare(self, ctx):
        y = ctx.outputs[0]
        qy = ctx.out_quant(0, ("per-tensor", "per-axis", "blocked"))
        recipe = ctx.quantize_recipe
        scale, zp = qy.expanded(tuple(y.shape))
        if recipe.method == "reciprocal":
            # 1 / s_y is formed in float_dtype; if it overflows to inf, then
            # x * inf is NaN for x = 0 and the result is meaningless.
            ft = np.float32 if recipe.float_dtype == "float32" else np.float64
            with np.errstate(over="ignore", divide="ignore"):
                recip = ft(1) / scale.astype(ft)
            if not np.all(np.isfinite(recip)):
                raise ctx.error(f"output scale too small: 1 / s_y overflows {recipe.float_dtype} "
                                "(quantize recipe method 'reciprocal')")
        ctx.prepared["scale"] = scale
        ctx.prepared["zero_point"] = zp

    def run(self, ctx, args):
        x = args[0]
        if np.isnan(x).any():
            raise ctx.runtime_error("input x contains NaN, which has no quantized value")
        p = ctx.prepared
        return [quantize(x, p["scale"], p["zero_point"], ctx.outputs[0].dtype, ctx.quantize_recipe)]
