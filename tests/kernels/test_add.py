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

from qnnref import Recipe, dtypes
from qnnref.interpreter import Model

from . import binary_cases
from .binary_cases import BROADCASTS, CASES, RECIPES, all_pairs, extreme, rid

pytestmark = needs_kernels

OP = "add"


def build(*args, **kwargs):
    return binary_cases.build(OP, *args, **kwargs)


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
