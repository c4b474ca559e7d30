"""float_mean: the mean of a float32 tensor over some axes.

``y = sum(x over axes) / count``, the sum and the division in float64 from
the exact float64 values of ``x``, rounded once to float32. ONNX
``GlobalAveragePool`` / ``ReduceMean`` on float values (e.g. in a model from
ONNX Runtime's ``quantize_dynamic``, where activations between the integer
matrix products stay float). Runtimes sum in float32 in their own order;
spec/ops/float_mean.md bounds the difference.
"""
from __future__ import annotations

import numpy as np

from ._float import FLOAT, require_unquantized
from .registry import REQUIRED, Attr, Op, Slot, register


def float_mean(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    # Step 1: float64 copies of x (exact) summed over the axes (numpy's
    # pairwise summation: a few float64 ulps, far below float32's resolution).
    total = np.sum(x.astype(np.float64), axis=axes, keepdims=keepdims)
    # Step 2: divided by the number of summed elements in float64, rounded
    # once to float32.
    count = int(np.prod([x.shape[a] for a in axes]))
    return (total / count).astype(np.float32)


@register
class FloatMean(Op):
    name = "float_mean"
    inputs = (Slot("x", doc="float32 tensor"),)
    outputs = (Slot("y", doc="float32, x with the axes reduced"),)
    attrs = (Attr("axes", "ints", REQUIRED, "axes to average over; negative counts from the end"),
             Attr("keepdims", "bool", True, "keep the reduced axes with length 1"))

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, FLOAT, "input x")
        rank = len(x.shape)
        axes = ctx.attrs["axes"]
        if not axes:
            raise ctx.error("axes must name at least one axis")
        if any(not -rank <= a < rank for a in axes):
            raise ctx.error(f"axes {axes} out of range for rank {rank}")
        norm = sorted({a % rank for a in axes})
        if len(norm) != len(axes):
            raise ctx.error(f"axes {axes} name an axis twice")
        if any(x.shape[a] == 0 for a in norm):
            raise ctx.error(f"cannot average over an empty axis (shape {list(x.shape)})")
        if ctx.attrs["keepdims"]:
            shape = tuple(1 if i in norm else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in norm)
        return [("float32", shape)]

    def prepare(self, ctx):
        require_unquantized(ctx, ctx.inputs[0], "input x")
        require_unquantized(ctx, ctx.outputs[0], "output")
        rank = len(ctx.inputs[0].shape)
        ctx.prepared["axes"] = tuple(sorted(a % rank for a in ctx.attrs["axes"]))

    def run(self, ctx, args):
        with np.errstate(all="ignore"):                # inf + (-inf) gives NaN, as in IEEE
            return [float_mean(args[0], ctx.prepared["axes"], ctx.attrs["keepdims"])]
