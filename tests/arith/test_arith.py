"""qnnref.arith, part 1: rounding, saturation, accumulators, recipe data.

Every primitive is compared with an exact oracle (tests/oracles.py:
Python ints and Fractions) over exhaustive edge values, plus hypothesis.
Requantization is in test_arith_requant.py, quantize/dequantize in
test_arith_quantize.py.
"""
from __future__ import annotations

import itertools
import json
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnref import arith, dtypes
from qnnref.errors import RuntimeCheckError, ValidationError

from oracles import (INT32_MAX, INT32_MIN, MODES, NEAREST_MODES, ROUNDING_TABLE, TABLE_INPUTS,
                     gemmlowp_rdbpot, round_fraction, round_rational, wrap32)
from conftest import edge_values_int32

SETTINGS = settings(max_examples=200, derandomize=True, deadline=None)


# ---------------------------------------------------------------------------
# The oracle itself: the rounding table of spec/arithmetic.md
# ---------------------------------------------------------------------------

def test_rounding_modes_are_the_documented_ones():
    assert arith.ROUNDING_MODES == MODES
    assert set(ROUNDING_TABLE) == set(MODES)


@pytest.mark.parametrize("mode", MODES)
def test_rounding_table_of_the_spec(mode):
    """The table in spec/arithmetic.md, checked against the oracle, round_float
    and rounding_divide_by_pot (v = x / 2)."""
    expected = ROUNDING_TABLE[mode]
    assert tuple(round_fraction(Fraction(v), mode) for v in TABLE_INPUTS) == expected
    got = arith.round_float(np.array(TABLE_INPUTS), mode)
    assert tuple(int(v) for v in got) == expected
    got = arith.rounding_divide_by_pot(np.array([int(2 * v) for v in TABLE_INPUTS]), 1, mode)
    assert tuple(int(v) for v in got) == expected


def test_check_rounding():
    for mode in MODES:
        assert arith.check_rounding(mode) == mode
    for bad in ("nearest", "HALF_UP", "", None, 3):
        with pytest.raises(ValidationError, match="unknown rounding mode"):
            arith.check_rounding(bad, "node n")


# ---------------------------------------------------------------------------
# round_float
# ---------------------------------------------------------------------------

def _float_edge_values(ft) -> np.ndarray:
    """Ties n + 1/2, their neighbours one ulp away, integers and theirs,
    values where the ulp is 1/2, 1 and 2, huge values, tiny values, +-0."""
    ft = np.dtype(ft).type
    mant = np.finfo(ft).nmant          # 52 or 23
    vals = [0.0, -0.0, 0.25, 0.75, 1e-30, np.finfo(ft).tiny, np.finfo(ft).smallest_subnormal,
            np.finfo(ft).max, 0.49999999999999994, 0.49999997]
    for n in range(-6, 7):
        vals += [n, n + 0.5, n + 0.25, n + 0.75]
    for e in (mant - 2, mant - 1, mant, mant + 1, mant + 2, 60, 100):
        for k in (-2, -1, 0, 1, 2):
            vals.append(2.0**e + k)
        vals += [2.0**e - 0.5, 2.0**e + 0.5, 2.0**e - 1.5, 2.0**e + 1.5, 3 * 2.0**e]
    base = np.array(vals, dtype=np.float64).astype(ft)
    base = base[np.isfinite(base)]
    base = np.concatenate([base, -base])
    with np.errstate(over="ignore"):
        up = np.nextafter(base, ft(np.inf))
        down = np.nextafter(base, ft(-np.inf))
    allv = np.concatenate([base, up, down, np.array([0.0, -0.0], dtype=ft)])
    return np.unique(allv[np.isfinite(allv)])


def _check_round_float(x: np.ndarray, mode: str):
    got = arith.round_float(x, mode)
    assert got.dtype == x.dtype
    for v, g in zip(x.tolist(), got.tolist()):
        want = round_fraction(Fraction(v), mode)
        assert g == want, f"round_float({v!r}, {mode}) = {g!r}, exact: {want}"
    # IEEE roundToIntegral keeps the sign, also of a zero result (-0.3 -> -0.0)
    assert np.array_equal(np.signbit(got), np.signbit(x))


@pytest.mark.parametrize("ft", [np.float64, np.float32])
@pytest.mark.parametrize("mode", MODES)
def test_round_float_edge_values(mode, ft):
    _check_round_float(_float_edge_values(ft), mode)


