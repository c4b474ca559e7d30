// Requantization of int32 accumulators: the last stage of every compute
// kernel, and the requantize operator itself.
#pragma once

#include "qnnref/common.h"

namespace qnnref {

// requantize_row: out[i] = requantize_output(acc[i], p, ch0 + i), stored as
// out_dtype (DType). Returns STATUS_NEEDS_REFERENCE if some element failed a
// REQUIRE (gemmlowp overflow); out is then unspecified.
namespace scalar {
Status requantize_row(const int32_t* acc, int64_t n, const Requant& p, int64_t ch0, int32_t out_dtype,
                      void* out);
}
namespace avx2 {
Status requantize_row(const int32_t* acc, int64_t n, const Requant& p, int64_t ch0, int32_t out_dtype,
                      void* out);
}

// The dispatcher Cython calls: the ISA is an explicit argument (an Isa code);
// returns a Status code.
inline int32_t requantize_row(int32_t isa, const int32_t* acc, int64_t n, const Requant& p, int64_t ch0,
                             int32_t out_dtype, void* out) {
  return isa == ISA_AVX2 ? avx2::requantize_row(acc, n, p, ch0, out_dtype, out)
                         : scalar::requantize_row(acc, n, p, ch0, out_dtype, out);
}

}  // namespace qnnref

// ---------------------------------------------------------------------------
// AVX2 building blocks of the output stage, shared by the AVX2 kernels (only
// in translation units compiled with -mavx2). Each reproduces, lane by lane,
// the scalar function of arith.h / common.h named in its comment.
// ---------------------------------------------------------------------------
#if defined(__AVX2__)
#include <immintrin.h>

namespace qnnref {
namespace avx2 {
namespace rq {

// round_float (arith.h) on 8 floats / 4 doubles. roundps/roundpd with an
// explicit direction is IEEE roundToIntegral, as nearbyint/floor/ceil/trunc;
// a tie is |v - rint(v)| == 1/2, exact as in arith.h (false for inf, NaN).
template <Rounding M>
inline __m256 round8(__m256 v) {
  constexpr int kNoExc = _MM_FROUND_NO_EXC;
  if constexpr (M == HALF_TO_EVEN) return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | kNoExc);
  if constexpr (M == FLOOR) return _mm256_round_ps(v, _MM_FROUND_TO_NEG_INF | kNoExc);
  if constexpr (M == CEIL) return _mm256_round_ps(v, _MM_FROUND_TO_POS_INF | kNoExc);
  if constexpr (M == TRUNCATE) return _mm256_round_ps(v, _MM_FROUND_TO_ZERO | kNoExc);
  const __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | kNoExc);
  const __m256 dist = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, r));   // |v - r|
  const __m256 tie = _mm256_cmp_ps(dist, _mm256_set1_ps(0.5f), _CMP_EQ_OQ);
  const __m256 up = _mm256_round_ps(v, _MM_FROUND_TO_POS_INF | kNoExc);
  const __m256 down = _mm256_round_ps(v, _MM_FROUND_TO_NEG_INF | kNoExc);
  __m256 t;
  if constexpr (M == HALF_UP) t = up;
  else if constexpr (M == HALF_DOWN) t = down;
  else t = _mm256_blendv_ps(down, up, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));  // away
  return _mm256_blendv_ps(r, t, tie);
}

template <Rounding M>
inline __m256d round4(__m256d v) {
  constexpr int kNoExc = _MM_FROUND_NO_EXC;
  if constexpr (M == HALF_TO_EVEN) return _mm256_round_pd(v, _MM_FROUND_TO_NEAREST_INT | kNoExc);
  if constexpr (M == FLOOR) return _mm256_round_pd(v, _MM_FROUND_TO_NEG_INF | kNoExc);
  if constexpr (M == CEIL) return _mm256_round_pd(v, _MM_FROUND_TO_POS_INF | kNoExc);
  if constexpr (M == TRUNCATE) return _mm256_round_pd(v, _MM_FROUND_TO_ZERO | kNoExc);
  const __m256d r = _mm256_round_pd(v, _MM_FROUND_TO_NEAREST_INT | kNoExc);
  const __m256d dist = _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_sub_pd(v, r));
  const __m256d tie = _mm256_cmp_pd(dist, _mm256_set1_pd(0.5), _CMP_EQ_OQ);
  const __m256d up = _mm256_round_pd(v, _MM_FROUND_TO_POS_INF | kNoExc);
  const __m256d down = _mm256_round_pd(v, _MM_FROUND_TO_NEG_INF | kNoExc);
  __m256d t;
  if constexpr (M == HALF_UP) t = up;
  else if constexpr (M == HALF_DOWN) t = down;
  else t = _mm256_blendv_pd(down, up, _mm256_cmp_pd(v, _mm256_setzero_pd(), _CMP_GT_OQ));
  return _mm256_blendv_pd(r, t, tie);
}

