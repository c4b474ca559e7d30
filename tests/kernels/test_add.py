"""The add kernel against the reference, on every ISA and thread count:
every pair of int8 / uint8 values under every recipe and rounding mode,
extreme zero points and scales, fused activation ranges, int16, the
broadcasts the kernel covers (and one it leaves to the reference), and the
gemmlowp REQUIRE."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_all_backends_agree, needs_kernels
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnref import GraphBuilder, Recipe, dtypes
from qnnref.arith import ROUNDING_MODES
from qnnref.interpreter import Model

pytestmark = needs_kernels

OP = "add"

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


def build(dtype, a_shape, b_shape, qa, qb, qy, recipe=None, act=(None, None)):
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
    y = g.node(OP, [a, b], attrs, scale=qy[0], zero_point=qy[1], name="n")
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


@pytest.mark.parametrize("recipe", RECIPES, ids=rid)
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_every_pair_of_values(recipe, dtype):
    inputs = all_pairs(dtype)
    n = inputs["a"].size
    for i, (sa, za, sb, zb, sy, zy) in enumerate(CASES):
        act = (None, None) if i != 1 else (extreme(dtype, "mid") - 20, extreme(dtype, "max") - 3)
        model = build(dtype, (n,), (n,), (sa, extreme(dtype, za)), (sb, extreme(dtype, zb)),
                      (sy, extreme(dtype, zy)), recipe, act)
        assert_all_backends_agree(model, inputs, threads=(1, 3) if i == 0 else (2,))


@pytest.mark.parametrize("recipe", RECIPES[::2], ids=rid)
def test_int16(recipe, rng):
    dt = dtypes.get("int16")
    n = 5003
    a = np.concatenate([[dt.min, dt.max, 0, -1, 1], rng.integers(dt.min, dt.max, n - 5, endpoint=True)])
    b = np.concatenate([[dt.max, dt.min, 0, 1, -1], rng.integers(dt.min, dt.max, n - 5, endpoint=True)])
    for qa, qb, qy in [((0.001, dt.min), (0.002, dt.max), (0.003, 0)), ((2.0**-10, 0), (2.0**-10, 0), (2.0**-9, 5))]:
        model = build("int16", (n,), (n,), qa, qb, qy, recipe)
        assert_all_backends_agree(model, {"a": a.astype(np.int16), "b": b.astype(np.int16)}, threads=(1, 2))


BROADCASTS = [
    ((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 4)), ((1,), (2, 2)), ((2, 3, 1), (3, 2)), ((), (4,)),
    ((5, 3, 4, 6), (3, 1, 1)), ((5, 3, 4, 6), (1, 3, 4, 1)), ((70, 300), (300,)), ((70, 300), (70, 1)),
    ((1, 1), (37, 41)), ((17,), ()), ((0, 3), (3,)), ((4, 5, 1), (5, 3)),
]


@pytest.mark.parametrize("a_shape,b_shape", BROADCASTS)
@pytest.mark.parametrize("recipe", [Recipe(), Recipe(kind="float", rounding="half_to_even")], ids=rid)
def test_broadcasts(a_shape, b_shape, recipe, rng):
    model = build("int8", a_shape, b_shape, (0.03, 5), (0.07, -9), (0.05, 3), recipe)
    inputs = {"a": rng.integers(-128, 128, a_shape).astype(np.int8),
              "b": rng.integers(-128, 128, b_shape).astype(np.int8)}
    assert_all_backends_agree(model, inputs)


def test_exotic_broadcast_falls_back(rng):
    # a's kept dimensions (0 and 2) are not contiguous against the output (2, 4, 3)
    model = build("int8", (2, 1, 3), (2, 4, 3), (0.03, 0), (0.07, 0), (0.05, 0))
    assert Model(model.graph, backend="kernels").plan()[0]["runs"].startswith("reference (broadcast")
    inputs = {"a": rng.integers(-128, 128, (2, 1, 3)).astype(np.int8),
              "b": rng.integers(-128, 128, (2, 4, 3)).astype(np.int8)}
    assert_all_backends_agree(model, inputs, expect_kernel=False)


def test_gemmlowp_require_failure_defers_to_the_reference():
    # int16, output multiplier 2 / (2^15 * 2^-20) = 64: shift 7, big sums overflow
    recipe = Recipe(kind="fixed_point", rounding="half_away_from_zero", double_round="gemmlowp")
    model = build("int16", (20,), (20,), (1.0, 0), (1.0, 0), (2.0**-20, 0), recipe)
    big = {"a": np.full(20, 30000, np.int16), "b": np.full(20, 30000, np.int16)}
    with pytest.raises(Exception) as e:
        Model(model.graph, backend="reference").run(big)
    assert type(e.value).__name__ == "RuntimeCheckError"
    assert_all_backends_agree(model, big)
    assert_all_backends_agree(model, {"a": np.arange(20, dtype=np.int16), "b": np.ones(20, np.int16)})


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(RECIPES), st.sampled_from(["int8", "uint8", "int16"]), st.floats(-12, 3),
       st.floats(-12, 3), st.floats(-12, 3), st.integers(1, 50), st.data())
def test_property(recipe, dtype, ea, eb, ey, n, data):
    dt = dtypes.get(dtype)
    zps = [data.draw(st.integers(dt.min, dt.max)) for _ in range(3)]
    vals = st.lists(st.integers(dt.min, dt.max), min_size=n, max_size=n)
    inputs = {"a": np.array(data.draw(vals), dt.numpy), "b": np.array(data.draw(vals), dt.numpy)}
    scales = [float(np.float32(2.0**e)) for e in (ea, eb, ey)]
    try:
        model = build(dtype, (n,), (n,), (scales[0], zps[0]), (scales[1], zps[1]), (scales[2], zps[2]), recipe)
    except Exception as e:          # scales outside the recipe's range: an invalid model
        assert type(e).__name__ == "ValidationError"
        return
    assert_all_backends_agree(model, inputs, threads=(1, 2))