@pytest.mark.parametrize("mode", NEAREST_MODES)
def test_round_float_just_below_a_tie_is_not_a_tie(mode):
    """0.49999999999999994 (the float64 below 1/2) and -0.49999999999999994:
    floor(x + 0.5) gives 1 for the first, and x - floor(x) rounds to exactly
    0.5 for the second; both must round to 0 in every nearest mode."""
    for ft, below_half in ((np.float64, 0.49999999999999994), (np.float32, 0.49999997)):
        x = np.array([below_half, -below_half], dtype=ft)
        assert x[0] == np.nextafter(ft(0.5), ft(0))
        assert arith.round_float(x, mode).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("mode", MODES)
def test_round_float_huge_values_are_integral(mode):
    """From 2^52 (float64) or 2^23 (float32) on every float is an integer."""
    x64 = np.array([2.0**52, 2.0**52 + 1, 2.0**53 + 2, 1e300, -(2.0**52) - 1, -1e300])
    assert np.array_equal(arith.round_float(x64, mode), x64)
    x32 = np.array([2.0**23, 2.0**23 + 1, 2.0**24 + 2, 3e38, -(2.0**23) - 1], dtype=np.float32)
    assert np.array_equal(arith.round_float(x32, mode), x32)


@pytest.mark.parametrize("mode", MODES)
def test_round_float_inf_and_nan_pass_through(mode):
    for ft in (np.float64, np.float32):
        got = arith.round_float(np.array([np.inf, -np.inf, np.nan], dtype=ft), mode)
        assert got[0] == np.inf and got[1] == -np.inf and np.isnan(got[2])
        assert got.dtype == ft


@SETTINGS
@given(xs=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20))
def test_round_float_hypothesis_float64(xs):
    for mode in MODES:
        _check_round_float(np.array(xs, dtype=np.float64), mode)


@SETTINGS
@given(xs=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=20))
def test_round_float_hypothesis_float32(xs):
    for mode in MODES:
        _check_round_float(np.array(xs, dtype=np.float32), mode)


@SETTINGS
@given(n=st.integers(-(2**51), 2**51))
def test_round_float_hypothesis_ties(n):
    x = np.array([n + 0.5, -n - 0.5, n - 0.5])      # all exact float64 ties
    for mode in MODES:
        _check_round_float(x, mode)


def test_round_float_rejects_unknown_mode():
    with pytest.raises(ValidationError):
        arith.round_float(np.array([0.5]), "nearest")


# ---------------------------------------------------------------------------
# rounding_divide_by_pot
# ---------------------------------------------------------------------------

def _int64_edge_values() -> np.ndarray:
    """The int32 edge values plus 2^i + {-2..2} and negatives for i < 62, and
    +-(2^62 - 1): the whole documented domain |x| < 2^62."""
    vals = set(edge_values_int32().tolist())
    for i in range(32, 62):
        for d in (-2, -1, 0, 1, 2):
            vals.update((2**i + d, -(2**i) + d))
    vals.update((2**62 - 1, -(2**62) + 1, 2**62 - 2, -(2**62) + 2, 3 * 2**60, -3 * 2**60))
    return np.array(sorted(v for v in vals if abs(v) < 2**62), dtype=np.int64)


@pytest.mark.parametrize("mode", MODES)
def test_rounding_divide_by_pot_every_exponent(mode):
    """Edge values x every exponent 0..62, as a per-element exponent array
    (broadcast (N, 1) against (1, 63)), against x / 2^e rounded exactly."""
    x = _int64_edge_values()
    e = np.arange(63)
    got = arith.rounding_divide_by_pot(x[:, None], e[None, :], mode)
    assert got.dtype == np.int64 and got.shape == (x.size, e.size)
    xl = x.tolist()
    for j in range(e.size):
        want = [round_rational(v, 1 << j, mode) for v in xl]
        assert got[:, j].tolist() == want, f"exponent {j}"


@SETTINGS
@given(data=st.lists(st.tuples(st.integers(-(2**62) + 1, 2**62 - 1), st.integers(0, 62)),
                     min_size=1, max_size=30))
def test_rounding_divide_by_pot_hypothesis(data):
    """Per-element exponents, against Fraction(x, 2^e) rounded."""
    x = np.array([d[0] for d in data], dtype=np.int64)
    e = np.array([d[1] for d in data], dtype=np.int64)
    for mode in MODES:
        got = arith.rounding_divide_by_pot(x, e, mode).tolist()
        assert got == [round_fraction(Fraction(v, 2**k), mode) for v, k in data], mode


