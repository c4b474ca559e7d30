"""clamp: limit an integer tensor to [min, max], in its own integer units.

``y = min(max(x, min), max)``; the output has the dtype and quantization of
the input, so the same integers mean the same reals (ReLU, ReLU6, ... on a
quantized tensor are a clamp at the quantized images of their bounds).
"""
from __future__ import annotations

import numpy as np

from ._common import same_quant
from .registry import Attr, Op, Slot, register

DTYPES = ("int4", "uint4", "int8", "uint8", "int16", "int32")


def clamp(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    # Step 1: lo and hi are integers of x's dtype with lo <= hi (a missing
    # bound is the dtype's minimum or maximum). Raise to lo, then cut at hi;
    # exact, and the result keeps x's dtype.
    return np.minimum(np.maximum(x, lo), hi).astype(x.dtype)


@register
class Clamp(Op):
    name = "clamp"
    inputs = (Slot("x", doc="integer tensor"),)
    outputs = (Slot("y", doc="integer tensor, the dtype, shape and quantization of x"),)
    attrs = (Attr("min", "int", None, "lower bound, in integer units of x (inclusive)"),
             Attr("max", "int", None, "upper bound, in integer units of x (inclusive)"))

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, DTYPES, "input x")
        lo, hi = ctx.attrs["min"], ctx.attrs["max"]
        if lo is None and hi is None:
            raise ctx.error("at least one of the attributes min and max is required")
        dt = x.dt
        for name, v in (("min", lo), ("max", hi)):
            if v is not None and not dt.min <= v <= dt.max:
                raise ctx.error(f"attribute {name} = {v} is outside the {dt} range [{dt.min}, {dt.max}]")
        if lo is not None and hi is not None and lo > hi:
            raise ctx.error(f"min {lo} > max {hi}")
        return [(x.dtype, x.shape)]

    def prepare(self, ctx):
        x, y = ctx.inputs[0], ctx.outputs[0]
        if not same_quant(x, y):
            raise ctx.error(f"output {y.name!r} must have the dtype and quantization of input "
                            f"x {x.name!r} ({x.describe()}), got {y.describe()}")
        dt = x.dt
        lo, hi = ctx.attrs["min"], ctx.attrs["max"]
        ctx.prepared["lo"] = dt.min if lo is None else lo
        ctx.prepared["hi"] = dt.max if hi is None else hi

    def run(self, ctx, args):
        return [clamp(args[0], ctx.prepared["lo"], ctx.prepared["hi"])]