// The output stage of an integral float r (float or double):
// saturate(float_to_int64_clamped(r) + zp, lo, hi). With L = lo - zp and
// H = hi - zp (|L|, |H| < 2^33, inside the +-2^40 clamp), that is
// clamp(r, L, H) + zp, computed exactly in doubles (every integer below 2^53
// is a double) or, when lo, hi, zp, L and H are all at most 2^24 in
// magnitude (every output dtype but int32), in floats (every integer up to
// 2^24 is a float). +-inf clamp to L or H; a NaN (not produced from finite
// multipliers) gives lo, as the scalar conversion of NaN to INT64_MIN does
// on x86 (max_ps/max_pd return their second operand for a NaN).
struct FloatFinish {
  __m256d lo_minus_zp, hi_minus_zp, zp;
  __m256 lo_minus_zp_f, hi_minus_zp_f, zp_f;
  bool narrow;
  FloatFinish(int32_t zero_point, int32_t lo, int32_t hi) {
    const double l = double(lo) - double(zero_point), h = double(hi) - double(zero_point);
    lo_minus_zp = _mm256_set1_pd(l);
    hi_minus_zp = _mm256_set1_pd(h);
    zp = _mm256_set1_pd(double(zero_point));
    const double f = 16777216.0;   // 2^24
    narrow = std::fabs(l) <= f && std::fabs(h) <= f && std::fabs(double(zero_point)) <= f &&
             std::fabs(double(lo)) <= f && std::fabs(double(hi)) <= f;
    lo_minus_zp_f = _mm256_set1_ps(float(l));     // used only when narrow: then exact
    hi_minus_zp_f = _mm256_set1_ps(float(h));
    zp_f = _mm256_set1_ps(float(zero_point));
  }
  // 4 integral doubles -> 4 int32 in [lo, hi]
  __m128i operator()(__m256d r) const {
    r = _mm256_max_pd(r, lo_minus_zp);
    r = _mm256_min_pd(r, hi_minus_zp);
    return _mm256_cvttpd_epi32(_mm256_add_pd(r, zp));
  }
  // 8 integral floats -> 8 int32 in [lo, hi]
  __m256i operator()(__m256 r) const {
    if (narrow) {
      r = _mm256_min_ps(_mm256_max_ps(r, lo_minus_zp_f), hi_minus_zp_f);
      return _mm256_cvttps_epi32(_mm256_add_ps(r, zp_f));
    }
    const __m128i a = (*this)(_mm256_cvtps_pd(_mm256_castps256_ps128(r)));   // float -> double: exact
    const __m128i b = (*this)(_mm256_cvtps_pd(_mm256_extractf128_ps(r, 1)));
    return _mm256_set_m128i(b, a);
  }
};

// Store 8 int32 lanes, each already in the range of the storage type, at
// out (the packs saturate, which then changes nothing).
inline void store8(int32_t* out, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), v); }
inline __m128i pack8_i16(__m256i v) {
  return _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}
inline void store8(int16_t* out, __m256i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(out), pack8_i16(v)); }
inline void store8(int8_t* out, __m256i v) {
  const __m128i w = pack8_i16(v);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packs_epi16(w, w));
}
inline void store8(uint8_t* out, __m256i v) {
  const __m128i w = pack8_i16(v);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(w, w));
}

// Bytes per element of a storage dtype.
inline int64_t dtype_size(int32_t out_dtype) {
  return out_dtype == DT_INT16 ? 2 : (out_dtype == DT_INT32 ? 4 : 1);
}

}  // namespace rq
}  // namespace avx2
}  // namespace qnnref
#endif  // __AVX2__
