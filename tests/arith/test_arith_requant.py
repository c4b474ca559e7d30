"""qnnref.arith, part 2: srdhm, quantize_multiplier, the requantization recipes.

Oracles: tests/oracles.py (gemmlowp, TFLite and TOSA reference
code transcribed into Python ints; exact rationals for the definitions).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnref import arith
from qnnref.errors import RuntimeCheckError, ValidationError

from oracles import (INT32_MAX, INT32_MIN, MODES, f32_mul, fits_int32, gemmlowp_rdbpot,
                     gemmlowp_srdhm, round_fraction, round_rational, to_float32,
                     tflite_multiply_by_quantized_multiplier_double,
                     tflite_multiply_by_quantized_multiplier_single, tflite_quantize_multiplier,
                     tosa_apply_scale_32, vqrdmulh)
from conftest import edge_values_int32

SETTINGS = settings(max_examples=150, derandomize=True, deadline=None)

EDGE = edge_values_int32()
SHIFTS = np.arange(arith.SHIFT_MIN, arith.SHIFT_MAX + 1)          # -31 .. 30
#: encoded multipliers: both ends of [2^30, 2^31), sqrt(2)/2, 2/3, odd ones
MULTIPLIERS = np.array([2**30, 2**30 + 1, 1518500250, 1431655765, 1789569707, 2**31 - 2, 2**31 - 1])


def fixed(rounding="half_up", double_round="none"):
    return arith.Recipe(kind="fixed_point", rounding=rounding, double_round=double_round)


# ---------------------------------------------------------------------------
# srdhm
# ---------------------------------------------------------------------------

def test_srdhm_is_gemmlowp_over_edge_values():
    """Every pair of edge values (~94k pairs), against the literal gemmlowp
    code, including INT32_MIN * INT32_MIN -> INT32_MAX."""
    a, b = EDGE[:, None], EDGE[None, :]
    got = arith.srdhm(a, b)
    el = EDGE.tolist()
    for i, x in enumerate(el):
        assert got[i].tolist() == [gemmlowp_srdhm(x, y) for y in el], x
    assert arith.srdhm(INT32_MIN, INT32_MIN) == INT32_MAX
    assert arith.srdhm(INT32_MIN, INT32_MIN + 1) == INT32_MAX       # 2^31 - 1 exactly, no saturation
    assert arith.srdhm(INT32_MIN, INT32_MAX) == INT32_MIN + 1


def test_srdhm_is_vqrdmulh():
    a, b = EDGE[:, None], EDGE[None, :]
    got = arith.srdhm(a, b)
    for i, x in enumerate(EDGE.tolist()[::7]):
        assert got[7 * i].tolist() == [vqrdmulh(x, y) for y in EDGE.tolist()]


def test_srdhm_rounds_half_up():
    """srdhm(a, b) is a*b / 2^31 rounded to nearest, ties toward +infinity
    (not away from zero): rounding_divide_by_pot(a*b, 31, "half_up")."""
    assert arith.srdhm(np.array([2**30, -(2**30), 3 * 2**30, -3 * 2**30]), 1).tolist() == [1, 0, 2, -1]
    a, b = EDGE[:, None], EDGE[None, :]
    ok = ~((a == INT32_MIN) & (b == INT32_MIN))
    want = arith.rounding_divide_by_pot(a * b, 31, "half_up")
    assert np.array_equal(arith.srdhm(a, b)[ok], want[ok])


@SETTINGS
@given(pairs=st.lists(st.tuples(st.integers(INT32_MIN, INT32_MAX), st.integers(INT32_MIN, INT32_MAX)),
                      min_size=1, max_size=50))
def test_srdhm_hypothesis(pairs):
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    assert arith.srdhm(a, b).tolist() == [gemmlowp_srdhm(x, y) for x, y in pairs]


# ---------------------------------------------------------------------------
# quantize_multiplier
# ---------------------------------------------------------------------------

def _check_encoding(real: float, m: int, s: int, mode: str):
    assert 2**30 <= m < 2**31
    assert arith.SHIFT_MIN <= s <= arith.SHIFT_MAX
    exact = Fraction(real)
    encoded = Fraction(m) * Fraction(2) ** (s - 31)
    err = abs(encoded - exact) / exact
    if mode in ("floor", "ceil", "truncate"):
        assert err < Fraction(1, 2**30)
    else:
        assert err <= Fraction(1, 2**31)
    if mode in ("floor", "truncate"):
        assert encoded <= exact
    if mode == "ceil":
        assert encoded >= exact
    # the encoding is round(q * 2^31) with q = real / 2^shift in [1/2, 1]
    # m is real * 2^(31 - shift) rounded by ``mode`` (also after a carry:
    # then real * 2^(31 - shift) lies within 1/2 below 2^30)
    assert m == round_fraction(exact / Fraction(2) ** (s - 31), mode), (real, m, s)


@SETTINGS
@given(log2=st.floats(-32.0, 29.999, allow_nan=False), mant=st.floats(1.0, 2.0, exclude_max=True))
def test_quantize_multiplier_hypothesis(log2, mant):
    """Log-uniform multipliers over the whole range, every rounding mode:
    multiplier in [2^30, 2^31), shift in [-31, 30], relative error at most
    2^-31 (nearest modes) or below 2^-30 (directed modes)."""
    real = min(max(mant * 2.0 ** math.floor(log2), 2.0**-32), np.nextafter(2.0**30, 0))
    for mode in MODES:
        try:
            m, s = arith.quantize_multiplier(np.array([real]), mode)
        except ValidationError:
            # only a value just below 2^30 that rounds up to 2^30 may be rejected
            assert real > 2.0**30 - 1 and mode not in ("floor", "truncate")
            continue
        assert m.dtype == np.int32 and s.dtype == np.int32
        _check_encoding(real, int(m[0]), int(s[0]), mode)


@SETTINGS
@given(real=st.floats(2.0**-32, 2.0**30, exclude_max=True))
def test_quantize_multiplier_is_tflite(real):
    """half_away_from_zero is TFLite's QuantizeMultiplier (std::round)."""
    try:
        m, s = arith.quantize_multiplier(real)
    except ValidationError:
        assert tflite_quantize_multiplier(real)[1] == 31
        return
    assert (int(m), int(s)) == tflite_quantize_multiplier(real)


