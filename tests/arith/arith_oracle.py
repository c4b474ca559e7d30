"""Exact, independent oracles for qnnref.arith, in Python ints and Fractions.

Nothing here uses numpy arithmetic or qnnref: each function is the
definition of a rounding mode, or a line-by-line transcription of a vendor's
reference code (gemmlowp, TFLite, TOSA), with C semantics spelled out
(truncating division, int32 ranges). The tests compare qnnref.arith with
these, element by element.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

MODES = ("half_to_even", "half_away_from_zero", "half_up", "half_down",
         "floor", "ceil", "truncate")
NEAREST_MODES = ("half_to_even", "half_away_from_zero", "half_up", "half_down")

#: The rounding table of spec/arithmetic.md ("Rounding modes").
TABLE_INPUTS = (-2.5, -1.5, -0.5, 0.5, 1.5, 2.5)
ROUNDING_TABLE = {
    #                      -2.5 -1.5 -0.5 0.5 1.5 2.5
    "half_to_even":        (-2, -2, 0, 0, 2, 2),
    "half_away_from_zero": (-3, -2, -1, 1, 2, 3),
    "half_up":             (-2, -1, 0, 1, 2, 3),
    "half_down":           (-3, -2, -1, 0, 1, 2),
    "floor":               (-3, -2, -1, 0, 1, 2),
    "ceil":                (-2, -1, 0, 1, 2, 3),
    "truncate":            (-2, -1, 0, 0, 1, 2),
}


# ---------------------------------------------------------------------------
# Rounding of an exact rational number
# ---------------------------------------------------------------------------

def round_rational(n: int, d: int, mode: str) -> int:
    """The rational n/d (d > 0) rounded to an integer by ``mode``, by the
    definition of each mode."""
    assert d > 0
    fl = n // d                     # floor, Python's // is exact
    r = n - fl * d                  # 0 <= r < d
    if r == 0:
        return fl
    if mode == "floor":
        return fl
    if mode == "ceil":
        return fl + 1
    if mode == "truncate":
        return fl + 1 if n < 0 else fl
    if 2 * r < d:                   # below the midpoint
        return fl
    if 2 * r > d:                   # above the midpoint
        return fl + 1
    # exactly halfway between fl and fl + 1
    if mode == "half_to_even":
        return fl if fl % 2 == 0 else fl + 1
    if mode == "half_away_from_zero":
        return fl + 1 if n > 0 else fl
    if mode == "half_up":
        return fl + 1
    if mode == "half_down":
        return fl
    raise ValueError(mode)


def round_fraction(v: Fraction, mode: str) -> int:
    v = Fraction(v)
    return round_rational(v.numerator, v.denominator, mode)


# ---------------------------------------------------------------------------
# C integer semantics
# ---------------------------------------------------------------------------

def c_div(a: int, b: int) -> int:
    """C/C++ integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def wrap32(v: int) -> int:
    """v modulo 2^32 as a two's complement int32 (what int32 hardware adds give)."""
    return (v + 2**31) % 2**32 - 2**31


def fits_int32(v: int) -> bool:
    return INT32_MIN <= v <= INT32_MAX


# ---------------------------------------------------------------------------
# gemmlowp / TFLite (fixedpoint.h, quantization_util.cc, common.cc)
# ---------------------------------------------------------------------------