def test_rounding_divide_by_pot_scalar_exponent_and_int32_input():
    x = np.array([5, -5, 7, -7], dtype=np.int32)
    assert arith.rounding_divide_by_pot(x, 1, "half_up").tolist() == [3, -2, 4, -3]
    assert arith.rounding_divide_by_pot(x, np.int8(1), "half_to_even").tolist() == [2, -2, 4, -4]


def test_rounding_divide_by_pot_is_gemmlowp_with_half_away_from_zero():
    """gemmlowp's RoundingDivideByPOT, transcribed literally, over int32 edge
    values x exponents 0..31 (its domain)."""
    x = edge_values_int32()
    e = np.arange(32)
    got = arith.rounding_divide_by_pot(x[:, None], e[None, :], "half_away_from_zero")
    for j in range(32):
        assert got[:, j].tolist() == [gemmlowp_rdbpot(v, j) for v in x.tolist()], f"exponent {j}"


def test_rounding_divide_by_pot_half_up_is_tosa_and_floor_is_shift():
    x = _int64_edge_values()
    for e in range(1, 63):
        assert np.array_equal(arith.rounding_divide_by_pot(x, e, "half_up"), (x + (1 << (e - 1))) >> e)
        assert np.array_equal(arith.rounding_divide_by_pot(x, e, "floor"), x >> e)


def test_rounding_divide_by_pot_rejects_unknown_mode():
    with pytest.raises(ValidationError):
        arith.rounding_divide_by_pot(np.array([1]), 1, "nearest")


# XNNPACK-style: one test per property, over k in a range of quotients and every exponent.

K = np.arange(-1000, 1001, dtype=np.int64)


def _rdbpot_grid(offset_fn, min_exp=1):
    """x = k * 2^e + offset_fn(e) for k in K and each exponent e; yields (e, k, x)."""
    for e in range(min_exp, 51):
        yield e, K, (K << e) + offset_fn(e)


@pytest.mark.parametrize("mode", MODES)
def test_exact_divide_by_po2(mode):
    for e in range(0, 52):
        assert np.array_equal(arith.rounding_divide_by_pot(K << e, e, mode), K), e


@pytest.mark.parametrize("mode", NEAREST_MODES + ("ceil",))
def test_divide_by_po2_with_rounding_up(mode):
    """k + (1/2 + 2^-e): above the midpoint, every nearest mode and ceil give k + 1."""
    for e, k, x in _rdbpot_grid(lambda e: (1 << (e - 1)) + 1, min_exp=2):
        assert np.array_equal(arith.rounding_divide_by_pot(x, e, mode), k + 1), e


@pytest.mark.parametrize("mode", NEAREST_MODES + ("floor",))
def test_divide_by_po2_with_rounding_down(mode):
    """k + (1/2 - 2^-e): below the midpoint, every nearest mode and floor give k."""
    for e, k, x in _rdbpot_grid(lambda e: (1 << (e - 1)) - 1, min_exp=2):
        assert np.array_equal(arith.rounding_divide_by_pot(x, e, mode), k), e


def test_divide_by_po2_with_truncation():
    """truncate: k + f with 0 < f < 1 gives k for k >= 0 and k + 1 for k < 0."""
    for e, k, x in _rdbpot_grid(lambda e: 1):
        assert np.array_equal(arith.rounding_divide_by_pot(x, e, "truncate"), np.where(k >= 0, k, k + 1)), e


TIE_RESULTS = {
    # k + 1/2 goes to:
    "half_away_from_zero": lambda k: np.where(k >= 0, k + 1, k),
    "half_up": lambda k: k + 1,
    "half_down": lambda k: k,
    "half_to_even": lambda k: np.where(k % 2 == 0, k, k + 1),
}


@pytest.mark.parametrize("mode", sorted(TIE_RESULTS))
def test_divide_by_po2_ties(mode):
    """k + 1/2 exactly: the tie rule of each nearest mode (XNNPACK's
    divide_by_po2_with_rounding_away for half_away_from_zero)."""
    for e, k, x in _rdbpot_grid(lambda e: 1 << (e - 1)):
        assert np.array_equal(arith.rounding_divide_by_pot(x, e, mode), TIE_RESULTS[mode](k)), e


# ---------------------------------------------------------------------------
# saturate / saturate_float_to_int
# ---------------------------------------------------------------------------

