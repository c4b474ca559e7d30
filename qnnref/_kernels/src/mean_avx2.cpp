#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// AVX2 mean. inner > 1: the sums are vectorized over channels, 16 channels in
// two vectors of 8 int32 sums, over the R rows. inner == 1 (averaging the
// last axes): each row of R values is summed with horizontal vector sums
// (VPSADBW for 8-bit, VPMADDWD for int16). Remainders use the scalar pieces
// of mean.h; the requantization is requantize_row's.
#include <immintrin.h>

#include <atomic>
#include <vector>

#include "qnnref/mean.h"

namespace qnnref {
namespace avx2 {

// 16 values widened to two vectors of 8 int32.
static inline void load16(const int8_t* p, __m256i* lo, __m256i* hi) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  *lo = _mm256_cvtepi8_epi32(v);
  *hi = _mm256_cvtepi8_epi32(_mm_srli_si128(v, 8));
}
static inline void load16(const uint8_t* p, __m256i* lo, __m256i* hi) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  *lo = _mm256_cvtepu8_epi32(v);
  *hi = _mm256_cvtepu8_epi32(_mm_srli_si128(v, 8));
}
static inline void load16(const int16_t* p, __m256i* lo, __m256i* hi) {
  *lo = _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  *hi = _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)));
}

// mean_sum_columns (mean.h), 16 channels at a time.
template <typename T>
static void sum_columns(const T* x, int64_t reduce, int64_t inner, int64_t n, int32_t* acc) {
  const int64_t c_vec = n - n % 16;
  for (int64_t c = 0; c < c_vec; c += 16) {
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    for (int64_t r = 0; r < reduce; ++r) {
      __m256i lo, hi;
      load16(x + r * inner + c, &lo, &hi);
      s0 = _mm256_add_epi32(s0, lo);
      s1 = _mm256_add_epi32(s1, hi);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c), s0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c + 8), s1);
  }
  if (c_vec < n) mean_sum_columns(x, reduce, inner, c_vec, n, acc);
}

static inline int64_t horizontal_sum_epi64(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

// The sum of a row of n values (mean_sum_range), 32 bytes at a time. The
// totals fit int32 by the bound, so the int64 vector sums are exact and so
// is their conversion.
static int32_t sum_row(const uint8_t* x, int64_t n) {
  const int64_t n_vec = n - n % 32;
  __m256i s = _mm256_setzero_si256();
  for (int64_t i = 0; i < n_vec; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    s = _mm256_add_epi64(s, _mm256_sad_epu8(v, _mm256_setzero_si256()));    // 4 sums of 8 bytes
  }
  return static_cast<int32_t>(horizontal_sum_epi64(s)) + mean_sum_range(x, n_vec, n);
}
static int32_t sum_row(const int8_t* x, int64_t n) {
  // x + 128 is x with its sign bit flipped, read as uint8: sum(x) = sum(x + 128) - 128 * count
  const int64_t n_vec = n - n % 32;
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256i s = _mm256_setzero_si256();
  for (int64_t i = 0; i < n_vec; i += 32) {
    const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), flip);
    s = _mm256_add_epi64(s, _mm256_sad_epu8(v, _mm256_setzero_si256()));
  }
  return static_cast<int32_t>(horizontal_sum_epi64(s) - 128 * n_vec) + mean_sum_range(x, n_vec, n);
}
static int32_t sum_row(const int16_t* x, int64_t n) {
  // VPMADDWD by 1 adds adjacent pairs into int32 lanes; each lane sums a
  // subset of the row, which fits int32 by the bound.
  const int64_t n_vec = n - n % 16;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i s = _mm256_setzero_si256();
  for (int64_t i = 0; i < n_vec; i += 16) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    s = _mm256_add_epi32(s, _mm256_madd_epi16(v, ones));
  }
  __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
  return _mm_cvtsi128_si32(h) + mean_sum_range(x, n_vec, n);
}

template <typename T>
static Status mean_as(const T* x, T* y, int64_t outer, int64_t reduce, int64_t inner, int32_t dtype,
                      int32_t x_zero_point, const Requant& p, int threads) {
  std::atomic<bool> needs_reference{false};
  const int32_t offset = static_cast<int32_t>(reduce * x_zero_point);
  if (inner == 1) {
    const int64_t tasks = (outer + MEAN_ROW_BLOCK - 1) / MEAN_ROW_BLOCK;
    parallel_for(threads, tasks, 1, [&](int64_t begin, int64_t end) {
      std::vector<int32_t> acc(static_cast<size_t>(MEAN_ROW_BLOCK));
      for (int64_t t = begin; t < end; ++t) {
        const int64_t o0 = t * MEAN_ROW_BLOCK, o1 = o0 + MEAN_ROW_BLOCK < outer ? o0 + MEAN_ROW_BLOCK : outer;
        for (int64_t o = o0; o < o1; ++o) acc[o - o0] = sum_row(x + o * reduce, reduce) - offset;
        if (requantize_row(acc.data(), o1 - o0, p, 0, dtype, y + o0) != STATUS_OK) needs_reference = true;
      }
    });
  } else {
    const int64_t blocks = (inner + MEAN_CHANNEL_BLOCK - 1) / MEAN_CHANNEL_BLOCK;
    parallel_for(threads, outer * blocks, 1, [&](int64_t begin, int64_t end) {
      std::vector<int32_t> acc(static_cast<size_t>(MEAN_CHANNEL_BLOCK));
      for (int64_t t = begin; t < end; ++t) {
        const int64_t o = t / blocks, c0 = (t % blocks) * MEAN_CHANNEL_BLOCK;
        const int64_t n = c0 + MEAN_CHANNEL_BLOCK < inner ? MEAN_CHANNEL_BLOCK : inner - c0;
        sum_columns(x + o * reduce * inner + c0, reduce, inner, n, acc.data());
        for (int64_t c = 0; c < n; ++c) acc[c] -= offset;
        if (requantize_row(acc.data(), n, p, 0, dtype, y + o * inner + c0) != STATUS_OK) needs_reference = true;
      }
    });
  }
  return needs_reference ? STATUS_NEEDS_REFERENCE : STATUS_OK;
}

Status mean(const void* x, void* y, int64_t outer, int64_t reduce, int64_t inner, int32_t dtype,
            int32_t x_zero_point, const Requant& p, int threads) {
  switch (dtype) {
    case DT_INT8:
    case DT_INT4:
      return mean_as(static_cast<const int8_t*>(x), static_cast<int8_t*>(y), outer, reduce, inner, dtype,
                     x_zero_point, p, threads);
    case DT_UINT8:
    case DT_UINT4:
      return mean_as(static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y), outer, reduce, inner, dtype,
                     x_zero_point, p, threads);
    default:  // DT_INT16 (the glue accepts nothing else)
      return mean_as(static_cast<const int16_t*>(x), static_cast<int16_t*>(y), outer, reduce, inner, dtype,
                     x_zero_point, p, threads);
  }
}

}  // namespace avx2
}  // namespace qnnref
