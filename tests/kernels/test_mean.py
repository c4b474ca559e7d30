"""mean kernels (scalar, AVX2; 1-3 threads) against the reference, bit for bit,
for every recipe, dtype and zero point."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_all_backends_agree, needs_kernels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qnnref import GraphBuilder, Recipe, dtypes
from qnnref.interpreter import Model
from qnnref.profiles import PROFILES

pytestmark = needs_kernels

DTYPES = ("int8", "uint8", "int16", "int4", "uint4")
RECIPES = {name: p.requant for name, p in PROFILES.items()}
RECIPES.update({
    "tosa-double-round": Recipe(kind="fixed_point", rounding="half_up", double_round="tosa"),
    "fixed-half-to-even-f32": Recipe(kind="fixed_point", rounding="half_to_even", scale_dtype="float32"),
    "fixed-truncate": Recipe(kind="fixed_point", rounding="truncate"),
    "gemmlowp-half-to-even": Recipe(kind="fixed_point", rounding="half_to_even", double_round="gemmlowp"),
    "float64-half-away": Recipe(kind="float", rounding="half_away_from_zero", float_dtype="float64",
                                scale_dtype="float64"),
    "float32-half-down": Recipe(kind="float", rounding="half_down", float_dtype="float32"),
    "float64-floor": Recipe(kind="float", rounding="floor", float_dtype="float64", scale_dtype="float32"),
})


def mean_graph(shape, axes, keepdims=True, dtype="int8", x_q=(0.5, 0), y_q=(0.25, 0), recipe=None):
    b = GraphBuilder()
    x = b.input("x", dtype, shape, scale=x_q[0], zero_point=x_q[1])
    attrs = {"axes": list(axes), "keepdims": keepdims}
    if recipe is not None:
        attrs["recipe"] = recipe.to_dict()
    y = b.node("mean", [x], attrs, name="mean", scale=y_q[0], zero_point=y_q[1])
    b.output(y)
    return b.graph()


def values(rng, dtype, shape, kind="random"):
    dt = dtypes.get(dtype)
    if kind == "extremes":
        return rng.choice([dt.min, dt.max], size=shape).astype(dt.numpy)
    if kind == "max":
        return np.full(shape, dt.max, dt.numpy)
    return rng.integers(dt.min, dt.max, size=shape, endpoint=True).astype(dt.numpy)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 3, 17, 33, 1280])
@pytest.mark.parametrize("keepdims", [True, False])
def test_global_average_pool(rng, dtype, channels, keepdims):
    dt = dtypes.get(dtype)
    shape = (2, 7, 7, channels) if channels < 1280 else (1, 7, 7, channels)
    for x_q, y_q in (((0.5, dt.min), (0.25, dt.max)), ((0.1, dt.max), (0.3, dt.min)),
                     ((0.05, (dt.min + dt.max) // 2), (0.05, (dt.min + dt.max) // 2))):
        g = mean_graph(shape, (1, 2), keepdims, dtype, x_q, y_q)
        for kind in ("random", "extremes", "max"):
            assert_all_backends_agree(g, values(rng, dtype, shape, kind), threads=(1, 3))


@pytest.mark.parametrize("recipe", sorted(RECIPES))
@pytest.mark.parametrize("dtype", ("int8", "uint8", "int16"))
def test_every_recipe(rng, recipe, dtype):
    dt = dtypes.get(dtype)
    for shape, axes in (((1, 5, 3, 33), (1, 2)), ((6, 37), (-1,)), ((3, 4, 20), (0,))):
        small = (1, -1) if dt.min < 0 else (100, 3)
        for x_q, y_q in (((0.5, dt.min), (0.125, dt.max)), ((0.3, small[0]), (0.7, small[1]))):
            g = mean_graph(shape, axes, True, dtype, x_q, y_q, RECIPES[recipe])
            for kind in ("random", "extremes"):
                assert_all_backends_agree(g, values(rng, dtype, shape, kind), threads=(1, 2))


AXES_CASES = [  # shape, axes, runs a kernel
    ((4, 5, 6), (2,), True),
    ((4, 5, 6), (-1,), True),
    ((4, 5, 6), (0,), True),
    ((4, 5, 6), (1,), True),
    ((4, 5, 6), (0, 1), True),
    ((4, 5, 6), (1, 2), True),
    ((4, 5, 6), (0, 1, 2), True),
    ((2, 1, 3), (0, 2), True),           # the length-1 axis between does not move memory
    ((4, 1, 1, 6), (1, 2), True),        # averaging only length-1 axes: one value each
    ((37,), (0,), True),
    ((100, 70), (1,), True),             # rows of 70: vector row sums plus a remainder
    ((3, 1000), (1,), True),
    ((4, 5, 6), (0, 2), False),          # not adjacent: the reference runs
    ((2, 3, 4, 5), (1, 3), False),
]


@pytest.mark.parametrize("shape,axes,kernel", AXES_CASES)
@pytest.mark.parametrize("dtype", ("int8", "uint8", "int16"))
def test_axes(rng, shape, axes, kernel, dtype):
    dt = dtypes.get(dtype)
    for keepdims in (True, False):
        g = mean_graph(shape, axes, keepdims, dtype, (0.5, dt.max), (0.4, dt.min + 3))
        assert_all_backends_agree(g, values(rng, dtype, shape), expect_kernel=kernel)
        (row,) = Model(g, backend="kernels").plan()
        assert row["runs"].startswith("kernel") == kernel, row


def test_gemmlowp_overflow_defers_to_the_reference():
    # s_x / (s_y * 4) = 2^16: shift 17, and acc * 2^17 overflows int32
    g = mean_graph((1, 2, 2, 9), (1, 2), dtype="int16", x_q=(1.0, 0), y_q=(2.0**-18, 0),
                   recipe=RECIPES["fixed-point-double-round"])
    assert_all_backends_agree(g, np.full((1, 2, 2, 9), 20000, np.int16))     # the reference raises
    assert_all_backends_agree(g, np.full((1, 2, 2, 9), 1, np.int16))         # fits: a result


def test_sums_that_may_overflow_run_on_the_reference(rng):
    g = mean_graph((1, 40000), (1,), dtype="int16")
    (row,) = Model(g, backend="kernels").plan()
    assert row["runs"].startswith("reference"), row
    # int8: 2^23 values cannot overflow; all at the extreme
    g = mean_graph((1, 2**23), (1,), dtype="int8", x_q=(0.5, 127), y_q=(2.0**-10, 0))
    assert_all_backends_agree(g, np.full((1, 2**23), -128, np.int8), threads=(1,))


def test_non_contiguous_input_and_empty_output(rng):
    b = GraphBuilder()
    x = b.input("x", "int8", (3, 8, 5), scale=0.5, zero_point=1)
    t = b.node("transpose", [x], {"perm": [2, 1, 0]}, scale=0.5, zero_point=1)
    y = b.node("mean", [t], {"axes": [1]}, name="mean", scale=0.2, zero_point=-4)
    b.output(y)
    assert_all_backends_agree(b.graph(), values(rng, "int8", (3, 8, 5)), expect_kernel="mean")
    g = mean_graph((0, 4, 4, 3), (1, 2))
    assert_all_backends_agree(g, np.zeros((0, 4, 4, 3), np.int8))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), data=st.data(),
       dtype=st.sampled_from(DTYPES), recipe=st.sampled_from(sorted(RECIPES)), keepdims=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_random(shape, data, dtype, recipe, keepdims, seed):
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank,
                              unique_by=lambda a: a % rank))
    rng = np.random.default_rng(seed)
    dt = dtypes.get(dtype)
    x_q = (float(np.float32(rng.uniform(0.01, 1))), int(rng.integers(dt.min, dt.max, endpoint=True)))
    y_q = (float(np.float32(rng.uniform(0.01, 1))), int(rng.integers(dt.min, dt.max, endpoint=True)))
    g = mean_graph(tuple(shape), axes, keepdims, dtype, x_q, y_q, RECIPES[recipe])
    assert_all_backends_agree(g, values(rng, dtype, tuple(shape)), expect_kernel=False, threads=(1, 3))
