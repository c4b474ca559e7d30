"""dynamic_quantize: float32 tensor -> uint8 tensor with the scale and zero
point computed from its own range at run time (ONNX DynamicQuantizeLinear).

``lo = min(min(x), 0)``, ``hi = max(max(x), 0)``, ``s = (hi - lo) / 255``
(1 when ``hi == lo``), ``zp = round(clamp(0 - lo / s, 0, 255))``,
``y = saturate(round(x / s) + zp)``: every float operation a single float32
IEEE operation, as ONNX Runtime's CPU kernel computes it; the last step is
the model's quantize recipe, like ``quantize``. The outputs are y (uint8,
unquantized: its scale is a run-time value), s (float32, shape ()) and zp
(uint8, shape ()).
"""
from __future__ import annotations

import numpy as np

from ..arith import quantize_values, round_float
from .registry import Op, Slot, register

F32 = np.float32
QMIN, QMAX = 0, 255           # uint8


def dynamic_quantize_params(x: np.ndarray) -> tuple[np.float32, int]:
    """The scale and zero point of ``x`` (float32, finite), in float32."""
    # Step 1: the range of x, widened to include 0 (min and max are exact:
    # they pick values of x). An empty x has the range [0, 0].
    lo = min(F32(x.min(initial=0)), F32(0))
    hi = max(F32(x.max(initial=0)), F32(0))
    with np.errstate(over="ignore"):
        # Step 2: the scale, (hi - lo) / 255: a float32 subtraction, then a float32
        # division; 1 when the range is empty (x all zero), as ONNX Runtime does.
        # A range beyond the float32 maximum gives s = inf (then y = zp).
        scale = F32(1) if hi == lo else F32(F32(hi - lo) / F32(QMAX - QMIN))
        # Step 3: the zero point: 0 - lo / s in float32, clamped to [0, 255],
        # rounded half to even.
        initial = F32(F32(QMIN) - F32(lo / scale))
    zero_point = int(round_float(np.clip(initial, F32(QMIN), F32(QMAX)), "half_to_even"))
    return scale, zero_point


def dynamic_quantize(x: np.ndarray, recipe) -> tuple[np.ndarray, np.float32, int]:
    # Steps 1-3: the scale and zero point of x's own range.
    scale, zero_point = dynamic_quantize_params(x)
    # Step 4: quantize x with them, as the quantize operator does (the model's
    # quantize recipe: in the ONNX profiles one float32 division, half to even).
    y = quantize_values(x, scale, zero_point, "uint8", recipe)
    return y, scale, zero_point


@register
class DynamicQuantize(Op):
    name = "dynamic_quantize"
    inputs = (Slot("x", doc="float32 tensor"),)
    outputs = (Slot("y", doc="uint8 tensor, the shape of x (unquantized: its scale is computed)"),
               Slot("y_scale", doc="float32 scalar (shape []), the scale of y"),
               Slot("y_zero_point", doc="uint8 scalar (shape []), the zero point of y"))

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, ("float32",), "input x")
        return [("uint8", x.shape), ("float32", ()), ("uint8", ())]

    def prepare(self, ctx):
        for t in ctx.outputs:
            if t.quant is not None:
                raise ctx.error(f"output {t.name!r} must not be quantized (y's scale and zero point "
                                "are run-time outputs)")

    def run(self, ctx, args):
        x = args[0]
        if not np.all(np.isfinite(x)):
            raise ctx.runtime_error("input x must be finite: its range defines the scale")
        y, scale, zero_point = dynamic_quantize(x, ctx.quantize_recipe)
        return [y, np.array(scale, F32), np.array(zero_point, np.uint8)]
