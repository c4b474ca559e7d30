"""softmax: 8-bit softmax along one axis by a specified integer algorithm.

``p_i = exp(beta * s_x * (x_i - max x)) / sum_j exp(beta * s_x * (x_j - max x))``,
then ``y_i = saturate(round(p_i / s_y) + zp_y)``, all computed in exact
int32-range fixed-point arithmetic: no float exp, and no libm, at run time
or load time. The algorithm is TFLite's reference int8/uint8 softmax
(gemmlowp ``exp_on_negative_values`` on Q5.26 differences, a Q12.19 sum,
a Newton-Raphson reciprocal); with the recommended output quantization
(1/256, -128) for int8 or (1/256, 0) for uint8 it gives TFLite's bits, and
any other per-tensor output quantization is honoured by a final exact
rescaling. Every rounding is ties away from zero (gemmlowp's), fixed by the
algorithm: the model's requantization recipe does not apply.

Fixed-point values are int32 integers held in int64 numpy arrays; ``Qm.n``
means a raw integer r stands for r / 2^n (m integer bits, n = 31 - m).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith import (
    INT32_MAX,
    INT32_MIN,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturate,
    srdhm,
)
from ..errors import ValidationError
from .registry import Attr, Op, Slot, register

DTYPES = ("int8", "uint8")
#: Q5.26: the scaled differences beta * s_x * (x - max x), in (-32, 0].
SCALED_DIFF_INTEGER_BITS = 5
#: Q12.19: the sum of the exponentials, in [1, 4096).
ACCUM_INTEGER_BITS = 12
#: Longest softmax axis: D exponentials, each at most 1 (2^19 in Q12.19), sum
#: below 2^31.
MAX_AXIS_LENGTH = 4095
AWAY = "half_away_from_zero"

# Q0.31 constants of gemmlowp (fixedpoint.h), each the nearest integer to
# the real shown: exp(-1/8), 1/3, and exp(-2^k) for k = -2..4.
EXP_MINUS_ONE_EIGHTH = 1895147668
ONE_THIRD = 715827883
EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
              (2, 39332535), (3, 720401), (4, 242))
# Q2.29 constants of the Newton-Raphson reciprocal: 48/17 and -32/17.
FORTY_EIGHT_OVER_17 = 1515870810
MINUS_THIRTY_TWO_OVER_17 = -1010580540


@dataclass(frozen=True)
class SoftmaxParams:
    """Prepared once at load time by :func:`prepare_softmax`."""

    input_multiplier: int     # beta * s_x * 2^26 = input_multiplier * 2^(input_left_shift - 31)
    input_left_shift: int     # in [0, 31]
    diff_min: int             # differences below diff_min have exp taken as 0
    output_multiplier: int    # 1 / s_y = output_multiplier * 2^(output_shift - 31)
    output_shift: int


def saturating_left_shift(x, exponent: int) -> np.ndarray:
    """``x * 2^exponent`` saturated to int32 (gemmlowp's
    SaturatingRoundingMultiplyByPOT with a positive exponent)."""
    return np.clip(np.asarray(x, dtype=np.int64) << exponent, INT32_MIN, INT32_MAX)


def prepare_softmax(beta: float, x_scale: float, y_scale: float) -> SoftmaxParams:
    # Step 1: the input multiplier beta * s_x * 2^26 (Q5.26 has 26 fractional
    # bits), with beta rounded to float32 like the scales. In float64 the product
    # of two float32 values is exact, and so is the power of two: no rounding.
    beta32, s_x = float(np.float32(beta)), float(np.float32(x_scale))
    real = beta32 * s_x * 2.0**26
    # Above 2^31 - 1 every difference of one step scales below -32 (exp < 2^-46):
    # cap there, as TFLite does.
    real = min(real, 2.0**31 - 1)
    if not real >= 1.0:
        raise ValidationError(f"beta * s_x = {beta32 * s_x:g} is below 2^-26")
    # Step 2: encode real = multiplier * 2^(left_shift - 31), multiplier in
    # [2^30, 2^31), rounding ties away from zero. quantize_multiplier covers
    # multipliers below 2^30, so encode real / 2 (exact) and add 1 to the shift.
    multiplier, shift = quantize_multiplier(real / 2, AWAY)
    left_shift = int(shift) + 1
    # Step 3: the smallest difference d whose d * 2^left_shift still fits
    # int32 before the multiplication: |d| <= floor(31 * 2^26 / 2^left_shift).
    diff_min = -((31 << 26) >> left_shift)
    # Step 4: the output multiplier 1 / s_y (one float64 division), encoded
    # the same way. quantize_multiplier refuses s_y outside (2^-30, 2^32].
    out_multiplier, out_shift = quantize_multiplier(1.0 / float(np.float32(y_scale)), AWAY)
    return SoftmaxParams(int(multiplier), left_shift, diff_min, int(out_multiplier), int(out_shift))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    # exp(a) for a in [-1/4, 0); a and the result are Q0.31.
    # Step 1: Taylor expansion around -1/8 in x = a + 1/8 (1/8 is 2^28 in Q0.31).
    x = a + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    # Step 2: x^4/24 + x^3/6 + x^2/2 = ((x^4/4 + x^3) / 3 + x^2) / 2.
    x4_over_4 = rounding_divide_by_pot(x4, 2, AWAY)
    poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, ONE_THIRD) + x2, 1, AWAY)
    # Step 3: exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24).
    return EXP_MINUS_ONE_EIGHTH + srdhm(EXP_MINUS_ONE_EIGHTH, x + poly)


def exp_on_negative_values(a: np.ndarray) -> np.ndarray:
    # exp(a) for a <= 0; a is Q5.26 (a > -32), the result Q0.31 (1 is 2^31 - 1).
    # Step 1: split a = r - k/4 with r in [-1/4, 0) (1/4 is 2^24 in Q5.26) and
    # k/4 >= 0 a multiple of 1/4: r = (a mod 1/4) - 1/4, k/4 = r - a.
    one_quarter = 1 << 24
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    remainder = a_mod_quarter_minus_one_quarter - a
    # Step 2: exp(r), r rescaled from Q5.26 to Q0.31 (exact: |r| <= 2^24).
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_left_shift(a_mod_quarter_minus_one_quarter, SCALED_DIFF_INTEGER_BITS))
    # Step 3: times exp(-2^j) for each bit 2^j (j = -2..4) set in k/4.
    for j, exp_minus_two_to_j in EXP_BARREL:
        bit_set = (remainder & (1 << (26 + j))) != 0
        result = np.where(bit_set, srdhm(result, exp_minus_two_to_j), result)
    # Step 4: exp(0) = 1, i.e. 2^31 - 1.
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    # 1 / (1 + a) for a in [0, 1); a and the result are Q0.31.
    # Step 1: half the denominator, (1 + a) / 2 in [1/2, 1), Q0.31: gemmlowp's
    # RoundingHalfSum(a, 2^31 - 1), exact here: (a + 2^31) // 2.
    half_denominator = (a + INT32_MAX + 1) >> 1
    # Step 2: Newton-Raphson for 1 / half_denominator in Q2.29, starting from
    # 48/17 - 32/17 * half_denominator; three iterations x += x * (1 - hd * x).
    x = FORTY_EIGHT_OVER_17 + srdhm(half_denominator, MINUS_THIRTY_TWO_OVER_17)
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)            # Q2.29
        one_minus_half_denominator_times_x = (1 << 29) - half_denominator_times_x
        x = x + saturating_left_shift(srdhm(x, one_minus_half_denominator_times_x), 2)  # Q4.27 -> Q2.29
    # Step 3: 1 / (1 + a) = x / 2: the same raw value read as Q1.30, then to Q0.31
    # (saturating: 1 becomes 2^31 - 1).
    return saturating_left_shift(x, 1)


def get_reciprocal(sum_of_exps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # sum_of_exps > 0 is Q12.19. Returns (shifted_scale, num_bits_over_unit)
    # with 1 / sum = shifted_scale / 2^31 / 2^num_bits_over_unit.
    # Step 1: the number of leading zeros of the 32-bit sum (its bit length is 20..31).
    bit_length = np.zeros_like(sum_of_exps)
    for k in range(32):
        bit_length += (sum_of_exps >> k) > 0
    headroom_plus_one = 32 - bit_length
    # Step 2: sum = 2^num_bits_over_unit * (1 + t) with t in [0, 1): t is the
    # sum shifted up to bit 31, minus 2^31, read as Q0.31.
    num_bits_over_unit = ACCUM_INTEGER_BITS - headroom_plus_one
    shifted_sum_minus_one = (sum_of_exps << headroom_plus_one) - (1 << 31)
    # Step 3: 1 / (1 + t).
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def softmax(x: np.ndarray, params: SoftmaxParams, axis: int, y_zero_point: int,
            y_dtype: str) -> np.ndarray:
    # Work along the last axis.
    x = np.moveaxis(x.astype(np.int64), axis, -1)
    # Step 1: the differences from the row maximum, d = x - max(x) in [-255, 0].
    diff = x - x.max(axis=-1, keepdims=True)
    # Step 2: beta * s_x * d in Q5.26: srdhm(d * 2^left_shift, multiplier). Only
    # differences >= diff_min are used (d * 2^left_shift fits int32 for them);
    # the others scale below -15 (exp < 3.1e-7) and their exp counts as 0.
    used = diff >= params.diff_min
    scaled_diff = srdhm(np.where(used, diff, 0) << params.input_left_shift, params.input_multiplier)
    # Step 3: exp of each scaled difference, Q0.31 (0 for unused differences).
    exps = np.where(used, exp_on_negative_values(scaled_diff), 0)
    # Step 4: their sum in Q12.19: each exp rounded to 19 fractional bits, then
    # summed exactly (at most MAX_AXIS_LENGTH * 2^19 < 2^31; the max gives >= 1).
    sum_of_exps = rounding_divide_by_pot(exps, 31 - 19, AWAY).sum(axis=-1, keepdims=True)
    # Step 5: 1 / sum = shifted_scale * 2^-(31 + num_bits_over_unit).
    shifted_scale, num_bits_over_unit = get_reciprocal(sum_of_exps)
    # Step 6: each probability, p = prob * 2^-(31 + num_bits_over_unit).
    prob = srdhm(shifted_scale, exps)
    # Step 7: p / s_y = prob * out_multiplier / 2^exponent, exponent =
    # (31 + num_bits_over_unit) + (31 - out_shift), rounded exactly. prob *
    # out_multiplier < 2^62, so for exponent > 62 the quotient is below 1/2: 0.
    exponent = 62 + num_bits_over_unit - params.output_shift
    unsat = rounding_divide_by_pot(prob * params.output_multiplier, np.minimum(exponent, 62), AWAY)
    unsat = np.where(exponent > 62, 0, unsat)
    # Step 8: add zp_y and saturate to the output dtype.
    y = saturate(unsat + y_zero_point, y_dtype)
    return np.moveaxis(y, -1, axis)


@register
class Softmax(Op):
    name = "softmax"
    inputs = (Slot("x", doc="int8 or uint8 tensor, quantized per tensor"),)
    outputs = (Slot("y", doc="tensor of x's dtype and shape, quantized per tensor"),)
    attrs = (Attr("axis", "int", -1, "the axis to normalize along"),
             Attr("beta", "float", 1.0, "inverse temperature, > 0"))

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, DTYPES, "input x")
        rank = len(x.shape)
        axis = ctx.attrs["axis"]
        if not -rank <= axis < rank:
            raise ctx.error(f"axis {axis} is out of range for rank {rank}")
        n = x.shape[axis % rank]
        if not 1 <= n <= MAX_AXIS_LENGTH:
            raise ctx.error(f"the softmax axis has length {n}; it must be in [1, {MAX_AXIS_LENGTH}] "
                            "(the Q12.19 sum of exponentials must fit int32)")
        beta = ctx.attrs["beta"]
        with np.errstate(over="ignore"):
            beta32 = np.float32(beta)
        if not (np.isfinite(beta32) and beta32 > 0):
            raise ctx.error(f"beta must be finite and > 0 as a float32, got {beta!r}")
        return [(x.dtype, x.shape)]

    def prepare(self, ctx):
        x = ctx.inputs[0]
        qx = ctx.require_quant(x, "input x")
        qy = ctx.out_quant(0)
        try:
            ctx.prepared["params"] = prepare_softmax(ctx.attrs["beta"], float(qx.scale), float(qy.scale))
        except ValidationError as e:
            raise ctx.error(f"scales s_x={float(qx.scale):g}, s_y={float(qy.scale):g}, "
                            f"beta={ctx.attrs['beta']!r}: {e}") from None
        ctx.prepared["axis"] = ctx.attrs["axis"] % len(x.shape)
        ctx.prepared["y_zp"] = int(qy.zero_point_or_zeros())

    def run(self, ctx, args):
        p = ctx.prepared
        return [softmax(args[0], p["params"], p["axis"], p["y_zp"], ctx.outputs[0].dtype)]
