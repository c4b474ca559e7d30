"""Exact, independent oracles for qnnref's arithmetic, shared by every test
directory: ``from oracles import ...`` (tests/conftest.py is the rootdir
conftest, so pytest puts tests/ on sys.path).

Nothing here uses qnnref: each function is the definition of a rounding
mode, a line-by-line transcription of a vendor's reference code (gemmlowp,
TFLite, TOSA) with C semantics spelled out (truncating division, int32
ranges), or a formula of spec/arithmetic.md (requantization recipes,
quantize, dequantize) built from those, one element at a time in Python
ints and Fractions; numpy only for IEEE float32/float64 scalars where a
recipe names that arithmetic. The tests compare qnnref with these, element
by element.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

#: The quantized integer dtypes and their ranges.
INT_RANGES = {"int4": (-8, 7), "uint4": (0, 15), "int8": (-128, 127), "uint8": (0, 255),
              "int16": (-(2**15), 2**15 - 1), "int32": (INT32_MIN, INT32_MAX)}

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


# ---------------------------------------------------------------------------
# Requantization recipes (spec/arithmetic.md, qnnref.arith.Recipe), one
# accumulator at a time. ``recipe`` is read by attribute only (kind,
# rounding, double_round, multiplier_rounding, float_dtype, scale_dtype).
# ---------------------------------------------------------------------------

def real_multiplier(numer, denom, scale_dtype: str):
    """``(numer[0] * numer[1] * ...) / denom`` from float32 scales, each
    operation rounded to ``scale_dtype``, left to right."""
    ft = np.float32 if scale_dtype == "float32" else np.float64
    m = ft(np.float32(numer[0]))
    for s in numer[1:]:
        m = ft(m * ft(np.float32(s)))
    return ft(m / ft(np.float32(denom)))


@functools.lru_cache(maxsize=4096)       # the element-by-element oracles ask for few reals, often
def encode_multiplier(real, rounding: str) -> tuple[int, int]:
    """real ~= m * 2^(shift - 31) with m in [2^30, 2^31): the frexp
    mantissa times 2^31 rounded by ``rounding``, halved if it rounds up to
    2^31. Returns (m, shift)."""
    q, shift = math.frexp(float(real))
    m = round_fraction(Fraction(q) * 2**31, rounding)
    if m == 2**31:
        m, shift = m // 2, shift + 1
    return m, shift


def scale_by_encoded(acc: int, m: int, shift: int, recipe) -> int:
    """acc * m * 2^(shift - 31) rounded as the fixed-point ``recipe`` says.
    Raises OverflowError where gemmlowp's REQUIRE fails (acc * 2^shift
    beyond int32), which qnnref reports as a RuntimeCheckError."""
    assert fits_int32(acc)
    if recipe.double_round == "gemmlowp":
        left, right = max(shift, 0), max(-shift, 0)
        if not fits_int32(acc * 2**left):
            raise OverflowError("gemmlowp: acc * 2^shift overflows int32")
        if recipe.rounding == "half_away_from_zero":
            return tflite_multiply_by_quantized_multiplier_double(acc, m, shift)
        return round_rational(gemmlowp_srdhm(acc * 2**left, m), 2**right, recipe.rounding)
    if recipe.double_round == "tosa":
        return tosa_apply_scale_32(acc, m, 31 - shift, double_round=True)
    return round_rational(acc * m, 2**(31 - shift), recipe.rounding)       # one rounding


def round_float_result(v: float, rounding: str) -> int:
    """The last step of the float recipes: a float rounded to an integer by
    ``rounding``, clamped to [-2^40, 2^40] (infinities included)."""
    if math.isinf(v):
        return 2**40 if v > 0 else -(2**40)
    return max(-(2**40), min(2**40, round_rational(*v.as_integer_ratio(), rounding)))


def scale_by_float(acc: int, real, recipe) -> int:
    """float(acc) * float(real) in ``float_dtype`` (one IEEE rounding; numpy
    warns where it overflows to inf), then round_float_result by the
    recipe's rounding."""
    ft = np.float32 if recipe.float_dtype == "float32" else np.float64
    return round_float_result(float(ft(acc) * ft(real)), recipe.rounding)


def scale_by_recipe(acc: int, real, recipe) -> int:
    """acc times the real multiplier, as ``recipe`` says (before the zero
    point and the clamp)."""
    if recipe.kind == "float":
        return scale_by_float(acc, real, recipe)
    return scale_by_encoded(acc, *encode_multiplier(real, recipe.multiplier_rounding), recipe)


def clamp_to(v: int, dtype: str, act_min=None, act_max=None) -> int:
    """v saturated to the dtype's range, narrowed by a fused activation range."""
    lo, hi = INT_RANGES[dtype]
    lo = lo if act_min is None else max(lo, act_min)
    hi = hi if act_max is None else min(hi, act_max)
    return max(lo, min(hi, v))