def gemmlowp_srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul(int32, int32), verbatim:

        bool overflow = a == b && a == std::numeric_limits<std::int32_t>::min();
        std::int64_t ab_64 = a_64 * b_64;
        std::int32_t nudge = ab_64 >= 0 ? (1 << 30) : (1 - (1 << 30));
        std::int32_t ab_x2_high32 = static_cast<std::int32_t>((ab_64 + nudge) / (1ll << 31));
        return overflow ? std::numeric_limits<std::int32_t>::max() : ab_x2_high32;
    """
    assert fits_int32(a) and fits_int32(b)
    overflow = a == b and a == INT32_MIN
    ab_64 = a * b
    nudge = (1 << 30) if ab_64 >= 0 else (1 - (1 << 30))
    ab_x2_high32 = c_div(ab_64 + nudge, 1 << 31)
    if overflow:
        return INT32_MAX
    assert fits_int32(ab_x2_high32)
    return ab_x2_high32


def vqrdmulh(a: int, b: int) -> int:
    """ARM VQRDMULH (32-bit lanes): saturate((2*a*b + 2^31) >> 32)."""
    v = (2 * a * b + (1 << 31)) >> 32
    return max(INT32_MIN, min(INT32_MAX, v))


def gemmlowp_rdbpot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT(int32 x, int exponent), verbatim:

        const IntegerType mask = Dup<IntegerType>((1ll << exponent) - 1);
        const IntegerType zero = Dup<IntegerType>(0);
        const IntegerType one = Dup<IntegerType>(1);
        const IntegerType remainder = BitAnd(x, mask);
        const IntegerType threshold = Add(ShiftRight(mask, 1), BitAnd(MaskIfLessThan(x, zero), one));
        return Add(ShiftRight(x, exponent), BitAnd(MaskIfGreaterThan(remainder, threshold), one));
    """
    assert 0 <= exponent <= 31 and fits_int32(x)
    mask = (1 << exponent) - 1
    remainder = x & mask            # Python's & is two's complement on negatives
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def tflite_multiply_by_quantized_multiplier_double(x: int, quantized_multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier, default (double rounding) build:

        int left_shift = shift > 0 ? shift : 0;
        int right_shift = shift > 0 ? 0 : -shift;
        return RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(
            x * (1 << left_shift), quantized_multiplier), right_shift);

    ``x * (1 << left_shift)`` is int32 arithmetic: an overflow is undefined
    behaviour in C++, so callers must keep it in range (asserted here).
    """
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    scaled = x * (1 << left_shift)
    assert fits_int32(scaled), "int32 overflow: undefined in TFLite"
    return gemmlowp_rdbpot(gemmlowp_srdhm(scaled, quantized_multiplier), right_shift)


def tflite_multiply_by_quantized_multiplier_single(x: int, quantized_multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier, TFLITE_SINGLE_ROUNDING build:

        TFLITE_DCHECK(shift >= -31 && shift <= 30);
        const int64_t total_shift = 31 - shift;
        const int64_t round = static_cast<int64_t>(1) << (total_shift - 1);
        int64_t result = x * static_cast<int64_t>(quantized_multiplier) + round;
        result = result >> total_shift;
    """
    assert -31 <= shift <= 30
    total_shift = 31 - shift
    rnd = 1 << (total_shift - 1)
    return (x * quantized_multiplier + rnd) >> total_shift


def tflite_quantize_multiplier(double_multiplier: float):
    """TFLite QuantizeMultiplier (quantization_util.cc), default build:

        const double q = std::frexp(double_multiplier, shift);
        auto q_fixed = static_cast<int64_t>(TfLiteRound(q * (1ll << 31)));
        if (q_fixed == (1ll << 31)) { q_fixed /= 2; ++*shift; }
        if (*shift < -31) { *shift = 0; q_fixed = 0; }

    TfLiteRound is std::round: ties away from zero. Returns (multiplier, shift).
    """
    if double_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(double_multiplier)
    q_fixed = round_fraction(Fraction(q) * 2**31, "half_away_from_zero")
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


# ---------------------------------------------------------------------------
# TOSA (pseudocode/library/scale_helpers.tosac)
# ---------------------------------------------------------------------------

def tosa_apply_scale_32(value: int, multiplier: int, shift: int, double_round: bool = False) -> int:
    """TOSA apply_scale_32, verbatim (without the final REQUIRE that the
    result fits int32; qnnref clamps later):

        REQUIRE(multiplier >= 0);
        REQUIRE(2 <= shift && shift <= 62);
        REQUIRE(value >= (-1 << (shift - 1)) && value < (1 << (shift - 1)));
        int64_t round = 1 << (shift - 1);
        if (double_round) {
            if (shift > 31 && value >= 0) round += 1<<30;
            if (shift > 31 && value < 0)  round -= 1<<30;
        }
        int64_t result = static_cast<int64_t>(value) * multiplier + round;
        result = result >> shift;   // arithmetic shift
    """
    assert multiplier >= 0
    rnd = 1 << (shift - 1)
    if double_round:
        if shift > 31 and value >= 0:
            rnd += 1 << 30
        if shift > 31 and value < 0:
            rnd -= 1 << 30
    result = value * multiplier + rnd
    return result >> shift


# ---------------------------------------------------------------------------
# IEEE binary32 arithmetic emulated with Fractions
# ---------------------------------------------------------------------------

def to_float32(v: Fraction) -> np.float32:
    """The exact rational v rounded to the nearest float32 (ties to even).

    float(Fraction) is correctly rounded to binary64 (int / int true division
    in CPython), and rounding binary64 to binary32 afterwards cannot change
    the result of a single +, -, *, / of float32 operands: 53 >= 2*24 + 2
    (double rounding is innocuous; Figueroa 1995)."""
    with np.errstate(over="ignore"):
        return np.float32(float(v))


def f32_div(a, b) -> np.float32:
    return to_float32(Fraction(float(a)) / Fraction(float(b)))


def f32_mul(a, b) -> np.float32:
    return to_float32(Fraction(float(a)) * Fraction(float(b)))


def f64_div(a, b) -> float:
    return float(Fraction(float(a)) / Fraction(float(b)))


def f64_mul(a, b) -> float:
    return float(Fraction(float(a)) * Fraction(float(b)))