def test_quantize_multiplier_examples():
    cases = {1.0: (2**30, 1), 0.5: (2**30, 0), 0.75: (3 * 2**29, 0), 2.0**-32: (2**30, -31),
             2.0**29: (2**30, 30), (2**31 - 1) / 2**32: (2**31 - 1, -1), 1 / 3: (1431655765, -1)}
    for real, (mm, ss) in cases.items():
        m, s = arith.quantize_multiplier(real)
        assert (int(m), int(s)) == (mm, ss), real
    # arrays keep their shape; float32 input is converted exactly
    m, s = arith.quantize_multiplier(np.array([[0.5, 0.25]], dtype=np.float32))
    assert m.shape == s.shape == (1, 2) and s.tolist() == [[0, -1]]


@pytest.mark.parametrize("mode", MODES)
def test_quantize_multiplier_carry(mode):
    """q * 2^31 within 1/2 of 2^31: nearest modes round it to 2^31, which is
    encoded as 2^30 with the shift one higher; floor/truncate do not carry."""
    for e in (-20, -1, 0, 5):
        real = (1 - 2.0**-40) * 2.0**e            # q = 1 - 2^-40, q * 2^31 = 2^31 - 2^-9
        m, s = arith.quantize_multiplier(real, mode)
        if mode in ("floor", "truncate"):
            assert (int(m), int(s)) == (2**31 - 1, e)
        else:
            assert (int(m), int(s)) == (2**30, e + 1)
        _check_encoding(real, int(m), int(s), mode)
    # exactly halfway: q * 2^31 = 2^31 - 1/2
    real = (2**31 - 0.5) / 2**31
    want = {"half_to_even": (2**30, 1), "half_away_from_zero": (2**30, 1), "half_up": (2**30, 1),
            "half_down": (2**31 - 1, 0), "floor": (2**31 - 1, 0), "truncate": (2**31 - 1, 0),
            "ceil": (2**30, 1)}[mode]
    m, s = arith.quantize_multiplier(real, mode)
    assert (int(m), int(s)) == want


