"""quantize: the worked example, every recipe against a Fraction oracle of
the IEEE operations (quantize_value, tests/oracles.py), round trips through
dequantize for every value of every quantized dtype, per-axis and blocked
parameters, NaN/inf, ERROR_IF."""
from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import all_values
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import NEAREST_MODES, quantize_value

import qnnref
from qnnref import GraphBuilder, Quant, QuantizeRecipe
from qnnref.arith import ROUNDING_MODES
from qnnref.ops.quantize import quantize

RANGES = {"int4": (-8, 7), "uint4": (0, 15), "int8": (-128, 127), "uint8": (0, 255),
          "int16": (-(2**15), 2**15 - 1)}
NP = {"int4": np.int8, "uint4": np.uint8, "int8": np.int8, "uint8": np.uint8, "int16": np.int16}


def build(x_shape, y_dtype, scale, zero_point, axis=None, x_dtype="float32", profile="qnnref",
          quantize_recipe: QuantizeRecipe | None = None, name="q"):
    b = GraphBuilder(profile=profile)
    x = b.input("x", x_dtype, x_shape)
    attrs = {"dtype": y_dtype}
    if quantize_recipe is not None:
        attrs["quantize_recipe"] = quantize_recipe.to_dict()
    y = b.node("quantize", [x], attrs, scale=scale, zero_point=zero_point, axis=axis, name=name)
    b.output(y)
    return b.build(), y


# ---------------------------------------------------------------------------
# Worked example (spec/ops/quantize.md)
# ---------------------------------------------------------------------------

EXAMPLE_X = [0.0, 0.25, 0.35, -0.35, 1.0, 12.7, 100.0, -math.inf]


def test_worked_example():
    model, y = build((8,), "int8", 0.1, -3)
    out = model.run(np.array(EXAMPLE_X, np.float32))[y]
    assert out.dtype == np.int8
    assert out.tolist() == [-3, -1, 1, -7, 7, 124, 127, -128]


def test_worked_example_quotients_are_float32():
    # the float32 quotients of the example: 0.25 / 0.1 is 2.4999999627... exactly,
    # but 2.5 in float32, a tie; half_to_even then gives 2.
    q = np.array(EXAMPLE_X[:7], np.float32) / np.float32(0.1)
    assert q.tolist() == [0.0, 2.5, 3.5, -3.5, 10.0, 127.0, 1000.0]


def test_worked_example_other_profile():
    # fixed-point-double-round quantizes with ties away from zero
    model, y = build((8,), "int8", 0.1, -3, profile="fixed-point-double-round")
    assert model.run(np.array(EXAMPLE_X, np.float32))[y].tolist() == [-3, 0, 1, -7, 7, 124, 127, -128]


# ---------------------------------------------------------------------------
# Properties against the oracle
# ---------------------------------------------------------------------------

recipes = st.builds(QuantizeRecipe, st.sampled_from(["divide", "reciprocal"]),
                    st.sampled_from(ROUNDING_MODES), st.sampled_from(["float32", "float64"]))
positive_f32 = st.floats(min_value=float(np.float32(1e-30)), max_value=float(np.float32(1e30)), width=32)


@settings(max_examples=150, deadline=None)
@given(recipe=recipes, dtype=st.sampled_from(sorted(RANGES)), s=positive_f32, data=st.data())
def test_matches_fraction_oracle(recipe, dtype, s, data):
    lo, hi = RANGES[dtype]
    zp = data.draw(st.integers(lo, hi))
    # values near the grid (where rounding decides) and arbitrary floats
    near = st.builds(lambda k, f: float(np.float32((k + f) * s)), st.integers(-70000, 70000),
                     st.sampled_from([0.0, 0.5, -0.5, 0.25, 0.4999999, 0.5000001]))
    xs = data.draw(st.lists(st.one_of(near, st.floats(width=32, allow_nan=False)), min_size=1, max_size=12))
    x = np.array(xs, np.float32)
    got = quantize(x, np.float32(s), np.int32(zp), dtype, recipe)
    assert got.dtype == NP[dtype]
    assert got.tolist() == [quantize_value(float(v), s, zp, dtype, recipe) for v in x]


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_every_rounding_mode_on_ties(mode):
    # x / 1 with x = k + 1/2 exactly: the rounding mode alone decides
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.25, -0.75], np.float32)
    recipe = QuantizeRecipe(rounding=mode)
    want = [quantize_value(float(v), 1.0, 0, "int8", recipe) for v in x]
    assert quantize(x, np.float32(1), np.int32(0), "int8", recipe).tolist() == want
    model, y = build((8,), "int8", 1.0, 0, quantize_recipe=recipe)
    assert model.run(x)[y].tolist() == want


def test_float16_input():
    x16 = np.array([0.1, -0.35, 65504.0, -np.inf, 3.0e-5], np.float16)
    model, y = build((5,), "int16", 0.01, 5, x_dtype="float16")
    want = [quantize_value(float(v), 0.01, 5, "int16", QuantizeRecipe()) for v in x16]
    assert model.run(x16)[y].tolist() == want
    # float16 -> float32 is exact, so it equals quantizing the same float32 values
    model32, y32 = build((5,), "int16", 0.01, 5)
    assert model32.run(x16.astype(np.float32))[y32].tolist() == want


