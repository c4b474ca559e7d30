"""gather: pick slices of ``data`` along one axis by index (embedding lookup).

Exact by construction: no arithmetic on values, they are copied unchanged.
Indices may be negative (from the end, as in ONNX); an index outside
[-D, D) is a runtime error (REQUIRE) naming the index and its position.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..errors import RuntimeCheckError
from ..graph import Quant, TensorInfo
from .registry import Attr, Op, Slot, register
from ._common import same_quant

DATA_DTYPES = ("int4", "uint4", "int8", "uint8", "int16", "int32", "float32")
INDEX_DTYPES = ("int32", "int64")


def gather(data: np.ndarray, indices: np.ndarray, axis: int) -> np.ndarray:
    D = data.shape[axis]
    idx = indices.astype(np.int64)
    # Step 1: REQUIRE every index in [-D, D); report the first bad one
    # (in row-major order of `indices`) with its position.
    bad = (idx < -D) | (idx >= D)
    if bad.any():
        pos = tuple(int(p) for p in np.argwhere(bad)[0])
        raise RuntimeCheckError(f"gather index {int(idx[pos])} at position {list(pos)} of the indices "
                                f"is out of range [{-D}, {D}) for axis {axis} of length {D}")
    # Step 2: a negative index counts from the end.
    idx = np.where(idx < 0, idx + D, idx)
    # Step 3: y[a..., j..., b...] = data[a..., idx[j...], b...], where a runs over
    # the axes before `axis`, j over the axes of `indices`, b over the axes after.
    return np.take(data, idx, axis=axis)


def expected_output_quant(q: Quant | None, axis: int, indices_rank: int) -> Quant | None:
    """Per-tensor: unchanged. Per-axis on data axis a != axis: the same scales
    on output axis a (a < axis) or a + indices_rank - 1 (a > axis)."""
    if q is None or q.axis is None:
        return q
    out_axis = q.axis if q.axis < axis else q.axis + indices_rank - 1
    return Quant(q.scale, q.zero_point, out_axis, None)


@register
class Gather(Op):
    name = "gather"
    inputs = (Slot("data", doc="tensor of rank >= 1"), Slot("indices", doc="int32 or int64 tensor"))
    outputs = (Slot("y", doc="the gathered slices; dtype and quantization of data"),)
    attrs = (Attr("axis", "int", 0, "the axis of data to index; negative counts from the end"),)

    def infer(self, ctx):
        data, indices = ctx.input(0), ctx.input(1)
        ctx.require_dtype(data, DATA_DTYPES, "input data")
        ctx.require_dtype(indices, INDEX_DTYPES, "input indices")
        if indices.quant is not None:
            raise ctx.error(f"input indices {indices.name!r} must not be quantized")
        rank = len(data.shape)
        if rank < 1:
            raise ctx.error("input data must have rank >= 1")
        axis = ctx.attrs["axis"]
        if not -rank <= axis < rank:
            raise ctx.error(f"axis {axis} is out of range for rank {rank} (allowed: [{-rank}, {rank}))")
        axis %= rank
        return [(data.dtype, tuple(data.shape[:axis]) + tuple(indices.shape) + tuple(data.shape[axis + 1:]))]

    def prepare(self, ctx):
        data, indices, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
        axis = ctx.attrs["axis"] % len(data.shape)
        if data.quant is not None:
            ctx.require_dtype(data, dtypes.QUANT_DTYPES, "quantized input data")
            q = ctx.require_quant(data, "input data", ("per-tensor", "per-axis"))
            if q.axis == axis:
                raise ctx.error(f"input data is quantized per-axis on the gathered axis {axis}; "
                                "the output's quantization would depend on the indices")
        want = expected_output_quant(data.quant, axis, len(indices.shape))
        if not same_quant(TensorInfo(data.name, data.dtype, y.shape, want), y):
            on = "" if want is None or want.axis is None else f" on output axis {want.axis}"
            raise ctx.error(f"output quantization must be data's{on}, with the same dtype "
                            f"(data: {data.describe()}, y: {y.describe()})")
        if indices.is_constant:
            # Constant indices are checked once, here: out of range is ERROR_IF.
            D = data.shape[axis]
            idx = indices.data.astype(np.int64)
            bad = (idx < -D) | (idx >= D)
            if bad.any():
                pos = tuple(int(p) for p in np.argwhere(bad)[0])
                raise ctx.error(f"constant indices {indices.name!r}: index {int(idx[pos])} at position "
                                f"{list(pos)} is out of range [{-D}, {D}) for axis {axis} of length {D}")
        ctx.prepared["axis"] = axis

    def run(self, ctx, args):
        return [gather(args[0], args[1], ctx.prepared["axis"])]
