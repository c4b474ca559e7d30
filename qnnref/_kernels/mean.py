"""Kernel glue for mean (include/qnnref/mean.h)."""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from . import ISA_CODES, Kernel, NeedsReference, Unsupported, _ext, register_kernel
from ._common import DTYPE_CODES, pack_requant

MEAN_DTYPES = ("int4", "uint4", "int8", "uint8", "int16")


def outer_reduce_inner(shape, axes) -> tuple[int, int, int]:
    """(outer, R, inner) such that x of ``shape`` is [outer, R, inner] in
    memory with the averaged ``axes`` merged into R. Axes of length 1 are
    left out (they do not move memory); the averaged axes that remain must be
    adjacent, else Unsupported."""
    dims = [(n, i in axes) for i, n in enumerate(shape) if n != 1]
    reduced = [k for k, (_, r) in enumerate(dims) if r]
    if not reduced:
        return 1, 1, math.prod(shape)
    first, last = reduced[0], reduced[-1]
    if last - first + 1 != len(reduced):
        raise Unsupported(f"the averaged axes {list(axes)} of shape {list(shape)} are not adjacent in memory")
    outer = math.prod(n for n, _ in dims[:first])
    reduce = math.prod(n for n, _ in dims[first:last + 1])
    inner = math.prod(n for n, _ in dims[last + 1:])
    return outer, reduce, inner


class MeanState:
    __slots__ = ("dtype", "dtype_code", "inner", "out_shape", "outer", "pack", "reduce", "x_zp")


@register_kernel
class MeanKernel(Kernel):
    op = "mean"

    def prepare(self, ctx, isa):
        x, y = ctx.inputs[0], ctx.outputs[0]
        p = ctx.prepared
        if x.dtype not in MEAN_DTYPES:
            raise Unsupported(f"dtype {x.dtype}")
        dt = dtypes.get(x.dtype)
        s = MeanState()
        s.outer, s.reduce, s.inner = outer_reduce_inner(tuple(x.shape), p["axes"])
        # The bound of mean.h: every sum fits int32, so the reference's
        # REQUIRE cannot fail and int32 sums are exact.
        if s.reduce * (dt.max - dt.min) >= 2**31:
            raise Unsupported(f"a mean of {s.reduce} {x.dtype} values may overflow the int32 sum")
        s.x_zp = p["x_zp"]
        if not dt.min <= s.x_zp <= dt.max:
            raise Unsupported(f"input zero point {s.x_zp} outside the {x.dtype} range")
        s.dtype = dt.numpy
        s.dtype_code = DTYPE_CODES[x.dtype]
        s.pack = pack_requant(p["params"], p["y_zp"], y.dtype)
        s.out_shape = tuple(y.shape)
        return s

    def run(self, ctx, state, args, isa, threads):
        x = np.ascontiguousarray(args[0])
        y = np.empty(state.out_shape, dtype=state.dtype)
        if y.size:
            status = _ext.mean_run(ISA_CODES[isa], x, y, state.outer, state.reduce, state.inner,
                                   state.dtype_code, state.x_zp, state.pack, threads)
            if status:
                raise NeedsReference("mean: gemmlowp requantization overflow")
        return [y]
