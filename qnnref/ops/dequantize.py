"""dequantize: quantized integer tensor -> float32 (ONNX DequantizeLinear).

``y = float32((x - zp_x) * s_x)`` with the input tensor's quantization
(per-tensor, per-axis or blocked), through ``arith.dequantize_values``:
an exact integer difference, one exact conversion to float32 (for inputs
of at most 16 bits) and one IEEE float32 multiplication.
"""
from __future__ import annotations

import numpy as np

from ..arith import dequantize_values
from ._common import zero_point
from .registry import Op, Slot, register

IN_DTYPES = ("int4", "uint4", "int8", "uint8", "int16", "int32")


def dequantize(x: np.ndarray, x_scale: np.ndarray, x_zero_point: np.ndarray) -> np.ndarray:
    # x_scale (float32) and x_zero_point (int32) broadcast against x: a scalar
    # (per-tensor), one value per index of the axis (per-axis), or one value
    # per element, each block's parameter repeated (blocked).
    # Step 1: d = x - zp_x, exact in int32.
    # Step 2: float32(d), exact when |d| < 2^24 (every input of at most 16 bits).
    # Step 3: float32(d) * s_x, one IEEE float32 multiplication rounded to
    # nearest even (overflow gives +-inf; subnormal results are kept).
    return dequantize_values(x, x_scale, x_zero_point)


@register
class Dequantize(Op):
    name = "dequantize"
    inputs = (Slot("x", doc="quantized integer tensor"),)
    outputs = (Slot("y", doc="float32 tensor, same shape"),)

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, IN_DTYPES, "input x")
        return [("float32", x.shape)]

    def prepare(self, ctx):
        x = ctx.inputs[0]
        qx = ctx.require_quant(x, "input x", ("per-tensor", "per-axis", "blocked"))
        if x.dtype == "int32" and np.any(zero_point(qx)):
            # x - zp_x would not fit int32, and int32 tensors (biases,
            # accumulators) are symmetric in every framework.
            raise ctx.error(f"input x {x.name!r} is int32: its zero point must be 0")
        scale, zp = qx.expanded(tuple(x.shape))
        ctx.prepared["scale"] = scale
        ctx.prepared["zero_point"] = zp

    def run(self, ctx, args):
        p = ctx.prepared
        with np.errstate(over="ignore"):          # overflow to +-inf is specified
            return [dequantize(args[0], p["scale"], p["zero_point"])]