# ---------------------------------------------------------------------------
# Round trips: every value of every quantized dtype
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", sorted(RANGES))
@pytest.mark.parametrize("scale", [0.1, 1 / 3, 2.0**-10, 7.3, 1e-3, 0.0078125])
@pytest.mark.parametrize("rounding", NEAREST_MODES)
@pytest.mark.parametrize("method", ["divide", "reciprocal"])
def test_dequantize_then_quantize_is_identity(dtype, scale, rounding, method):
    lo, hi = RANGES[dtype]
    q = all_values(dtype)
    for zp in (lo, 0 if lo < 0 else 7, hi):
        b = GraphBuilder()
        x = b.input("x", dtype, q.shape, scale=scale, zero_point=zp)
        f = b.node("dequantize", [x])
        attrs = {"dtype": dtype, "quantize_recipe": QuantizeRecipe(method, rounding).to_dict()}
        y = b.node("quantize", [f], attrs, scale=scale, zero_point=zp)
        b.output(y)
        assert np.array_equal(b.build().run(q)[y], q), zp


# ---------------------------------------------------------------------------
# Granularities
# ---------------------------------------------------------------------------

def test_per_axis(rng):
    s = np.array([0.1, 0.02, 3.0], np.float32)
    zp = np.array([-5, 0, 100], np.int8)
    x = rng.normal(0, 3, size=(4, 3)).astype(np.float32)
    model, y = build((4, 3), "int8", s, zp, axis=1)
    got = model.run(x)[y]
    for i in range(4):
        for j in range(3):
            assert got[i, j] == quantize_value(float(x[i, j]), s[j], int(zp[j]), "int8", QuantizeRecipe())


@pytest.mark.parametrize("scale_dtype", [np.float32, np.float16])
def test_blocked(rng, scale_dtype):
    # blocks of 4 along axis 1 of a (2, 10) tensor: 3 blocks, the last one short
    s = rng.uniform(0.01, 0.5, size=(2, 3)).astype(scale_dtype)
    zp = rng.integers(-8, 8, size=(2, 3)).astype(np.int8)
    model, y = build((2, 10), "int4", 0.1, 0)
    g = model.graph.copy()                     # a loaded model is read-only: edit a copy
    g.tensors[y].quant = Quant(s, zp, axis=1, block_size=4)
    model = qnnref.Model(g)
    x = rng.normal(0, 1, size=(2, 10)).astype(np.float32)
    got = model.run(x)[y]
    for i in range(2):
        for j in range(10):
            want = quantize_value(float(x[i, j]), float(s[i, j // 4]), int(zp[i, j // 4]), "int4", QuantizeRecipe())
            assert got[i, j] == want, (i, j)


# ---------------------------------------------------------------------------
# Special values
# ---------------------------------------------------------------------------

def test_infinities_and_huge_values_saturate():
    x = np.array([np.inf, -np.inf, 3.4e38, -3.4e38, -0.0, 1e-45], np.float32)
    for dtype, (lo, hi) in RANGES.items():
        model, y = build((6,), dtype, 1e-3, 0 if lo < 0 else 3)
        zp = 0 if lo < 0 else 3
        assert model.run(x)[y].tolist() == [hi, lo, hi, lo, zp, zp], dtype


def test_tiny_scale_overflowing_quotient_saturates():
    # x / s overflows float32 to inf: saturates like inf
    model, y = build((2,), "uint8", 1e-38, 0)
    assert model.run(np.array([1e10, -1e10], np.float32))[y].tolist() == [255, 0]


def test_nan_is_a_runtime_error():
    model, _ = build((3,), "int8", 0.1, 0, name="quant1")
    with pytest.raises(qnnref.RuntimeCheckError, match="'quant1'.*NaN"):
        model.run(np.array([0.0, np.nan, 1.0], np.float32))


# ---------------------------------------------------------------------------
# ERROR_IF
# ---------------------------------------------------------------------------

def test_error_input_not_float():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="'bad'.*input x.*int8"):
        b.node("quantize", [x], {"dtype": "int8"}, scale=0.1, name="bad")


@pytest.mark.parametrize("dtype", ["int32", "float32", "int2"])
def test_error_bad_dtype_attribute(dtype):
    b = GraphBuilder()
    x = b.input("x", "float32", (2,))
    with pytest.raises(qnnref.ValidationError, match="'bad'.*dtype"):
        b.node("quantize", [x], {"dtype": dtype}, scale=0.1, name="bad")


def test_error_missing_dtype_attribute():
    b = GraphBuilder()
    x = b.input("x", "float32", (2,))
    with pytest.raises(qnnref.ValidationError, match="'bad'.*dtype.*required"):
        b.node("quantize", [x], {}, scale=0.1, name="bad")


def test_error_output_not_quantized():
    b = GraphBuilder()
    x = b.input("x", "float32", (2,))
    with pytest.raises(qnnref.ValidationError, match="'bad'.*must be quantized"):
        b.node("quantize", [x], {"dtype": "int8"}, name="bad")


def test_error_reciprocal_overflows():
    b = GraphBuilder()
    x = b.input("x", "float32", (2,))
    recipe = QuantizeRecipe(method="reciprocal", float_dtype="float32").to_dict()
    with pytest.raises(qnnref.ValidationError, match="'bad'.*1 / s_y overflows"):
        b.node("quantize", [x], {"dtype": "int8", "quantize_recipe": recipe}, scale=1e-39, name="bad")
    # in float64 the same reciprocal is finite: valid
    recipe64 = QuantizeRecipe(method="reciprocal", float_dtype="float64").to_dict()
    b.node("quantize", [x], {"dtype": "int8", "quantize_recipe": recipe64}, scale=1e-39, name="ok")
