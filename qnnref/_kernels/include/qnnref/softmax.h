// softmax: TFLite's fixed-point 8-bit softmax along the last axis
// (spec/ops/softmax.md; the glue moves the softmax axis last).
//
// The gemmlowp fixed-point functions of qnnref/ops/softmax.py, transcribed
// one operation at a time, with the same names. Like the reference they
// compute on int64 values that the algorithm keeps in the int32 range (the
// bounds are in the spec), with srdhm and rounding_divide_by_pot of arith.h.
//
// The exponential of a difference d = x - max(x) depends only on d, which
// has 256 possible values (d in [-255, 0] for 8-bit x). So the exponentials
// are computed once per node, at load time, by exp_on_negative_values below
// (softmax_exp_table), and looked up when running: the same integers as the
// reference's, by construction.
#pragma once

#include <cstdint>

#include "qnnref/arith.h"
#include "qnnref/common.h"

namespace qnnref {

// qnnref/ops/softmax.py SoftmaxParams, plus the output's zero point and range.
struct SoftmaxParams {
  int32_t input_multiplier;   // beta * s_x * 2^26 = input_multiplier * 2^(input_left_shift - 31)
  int32_t input_left_shift;   // in [1, 31]
  int32_t diff_min;           // differences below diff_min have exp taken as 0
  int32_t output_multiplier;  // 1 / s_y = output_multiplier * 2^(output_shift - 31)
  int32_t output_shift;       // in [-31, 30]
  int32_t y_zero_point;
  int32_t lo, hi;             // the output dtype's range
  const int32_t* exp_table;   // [256]: exp_table[k] = the Q0.31 exponential of d = -k (softmax_exp_table)
};

// softmax_exp_table: exp_table[k] for k in [0, 256), the reference's steps 2
// and 3 for the difference d = -k (scalar; run once per node at load time).
void softmax_exp_table(int32_t input_multiplier, int32_t input_left_shift, int32_t diff_min, int32_t* exp_table);

// softmax of `rows` contiguous rows of `depth` 8-bit values (x_signed: int8,
// else uint8) into y (same dtype). Rows are split between threads; a row is
// never split.
namespace scalar {
Status softmax(const void* x, void* y, int64_t rows, int64_t depth, int32_t x_signed, const SoftmaxParams& p,
               int threads);
}
namespace avx2 {
Status softmax(const void* x, void* y, int64_t rows, int64_t depth, int32_t x_signed, const SoftmaxParams& p,
               int threads);
}

static inline int32_t softmax(int32_t isa, const void* x, void* y, int64_t rows, int64_t depth, int32_t x_signed,
                       const SoftmaxParams& p, int threads) {
  return isa == ISA_AVX2 ? avx2::softmax(x, y, rows, depth, x_signed, p, threads)
                         : scalar::softmax(x, y, rows, depth, x_signed, p, threads);
}

// ---------------------------------------------------------------------------
// The fixed-point functions (qnnref/ops/softmax.py), on one value.
// ---------------------------------------------------------------------------

constexpr int64_t SOFTMAX_INT32_MAX = 2147483647LL;
constexpr int32_t ACCUM_INTEGER_BITS = 12;          // Q12.19 sum of the exponentials
constexpr int32_t SCALED_DIFF_INTEGER_BITS = 5;     // Q5.26 scaled differences
constexpr int64_t EXP_MINUS_ONE_EIGHTH = 1895147668;
constexpr int64_t ONE_THIRD = 715827883;
constexpr int64_t FORTY_EIGHT_OVER_17 = 1515870810;
constexpr int64_t MINUS_THIRTY_TWO_OVER_17 = -1010580540;
// exp(-2^j) in Q0.31 for j = -2..4
constexpr int32_t EXP_BARREL_FIRST_J = -2;
constexpr int64_t EXP_BARREL[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};

// x * 2^exponent saturated to int32 (exponent >= 0; |x| < 2^32).
static inline int64_t saturating_left_shift(int64_t x, int32_t exponent) {
  const int64_t v = x * (int64_t(1) << exponent);
  return v < INT32_MIN_ ? INT32_MIN_ : (v > INT32_MAX_ ? INT32_MAX_ : v);
}

static inline int64_t exp_on_interval_between_negative_one_quarter_and_0_excl(int64_t a) {
  // exp(a) for a in [-1/4, 0); a and the result are Q0.31.
  // Step 1: Taylor expansion around -1/8 in x = a + 1/8 (1/8 is 2^28 in Q0.31).
  const int64_t x = a + (int64_t(1) << 28);
  const int64_t x2 = srdhm(x, x);
  const int64_t x3 = srdhm(x2, x);
  const int64_t x4 = srdhm(x2, x2);
  // Step 2: x^4/24 + x^3/6 + x^2/2 = ((x^4/4 + x^3) / 3 + x^2) / 2.
  const int64_t x4_over_4 = rounding_divide_by_pot(x4, 2, HALF_AWAY_FROM_ZERO);
  const int64_t poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, ONE_THIRD) + x2, 1, HALF_AWAY_FROM_ZERO);
  // Step 3: exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24).
  return EXP_MINUS_ONE_EIGHTH + srdhm(EXP_MINUS_ONE_EIGHTH, x + poly);
}

