"""The requantize kernel against the reference, on every ISA and thread
count: every value of the small input dtypes under every recipe and rounding
mode, extreme zero points, per-axis parameters on every axis, int16/int32
inputs, the gemmlowp REQUIRE, and the configurations that fall back."""
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


def build(x_dtype, shape, s_x, zp_x, y_dtype, s_y, zp_y, recipe=None, x_axis=None, y_axis=None):
    b = GraphBuilder()
    x = b.input("x", x_dtype, shape, scale=s_x, zero_point=zp_x, axis=x_axis)
    attrs = {"dtype": y_dtype}
    if recipe is not None:
        attrs["recipe"] = recipe.to_dict()
    y = b.node("requantize", [x], attrs, scale=s_y, zero_point=zp_y, axis=y_axis, name="rq")
    b.output(y)
    return b.build()


def all_values(dtype, length=None):
    dt = dtypes.get(dtype)
    v = np.arange(dt.min, dt.max + 1)
    if length is not None:
        v = np.resize(v, length)
    return v.astype(dt.numpy)


# (s_x, zp_x as a fraction of the range: "min"/"max"/number, s_y, zp_y kind, y_dtype)
CASES = [
    (0.5, "mid", 0.25, "mid", "uint8"),          # ratio 2
    (0.0123, "min", 0.0456, "max", "int8"),      # ratio < 1, extreme zero points
    (0.1, "max", 0.1 / 3, "min", "int8"),        # ratio ~3: ties under some recipes
    (1 / 255, "mid", 1 / 127, "mid", "int16"),
    (0.02, "min", 0.02, "max", "int4"),          # ratio 1
    (3.0, "mid", 0.001, "mid", "uint4"),         # huge ratio: saturation
]