@pytest.mark.parametrize("mode", MODES)
def test_quantize_multiplier_range_limits(mode):
    carries = mode not in ("floor", "truncate")
    # smallest: 2^-32 -> (2^30, -31)
    m, s = arith.quantize_multiplier(2.0**-32, mode)
    assert (int(m), int(s)) == (2**30, -31)
    # just below 2^-32: accepted only if it rounds up to 2^-32
    below = np.nextafter(2.0**-32, 0)
    if carries:
        assert [int(v) for v in arith.quantize_multiplier(below, mode)] == [2**30, -31]
    else:
        with pytest.raises(ValidationError, match="representable range"):
            arith.quantize_multiplier(below, mode)
    # largest accepted: (2^31 - 1) * 2^-1
    m, s = arith.quantize_multiplier((2**31 - 1) / 2, mode)
    assert (int(m), int(s)) == (2**31 - 1, 30)
    # just below 2^30: rejected when it rounds up to 2^30
    top = np.nextafter(2.0**30, 0)
    if carries:
        with pytest.raises(ValidationError, match="representable range"):
            arith.quantize_multiplier(top, mode)
    else:
        assert [int(v) for v in arith.quantize_multiplier(top, mode)] == [2**31 - 1, 30]
    for bad in (2.0**30, 2.0**40, 2.0**-33, 1e-300, 5e-324):
        with pytest.raises(ValidationError, match="representable range"):
            arith.quantize_multiplier(np.array([0.5, bad]), mode)


def test_quantize_multiplier_rejects_non_positive_and_non_finite():
    for bad in (0.0, -0.0, -1.0, np.inf, -np.inf, np.nan):
        with pytest.raises(ValidationError, match="finite and > 0"):
            arith.quantize_multiplier(np.array([1.0, bad]))


# ---------------------------------------------------------------------------
# multiply_by_quantized_multiplier
# ---------------------------------------------------------------------------

def _grid():
    """acc (edge values) x multiplier x every shift -31..30, broadcast."""
    return EDGE[:, None, None], MULTIPLIERS[None, :, None], SHIFTS[None, None, :]


def test_single_rounding_is_exact_rounding_of_the_product():
    """Single rounding, every mode: round(acc * M / 2^(31 - shift)) with Fractions."""
    acc, mult, shift = _grid()
    got = {mode: arith.multiply_by_quantized_multiplier(acc, mult, shift, fixed(mode)) for mode in MODES}
    for i, a in enumerate(EDGE.tolist()):
        for j, m in enumerate(MULTIPLIERS.tolist()):
            fr = [Fraction(a * m, 2 ** (31 - s)) for s in SHIFTS.tolist()]
            for mode in MODES:
                want = [round_rational(f.numerator, f.denominator, mode) for f in fr]
                assert got[mode][i, j].tolist() == want, (a, m, mode)


def test_single_rounding_half_up_is_tflite_single_and_tosa_single():
    acc, mult, shift = _grid()
    got = arith.multiply_by_quantized_multiplier(acc, mult, shift, fixed("half_up"))
    for i, a in enumerate(EDGE.tolist()):
        for j, m in enumerate(MULTIPLIERS.tolist()):
            row = got[i, j].tolist()
            assert row == [tflite_multiply_by_quantized_multiplier_single(a, m, s) for s in SHIFTS.tolist()]
            assert row == [tosa_apply_scale_32(a, m, 31 - s, False) for s in SHIFTS.tolist()]


def test_tosa_double_round_is_tosa_apply_scale_32():
    acc, mult, shift = _grid()
    got = arith.multiply_by_quantized_multiplier(acc, mult, shift, fixed("half_up", "tosa"))
    for i, a in enumerate(EDGE.tolist()):
        for j, m in enumerate(MULTIPLIERS.tolist()):
            assert got[i, j].tolist() == [tosa_apply_scale_32(a, m, 31 - s, True) for s in SHIFTS.tolist()]


def _gemmlowp_defined(shift: int) -> np.ndarray:
    """The edge values whose acc * 2^max(shift, 0) fits int32 (else TFLite is UB)."""
    left = max(shift, 0)
    return EDGE[(EDGE << left >= INT32_MIN) & (EDGE << left <= INT32_MAX)]