INT_DTYPES = ("int4", "uint4", "int8", "uint8", "int16", "int32", "int64")


def _around_bounds(dt) -> list[int]:
    vals = {0, 1, -1}
    for b in (dt.min, dt.max):
        vals.update(b + d for d in (-2, -1, 0, 1, 2))
    vals.update((-(2**40), 2**40, INT32_MIN, INT32_MAX, 2**63 - 1, -(2**63)))
    return sorted(v for v in vals if -(2**63) <= v < 2**63)


@pytest.mark.parametrize("name", INT_DTYPES)
def test_saturate(name):
    dt = dtypes.get(name)
    vals = _around_bounds(dt)
    got = arith.saturate(np.array(vals, dtype=np.int64), name)
    assert got.dtype == dt.numpy
    assert got.tolist() == [min(max(v, dt.min), dt.max) for v in vals]


@pytest.mark.parametrize("name", [n for n in INT_DTYPES if dtypes.get(n).bits <= 16])
def test_saturate_every_small_value(name):
    dt = dtypes.get(name)
    v = np.arange(-(2**17), 2**17)
    assert np.array_equal(arith.saturate(v, name), np.clip(v, dt.min, dt.max).astype(dt.numpy))


@pytest.mark.parametrize("ft", [np.float64, np.float32])
@pytest.mark.parametrize("name", INT_DTYPES)
def test_saturate_float_to_int(name, ft):
    """Every integral float near the bounds, as the float type holds it, and
    +-inf and huge values; compared exactly (no float compare)."""
    dt = dtypes.get(name)
    with np.errstate(over="ignore"):
        xs = np.unique(np.array([float(v) for v in _around_bounds(dt)] + [1e30, -1e30, 3e38, -3e38],
                                dtype=np.float64).astype(ft))
    xs = np.concatenate([xs, np.array([np.inf, -np.inf], dtype=ft)])
    got = arith.saturate_float_to_int(xs, name)
    assert got.dtype == dt.numpy
    want = [dt.max if v == np.inf else dt.min if v == -np.inf else min(max(int(v), dt.min), dt.max)
            for v in xs.tolist()]
    assert got.tolist() == want


def test_saturate_float_to_int_bounds_that_floats_cannot_hold():
    """float32(INT32_MAX) is 2^31 and float64(INT64_MAX) is 2^63: both must
    saturate to the maximum, not wrap to the minimum."""
    assert arith.saturate_float_to_int(np.float32(2**31), "int32") == INT32_MAX
    assert arith.saturate_float_to_int(np.float32(-(2**31)), "int32") == INT32_MIN
    assert arith.saturate_float_to_int(np.float64(2**63), "int64") == 2**63 - 1
    assert arith.saturate_float_to_int(np.float64(2**63 - 1024), "int64") == 2**63 - 1024
    assert arith.saturate_float_to_int(np.float64(-(2**63)), "int64") == -(2**63)


def test_saturate_float_to_int_nan_raises():
    for ft in (np.float64, np.float32, np.float16):
        with pytest.raises(RuntimeCheckError, match="NaN"):
            arith.saturate_float_to_int(np.array([1.0, np.nan], dtype=ft), "int8")


# ---------------------------------------------------------------------------
# check_accumulator: the int32 accumulator contract
# ---------------------------------------------------------------------------

def test_check_accumulator_bounds():
    ok = np.array([INT32_MIN, -1, 0, 1, INT32_MAX], dtype=np.int64)
    assert np.array_equal(arith.check_accumulator(ok), ok)
    assert arith.check_accumulator(np.array([], dtype=np.int64)).size == 0
    for bad in (INT32_MAX + 1, INT32_MIN - 1, 2**62):
        with pytest.raises(RuntimeCheckError, match="overflows int32"):
            arith.check_accumulator(np.array([0, bad, 0], dtype=np.int64), "conv acc")


def test_check_accumulator_message_names_the_value():
    with pytest.raises(RuntimeCheckError, match=r"my acc overflows int32 \(value 2147483648\)"):
        arith.check_accumulator(np.array([INT32_MAX + 1]), "my acc")
    with pytest.raises(RuntimeCheckError, match=r"value -2147483649"):
        arith.check_accumulator(np.array([INT32_MIN - 1]))


def _wrapping_sum(terms) -> int:
    s = 0
    for t in terms:
        s = wrap32(s + t)
    return s


