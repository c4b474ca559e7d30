#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// AVX2 avg_pool2d: vectorized over channels (NHWC). The window sum runs over
// blocks of 16 channels held in two vectors of 8 int32 sums; the exact
// division runs over 8 channels at a time; the requantization is
// requantize_row's. Channels left over (C mod 16, C mod 8) use the scalar
// pieces of avg_pool2d.h.
#include <immintrin.h>

#include <atomic>
#include <vector>

#include "qnnref/avg_pool2d.h"

namespace qnnref {
namespace avx2 {

// 16 channels widened to two vectors of 8 int32.
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

// Store 8 int32 already clamped to T's range as 8 T (the packs cannot saturate).
static inline void store8(int8_t* out, __m256i v) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packs_epi16(w, w));
}
static inline void store8(uint8_t* out, __m256i v) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(w, w));
}
static inline void store8(int16_t* out, __m256i v) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), w);
}

// window_sum (avg_pool2d.h), 16 channels at a time.
template <typename T>
static void window_sum_vec(const T* x, const PoolGeometry& g, const Taps& rows, const Taps& cols, int64_t n,
                           int32_t* acc) {
  const int64_t c_vec = g.C - g.C % 16;
  const T* base = x + (n * g.H * g.W) * g.C;
  for (int64_t c = 0; c < c_vec; c += 16) {
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    for (int64_t i = 0; i < rows.count; ++i) {
      const T* tap_row = base + ((rows.pos + i * g.dh) * g.W) * g.C + c;
      for (int64_t j = 0; j < cols.count; ++j) {
        __m256i lo, hi;
        load16(tap_row + (cols.pos + j * g.dw) * g.C, &lo, &hi);
        s0 = _mm256_add_epi32(s0, lo);
        s1 = _mm256_add_epi32(s1, hi);
      }
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c), s0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c + 8), s1);
  }
  if (c_vec < g.C) window_sum(x, g, rows, cols, n, c_vec, g.C, acc);
}

// rounding_divide(n, d, mode) on 8 lanes, exactly, for int32 n, 1 <= d < 2^28
// and |n / d| <= 2^15 (n / d is an average of codes and zero points, all in
// the dtype's range; d <= kh*kw < 2^31 / 15 by the glue's bound).
//
// Why it is exact: q0 = floor(float(n) * inv_d), inv_d = float(1.0 / d) (the
// quotient rounded to float64, then to float32), has three float32 roundings
// (n, 1/d, the product), each of relative error <= 2^-24 (+ 2^-53 for the
// double rounding of 1/d), so the product is within |n/d| * 3.001 * 2^-24
// < 2^15 * 2^-22 = 2^-7 of n/d and
// q0 is floor(n/d) - 1, floor(n/d) or floor(n/d) + 1. The remainder
// r = n - q0*d then lies in [-d, 2d), inside int32, so computing it with
// wrapping 32-bit products gives its exact value; one correction step each
// way makes q the floor and r in [0, d). The rounding is then round_quotient
// (arith.h), lane by lane.
static inline __m256i rounding_divide8(__m256i n, __m256i d, __m256 inv_d, Rounding mode) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i q = _mm256_cvttps_epi32(_mm256_floor_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(n), inv_d)));
  __m256i r = _mm256_sub_epi32(n, _mm256_mullo_epi32(q, d));
  const __m256i below = _mm256_cmpgt_epi32(zero, r);                          // r < 0: q was one too big
  q = _mm256_add_epi32(q, below);
  r = _mm256_add_epi32(r, _mm256_and_si256(below, d));
  const __m256i above_d = _mm256_cmpgt_epi32(r, _mm256_sub_epi32(d, _mm256_set1_epi32(1)));  // r >= d
  q = _mm256_sub_epi32(q, above_d);
  r = _mm256_sub_epi32(r, _mm256_and_si256(above_d, d));
  // round_quotient: up is a lane mask (all ones = add 1)
  const __m256i two_r = _mm256_add_epi32(r, r);                                // < 2^29
  const __m256i above = _mm256_cmpgt_epi32(two_r, d);
  const __m256i tie = _mm256_cmpeq_epi32(two_r, d);
  const __m256i nonzero = _mm256_xor_si256(_mm256_cmpeq_epi32(r, zero), _mm256_set1_epi32(-1));
  const __m256i negative = _mm256_cmpgt_epi32(zero, n);
  __m256i up = zero;
  switch (mode) {
    case FLOOR: up = zero; break;
    case CEIL: up = nonzero; break;
    case TRUNCATE: up = _mm256_and_si256(nonzero, negative); break;
    case HALF_UP: up = _mm256_or_si256(above, tie); break;
    case HALF_DOWN: up = above; break;
    case HALF_AWAY_FROM_ZERO: up = _mm256_or_si256(above, _mm256_andnot_si256(negative, tie)); break;
    case HALF_TO_EVEN: {
      const __m256i odd = _mm256_cmpeq_epi32(_mm256_and_si256(q, _mm256_set1_epi32(1)), _mm256_set1_epi32(1));
      up = _mm256_or_si256(above, _mm256_and_si256(tie, odd));
      break;
    }
  }
  return _mm256_sub_epi32(q, up);
}