@pytest.mark.parametrize("mode", MODES)
def test_gemmlowp_double_round_is_srdhm_then_rdbpot(mode):
    """gemmlowp double rounding: SRDHM, then x / 2^right rounded by ``mode``;
    with half_away_from_zero it is TFLite's MultiplyByQuantizedMultiplier."""
    for s in SHIFTS.tolist():
        acc = _gemmlowp_defined(s)
        got = arith.multiply_by_quantized_multiplier(acc[:, None], MULTIPLIERS[None, :], s, fixed(mode, "gemmlowp"))
        left, right = max(s, 0), max(-s, 0)
        for j, m in enumerate(MULTIPLIERS.tolist()):
            if mode == "half_away_from_zero":
                want = [tflite_multiply_by_quantized_multiplier_double(a, m, s) for a in acc.tolist()]
            else:
                want = [round_rational(gemmlowp_srdhm(a << left, m), 2**right, mode) for a in acc.tolist()]
            assert got[:, j].tolist() == want, (s, m)


def test_gemmlowp_half_away_rdbpot_stage_is_gemmlowp_rdbpot():
    for s in range(-31, 1):
        x = arith.srdhm(EDGE, 1518500250)
        got = arith.multiply_by_quantized_multiplier(EDGE, 1518500250, s, fixed("half_away_from_zero", "gemmlowp"))
        assert got.tolist() == [gemmlowp_rdbpot(v, -s) for v in x.tolist()]


def test_gemmlowp_left_shift_overflow_is_a_runtime_check_error():
    """TFLite computes x * (1 << left_shift) in int32 (undefined on overflow);
    the reference raises instead."""
    r = fixed("half_away_from_zero", "gemmlowp")
    assert arith.multiply_by_quantized_multiplier(2**29 - 1, 2**30, 2, r) == 2**30 - 2
    with pytest.raises(RuntimeCheckError, match="overflows int32"):
        arith.multiply_by_quantized_multiplier(np.array([1, 2**29]), 2**30, 2, r)
    with pytest.raises(RuntimeCheckError):
        arith.multiply_by_quantized_multiplier(INT32_MIN, 2**30, 1, r)


def test_tosa_double_round_equals_gemmlowp_double_round():
    """A theorem the spec states: TOSA's DOUBLE_ROUND (one shift with a
    +-2^30 nudge) gives exactly TFLite's two-step result wherever the latter
    is defined (acc * 2^max(shift, 0) fits int32, M >= 0)."""
    for s in SHIFTS.tolist():
        acc = _gemmlowp_defined(s)[:, None]
        tosa = arith.multiply_by_quantized_multiplier(acc, MULTIPLIERS, s, fixed("half_up", "tosa"))
        tfl = arith.multiply_by_quantized_multiplier(acc, MULTIPLIERS, s, fixed("half_away_from_zero", "gemmlowp"))
        assert np.array_equal(tosa, tfl), s


def test_double_rounding_differs_from_single_rounding():
    """Why profiles matter: with the multiplier 1/4 (2^30, shift -1), SRDHM
    first rounds acc / 2 half up, which can create a tie that the second step
    then rounds away from zero: 1/4 -> 1/2 -> 1, 5/4 -> 3/2 -> 2. Upward bias
    only; negative values agree here."""
    acc = np.array([1, 2, 3, 5, 6, 7, -1, -3, -5, -7])
    single = arith.multiply_by_quantized_multiplier(acc, 2**30, -1, fixed("half_away_from_zero"))
    double = arith.multiply_by_quantized_multiplier(acc, 2**30, -1, fixed("half_away_from_zero", "gemmlowp"))
    assert single.tolist() == [0, 1, 1, 1, 2, 2, 0, -1, -1, -2]
    assert double.tolist() == [1, 1, 1, 2, 2, 2, 0, -1, -1, -2]


@SETTINGS
@given(data=st.lists(st.tuples(st.integers(-(2**31), 2**31), st.integers(2**30, 2**31 - 1),
                               st.integers(-31, 30)), min_size=1, max_size=20))
def test_multiply_by_quantized_multiplier_hypothesis(data):
    acc = np.array([d[0] for d in data])
    mult = np.array([d[1] for d in data])
    shift = np.array([d[2] for d in data])
    for mode in MODES:
        got = arith.multiply_by_quantized_multiplier(acc, mult, shift, fixed(mode)).tolist()
        assert got == [round_fraction(Fraction(a * m, 2 ** (31 - s)), mode) for a, m, s in data]
    got = arith.multiply_by_quantized_multiplier(acc, mult, shift, fixed("half_up", "tosa")).tolist()
    assert got == [tosa_apply_scale_32(a, m, 31 - s, True) for a, m, s in data]
    ok = [fits_int32(a << max(s, 0)) for a, m, s in data]
    if all(ok):
        got = arith.multiply_by_quantized_multiplier(acc, mult, shift, fixed("half_away_from_zero", "gemmlowp"))
        assert got.tolist() == [tflite_multiply_by_quantized_multiplier_double(a, m, s) for a, m, s in data]


