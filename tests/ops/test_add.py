"""add: the worked example, every int8 x int8 pair, every recipe against a
Python-int oracle of the scheme, accuracy against exact rationals (and why
the left shift is needed), broadcasting, fused activation, ERROR_IF."""
from __future__ import annotations

import math
from fractions import Fraction
from functools import partial

import numpy as np
import pytest
from conftest import BROADCAST_SHAPES, RECIPES, all_values, binary_model, float32_scales
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import clamp_to, encode_multiplier, round_float_result, scale_by_encoded

import qnnref
from qnnref import GraphBuilder, Recipe

RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-(2**15), 2**15 - 1)}
NP = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16}
build = partial(binary_model, "add", name="add1")


# ---------------------------------------------------------------------------
# Oracle: the scheme of spec/ops/add.md on the recipes of tests/oracles.py
# ---------------------------------------------------------------------------

def ft_of(name):
    return np.float32 if name == "float32" else np.float64


class AddOracle:
    """The add of spec/ops/add.md for one set of parameters, one element at a time."""

    def __init__(self, dtype, qa, qb, qy, recipe: Recipe, act=(None, None), left_shift=None):
        self.dtype, self.recipe, self.act = dtype, recipe, act
        (self.sa, self.za), (self.sb, self.zb), (self.sy, self.zy) = qa, qb, qy
        if recipe.kind == "fixed_point":
            self.ls = (15 if dtype == "int16" else 20) if left_shift is None else left_shift
            f32 = np.float32
            twice_max = f32(2) * max(f32(self.sa), f32(self.sb))           # exact
            fs = ft_of(recipe.scale_dtype)
            self.ra = fs(fs(f32(self.sa)) / fs(twice_max))
            self.rb = fs(fs(f32(self.sb)) / fs(twice_max))
            self.ro = fs(fs(twice_max) / fs(f32(2.0**self.ls) * f32(self.sy)))
            self.enc = [encode_multiplier(v, recipe.multiplier_rounding) for v in (self.ra, self.rb, self.ro)]
            self.cache = {}

    def scaled(self, which: int, x: int) -> int:
        """Steps 1-2 for input a (which=0) or b (which=1): shifted, rescaled."""
        key = (which, x)
        if key not in self.cache:
            zp = (self.za, self.zb)[which]
            self.cache[key] = scale_by_encoded((x - zp) * 2**self.ls, *self.enc[which], self.recipe)
        return self.cache[key]

    def __call__(self, a: int, b: int) -> int:
        r = self.recipe
        if r.kind == "fixed_point":
            v = scale_by_encoded(self.scaled(0, a) + self.scaled(1, b), *self.enc[2], r)
        else:
            ft = ft_of(r.float_dtype)
            a_real = ft(ft(a - self.za) * ft(np.float32(self.sa)))
            b_real = ft(ft(b - self.zb) * ft(np.float32(self.sb)))
            v = round_float_result(float(ft(ft(a_real + b_real) / ft(np.float32(self.sy)))), r.rounding)
        return clamp_to(v + self.zy, self.dtype, *self.act)

    def exact(self, a: int, b: int) -> Fraction:
        """The real result in output steps, before rounding and zp_y."""
        s = lambda v: Fraction(float(np.float32(v)))
        return (s(self.sa) * (a - self.za) + s(self.sb) * (b - self.zb)) / s(self.sy)


# ---------------------------------------------------------------------------
# Worked example (spec/ops/add.md)
# ---------------------------------------------------------------------------

EX_A = np.array([3, 0, 4, 2, 1, 127, -128], np.int8)
EX_B = np.array([2, -1, -1, -3, -2, 127, -128], np.int8)
EX_Q = ((0.5, 1), (0.25, -2), (0.5, 3))


@pytest.mark.parametrize("profile,want", [
    ("qnnref", [7, 3, 7, 4, 3, 127, -128]),
    ("fixed-point-double-round", [7, 2, 7, 4, 3, 127, -128]),
    ("float32-half-to-even", [7, 3, 7, 3, 3, 127, -128]),
])
def test_worked_example(profile, want):
    model, y = build("int8", (7,), (7,), *EX_Q, profile=profile)
    assert model.run({"a": EX_A, "b": EX_B})[y].tolist() == want


def test_worked_example_intermediates():
    # a = 0, b = -1 under qnnref: shifted -2^20 and 2^20, scaled by 1/2 and 1/4,
    # summed to -262144, times 2^-19: -0.5, a tie, half_up: 0
    from qnnref.ops.add import add_fixed_point
    model, _ = build("int8", (7,), (7,), *EX_Q)
    params = model._contexts[0].prepared["params"]
    assert params.left_shift == 20
    assert [(int(p.multiplier), int(p.shift)) for p in (params.a, params.b, params.out)] == \
        [(2**30, 0), (2**30, -1), (2**30, -18)]
    y = add_fixed_point(np.array([0], np.int8), 1, np.array([-1], np.int8), -2, params, 3, "int8")
    assert y.tolist() == [3]


