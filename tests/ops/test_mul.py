"""mul: the worked example, every int8 x int8 pair, every recipe against a
Python-int oracle (random shapes with broadcasting, dtypes, scales, zero
points, fused activation ranges), accuracy against exact rationals, REQUIRE
and ERROR_IF."""
from __future__ import annotations

import math
from fractions import Fraction
from functools import partial

import numpy as np
import pytest
from conftest import BROADCAST_SHAPES, RECIPES, all_values, binary_model, float32_scales
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import real_multiplier, requantize_value

import qnnref
from qnnref import GraphBuilder
from qnnref.arith import combine_scales, prepare_requant
from qnnref.ops.mul import mul
from qnnref.profiles import PROFILES

RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-(2**15), 2**15 - 1)}
NP = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16}
build = partial(binary_model, "mul", name="mul1")


def py_mul(a, za, b, zb, real, recipe, zy, dtype, act_min=None, act_max=None) -> int:
    """The oracle: (a - za) * (b - zb) requantized by the recipe."""
    return requantize_value((a - za) * (b - zb), real, recipe, zy, dtype, act_min, act_max)


# ---------------------------------------------------------------------------
# Worked example (spec/ops/mul.md)
# ---------------------------------------------------------------------------

def test_worked_example():
    # s_a = 0.5, zp_a = 1; s_b = 0.25, zp_b = -2; s_y = 0.5, zp_y = 3: multiplier 1/4
    model, y = build("int8", (8,), (8,), (0.5, 1), (0.25, -2), (0.5, 3))
    a = np.array([3, 5, -1, 0, 4, 2, 127, -128], np.int8)
    b = np.array([2, -6, -4, 4, 0, -1, 127, 127], np.int8)
    out = model.run({"a": a, "b": b})[y]
    assert out.tolist() == [5, -1, 4, 2, 5, 3, 127, -128]
    # double rounding (gemmlowp): srdhm(acc, 2^30) = round(acc / 2) half up, then a
    # rounding shift by 1, half away from zero: -1.5 -> -2 and 0.25 -> 0.5 -> 1
    model2, y2 = build("int8", (8,), (8,), (0.5, 1), (0.25, -2), (0.5, 3), profile="fixed-point-double-round")
    assert model2.run({"a": a, "b": b})[y2].tolist() == [5, -1, 4, 1, 5, 4, 127, -128]


def test_worked_example_multiplier():
    real = combine_scales([np.float32(0.5), np.float32(0.25)], np.float32(0.5), "float64")
    p = prepare_requant(real, PROFILES["qnnref"].requant)
    assert (int(p.multiplier), int(p.shift)) == (2**30, -1)     # 1/4 = 2^30 * 2^(-1 - 31)


# ---------------------------------------------------------------------------
# Exhaustive: every int8 x int8 pair
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("recipe_name", ["qnnref", "fixed-point-double-round", "float32-half-to-even"])
def test_every_int8_pair(recipe_name):
    recipe = RECIPES[recipe_name]
    qa, qb, qy = (0.0173, -7), (0.0391, 12), (0.0627, -3)
    v = all_values("int8")
    a = np.repeat(v, 256).reshape(256, 256)            # a[i, j] = v[i]
    b = np.tile(v, 256).reshape(256, 256)              # b[i, j] = v[j]
    model, y = build("int8", (256, 256), (256, 256), qa, qb, qy, recipe)
    got = model.run({"a": a, "b": b})[y]
    real = real_multiplier([qa[0], qb[0]], qy[0], recipe.scale_dtype)
    want = [[py_mul(int(i), qa[1], int(j), qb[1], real, recipe, qy[1], "int8") for j in v] for i in v]
    assert np.array_equal(got, np.array(want))
    # broadcasting (256, 1) x (1, 256) gives the same table
    model_b, y_b = build("int8", (256, 1), (1, 256), qa, qb, qy, recipe)
    assert np.array_equal(model_b.run({"a": v.reshape(256, 1), "b": v.reshape(1, 256)})[y_b], got)


