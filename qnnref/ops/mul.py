"""mul: elementwise product of two quantized tensors, numpy broadcasting.

``acc = (a - zp_a) * (b - zp_b)`` exactly, then
``y = saturate(round(acc * s_a * s_b / s_y) + zp_y)`` through the model's
requantization recipe, clamped to the optional fused activation range
(TFLite's reference int8 Mul; ONNX Runtime's QLinearMul with a float recipe).
"""
from __future__ import annotations

import numpy as np

from ..arith import (
    INT32_MAX,
    RequantParams,
    combine_scales,
    prepare_requant,
    requantize_output,
)
from ..errors import ValidationError
from ._common import scale
from .add import BinaryOp, max_abs_centered
from .registry import register


def mul(a: np.ndarray, a_zero_point, b: np.ndarray, b_zero_point, params: RequantParams,
        y_zero_point, y_dtype: str, act_min=None, act_max=None) -> np.ndarray:
    # Step 1: remove the zero points, exactly (|x - zp| < 2^16).
    a_centered = a.astype(np.int64) - a_zero_point
    b_centered = b.astype(np.int64) - b_zero_point
    # Step 2: the exact product, with numpy broadcasting. It fits int32: the
    # zero points are checked at load time so that |acc| <= 2^31 - 1.
    acc = a_centered * b_centered
    # Step 3: scale by s_a * s_b / s_y and round as the recipe says, add zp_y,
    # clamp to the fused activation range and the output dtype.
    return requantize_output(acc, params, y_zero_point, y_dtype, act_min, act_max)


@register
class Mul(BinaryOp):
    name = "mul"

    def prepare(self, ctx):
        a, b = ctx.inputs[0], ctx.inputs[1]
        qa, qb, qy = self.prepare_common(ctx)
        p = ctx.prepared
        # The int32 accumulator contract, checked once for every input value.
        bound = max_abs_centered(a.dtype, int(p["a_zp"])) * max_abs_centered(b.dtype, int(p["b_zp"]))
        if bound > INT32_MAX:
            raise ctx.error(f"zero points {int(p['a_zp'])} and {int(p['b_zp'])} let "
                            f"(a - zp_a) * (b - zp_b) reach {bound}, beyond int32")
        real = combine_scales([scale(qa), scale(qb)], scale(qy), ctx.recipe.scale_dtype)
        try:
            p["params"] = prepare_requant(real, ctx.recipe)
        except ValidationError as e:
            raise ctx.error(f"multiplier s_a * s_b / s_y: {e}") from None

    def run(self, ctx, args):
        p = ctx.prepared
        act_min, act_max = p["act"]
        return [mul(args[0], p["a_zp"], args[1], p["b_zp"], p["params"], p["y_zp"],
                    ctx.outputs[0].dtype, act_min, act_max)]