@SETTINGS
@given(terms=st.lists(st.integers(INT32_MIN, INT32_MAX), min_size=1, max_size=40),
       seed=st.integers(0, 2**32 - 1))
def test_wraparound_summation_is_exact_when_the_sum_fits(terms, seed):
    """The accumulator contract: if the exact sum fits int32, int32 addition
    modulo 2^32 in ANY order (partial sums may overflow and wrap) ends at the
    exact sum. So every kernel that wraps agrees with the reference on every
    input check_accumulator accepts."""
    terms = list(terms)
    while not (INT32_MIN <= sum(terms) <= INT32_MAX):   # steer the exact sum into range
        terms.append(max(INT32_MIN, min(INT32_MAX, -sum(terms))))
    exact = sum(terms)
    arith.check_accumulator(np.array([exact]))
    rnd = random.Random(seed)
    for _ in range(5):
        order = terms[:]
        rnd.shuffle(order)
        assert _wrapping_sum(order) == exact
        # numpy's int32 reductions wrap the same way (pairwise, another order)
        assert int(np.add.reduce(np.array(order, dtype=np.int32), dtype=np.int32)) == exact


def test_wraparound_summation_with_overflowing_partial_sums():
    terms = [INT32_MAX, INT32_MAX, 5, INT32_MIN, INT32_MIN, 3]
    exact = sum(terms)
    assert exact == 6
    for perm in itertools.permutations(terms):
        assert _wrapping_sum(perm) == exact


def test_wraparound_summation_is_wrong_when_the_sum_does_not_fit():
    """Why the contract needs the check: past int32, the wrapped sum is some
    other number, so the reference raises instead."""
    terms = [INT32_MAX, 1]
    assert _wrapping_sum(terms) == INT32_MIN != sum(terms)
    with pytest.raises(RuntimeCheckError):
        arith.check_accumulator(np.array([sum(terms)]))


# ---------------------------------------------------------------------------
# exact_dot_bound_ok
# ---------------------------------------------------------------------------

def test_exact_dot_bound_boundary():
    assert arith.FLOAT64_EXACT_INT == 2**53
    assert arith.exact_dot_bound_ok(2**39 - 1, 2**7, 2**7)          # < 2^53
    assert not arith.exact_dot_bound_ok(2**39, 2**7, 2**7)          # == 2^53
    assert arith.exact_dot_bound_ok(2**53 - 1, 1, 1)
    assert not arith.exact_dot_bound_ok(2**53, 1, 1)
    assert arith.exact_dot_bound_ok(1, 2**53 - 1, 1)
    assert arith.exact_dot_bound_ok(0, 2**100, 2**100)
    # int8 x int8 products are at most 2^14: K < 2^39 terms
    assert arith.exact_dot_bound_ok(2**38, 128, 128)
    # int16 x int16 (2^30): K < 2^23
    assert arith.exact_dot_bound_ok(2**23 - 1, 2**15, 2**15)
    assert not arith.exact_dot_bound_ok(2**23, 2**15, 2**15)


def test_exact_dot_bound_with_numpy_integers():
    """numpy scalars (as arr.max() returns) must not wrap around: 2^20 * 2^31
    * 2^31 overflows int64, and abs(int8(-128)) is -128."""
    assert not arith.exact_dot_bound_ok(np.int64(2**20), np.int64(2**31), np.int64(2**31))
    assert not arith.exact_dot_bound_ok(2**39, np.int8(-128), np.int8(-128))
    assert arith.exact_dot_bound_ok(np.int64(2**38), np.int8(-128), np.int8(127))


def test_float64_dot_is_exact_under_the_bound(rng):
    """Under the bound, float64 matmul (BLAS, any blocking/order) equals the
    exact integer result; at the bound a single term already rounds."""
    for k, amax in ((4096, 2**15), (1 << 16, 2**18)):
        assert arith.exact_dot_bound_ok(k, amax, amax)
        a = rng.integers(-amax, amax, size=(3, k), endpoint=True)
        b = rng.integers(-amax, amax, size=(k, 2), endpoint=True)
        got = (a.astype(np.float64) @ b.astype(np.float64))
        want = [[sum(int(x) * int(y) for x, y in zip(a[i], b[:, j])) for j in range(2)] for i in range(3)]
        assert [[int(v) for v in row] for row in got] == want
    assert not arith.exact_dot_bound_ok(2, 2**53, 1)
    assert float(2**53) + 1.0 == float(2**53)           # 2^53 + 1 is not a float64