def requantize_value(acc: int, real, recipe, zp: int, dtype: str, act_min=None, act_max=None) -> int:
    """The output stage: clamp(acc * real as the recipe says + zp)."""
    return clamp_to(scale_by_recipe(acc, real, recipe) + zp, dtype, act_min, act_max)


def requantize_channels(acc: np.ndarray, s_x, s_w, s_y, recipe, zp: int, dtype: str,
                        act_min=None, act_max=None) -> np.ndarray:
    """The output stage of matmul and conv2d over an array of accumulators
    whose last axis holds the output channels: channel c is scaled by
    s_x * s_w[c] / s_y (s_w a scalar: every channel by s_x * s_w / s_y)."""
    reals = [real_multiplier([s_x, s], s_y, recipe.scale_dtype) for s in np.atleast_1d(s_w)]
    out = np.empty(acc.shape, np.int64)
    for idx in np.ndindex(*acc.shape):
        real = reals[idx[-1]] if len(reals) > 1 else reals[0]
        out[idx] = requantize_value(int(acc[idx]), real, recipe, int(zp), dtype, act_min, act_max)
    return out


# ---------------------------------------------------------------------------
# Quantize and dequantize (spec/arithmetic.md, equations (14) and (15))
# ---------------------------------------------------------------------------

def quantize_value(x, scale, zp: int, dtype: str, recipe) -> int:
    """One element of quantize: x / s or x * (1 / s) as ``recipe``
    (method, float_dtype) says, each IEEE operation emulated with Fractions,
    then the recipe's rounding, the zero point and saturation."""
    lo, hi = INT_RANGES[dtype]
    s32 = np.float32(scale)
    if np.isinf(x):
        v = float(x)                 # +-inf / s and +-inf * (1 / s) keep the sign (s > 0)
    elif recipe.float_dtype == "float32":
        xf = to_float32(Fraction(float(x)))
        if np.isinf(xf):             # a float64 input beyond float32's range
            v = float(xf)
        elif recipe.method == "divide":
            v = float(f32_div(xf, s32))
        else:
            v = float(f32_mul(xf, f32_div(1.0, s32)))
    else:
        xf = float(x)
        if recipe.method == "divide":
            v = f64_div(xf, s32)
        else:
            v = f64_mul(xf, f64_div(1.0, s32))
    if v == np.inf:
        return hi
    if v == -np.inf:
        return lo
    return min(max(round_fraction(Fraction(v), recipe.rounding) + zp, lo), hi)


def dequantize_value(q: int, scale, zp: int) -> np.float32:
    """The real (q - zp) * float32(s), rounded once to float32 (subnormals
    and overflow to inf included)."""
    assert abs(q - zp) < 2**29       # so the product is exact in float64: to_float32 rounds once
    return to_float32(Fraction(q - zp) * Fraction(float(np.float32(scale))))


# ---------------------------------------------------------------------------
# Pooling windows (avg_pool2d, max_pool2d): NHWC, pads (top, left, bottom, right)
# ---------------------------------------------------------------------------

def pool_out_size(size, k, s, d, p0, p1) -> int:
    return (size + p0 + p1 - ((k - 1) * d + 1)) // s + 1


def pool_out_shape(x_shape, kernel, strides, dilations, pads) -> tuple:
    N, H, W, C = x_shape
    return (N, pool_out_size(H, kernel[0], strides[0], dilations[0], pads[0], pads[2]),
            pool_out_size(W, kernel[1], strides[1], dilations[1], pads[1], pads[3]), C)


def pool_geometry_ok(H, W, kernel, strides, dilations, pads) -> bool:
    """Valid per the spec: output >= 1 and no window made only of padding."""
    _, OH, OW, _ = pool_out_shape((1, H, W, 1), kernel, strides, dilations, pads)
    if OH < 1 or OW < 1:
        return False
    rows_ok = all(any(0 <= o * strides[0] - pads[0] + i * dilations[0] < H for i in range(kernel[0]))
                  for o in range(OH))
    cols_ok = all(any(0 <= o * strides[1] - pads[1] + j * dilations[1] < W for j in range(kernel[1]))
                  for o in range(OW))
    return rows_ok and cols_ok


def pool_windows(x, kernel, strides, dilations, pads):
    """Yield (n, oh, ow, c, [values of the taps inside x]) in Python ints."""
    N, OH, OW, C = pool_out_shape(x.shape, kernel, strides, dilations, pads)
    H, W = x.shape[1:3]
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                for c in range(C):
                    vals = []
                    for i in range(kernel[0]):
                        for j in range(kernel[1]):
                            r = oh * strides[0] - pads[0] + i * dilations[0]
                            s = ow * strides[1] - pads[1] + j * dilations[1]
                            if 0 <= r < H and 0 <= s < W:
                                vals.append(int(x[n, r, s, c]))
                    yield n, oh, ow, c, vals