# ---------------------------------------------------------------------------
# requantize_output: XNNPACK-style exhaustive tests
# (every int8 zero point x shifts 1..31, the multiplier 2^-shift)
# ---------------------------------------------------------------------------

XS = np.arange(1, 32)[:, None, None]                 # shift s: the real multiplier is 2^-s
ZP = np.arange(-128, 128)[None, :, None]             # output zero point
Q = np.arange(-128, 128)[None, None, :]              # the int8 output expected before rounding
KQ = Q - ZP                                          # k = q - zp, the exact quotient


def _xnn_requant(recipe, offset, min_shift=1):
    """acc = k * 2^s + offset(s); returns (got, valid) over the whole grid,
    valid where acc fits int32 and s >= min_shift."""
    off = offset(XS)
    acc = (KQ << XS) + off
    valid = (acc >= INT32_MIN) & (acc <= INT32_MAX) & (XS >= min_shift)
    acc = np.where(valid, acc, 0)
    params = arith.prepare_requant(np.ldexp(1.0, -XS), recipe)
    if recipe.kind == "fixed_point":
        assert np.all(params.multiplier == 2**30) and np.array_equal(params.shift, 1 - XS)
    got = arith.requantize_output(acc, params, ZP, "int8")
    assert got.dtype == np.int8
    return got.astype(np.int64), np.broadcast_to(valid, got.shape)


def _expect(k):
    return np.clip(k + ZP, -128, 127)


XNN_RECIPES = ([fixed(m) for m in MODES]
               + [fixed("half_away_from_zero", "gemmlowp"), fixed("half_up", "tosa")]
               + [arith.Recipe(kind="float", rounding=m, float_dtype="float32", scale_dtype="float32")
                  for m in ("half_to_even", "half_away_from_zero")]
               + [arith.Recipe(kind="float", rounding="half_to_even", float_dtype="float64")])


def _rid(r):
    return f"{r.kind}-{r.rounding}-{r.double_round}-{r.float_dtype}"


@pytest.mark.parametrize("recipe", XNN_RECIPES, ids=_rid)
def test_requantize_exact_divide_by_po2(recipe):
    got, valid = _xnn_requant(recipe, lambda s: 0)
    assert np.array_equal(got[valid], np.broadcast_to(_expect(KQ), got.shape)[valid])


SINGLE = [fixed(m) for m in MODES]


@pytest.mark.parametrize("recipe", SINGLE, ids=_rid)
def test_requantize_divide_by_po2_with_rounding_up(recipe):
    """k + 1/2 + 2^-s."""
    got, valid = _xnn_requant(recipe, lambda s: (1 << (s - 1)) + 1, min_shift=2)
    k = {"floor": KQ, "truncate": np.where(KQ >= 0, KQ, KQ + 1)}.get(recipe.rounding, KQ + 1)
    assert np.array_equal(got[valid], np.broadcast_to(_expect(k), got.shape)[valid])


@pytest.mark.parametrize("recipe", SINGLE, ids=_rid)
def test_requantize_divide_by_po2_with_rounding_down(recipe):
    """k + 1/2 - 2^-s."""
    got, valid = _xnn_requant(recipe, lambda s: (1 << (s - 1)) - 1, min_shift=2)
    k = {"ceil": KQ + 1, "truncate": np.where(KQ >= 0, KQ, KQ + 1)}.get(recipe.rounding, KQ)
    assert np.array_equal(got[valid], np.broadcast_to(_expect(k), got.shape)[valid])


TIES = {
    "half_to_even": lambda k: np.where(k % 2 == 0, k, k + 1),
    "half_away_from_zero": lambda k: np.where(k >= 0, k + 1, k),
    "half_up": lambda k: k + 1,
    "half_down": lambda k: k,
    "floor": lambda k: k,
    "ceil": lambda k: k + 1,
    "truncate": lambda k: np.where(k >= 0, k, k + 1),
}


@pytest.mark.parametrize("recipe", SINGLE + XNN_RECIPES[-3:], ids=_rid)
def test_requantize_divide_by_po2_ties(recipe):
    """k + 1/2 exactly (also exact in float32: 2k + 1 has 9 bits)."""
    got, valid = _xnn_requant(recipe, lambda s: 1 << (s - 1))
    assert np.array_equal(got[valid], np.broadcast_to(_expect(TIES[recipe.rounding](KQ)), got.shape)[valid])


