// Scalar softmax (the definition the AVX2 version must match), and the
// load-time table of exponentials.
#include "qnnref/softmax.h"

namespace qnnref {

void softmax_exp_table(int32_t input_multiplier, int32_t input_left_shift, int32_t diff_min, int32_t* exp_table) {
  for (int64_t k = 0; k < 256; ++k) {
    const int64_t diff = -k;
    // Step 2: beta * s_x * d in Q5.26, for the differences >= diff_min
    // (d * 2^left_shift fits int32 for them).
    const bool used = diff >= diff_min;
    const int64_t scaled_diff = srdhm((used ? diff : 0) * (int64_t(1) << input_left_shift), input_multiplier);
    // Step 3: its exponential, Q0.31 (0 for unused differences).
    exp_table[k] = static_cast<int32_t>(used ? exp_on_negative_values(scaled_diff) : 0);
  }
}

namespace scalar {

template <typename T>
static void softmax_row(const T* x, T* y, int64_t depth, const SoftmaxParams& p) {
  // Step 1: the row maximum; x - max is in [-255, 0], looked up as max - x.
  T max = x[0];
  for (int64_t i = 1; i < depth; ++i) max = x[i] > max ? x[i] : max;
  // Steps 2-4: the exponentials (from the table) rounded to Q12.19 and summed
  // exactly (below 2^31: at most 4095 terms of at most 2^19).
  int64_t sum_of_exps = 0;
  for (int64_t i = 0; i < depth; ++i) sum_of_exps += exp_in_q12_19(p.exp_table[max - x[i]]);
  // Step 5: 1 / sum.
  int64_t shifted_scale;
  int32_t num_bits_over_unit;
  get_reciprocal(sum_of_exps, &shifted_scale, &num_bits_over_unit);
  // Steps 6-8: each probability, scaled to the output.
  for (int64_t i = 0; i < depth; ++i) {
    y[i] = static_cast<T>(softmax_output(p.exp_table[max - x[i]], shifted_scale, num_bits_over_unit, p));
  }
}

template <typename T>
static void softmax_as(const T* x, T* y, int64_t rows, int64_t depth, const SoftmaxParams& p, int threads) {
  parallel_for(threads, rows, SOFTMAX_ROW_GRAIN, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) softmax_row(x + r * depth, y + r * depth, depth, p);
  });
}

Status softmax(const void* x, void* y, int64_t rows, int64_t depth, int32_t x_signed, const SoftmaxParams& p,
               int threads) {
  if (x_signed) {
    softmax_as(static_cast<const int8_t*>(x), static_cast<int8_t*>(y), rows, depth, p, threads);
  } else {
    softmax_as(static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y), rows, depth, p, threads);
  }
  return STATUS_OK;
}

}  // namespace scalar
}  // namespace qnnref