# ---------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("recipe_name", sorted(RECIPES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_matches_python_int_oracle(recipe_name, data):
    recipe = RECIPES[recipe_name]
    dtype = data.draw(st.sampled_from(sorted(RANGES)))
    lo, hi = RANGES[dtype]
    a_shape, b_shape = data.draw(st.sampled_from(BROADCAST_SHAPES))
    za, zb, zy = (data.draw(st.integers(lo, hi)) for _ in range(3))
    if dtype == "int16":     # keep (a - za) * (b - zb) within int32 (else: ERROR_IF, tested below)
        za, zb = data.draw(st.integers(-2, 2)), data.draw(st.integers(-2, 2))
    sa, sb, sy = data.draw(float32_scales()), data.draw(float32_scales()), data.draw(float32_scales())
    act_min = data.draw(st.one_of(st.none(), st.integers(lo, hi)))
    act_max = data.draw(st.one_of(st.none(), st.integers(lo if act_min is None else act_min, hi)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = rng.integers(lo, hi, size=a_shape, endpoint=True).astype(NP[dtype])
    b = rng.integers(lo, hi, size=b_shape, endpoint=True).astype(NP[dtype])
    model, y = build(dtype, a_shape, b_shape, (sa, za), (sb, zb), (sy, zy), recipe, act=(act_min, act_max))
    real = real_multiplier([sa, sb], sy, recipe.scale_dtype)
    ab, bb = np.broadcast_arrays(a, b)
    try:
        want = np.array([py_mul(int(i), za, int(j), zb, real, recipe, zy, dtype, act_min, act_max)
                         for i, j in zip(ab.ravel(), bb.ravel())]).reshape(ab.shape)
    except OverflowError:
        with pytest.raises(qnnref.RuntimeCheckError, match="'mul1'.*overflows int32"):
            model.run({"a": a, "b": b})
        return
    got = model.run({"a": a, "b": b})[y]
    assert got.dtype == NP[dtype] and got.shape == ab.shape
    assert np.array_equal(got, want)


@settings(max_examples=200, deadline=None)
@given(a=st.integers(-128, 127), b=st.integers(-128, 127), za=st.integers(-128, 127),
       zb=st.integers(-128, 127), zy=st.integers(-128, 127), sa=float32_scales(), sb=float32_scales(),
       sy=float32_scales())
def test_single_rounding_is_the_correctly_rounded_product(a, b, za, zb, zy, sa, sb, sy):
    # qnnref: one rounding (half_up) of acc * multiplier, where the multiplier
    # has 31 significant bits; against the exact real product, the result is
    # off by at most one step, and only when the real lies within
    # |acc| * 2^-31 relative of a rounding boundary.
    real = combine_scales([np.float32(sa), np.float32(sb)], np.float32(sy), "float64")
    params = prepare_requant(real, PROFILES["qnnref"].requant)
    got = int(mul(np.int8(a), za, np.int8(b), zb, params, zy, "int8")) - zy
    exact = Fraction((a - za) * (b - zb)) * Fraction(float(np.float32(sa))) * Fraction(float(np.float32(sb))) \
        / Fraction(float(np.float32(sy)))
    ideal = max(-128 - zy, min(127 - zy, math.floor(exact + Fraction(1, 2))))
    assert abs(got - ideal) <= 1
    if got != ideal:
        assert abs(exact - (math.floor(exact) + Fraction(1, 2))) <= abs(exact) * Fraction(2, 2**30)


def test_extreme_zero_points_and_ranges():
    v = all_values("uint8")
    model, y = build("uint8", (256,), (256,), (0.5, 255), (0.5, 0), (0.001, 255))
    got = model.run({"a": v, "b": v[::-1].copy()})[y]
    real = real_multiplier([0.5, 0.5], 0.001, "float64")
    want = [py_mul(int(i), 255, int(j), 0, real, RECIPES["qnnref"], 255, "uint8") for i, j in zip(v, v[::-1])]
    assert got.tolist() == want


def test_int16_without_zero_points_spans_int32():
    # (-32768)^2 = 2^30: the largest accumulator, valid with zero points 0
    a = np.array([-32768, 32767, -32768, 1], np.int16)
    model, y = build("int16", (4,), (4,), (2.0**-15, 0), (2.0**-15, 0), (2.0**-15, 0))
    assert model.run({"a": a, "b": a})[y].tolist() == [32767, 32766, 32767, 0]


def test_fused_activation_range():
    model, y = build("int8", (4,), (4,), (0.1, 0), (0.1, 0), (0.01, 0), act=(0, 50))
    out = model.run({"a": np.array([-5, 1, 5, 10], np.int8), "b": np.array([5, 3, 5, 10], np.int8)})[y]
    assert out.tolist() == [0, 3, 25, 50]


# ---------------------------------------------------------------------------
# REQUIRE and ERROR_IF
# ---------------------------------------------------------------------------

def test_gemmlowp_left_shift_overflow_is_a_runtime_error():
    # multiplier 2^17 > 1: gemmlowp scales acc by 2^18 before srdhm, which must fit int32
    model, y = build("int8", (2,), (2,), (1.0, 0), (1.0, 0), (2.0**-17, 0), profile="fixed-point-double-round")
    assert model.run({"a": np.array([1, 0], np.int8), "b": np.array([-1, 0], np.int8)})[y].tolist() == [-128, 0]
    with pytest.raises(qnnref.RuntimeCheckError, match="'mul1'.*overflows int32"):
        model.run({"a": np.array([-128, 0], np.int8), "b": np.array([-128, 0], np.int8)})


def test_error_int16_zero_points_overflow_int32():
    b = GraphBuilder()
    x1 = b.input("a", "int16", (2,), scale=0.1, zero_point=20000)
    x2 = b.input("b", "int16", (2,), scale=0.1, zero_point=-20000)
    x3 = b.input("c", "int16", (2,), scale=0.1, zero_point=0)
    # max |a - zp_a| * max |b - zp_b| = 52768 * 52767 > 2^31 - 1
    with pytest.raises(qnnref.ValidationError, match="'bad'.*beyond int32"):
        b.node("mul", [x1, x2], scale=0.1, name="bad")
    # 52768 * 32768 < 2^31: valid
    b.node("mul", [x1, x3], scale=0.1, name="ok")


@pytest.mark.parametrize("case", ["dtype_mismatch", "int4", "broadcast", "per_axis", "unquantized",
                                  "act_range", "act_order", "multiplier"])
def test_errors(case):
    b = GraphBuilder()
    kw_a = {"scale": 0.1, "zero_point": 0}
    da, db, sa, sb = "int8", "int8", (2, 3), (2, 3)
    if case == "dtype_mismatch":
        db = "uint8"
    if case == "int4":
        da = db = "int4"
    if case == "broadcast":
        sb = (3, 2)
    x1 = b.input("a", da, sa, **kw_a)
    if case == "per_axis":
        x2 = b.input("b", db, sb, scale=[0.1, 0.2, 0.3], zero_point=0, axis=1)
    elif case == "unquantized":
        x2 = b.input("b", db, sb)
    else:
        x2 = b.input("b", db, sb, **kw_a)
    attrs = {"act_min": -200} if case == "act_range" else {"act_min": 5, "act_max": 4} if case == "act_order" else {}
    s_y = 1e-12 if case == "multiplier" else 0.1
    pattern = {"dtype_mismatch": "same dtype", "int4": "dtype int4", "broadcast": "do not broadcast",
               "per_axis": "per-axis", "unquantized": "must be quantized", "act_range": "act_min",
               "act_order": "act_min 5 > act_max 4", "multiplier": "multiplier"}[case]
    with pytest.raises(qnnref.ValidationError, match=f"'bad'.*{pattern}"):
        b.node("mul", [x1, x2], attrs, scale=s_y, zero_point=0, name="bad")
