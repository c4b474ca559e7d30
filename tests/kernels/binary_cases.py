"""What the add and mul kernel tests share: the recipes they sweep, a
one-node model builder, every pair of 8-bit values, extreme zero points,
the scale cases and the broadcasts (tests/kernels/test_add.py, test_mul.py)."""
from __future__ import annotations

import numpy as np

from qnnref import GraphBuilder, Recipe, dtypes
from qnnref.arith import ROUNDING_MODES

RECIPES = (
    [Recipe(kind="fixed_point", rounding=m) for m in ROUNDING_MODES]
    + [Recipe(kind="fixed_point", rounding=m, double_round="gemmlowp") for m in ROUNDING_MODES]
    + [Recipe(kind="fixed_point", rounding="half_up", double_round="tosa"),
       Recipe(kind="fixed_point", rounding="half_to_even", scale_dtype="float32")]
    + [Recipe(kind="float", rounding=m, float_dtype="float32", scale_dtype="float32") for m in ROUNDING_MODES]
    + [Recipe(kind="float", rounding=m, float_dtype="float64", scale_dtype="float64") for m in ROUNDING_MODES]
)


def rid(r: Recipe) -> str:
    return f"{r.kind}-{r.double_round if r.kind == 'fixed_point' else r.float_dtype}-{r.rounding}"


def build(op, dtype, a_shape, b_shape, qa, qb, qy, recipe=None, act=(None, None)):
    """A one-node model of the binary operator ``op`` on inputs "a" and "b"."""
    g = GraphBuilder()
    a = g.input("a", dtype, a_shape, scale=qa[0], zero_point=qa[1])
    b = g.input("b", dtype, b_shape, scale=qb[0], zero_point=qb[1])
    attrs = {}
    if recipe is not None:
        attrs["recipe"] = recipe.to_dict()
    if act[0] is not None:
        attrs["act_min"] = act[0]
    if act[1] is not None:
        attrs["act_max"] = act[1]
    y = g.node(op, [a, b], attrs, scale=qy[0], zero_point=qy[1], name="n")
    g.output(y)
    return g.build()


def all_pairs(dtype):
    dt = dtypes.get(dtype)
    v = np.arange(dt.min, dt.max + 1)
    return {"a": np.repeat(v, v.size).astype(dt.numpy), "b": np.tile(v, v.size).astype(dt.numpy)}


def extreme(dtype, kind):
    dt = dtypes.get(dtype)
    return {"min": dt.min, "max": dt.max, "mid": (dt.min + dt.max + 1) // 2}[kind]


# (s_a, zp_a, s_b, zp_b, s_y, zp_y): zero points as "min" / "max" / "mid"
CASES = [
    (0.05, "mid", 0.05, "mid", 0.1, "mid"),          # equal scales
    (0.0123, "min", 0.0456, "max", 0.0789, "max"),   # unequal, extreme zero points
    (0.5, "max", 0.001, "min", 0.002, "min"),        # very different scales: saturation
    (1 / 3, "mid", 1 / 7, "min", 1 / 5, "mid"),      # inexact ratios, ties under some recipes
]


BROADCASTS = [
    ((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 4)), ((1,), (2, 2)), ((2, 3, 1), (3, 2)), ((), (4,)),
    ((5, 3, 4, 6), (3, 1, 1)), ((5, 3, 4, 6), (1, 3, 4, 1)), ((70, 300), (300,)), ((70, 300), (70, 1)),
    ((1, 1), (37, 41)), ((17,), ()), ((0, 3), (3,)), ((4, 5, 1), (5, 3)), ((), ()), ((), (1,)),
]