@pytest.mark.parametrize("recipe", XNN_RECIPES[7:9], ids=_rid)
def test_requantize_double_rounding_ties_and_upward_bias(recipe):
    """gemmlowp / TOSA double rounding, XNNPACK's documented exceptions:
    ties go away from zero for s >= 2 but up for s = 1 (the multiplier 1/2 is
    SRDHM alone, which rounds half up); and k + 1/2 - 2^-s (s >= 2) goes to
    k + 1 for k >= 0 -- "no rounding down test: it fails because of upward bias"."""
    got, valid = _xnn_requant(recipe, lambda s: 1 << (s - 1))
    want = np.where(XS == 1, KQ + 1, np.where(KQ >= 0, KQ + 1, KQ))
    assert np.array_equal(got[valid], np.broadcast_to(_expect(want), got.shape)[valid])
    got, valid = _xnn_requant(recipe, lambda s: (1 << (s - 1)) + 1, min_shift=2)
    assert np.array_equal(got[valid], np.broadcast_to(_expect(KQ + 1), got.shape)[valid])
    got, valid = _xnn_requant(recipe, lambda s: (1 << (s - 1)) - 1, min_shift=2)
    assert np.array_equal(got[valid], np.broadcast_to(_expect(np.where(KQ >= 0, KQ + 1, KQ)), got.shape)[valid])


# ---------------------------------------------------------------------------
# Float recipes
# ---------------------------------------------------------------------------

def _float_acc(rng) -> np.ndarray:
    return np.concatenate([EDGE, rng.integers(INT32_MIN, INT32_MAX, size=300, endpoint=True),
                           rng.integers(-(2**24), 2**24, size=100)])


@pytest.mark.parametrize("mode", MODES)
def test_float32_recipe_is_float32_scalar_math(mode, rng):
    """float32(acc) * float32(m), one IEEE float32 rounding, then ``mode``:
    against numpy float32 scalars element by element, and against the same
    operations emulated with Fractions."""
    acc = _float_acc(rng)
    reals = np.exp(rng.uniform(np.log(1e-6), np.log(100.0), size=8)).astype(np.float32)
    recipe = arith.Recipe(kind="float", rounding=mode, float_dtype="float32", scale_dtype="float32")
    params = arith.prepare_requant(reals[:, None], recipe)
    got = arith.apply_requant(acc[None, :], params)
    for i, m in enumerate(reals.tolist()):
        for j, a in enumerate(acc.tolist()):
            p = np.float32(a) * np.float32(m)                      # numpy float32 scalar math
            assert p == f32_mul(to_float32(Fraction(a)), m)        # = IEEE, by Fractions
            assert got[i, j] == round_fraction(Fraction(float(p)), mode), (a, m)


@pytest.mark.parametrize("mode", ("half_to_even", "half_up"))
def test_float64_recipe_is_float64_scalar_math(mode, rng):
    acc = _float_acc(rng)
    reals = np.exp(rng.uniform(np.log(1e-6), np.log(100.0), size=8))
    recipe = arith.Recipe(kind="float", rounding=mode, float_dtype="float64", scale_dtype="float64")
    got = arith.apply_requant(acc[None, :], arith.prepare_requant(reals[:, None], recipe))
    for i, m in enumerate(reals.tolist()):
        want = [round_fraction(Fraction(float(a) * m), mode) for a in acc.tolist()]
        assert got[i].tolist() == want


def test_float32_recipe_is_inexact_above_2_to_the_24():
    """Documented: float32(acc) rounds for |acc| > 2^24 (as MLAS / XNNPACK
    do), so even the multiplier 1.0 does not return acc itself."""
    recipe = arith.Recipe(kind="float", rounding="half_to_even", float_dtype="float32", scale_dtype="float32")
    params = arith.prepare_requant(np.float32(1.0), recipe)
    acc = np.array([2**24, 2**24 + 1, 2**24 + 3, INT32_MAX, -(2**24) - 1])
    assert arith.apply_requant(acc, params).tolist() == [2**24, 2**24, 2**24 + 4, 2**31, -(2**24)]
    r64 = arith.Recipe(kind="float", rounding="half_to_even", float_dtype="float64")
    assert arith.apply_requant(acc, arith.prepare_requant(1.0, r64)).tolist() == acc.tolist()


