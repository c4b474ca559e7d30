"""Kernel glue for add (and the broadcast patterns that mul shares).

Each input is an Operand of include/qnnref/add.h: output element f reads
input element ``(f // inner) % mid``. That covers same shapes, scalars,
rows, columns and any input whose non-broadcast dimensions are contiguous
(e.g. (C, 1, 1) against (N, C, H, W)); other broadcasts fall back.
"""
from __future__ import annotations

import math

import numpy as np

from ..arith import Recipe, prepare_requant
from . import ISA_CODES, Kernel, NeedsReference, Unsupported, _ext, register_kernel
from ._common import DTYPE_CODES, FLOAT_DTYPE_CODES, pack_requant, rounding_code


def operand_pattern(shape, out_shape) -> tuple[int, int] | None:
    """(mid, inner) such that output element f (row-major over out_shape)
    reads element (f // inner) % mid of the input of ``shape`` broadcast to
    ``out_shape``; None when the input's kept dimensions are not contiguous."""
    shape = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    dims = [(s, o) for s, o in zip(shape, out_shape) if o != 1]    # size-1 output dims change nothing
    kept = [i for i, (s, o) in enumerate(dims) if s == o]
    if not kept:
        return 1, 1
    if kept != list(range(kept[0], kept[-1] + 1)):
        return None
    mid = math.prod(dims[i][1] for i in kept)
    inner = math.prod(o for _, o in dims[kept[-1] + 1:])
    return mid, inner


class BinaryState:
    __slots__ = ("a_pattern", "b_pattern", "a_zp", "b_zp", "y_zp", "lo", "hi", "dtype", "numpy", "shape",
                 "kind", "left_shift", "float_dtype", "rounding", "scales", "pack_a", "pack_b", "pack_out", "pack")


def prepare_binary(ctx) -> BinaryState:
    """What add and mul share: the broadcast patterns, zero points and range."""
    a, b, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    s = BinaryState()
    s.a_pattern = operand_pattern(a.shape, y.shape)
    s.b_pattern = operand_pattern(b.shape, y.shape)
    if s.a_pattern is None or s.b_pattern is None:
        raise Unsupported(f"broadcast of {list(a.shape)} and {list(b.shape)}: "
                          "an input's kept dimensions are not contiguous")
    p = ctx.prepared
    s.a_zp, s.b_zp, s.y_zp = (int(p[k]) for k in ("a_zp", "b_zp", "y_zp"))
    act_min, act_max = p["act"]
    dt = y.dt
    s.lo = dt.min if act_min is None else max(dt.min, int(act_min))
    s.hi = dt.max if act_max is None else min(dt.max, int(act_max))
    s.dtype, s.numpy, s.shape = DTYPE_CODES[y.dtype], dt.numpy, tuple(y.shape)
    return s


def run_binary(run, state, args, isa, threads, what):
    a = np.ascontiguousarray(args[0])
    b = np.ascontiguousarray(args[1])
    y = np.empty(state.shape, state.numpy)
    if y.size == 0:
        return [y]
    if run(ISA_CODES[isa], a, b, state, y, threads):
        raise NeedsReference(f"{what}: a REQUIRE may have failed")
    return [y]


_UNUSED = None


def unused_pack():
    """A valid Requant for the slots a float add does not read."""
    global _UNUSED
    if _UNUSED is None:
        _UNUSED = pack_requant(prepare_requant(np.float64(0.5), Recipe()), 0, "int32")
    return _UNUSED


@register_kernel
class AddKernel(Kernel):
    """Every recipe; the broadcasts of operand_pattern."""

    op = "add"

    def prepare(self, ctx, isa):
        s = prepare_binary(ctx)
        recipe = ctx.recipe
        p = ctx.prepared
        s.rounding = rounding_code(recipe.rounding)
        s.float_dtype = FLOAT_DTYPE_CODES[recipe.float_dtype]
        if recipe.kind == "float":
            s.kind, s.left_shift = 1, 0
            s.scales = tuple(float(np.float32(v)) for v in p["scales"])
            s.pack_a = s.pack_b = s.pack_out = unused_pack()
            return s
        params = p["params"]
        s.kind, s.left_shift = 0, int(params.left_shift)
        s.scales = (1.0, 1.0, 1.0)
        # a and b are brought to the common scale with no zero point, in the int32 range
        s.pack_a = pack_requant(params.a, 0, "int32")
        s.pack_b = pack_requant(params.b, 0, "int32")
        s.pack_out = pack_requant(params.out, s.y_zp, ctx.outputs[0].dtype, *p["act"])
        return s

    def run(self, ctx, state, args, isa, threads):
        return run_binary(_ext.add_run, state, args, isa, threads, "add")