static inline int64_t exp_on_negative_values(int64_t a) {
  // exp(a) for a <= 0; a is Q5.26 (a > -32), the result Q0.31 (1 is 2^31 - 1).
  // Step 1: split a = r - k/4 with r in [-1/4, 0) (1/4 is 2^24 in Q5.26) and
  // k/4 >= 0 a multiple of 1/4: r = (a mod 1/4) - 1/4, k/4 = r - a.
  const int64_t one_quarter = int64_t(1) << 24;
  const int64_t a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter;
  const int64_t remainder = a_mod_quarter_minus_one_quarter - a;
  // Step 2: exp(r), r rescaled from Q5.26 to Q0.31 (exact: |r| <= 2^24).
  int64_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
      saturating_left_shift(a_mod_quarter_minus_one_quarter, SCALED_DIFF_INTEGER_BITS));
  // Step 3: times exp(-2^j) for each bit 2^j (j = -2..4) set in k/4.
  for (int32_t i = 0; i < 7; ++i) {
    const int32_t j = EXP_BARREL_FIRST_J + i;
    if ((remainder & (int64_t(1) << (26 + j))) != 0) result = srdhm(result, EXP_BARREL[i]);
  }
  // Step 4: exp(0) = 1, i.e. 2^31 - 1.
  return a == 0 ? SOFTMAX_INT32_MAX : result;
}

static inline int64_t one_over_one_plus_x_for_x_in_0_1(int64_t a) {
  // 1 / (1 + a) for a in [0, 1); a and the result are Q0.31.
  // Step 1: half the denominator, (1 + a) / 2 in [1/2, 1), Q0.31: (a + 2^31) // 2.
  const int64_t half_denominator = (a + SOFTMAX_INT32_MAX + 1) >> 1;
  // Step 2: Newton-Raphson for 1 / half_denominator in Q2.29, starting from
  // 48/17 - 32/17 * half_denominator; three iterations x += x * (1 - hd * x).
  int64_t x = FORTY_EIGHT_OVER_17 + srdhm(half_denominator, MINUS_THIRTY_TWO_OVER_17);
  for (int i = 0; i < 3; ++i) {
    const int64_t half_denominator_times_x = srdhm(half_denominator, x);              // Q2.29
    const int64_t one_minus_half_denominator_times_x = (int64_t(1) << 29) - half_denominator_times_x;
    x = x + saturating_left_shift(srdhm(x, one_minus_half_denominator_times_x), 2);  // Q4.27 -> Q2.29
  }
  // Step 3: 1 / (1 + a) = x / 2: the same raw value read as Q1.30, then to Q0.31.
  return saturating_left_shift(x, 1);
}

// sum_of_exps > 0 is Q12.19 (below 2^31). Sets shifted_scale and
// num_bits_over_unit with 1 / sum = shifted_scale / 2^31 / 2^num_bits_over_unit.
static inline void get_reciprocal(int64_t sum_of_exps, int64_t* shifted_scale, int32_t* num_bits_over_unit) {
  // Step 1: the number of leading zeros of the 32-bit sum (its bit length is 20..31).
  int32_t bit_length = 0;
  for (int32_t k = 0; k < 32; ++k) bit_length += (sum_of_exps >> k) > 0 ? 1 : 0;
  const int32_t headroom_plus_one = 32 - bit_length;
  // Step 2: sum = 2^num_bits_over_unit * (1 + t) with t in [0, 1).
  *num_bits_over_unit = ACCUM_INTEGER_BITS - headroom_plus_one;
  const int64_t shifted_sum_minus_one = sum_of_exps * (int64_t(1) << headroom_plus_one) - (int64_t(1) << 31);
  // Step 3: 1 / (1 + t).
  *shifted_scale = one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

// ---------------------------------------------------------------------------
// The per-element steps of softmax (qnnref/ops/softmax.py softmax), shared by
// the scalar kernel and the AVX2 kernel's remainders.
// ---------------------------------------------------------------------------

// Step 4's term: an exponential rounded to Q12.19.
static inline int64_t exp_in_q12_19(int64_t e) { return rounding_divide_by_pot(e, 31 - 19, HALF_AWAY_FROM_ZERO); }

// Steps 6 to 8 for one exponential e of a row whose reciprocal is
// (shifted_scale, num_bits_over_unit).
static inline int32_t softmax_output(int64_t e, int64_t shifted_scale, int32_t num_bits_over_unit, const SoftmaxParams& p) {
  // Step 6: p = prob * 2^-(31 + num_bits_over_unit).
  const int64_t prob = srdhm(shifted_scale, e);
  // Step 7: p / s_y = prob * out_multiplier / 2^exponent, rounded exactly;
  // below 1/2 (so 0) for exponent > 62.
  const int32_t exponent = 62 + num_bits_over_unit - p.output_shift;
  const int64_t unsat =
      exponent > 62 ? 0 : rounding_divide_by_pot(prob * p.output_multiplier, exponent, HALF_AWAY_FROM_ZERO);
  // Step 8: add zp_y and saturate to the output dtype.
  return static_cast<int32_t>(saturate(unsat + p.y_zero_point, p.lo, p.hi));
}

// Rows per thread task.
constexpr int64_t SOFTMAX_ROW_GRAIN = 1;

}  // namespace qnnref