def test_float_recipe_converts_a_float64_multiplier_to_float32_once():
    """scale_dtype float64 with float_dtype float32: the multiplier is rounded to float32."""
    real = 1 / 3
    recipe = arith.Recipe(kind="float", rounding="half_to_even", float_dtype="float32", scale_dtype="float64")
    acc = np.arange(-1000, 1000, 7)
    got = arith.apply_requant(acc, arith.prepare_requant(real, recipe))
    assert got.tolist() == [round_fraction(Fraction(float(np.float32(a) * np.float32(real))), "half_to_even")
                            for a in acc.tolist()]


def test_float_recipe_saturates_huge_products():
    recipe = arith.Recipe(kind="float", rounding="half_to_even", float_dtype="float32", scale_dtype="float32")
    params = arith.prepare_requant(np.float32(1e30), recipe)         # float32 product overflows to inf
    acc = np.array([INT32_MAX, INT32_MIN, 0, 1])
    assert arith.apply_requant(acc, params).tolist() == [2**40, -(2**40), 0, 2**40]
    assert arith.requantize_output(acc, params, 3, "int8").tolist() == [127, -128, 3, 127]
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValidationError):
            arith.prepare_requant(np.array([1.0, bad]), recipe)


# ---------------------------------------------------------------------------
# combine_scales, prepare_requant, requantize_output
# ---------------------------------------------------------------------------

def test_combine_scales(rng):
    sx = rng.uniform(1e-4, 1.0, size=50).astype(np.float32)
    sw = rng.uniform(1e-4, 1.0, size=50).astype(np.float32)
    sy = rng.uniform(1e-4, 1.0, size=50).astype(np.float32)
    got32 = arith.combine_scales([sx, sw], sy, "float32")
    got64 = arith.combine_scales([sx, sw], sy, "float64")
    assert got32.dtype == np.float32 and got64.dtype == np.float64
    for i in range(50):
        fx, fw, fy = (Fraction(float(v[i])) for v in (sx, sw, sy))
        assert got32[i] == to_float32(Fraction(float(to_float32(fx * fw))) / fy)
        assert got64[i] == float(fx * fw / fy)             # fx * fw is exact in float64 (24 + 24 bits)


def test_prepare_requant_and_reshaped():
    r = arith.Recipe()
    p = arith.prepare_requant(np.array([0.5, 0.25, 3.0]), r)
    assert p.multiplier.tolist() == [2**30, 2**30, 3 * 2**29] and p.shift.tolist() == [0, -1, 2]
    q = p.reshaped((1, 3))
    assert q.multiplier.shape == q.shift.shape == q.real.shape == (1, 3)
    acc = np.array([[4, 4, 4], [-3, -3, -3]])
    assert arith.apply_requant(acc, q).tolist() == [[2, 1, 12], [-1, -1, -9]]
    f = arith.prepare_requant(np.array([0.5]), arith.Recipe(kind="float", rounding="half_to_even"))
    assert f.multiplier is None and f.shift is None and f.reshaped((1, 1)).real.shape == (1, 1)
    with pytest.raises(ValidationError):
        arith.prepare_requant(np.array([2.0**31]), r)


def test_requantize_output_zero_point_dtype_and_activation_range():
    p = arith.prepare_requant(1.0, arith.Recipe())
    acc = np.array([-1000, -130, -5, 0, 5, 130, 1000])
    assert arith.requantize_output(acc, p, 0, "int8").tolist() == [-128, -128, -5, 0, 5, 127, 127]
    assert arith.requantize_output(acc, p, 10, "int8").tolist() == [-128, -120, 5, 10, 15, 127, 127]
    out = arith.requantize_output(acc, p, 128, "uint8")
    assert out.dtype == np.uint8 and out.tolist() == [0, 0, 123, 128, 133, 255, 255]
    assert arith.requantize_output(acc, p, 0, "int8", act_min=0, act_max=6).tolist() == [0, 0, 0, 0, 5, 6, 6]
    assert arith.requantize_output(acc, p, 0, "int4").tolist() == [-8, -8, -5, 0, 5, 7, 7]
    assert arith.requantize_output(acc, p, 0, "int16", act_min=-(2**20)).tolist() == acc.tolist()