# ---------------------------------------------------------------------------
# Exhaustive and property tests against the oracle
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("recipe_name", ["qnnref", "fixed-point-double-round", "float32-half-to-even",
                                         "tosa-double-round"])
def test_every_int8_pair(recipe_name):
    recipe = RECIPES[recipe_name]
    qa, qb, qy = (0.0173, -7), (0.0391, 12), (0.0627, -3)
    v = all_values("int8")
    model, y = build("int8", (256, 1), (1, 256), qa, qb, qy, recipe)
    got = model.run({"a": v.reshape(256, 1), "b": v.reshape(1, 256)})[y]
    oracle = AddOracle("int8", qa, qb, qy, recipe)
    want = np.array([[oracle(int(i), int(j)) for j in v] for i in v])
    assert np.array_equal(got, want)


@pytest.mark.parametrize("recipe_name", sorted(RECIPES))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_matches_python_int_oracle(recipe_name, data):
    recipe = RECIPES[recipe_name]
    dtype = data.draw(st.sampled_from(sorted(RANGES)))
    lo, hi = RANGES[dtype]
    a_shape, b_shape = data.draw(st.sampled_from(BROADCAST_SHAPES))
    za, zb, zy = (data.draw(st.integers(lo, hi)) for _ in range(3))
    sa, sb = data.draw(float32_scales()), data.draw(float32_scales())
    # s_y within a factor 2^12 of the inputs' scales, as in real models
    sy = float(np.float32(max(sa, sb) * 2.0 ** data.draw(st.floats(-6, 6))))
    act_min = data.draw(st.one_of(st.none(), st.integers(lo, hi)))
    act_max = data.draw(st.one_of(st.none(), st.integers(lo if act_min is None else act_min, hi)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = rng.integers(lo, hi, size=a_shape, endpoint=True).astype(NP[dtype])
    b = rng.integers(lo, hi, size=b_shape, endpoint=True).astype(NP[dtype])
    model, y = build(dtype, a_shape, b_shape, (sa, za), (sb, zb), (sy, zy), recipe, act=(act_min, act_max))
    oracle = AddOracle(dtype, (sa, za), (sb, zb), (sy, zy), recipe, (act_min, act_max))
    ab, bb = np.broadcast_arrays(a, b)
    want = np.array([oracle(int(i), int(j)) for i, j in zip(ab.ravel(), bb.ravel())]).reshape(ab.shape)
    got = model.run({"a": a, "b": b})[y]
    assert got.dtype == NP[dtype] and got.shape == ab.shape
    assert np.array_equal(got, want)


# ---------------------------------------------------------------------------
# Precision: why the left shift
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_fixed_point_is_within_one_step_of_the_exact_sum(dtype):
    # With the left shift, the rescaled inputs carry 20 (15) fractional bits:
    # their rounding errors amount to at most 2 * twice_max / (2^left_shift * s_y)
    # output steps, so the result is the correctly rounded real except within
    # that distance of a tie, where it may be one step off.
    rng = np.random.default_rng(7)
    lo, hi = RANGES[dtype]
    for _ in range(20):
        qa, qb = (float(rng.uniform(0.01, 0.1)), int(rng.integers(-100, 100))), \
                 (float(rng.uniform(0.01, 0.1)), int(rng.integers(-100, 100)))
        qy = (float(rng.uniform(0.02, 0.2)), int(rng.integers(-100, 100)))
        oracle = AddOracle(dtype, qa, qb, qy, RECIPES["qnnref"])
        bound = Fraction(2 * 2 * max(qa[0], qb[0])) / (2**oracle.ls * Fraction(qy[0])) + Fraction(1, 2**20)
        for a, b in rng.integers(lo, hi, size=(200, 2), endpoint=True):
            exact = oracle.exact(int(a), int(b))
            ideal = max(lo, min(hi, math.floor(exact + Fraction(1, 2)) + qy[1]))
            got = oracle(int(a), int(b))
            assert abs(got - ideal) <= 1
            if got != ideal:
                assert abs(exact - math.floor(exact) - Fraction(1, 2)) <= bound


def test_without_the_left_shift_precision_is_lost():
    # The same scheme with left_shift = 0 rounds each input to a multiple of
    # twice_max before summing: errors of several output steps.
    qa, qb, qy = (0.0173, -7), (0.0391, 12), (0.0127, -3)
    v = all_values("int8")[::3]
    with_shift = AddOracle("int8", qa, qb, qy, RECIPES["qnnref"])
    no_shift = AddOracle("int8", qa, qb, qy, RECIPES["qnnref"], left_shift=0)
    err = lambda o: max(abs(o(int(a), int(b)) - (math.floor(o.exact(int(a), int(b)) + Fraction(1, 2)) + qy[1]))
                        for a in v for b in v
                        if -128 <= math.floor(o.exact(int(a), int(b)) + Fraction(1, 2)) + qy[1] <= 127)
    assert err(with_shift) <= 1
    assert err(no_shift) >= 3


def test_float_operation_order_is_specified():
    # (s_a (a - zp_a) + s_b (b - zp_b)) / s_y in float32, in that order, is
    # -6.5000095 here: -7. Dividing each term first, or multiplying by the
    # ratios s_i / s_y (as vectorized kernels do), gives exactly -6.5: -6.
    sa, sb, sy = np.float32(0.0892794), np.float32(0.05893113), np.float32(0.047659658)
    a, b, za, zb = 70, -121, -13, 10
    pa, pb = np.float32(a - za) * sa, np.float32(b - zb) * sb
    assert (pa + pb) / sy == np.float32(-6.5000095)
    assert pa / sy + pb / sy == np.float32(-6.5)
    assert np.float32(a - za) * (sa / sy) + np.float32(b - zb) * (sb / sy) == np.float32(-6.5)
    model, y = build("int8", (1,), (1,), (float(sa), za), (float(sb), zb), (float(sy), 0),
                     profile="float32-half-to-even")
    assert model.run({"a": np.array([a], np.int8), "b": np.array([b], np.int8)})[y].tolist() == [-7]


# ---------------------------------------------------------------------------
# Other cases
# ---------------------------------------------------------------------------

def test_uint8_extreme_zero_points():
    v = all_values("uint8")
    qa, qb, qy = (0.5, 255), (0.25, 0), (0.75, 255)
    model, y = build("uint8", (256,), (256,), qa, qb, qy)
    got = model.run({"a": v, "b": v[::-1].copy()})[y]
    oracle = AddOracle("uint8", qa, qb, qy, RECIPES["qnnref"])
    assert got.tolist() == [oracle(int(i), int(j)) for i, j in zip(v, v[::-1])]


def test_int16_full_range():
    x = np.array([-32768, 32767, 0, -1, 12345], np.int16)
    qa, qb, qy = (2.0**-15, 0), (3.0 * 2.0**-15, 100), (2.0**-14, -5)
    model, y = build("int16", (5,), (5,), qa, qb, qy, profile="fixed-point-double-round")
    oracle = AddOracle("int16", qa, qb, qy, RECIPES["fixed-point-double-round"])
    assert model.run({"a": x, "b": x[::-1].copy()})[y].tolist() == \
        [oracle(int(i), int(j)) for i, j in zip(x, x[::-1])]


def test_equal_scales_adds_exactly():
    # s_a = s_b = s_y, zero points 0: y = saturate(a + b)
    v = all_values("int8")
    model, y = build("int8", (256,), (256,), (0.1, 0), (0.1, 0), (0.1, 0))
    rev = v[::-1].copy()
    assert model.run({"a": v, "b": rev})[y].tolist() == \
        [max(-128, min(127, int(i) + int(j))) for i, j in zip(v, rev)]


def test_fused_activation_range():
    model, y = build("int8", (4,), (4,), (0.1, 0), (0.1, 0), (0.1, -128), act=(-128, -100))
    out = model.run({"a": np.array([-5, 1, 5, 127], np.int8), "b": np.array([0, 3, 20, 127], np.int8)})[y]
    assert out.tolist() == [-128, -124, -103, -100]


# ---------------------------------------------------------------------------
# ERROR_IF
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["dtype_mismatch", "int4", "broadcast", "per_axis", "unquantized",
                                  "act_range", "act_order", "multiplier", "float_overflow",
                                  "output_unquantized"])
def test_errors(case):
    b = GraphBuilder(profile="float32-half-to-even" if case == "float_overflow" else "qnnref")
    da, db, sa, sb = "int8", "int8", (2, 3), (2, 3)
    if case == "dtype_mismatch":
        db = "int16"
    if case == "int4":
        da = db = "int4"
    if case == "broadcast":
        sb = (2,)
    s_a = 3e38 if case == "float_overflow" else 0.1
    x1 = b.input("a", da, sa, scale=s_a, zero_point=0)
    if case == "per_axis":
        x2 = b.input("b", db, sb, scale=[0.1, 0.2, 0.3], zero_point=0, axis=1)
    elif case == "unquantized":
        x2 = b.input("b", db, sb)
    else:
        x2 = b.input("b", db, sb, scale=0.1, zero_point=0)
    attrs = {"act_max": 128} if case == "act_range" else {"act_min": 5, "act_max": 4} if case == "act_order" else {}
    s_y = None if case == "output_unquantized" else 1e-20 if case == "multiplier" else 0.1
    pattern = {"dtype_mismatch": "same dtype", "int4": "dtype int4", "broadcast": "do not broadcast",
               "per_axis": "per-axis", "unquantized": "must be quantized", "act_range": "act_max",
               "act_order": "act_min 5 > act_max 4", "multiplier": "multiplier",
               "float_overflow": "too large", "output_unquantized": "must be quantized"}[case]
    with pytest.raises(qnnref.ValidationError, match=f"'bad'.*{pattern}"):
        b.node("add", [x1, x2], attrs, scale=s_y, zero_point=None if s_y is None else 0, name="bad")
