#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// AVX2 softmax, one row at a time (a row is never split between threads):
//   step 1 (row maximum): 32 bytes at a time (VPMAXSB / VPMAXUB);
//   steps 2-4 (exponentials, their Q12.19 sum): 8 at a time, each looked up
//     in the load-time table with VPGATHERDD and kept in a row buffer; the
//     rounding to Q12.19 of e >= 0 is (e + 2^11) >> 12 on unsigned 32 bits;
//   step 5 (the reciprocal of the sum): scalar, once per row (get_reciprocal);
//   steps 6-8 (probabilities, output): 8 at a time as two vectors of 4
//     64-bit lanes (VPMULUDQ: every operand there is >= 0 and below 2^31).
// The remainders (depth mod 32, depth mod 8) use the scalar steps of softmax.h.
#include <immintrin.h>

#include <vector>

#include "qnnref/softmax.h"

namespace qnnref {
namespace avx2 {

static inline __m256i vmax(__m256i a, __m256i b, int8_t) { return _mm256_max_epi8(a, b); }
static inline __m256i vmax(__m256i a, __m256i b, uint8_t) { return _mm256_max_epu8(a, b); }

// 8 values widened to int32.
static inline __m256i load8(const int8_t* p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
static inline __m256i load8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// Store 8 int32 already clamped to T's range as 8 T (the packs cannot saturate).
static inline void store8(int8_t* out, __m256i v) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packs_epi16(w, w));
}
static inline void store8(uint8_t* out, __m256i v) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(w, w));
}

template <typename T>
static T row_max(const T* x, int64_t depth) {
  const int64_t n_vec = depth - depth % 32;
  T max = x[0];
  if (n_vec > 0) {
    __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    for (int64_t i = 32; i < n_vec; i += 32) {
      m = vmax(m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), T());
    }
    alignas(32) T lanes[32];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), m);
    for (int k = 0; k < 32; ++k) max = lanes[k] > max ? lanes[k] : max;
  }
  for (int64_t i = n_vec; i < depth; ++i) max = x[i] > max ? x[i] : max;
  return max;
}

template <typename T>
static void softmax_row(const T* x, T* y, int64_t depth, const SoftmaxParams& p, int32_t* exps) {
  // Step 1: the row maximum.
  const T max = row_max(x, depth);
  // Steps 2-4: exps[i] = exp_table[max - x[i]], and the sum of their Q12.19 roundings.
  const int64_t n_vec = depth - depth % 8;
  const __m256i vmax_x = _mm256_set1_epi32(max);
  const __m256i half_q12 = _mm256_set1_epi32(1 << 11);
  __m256i sums = _mm256_setzero_si256();       // each lane a partial sum: below the total, < 2^31
  for (int64_t i = 0; i < n_vec; i += 8) {
    const __m256i k = _mm256_sub_epi32(vmax_x, load8(x + i));                         // in [0, 255]
    const __m256i e = _mm256_i32gather_epi32(reinterpret_cast<const int*>(p.exp_table), k, 4);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(exps + i), e);
    // rounding_divide_by_pot(e, 12, half away from zero) = (e + 2^11) >> 12 for e >= 0,
    // computed on unsigned 32 bits (e + 2^11 < 2^32)
    sums = _mm256_add_epi32(sums, _mm256_srli_epi32(_mm256_add_epi32(e, half_q12), 12));
  }
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sums);
  int64_t sum_of_exps = 0;
  for (int k = 0; k < 8; ++k) sum_of_exps += lanes[k];
  for (int64_t i = n_vec; i < depth; ++i) {
    exps[i] = p.exp_table[max - x[i]];
    sum_of_exps += exp_in_q12_19(exps[i]);
  }
  // Step 5: 1 / sum (scalar).
  int64_t shifted_scale;
  int32_t num_bits_over_unit;
  get_reciprocal(sum_of_exps, &shifted_scale, &num_bits_over_unit);
  // Steps 6-8. shifted_scale is in (0, 2^31), e in [0, 2^31): srdhm(shifted_scale, e)
  // = (shifted_scale * e + 2^30) >> 31 (the product is >= 0), below 2^31; then
  // rounding_divide_by_pot(prob * output_multiplier, exponent, half away from
  // zero) = (prob * output_multiplier + 2^(exponent-1)) >> exponent (>= 0,
  // below 2^62 + 2^61), for exponent in [32, 62] (>= 32 since output_shift <= 30);
  // the result is below 2^31 - 2^8, so adding zp_y cannot overflow.
  const int32_t exponent = 62 + num_bits_over_unit - p.output_shift;
  const __m256i scale = _mm256_set1_epi64x(shifted_scale);
  const __m256i half_q31 = _mm256_set1_epi64x(int64_t(1) << 30);
  const __m256i out_multiplier = _mm256_set1_epi64x(p.output_multiplier);
  const __m256i half_out = _mm256_set1_epi64x(exponent <= 62 ? int64_t(1) << (exponent - 1) : 0);
  const __m128i out_shift = _mm_cvtsi32_si128(exponent);
  const __m256i zp = _mm256_set1_epi32(p.y_zero_point);
  const __m256i lo = _mm256_set1_epi32(p.lo), hi = _mm256_set1_epi32(p.hi);
  for (int64_t i = 0; i < n_vec; i += 8) {
    const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(exps + i));
    __m256i unsat = _mm256_setzero_si256();                    // exponent > 62: below 1/2, 0
    if (exponent <= 62) {
      // the even lanes (0, 2, 4, 6) and the odd lanes, each as 4 x 64 bits
      const __m256i e_even = e, e_odd = _mm256_srli_epi64(e, 32);
      const __m256i prob_even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epu32(e_even, scale), half_q31), 31);
      const __m256i prob_odd = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epu32(e_odd, scale), half_q31), 31);
      const __m256i u_even = _mm256_srl_epi64(_mm256_add_epi64(_mm256_mul_epu32(prob_even, out_multiplier), half_out),
                                              out_shift);
      const __m256i u_odd = _mm256_srl_epi64(_mm256_add_epi64(_mm256_mul_epu32(prob_odd, out_multiplier), half_out),
                                             out_shift);
      unsat = _mm256_blend_epi32(u_even, _mm256_slli_epi64(u_odd, 32), 0xAA);
    }
    store8(y + i, _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(unsat, zp), lo), hi));
  }
  for (int64_t i = n_vec; i < depth; ++i) {
    y[i] = static_cast<T>(softmax_output(exps[i], shifted_scale, num_bits_over_unit, p));
  }
}

template <typename T>
static void softmax_as(const T* x, T* y, int64_t rows, int64_t depth, const SoftmaxParams& p, int threads) {
  parallel_for(threads, rows, SOFTMAX_ROW_GRAIN, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> exps(static_cast<size_t>(depth));
    for (int64_t r = begin; r < end; ++r) softmax_row(x + r * depth, y + r * depth, depth, p, exps.data());
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

}  // namespace avx2
}  // namespace qnnref
