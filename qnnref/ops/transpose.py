"""transpose: permute the axes of a tensor.

Exact by construction: no arithmetic, the values are copied unchanged.
Per-axis quantization follows its axis through the permutation.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..graph import Quant, TensorInfo
from .registry import REQUIRED, Attr, Op, Slot, register
from ._common import same_quant

DTYPES = tuple(dtypes.DTYPES)


def transpose(x: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
    # Step 1: output axis i is input axis perm[i]:
    #   y[i_0, ..., i_{r-1}] = x[j] where j[perm[k]] = i_k for every k.
    return np.transpose(x, perm).copy()


def expected_output_quant(q: Quant | None, perm: tuple[int, ...]) -> Quant | None:
    """The output's quantization: per-tensor unchanged; per-axis on input axis
    a becomes per-axis on output axis perm.index(a), same scales and zero points."""
    if q is None or q.axis is None:
        return q
    return Quant(q.scale, q.zero_point, perm.index(q.axis), None)


@register
class Transpose(Op):
    name = "transpose"
    inputs = (Slot("x", doc="tensor of any dtype"),)
    outputs = (Slot("y", doc="x with permuted axes; same dtype, quantization following the axes"),)
    attrs = (Attr("perm", "ints", REQUIRED, "output axis i is input axis perm[i]"),)

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, DTYPES, "input x")
        perm = ctx.attrs["perm"]
        if sorted(perm) != list(range(len(x.shape))):
            raise ctx.error(f"attribute 'perm' {perm} is not a permutation of 0..{len(x.shape) - 1} "
                            f"(input rank {len(x.shape)})")
        return [(x.dtype, tuple(x.shape[p] for p in perm))]

    def prepare(self, ctx):
        x, y = ctx.inputs[0], ctx.outputs[0]
        perm = tuple(ctx.attrs["perm"])
        if x.quant is not None:
            ctx.require_quant(x, "input x", ("per-tensor", "per-axis"))
        want = expected_output_quant(x.quant, perm)
        if not same_quant(TensorInfo(x.name, x.dtype, y.shape, want), y):
            where = "" if want is None or want.axis is None else f" on axis {want.axis} (= perm.index({x.quant.axis}))"
            raise ctx.error(f"output quantization must be the input's{where}, "
                            f"with the same dtype (x: {x.describe()}, y: {y.describe()})")
        ctx.prepared["perm"] = perm

    def run(self, ctx, args):
        return [transpose(args[0], ctx.prepared["perm"])]