# ---------------------------------------------------------------------------
# Recipe / QuantizeRecipe data
# ---------------------------------------------------------------------------

def _valid_recipes():
    for kind, rnd, dr, fd, sd, mr in itertools.product(
            ("fixed_point", "float"), MODES, ("none", "gemmlowp", "tosa"),
            ("float32", "float64"), ("float32", "float64"), MODES):
        if kind == "float" and dr != "none":
            continue
        if dr == "tosa" and rnd != "half_up":
            continue
        yield dict(kind=kind, rounding=rnd, double_round=dr, float_dtype=fd,
                   scale_dtype=sd, multiplier_rounding=mr)


def test_recipe_round_trip():
    n = 0
    for d in _valid_recipes():
        r = arith.Recipe(**d)
        assert r.to_dict() == d
        assert arith.Recipe.from_dict(json.loads(json.dumps(r.to_dict()))) == r
        n += 1
    assert n == 2 * 7 * 2 * 2 * 7 + 7 * 2 * 2 * 7 + 2 * 2 * 7   # fixed none/gemmlowp, float, tosa


def test_recipe_defaults():
    r = arith.Recipe()
    assert r.to_dict() == dict(kind="fixed_point", rounding="half_up", double_round="none",
                               float_dtype="float32", scale_dtype="float64",
                               multiplier_rounding="half_away_from_zero")
    assert arith.Recipe.from_dict({}) == r


BAD_RECIPES = [
    (dict(kind="fixedpoint"), "kind must be"),
    (dict(kind=None), "kind must be"),
    (dict(rounding="nearest"), "unknown rounding mode"),
    (dict(rounding=["half_up"]), "unknown rounding mode"),
    (dict(multiplier_rounding="round"), "unknown rounding mode"),
    (dict(double_round="yes"), "double_round must be"),
    (dict(double_round=True), "double_round must be"),
    (dict(kind="float", double_round="gemmlowp"), "only to fixed_point"),
    (dict(double_round="tosa", rounding="half_away_from_zero"), "TOSA double rounding rounds half_up"),
    (dict(float_dtype="float16"), "float_dtype must be"),
    (dict(scale_dtype="bfloat16"), "scale_dtype must be"),
]


@pytest.mark.parametrize("d,msg", BAD_RECIPES)
def test_recipe_validation(d, msg):
    with pytest.raises(ValidationError, match=msg):
        arith.Recipe(**d)
    with pytest.raises(ValidationError, match=f"^node 7: .*{msg}"):
        arith.Recipe.from_dict(d, "node 7")


def test_recipe_from_dict_rejects_non_objects_and_unknown_keys():
    for bad in (None, [], "fixed_point", 3):
        with pytest.raises(ValidationError, match="JSON object"):
            arith.Recipe.from_dict(bad)
    with pytest.raises(ValidationError, match=r"unknown recipe keys \['round'\]"):
        arith.Recipe.from_dict({"round": "half_up"})


def test_recipe_is_immutable():
    r = arith.Recipe()
    with pytest.raises(Exception):
        r.rounding = "floor"


def test_quantize_recipe_round_trip_and_validation():
    for m, rnd, fd in itertools.product(("divide", "reciprocal"), MODES, ("float32", "float64")):
        q = arith.QuantizeRecipe(method=m, rounding=rnd, float_dtype=fd)
        assert q.to_dict() == dict(method=m, rounding=rnd, float_dtype=fd)
        assert arith.QuantizeRecipe.from_dict(json.loads(json.dumps(q.to_dict()))) == q
    assert arith.QuantizeRecipe() == arith.QuantizeRecipe("divide", "half_to_even", "float32")
    for d, msg in ((dict(method="multiply"), "method must be"), (dict(rounding="rne"), "unknown rounding"),
                   (dict(float_dtype="float16"), "float_dtype must be")):
        with pytest.raises(ValidationError, match=msg):
            arith.QuantizeRecipe(**d)
        with pytest.raises(ValidationError, match=f"^node 7: .*{msg}"):
            arith.QuantizeRecipe.from_dict(d, "node 7")
    for bad in (None, ["divide"]):
        with pytest.raises(ValidationError, match="JSON object"):
            arith.QuantizeRecipe.from_dict(bad)
    with pytest.raises(ValidationError, match="unknown keys"):
        arith.QuantizeRecipe.from_dict({"method": "divide", "scale": 1})
