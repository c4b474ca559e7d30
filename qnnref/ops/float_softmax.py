"""float_softmax: softmax of a float32 tensor along one axis.

``y_i = exp(x_i - max_j x_j) / sum_j exp(x_j - max_j x_j)`` evaluated in
float64 from the exact float64 values of ``x`` and rounded once to float32.
Runtimes compute it in float32 with their own exp approximation and
summation order; spec/ops/float_softmax.md bounds the difference.
"""
from __future__ import annotations

import numpy as np

from ._float import FLOAT, require_unquantized
from .registry import Attr, Op, Slot, register


def float_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    # Step 1: float64 copies of x (exact), minus the maximum along the axis
    # (exact in float64 for finite float32 inputs: both are float32 values).
    x64 = x.astype(np.float64)
    d = x64 - np.max(x64, axis=axis, keepdims=True)
    # Step 2: exponentials and their sum in float64 (numpy's pairwise sum).
    e = np.exp(d)
    # Step 3: the quotient in float64, rounded once to float32.
    return (e / np.sum(e, axis=axis, keepdims=True)).astype(np.float32)


@register
class FloatSoftmax(Op):
    name = "float_softmax"
    inputs = (Slot("x", doc="float32 tensor"),)
    outputs = (Slot("y", doc="float32, the shape of x"),)
    attrs = (Attr("axis", "int", -1, "the axis summed over (negative: counted from the end)"),)

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, FLOAT, "input x")
        rank = len(x.shape)
        axis = ctx.attrs["axis"]
        if not -rank <= axis < rank:
            raise ctx.error(f"axis {axis} is out of range for rank {rank}")
        return [("float32", tuple(x.shape))]

    def prepare(self, ctx):
        require_unquantized(ctx, ctx.inputs[0], "input x")
        require_unquantized(ctx, ctx.outputs[0], "output")
        ctx.prepared["axis"] = ctx.attrs["axis"] % len(ctx.inputs[0].shape)

    def run(self, ctx, args):
        x = args[0]
        if x.size == 0:
            return [x.astype(np.float32)]
        with np.errstate(all="ignore"):                # inf - inf and the like give NaN, as in IEEE
            return [float_softmax(x, ctx.prepared["axis"])]