// finish_same_quant (avg_pool2d.h), 8 channels at a time.
template <typename T>
static void finish_same_quant_vec(const int32_t* acc, int64_t count, int64_t padded, const AvgPoolParams& p,
                                  int64_t C, T* out) {
  const int64_t c_vec = C - C % 8;
  const __m256i pad_codes = _mm256_set1_epi32(static_cast<int32_t>(padded * p.x_zero_point));
  const __m256i d = _mm256_set1_epi32(static_cast<int32_t>(count));
  const __m256 inv_d = _mm256_set1_ps(static_cast<float>(1.0 / static_cast<double>(count)));
  const __m256i lo = _mm256_set1_epi32(p.lo), hi = _mm256_set1_epi32(p.hi);
  const Rounding mode = Rounding(p.rounding);
  for (int64_t c = 0; c < c_vec; c += 8) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + c));
    const __m256i v = rounding_divide8(_mm256_add_epi32(a, pad_codes), d, inv_d, mode);
    store8(out + c, _mm256_min_epi32(_mm256_max_epi32(v, lo), hi));
  }
  if (c_vec < C) finish_same_quant(acc, count, padded, p, c_vec, C, out);
}

template <typename T>
static Status avg_pool2d_as(const T* x, T* y, const PoolGeometry& g, int32_t dtype, const AvgPoolParams& p,
                            int threads) {
  std::atomic<bool> needs_reference{false};
  parallel_for(threads, g.N * g.OH, 1, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> acc(static_cast<size_t>(g.C));
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / g.OH, oh = row % g.OH;
      const Taps rows = window_taps(oh, g.sh, g.pad_top, g.kh, g.dh, g.H);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const Taps cols = window_taps(ow, g.sw, g.pad_left, g.kw, g.dw, g.W);
        T* out = y + (row * g.OW + ow) * g.C;
        window_sum_vec(x, g, rows, cols, n, acc.data());
        const int64_t inside = rows.count * cols.count;
        const int64_t count = p.count_include_pad ? g.kh * g.kw : inside;
        if (!p.requantize) {
          finish_same_quant_vec(acc.data(), count, count - inside, p, g.C, out);
          continue;
        }
        Requant q;
        if (!requant_for_count(p, count, &q)) {
          needs_reference = true;
          continue;
        }
        const int32_t offset = static_cast<int32_t>(inside * p.x_zero_point);
        for (int64_t c = 0; c < g.C; ++c) acc[c] -= offset;
        if (requantize_row(acc.data(), g.C, q, 0, dtype, out) != STATUS_OK) needs_reference = true;
      }
    }
  });
  return needs_reference ? STATUS_NEEDS_REFERENCE : STATUS_OK;
}

Status avg_pool2d(const void* x, void* y, const PoolGeometry& g, int32_t dtype, const AvgPoolParams& p,
                  int threads) {
  switch (dtype) {
    case DT_INT8:
    case DT_INT4:
      return avg_pool2d_as(static_cast<const int8_t*>(x), static_cast<int8_t*>(y), g, dtype, p, threads);
    case DT_UINT8:
    case DT_UINT4:
      return avg_pool2d_as(static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y), g, dtype, p, threads);
    default:  // DT_INT16 (the glue accepts nothing else)
      return avg_pool2d_as(static_cast<const int16_t*>(x), static_cast<int16_t*>(y), g, dtype, p, threads);
  }
}

}  // namespace avx2
}  // namespace qnnref