def zp_of(dtype, kind):
    dt = dtypes.get(dtype)
    return {"min": dt.min, "max": dt.max, "mid": (dt.min + dt.max + 1) // 2}[kind]


@pytest.mark.parametrize("recipe", RECIPES, ids=rid)
@pytest.mark.parametrize("x_dtype", ["int8", "uint8", "int4", "uint4"])
def test_every_small_input_value(recipe, x_dtype):
    """Every input value (repeated to 9001 elements: several threads, a
    remainder), under every recipe, for each case's scales and zero points."""
    x = all_values(x_dtype, 9001)
    for s_x, zx, s_y, zy, y_dtype in CASES:
        model = build(x_dtype, x.shape, s_x, zp_of(x_dtype, zx), y_dtype, s_y, zp_of(y_dtype, zy), recipe)
        assert_all_backends_agree(model, x, threads=(1, 3))


@pytest.mark.parametrize("recipe", RECIPES[::3], ids=rid)
@pytest.mark.parametrize("x_dtype", ["int16", "int32"])
def test_wide_inputs(recipe, x_dtype, rng):
    dt = dtypes.get(x_dtype)
    edges = [dt.min, dt.min + 1, -1, 0, 1, dt.max - 1, dt.max]
    x = np.concatenate([edges, rng.integers(dt.min, dt.max, 2000, endpoint=True)]).astype(dt.numpy)
    zp = 0 if x_dtype == "int32" else dt.min
    for s_x, s_y, y_dtype in [(0.001, 0.1, "int8"), (2.0**-20, 2.0**-10, "int16"), (0.37, 0.5, "uint8")]:
        model = build(x_dtype, x.shape, s_x, zp, y_dtype, s_y, 5, recipe)
        assert_all_backends_agree(model, x, threads=(1, 2))


def test_gemmlowp_require_failure_defers_to_the_reference(rng):
    """A multiplier >= 1 shifts left; int32 inputs near 2^31 overflow:
    every backend raises the reference's RuntimeCheckError."""
    recipe = Recipe(kind="fixed_point", rounding="half_away_from_zero", double_round="gemmlowp")
    x = np.array([0, 1, 2**30, -(2**31)] + [5] * 20, np.int32)
    model = build("int32", x.shape, 4.0, 0, "int8", 1.0, 0, recipe)
    with pytest.raises(Exception) as ref_error:
        Model(model.graph, backend="reference").run(x)
    assert type(ref_error.value).__name__ == "RuntimeCheckError"
    assert_all_backends_agree(model, x)                  # every kernel run raises it too
    ok = np.array([0, 1, -5, 2**28] * 5, np.int32)
    assert_all_backends_agree(model, ok)


AXIS_CASES = [  # shape, x_axis, y_axis
    ((5, 7, 9), 0, None), ((5, 7, 9), 1, 1), ((5, 7, 9), None, 2), ((5, 7, 9), 2, 2),
    ((300, 3), 1, None), ((3, 300), 1, 1), ((2, 3, 4, 5), 1, None), ((4, 1000), 0, 0), ((7,), 0, 0),
]


@pytest.mark.parametrize("shape,x_axis,y_axis", AXIS_CASES)
@pytest.mark.parametrize("recipe", [Recipe(), Recipe(rounding="half_away_from_zero", double_round="gemmlowp"),
                                    Recipe(kind="float", rounding="half_to_even"),
                                    Recipe(kind="float", rounding="floor", float_dtype="float64")], ids=rid)
def test_per_axis(shape, x_axis, y_axis, recipe, rng):
    def params(axis, lo, hi):
        if axis is None:
            return float(rng.uniform(0.01, 0.2)), int(rng.integers(lo, hi))
        n = shape[axis]
        return rng.uniform(0.01, 0.2, n).astype(np.float32), rng.integers(lo, hi, n)

    s_x, zp_x = params(x_axis, -128, 128)
    s_y, zp_y = params(y_axis, -128, 128)
    if y_axis is not None and y_axis == len(shape) - 1:
        zp_y = np.full(shape[y_axis], 7)                 # uniform: the kernel runs
    model = build("int8", shape, s_x, zp_x, "int8", s_y, zp_y, recipe, x_axis, y_axis)
    x = rng.integers(-128, 128, shape).astype(np.int8)
    assert_all_backends_agree(model, x)


def test_per_axis_output_zero_points_on_the_last_axis_fall_back(rng):
    model = build("int8", (4, 5), 0.1, 0, "int8", np.full(5, 0.2, np.float32), np.arange(5), None, None, 1)
    plan = Model(model.graph, backend="kernels").plan()
    assert plan[0]["runs"].startswith("reference (per-axis output zero points")
    assert_all_backends_agree(model, rng.integers(-128, 128, (4, 5)).astype(np.int8), expect_kernel=False)


def test_float32_multiplier_overflow_falls_back():
    # s_x / s_y formed in float64 exceeds float32: the kernel refuses it
    recipe = Recipe(kind="float", rounding="half_to_even", float_dtype="float32", scale_dtype="float64")
    model = build("int8", (9,), 3e38, 0, "int8", 1e-38, 0, recipe)
    assert Model(model.graph, backend="kernels").plan()[0]["runs"].startswith("reference (a real multiplier")
    assert_all_backends_agree(model, all_values("int8")[:9], expect_kernel=False)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 15, 17, 33])
def test_sizes(n, rng):
    model = build("int8", (n,), 0.05, 3, "uint8", 0.07, 128)
    assert_all_backends_agree(model, rng.integers(-128, 128, n).astype(np.int8))


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(RECIPES), st.sampled_from(["int4", "uint4", "int8", "uint8", "int16"]),
       st.sampled_from(["int4", "uint4", "int8", "uint8", "int16"]), st.floats(-12, 4), st.floats(-12, 4),
       st.integers(1, 70), st.data())
def test_property(recipe, x_dtype, y_dtype, ex, ey, n, data):
    dx, dy = dtypes.get(x_dtype), dtypes.get(y_dtype)
    zp_x = data.draw(st.integers(dx.min, dx.max))
    zp_y = data.draw(st.integers(dy.min, dy.max))
    x = np.array(data.draw(st.lists(st.integers(dx.min, dx.max), min_size=n, max_size=n)), dx.numpy)
    model = build(x_dtype, (n,), float(np.float32(2.0**ex)), zp_x, y_dtype, float(np.float32(2.0**ey)), zp_y,
                  recipe)
    assert_all_backends_agree(model, x, threads=(1, 2))
