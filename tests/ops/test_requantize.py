"""requantize: the spec's worked example, every profile against a Python-int
oracle (random cases and every int8 input), per-axis parameters, and the
ERROR_IF conditions."""
from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import RECIPES, all_values, float32_scales, node_attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import INT_RANGES, real_multiplier, requantize_value

import qnnref
from qnnref import GraphBuilder, Recipe
from qnnref.arith import combine_scales, prepare_requant
from qnnref.ops.requantize import requantize
from qnnref.profiles import PROFILES

NP = {"int4": np.int8, "uint4": np.uint8, "int8": np.int8, "uint8": np.uint8,
      "int16": np.int16, "int32": np.int32}
#: the shared recipes, plus a floor rounding by a multiplier encoded half to even
RECIPES = {**RECIPES, "fixed-floor-mult-half-even": Recipe(kind="fixed_point", rounding="floor",
                                                           multiplier_rounding="half_to_even")}


def build(x_dtype, shape, s_x, zp_x, y_dtype, s_y, zp_y, recipe: Recipe | None = None,
          profile="qnnref", x_axis=None, y_axis=None, name="rq"):
    b = GraphBuilder(profile=profile)
    x = b.input("x", x_dtype, shape, scale=s_x, zero_point=zp_x, axis=x_axis)
    y = b.node("requantize", [x], node_attrs(recipe, dtype=y_dtype), scale=s_y, zero_point=zp_y, axis=y_axis,
               name=name)
    b.output(y)
    return b.build(), y


# ---------------------------------------------------------------------------
# Worked example (spec/ops/requantize.md)
# ---------------------------------------------------------------------------

def test_worked_example():
    model, y = build("int8", (4,), 0.5, 1, "uint8", 0.25, 128)
    out = model.run(np.array([1, 3, -128, 127], np.int8))[y]
    assert out.dtype == np.uint8
    assert out.tolist() == [128, 132, 0, 255]


def test_worked_example_multiplier_encoding():
    params = prepare_requant(combine_scales([np.float32(0.5)], np.float32(0.25), "float64"),
                             PROFILES["qnnref"].requant)
    assert (int(params.multiplier), int(params.shift)) == (2**30, 2)


# ---------------------------------------------------------------------------
# Property tests against the oracle, per recipe
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("recipe_name", sorted(RECIPES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_matches_python_int_oracle(recipe_name, data):
    recipe = RECIPES[recipe_name]
    x_dtype = data.draw(st.sampled_from(["int4", "uint4", "int8", "uint8", "int16", "int32"]))
    y_dtype = data.draw(st.sampled_from(["int4", "uint4", "int8", "uint8", "int16"]))
    s_x, s_y = data.draw(float32_scales(-12, 3)), data.draw(float32_scales(-12, 3))   # 2^-12 .. 2^4
    lo, hi = INT_RANGES[x_dtype]
    zp_x = data.draw(st.integers(lo, hi)) if x_dtype != "int32" else 0
    zp_y = data.draw(st.integers(*INT_RANGES[y_dtype]))
    if x_dtype == "int32":       # keep x - zp_x within the recipes' int32 contract
        lo, hi = -(2**24), 2**24
    xs = data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=16))
    model, y = build(x_dtype, (len(xs),), s_x, zp_x, y_dtype, s_y, zp_y, recipe)
    real = real_multiplier([s_x], s_y, recipe.scale_dtype)
    try:
        want = [requantize_value(v - zp_x, real, recipe, zp_y, y_dtype) for v in xs]
    except OverflowError:
        with pytest.raises(qnnref.RuntimeCheckError, match="'rq'"):
            model.run(np.array(xs, NP[x_dtype]))
        return
    got = model.run(np.array(xs, NP[x_dtype]))[y]
    assert got.dtype == NP[y_dtype]
    assert got.tolist() == want


@pytest.mark.parametrize("recipe_name", sorted(RECIPES))
@pytest.mark.parametrize("s_x,zp_x,s_y,zp_y,y_dtype", [
    (0.5, 1, 0.25, 128, "uint8"),            # the worked example
    (0.0123, -7, 0.0456, 3, "int8"),         # ratio < 1, inexact
    (0.1, 0, 0.1 / 3, -128, "int8"),         # ratio ~3, many ties under some roundings
    (1 / 255, 100, 1 / 127, 0, "int16"),
    (0.02, -128, 0.02, 127, "int8"),         # ratio 1, extreme zero points
])
def test_every_int8_input(recipe_name, s_x, zp_x, s_y, zp_y, y_dtype):
    recipe = RECIPES[recipe_name]
    x = all_values("int8")
    model, y = build("int8", (256,), s_x, zp_x, y_dtype, s_y, zp_y, recipe)
    real = real_multiplier([s_x], s_y, recipe.scale_dtype)
    want = [requantize_value(int(v) - zp_x, real, recipe, zp_y, y_dtype) for v in x]
    assert model.run(x)[y].tolist() == want


