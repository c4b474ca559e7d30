"""reshape: the same elements, in the same (row-major) order, in a new shape.

Exact by construction: no arithmetic, the values are copied unchanged.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from .registry import REQUIRED, Attr, Op, Slot, register
from ._common import same_quant

DTYPES = tuple(dtypes.DTYPES)


def reshape(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    # Step 1: read the elements in row-major (C) order and lay them out again,
    # in the same order, in the new shape (which has no -1 left: the operator
    # resolved it at load time).
    return np.reshape(x, shape, order="C").copy()


def resolve_shape(ctx, in_shape, shape) -> tuple[int, ...]:
    """The output shape: ``shape`` with its -1 (at most one) replaced by the
    size that keeps the element count. 0 is an ordinary length, never "copy
    the input's dimension" (ONNX's allowzero=0 meaning)."""
    size = math.prod(in_shape)
    if any(d < -1 for d in shape):
        raise ctx.error(f"attribute 'shape' {shape}: lengths must be >= 0, or -1 (once)")
    if shape.count(-1) > 1:
        raise ctx.error(f"attribute 'shape' {shape}: at most one -1")
    known = math.prod(d for d in shape if d != -1)    # exact: Python integers
    if -1 in shape:
        if known == 0:
            raise ctx.error(f"attribute 'shape' {shape}: -1 is ambiguous next to a 0 length")
        if size % known:
            raise ctx.error(f"cannot reshape {list(in_shape)} ({size} elements) to {shape}")
        shape = [size // known if d == -1 else d for d in shape]
    elif known != size:
        raise ctx.error(f"cannot reshape {list(in_shape)} ({size} elements) to {shape} ({known} elements)")
    return tuple(shape)


@register
class Reshape(Op):
    name = "reshape"
    inputs = (Slot("x", doc="tensor of any dtype"),)
    outputs = (Slot("y", doc="the elements of x in the new shape; same dtype and quantization"),)
    attrs = (Attr("shape", "ints", REQUIRED, "output shape; one -1 allowed; 0 is a plain length"),)

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, DTYPES, "input x")
        return [(x.dtype, resolve_shape(ctx, x.shape, list(ctx.attrs["shape"])))]

    def prepare(self, ctx):
        x, y = ctx.inputs[0], ctx.outputs[0]
        if x.quant is not None:
            ctx.require_quant(x, "input x")
        if not same_quant(x, y):
            raise ctx.error("output must have the dtype and quantization of input x "
                            f"(x: {x.describe()}, y: {y.describe()})")
        ctx.prepared["shape"] = tuple(y.shape)

    def run(self, ctx, args):
        return [reshape(args[0], ctx.prepared["shape"])]