def test_ties_follow_the_recipe_rounding():
    # multiplier exactly 1/2: x - zp_x = 2k + 1 lands on a tie.
    x = np.arange(-7, 8, 2, dtype=np.int8)                        # -7, -5, ..., 7
    half = [int(v) / 2 for v in x]
    expected = {
        "half_up": [math.floor(v + 0.5) for v in half],
        "half_down": [math.ceil(v - 0.5) for v in half],
        "half_away_from_zero": [int(math.copysign(math.floor(abs(v) + 0.5), v)) for v in half],
        "half_to_even": [round(v) for v in half],                 # Python rounds half to even
        "floor": [math.floor(v) for v in half],
        "ceil": [math.ceil(v) for v in half],
        "truncate": [math.trunc(v) for v in half],
    }
    for mode, want in expected.items():
        model, y = build("int8", (len(x),), 0.5, 0, "int8", 1.0, 0, Recipe(rounding=mode))
        assert model.run(x)[y].tolist() == want, mode


# ---------------------------------------------------------------------------
# Per-axis
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("recipe_name", ["qnnref", "fixed-point-double-round", "float32-half-to-even"])
@pytest.mark.parametrize("x_axis,y_axis", [(1, None), (None, 1), (1, 1), (0, None)])
def test_per_axis(recipe_name, x_axis, y_axis, rng):
    recipe = RECIPES[recipe_name]
    shape = (3, 4)
    s_x = rng.uniform(0.01, 0.2, size=shape[x_axis]) if x_axis is not None else 0.05
    zp_x = rng.integers(-20, 20, size=shape[x_axis]) if x_axis is not None else 3
    s_y = rng.uniform(0.01, 0.2, size=shape[y_axis]) if y_axis is not None else 0.07
    zp_y = rng.integers(-20, 20, size=shape[y_axis]) if y_axis is not None else -4
    x = rng.integers(-128, 128, size=shape).astype(np.int8)
    model, y = build("int8", shape, s_x, zp_x, "int8", s_y, zp_y, recipe, x_axis=x_axis, y_axis=y_axis)
    got = model.run(x)[y]

    def pick(v, axis, i, j):
        if axis is None:
            return v
        return v[(i, j)[axis]]

    for i in range(shape[0]):
        for j in range(shape[1]):
            real = real_multiplier([pick(s_x, x_axis, i, j)], pick(s_y, y_axis, i, j), recipe.scale_dtype)
            want = requantize_value(int(x[i, j]) - int(pick(zp_x, x_axis, i, j)), real, recipe,
                                    int(pick(zp_y, y_axis, i, j)), "int8")
            assert got[i, j] == want, (i, j)


def test_reference_function_directly():
    # the function of the spec's pseudocode, with prepared parameters
    params = prepare_requant(np.float64(2.0), PROFILES["qnnref"].requant)
    y = requantize(np.array([1, 3, -128, 127], np.int8), np.int64(1), params, np.int64(128), "uint8")
    assert y.tolist() == [128, 132, 0, 255]


# ---------------------------------------------------------------------------
# ERROR_IF
# ---------------------------------------------------------------------------

def test_error_unquantized_input():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,))
    with pytest.raises(qnnref.ValidationError, match="'bad'.*must be quantized"):
        b.node("requantize", [x], {"dtype": "int8"}, scale=0.1, name="bad")


def test_error_different_axes():
    b = GraphBuilder()
    x = b.input("x", "int8", (2, 3), scale=[0.1, 0.2], zero_point=0, axis=0)
    with pytest.raises(qnnref.ValidationError, match="'bad'.*different axes"):
        b.node("requantize", [x], {"dtype": "int8"}, scale=[0.1, 0.2, 0.3], axis=1, name="bad")


def test_error_bad_output_dtype():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="'bad'.*dtype"):
        b.node("requantize", [x], {"dtype": "int32"}, scale=0.1, name="bad")


def test_error_multiplier_out_of_range():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=2.0**10)
    with pytest.raises(qnnref.ValidationError, match="'bad'.*multiplier"):
        b.node("requantize", [x], {"dtype": "int8"}, scale=2.0**-25, name="bad")
