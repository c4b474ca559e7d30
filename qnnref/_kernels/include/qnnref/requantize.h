// Requantization of int32 accumulators: the last stage of every compute
// kernel, and the requantize operator itself.
#pragma once

#include <atomic>

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

// requantize_rows: `rows` rows of n accumulators, row r at acc + r * ld_acc,
// into out + r * ld_out (elements of out_dtype), each exactly as
// requantize_row(acc + r * ld_acc, n, p, ch0, out_dtype, ...) -- column i
// of every row uses channel ch0 + i. The AVX2 version sets up the
// constants of 8 channels once for all rows (per-channel GEMM tiles,
// depthwise pixels). Returns STATUS_NEEDS_REFERENCE if some element failed.
namespace scalar {
static inline Status requantize_rows(const int32_t* acc, int64_t ld_acc, int64_t rows, int64_t n, const Requant& p,
                                     int64_t ch0, int32_t out_dtype, void* out, int64_t ld_out) {
  const int64_t bytes = out_dtype == DT_INT16 ? 2 : (out_dtype == DT_INT32 ? 4 : 1);
  int32_t status = STATUS_OK;
  for (int64_t r = 0; r < rows; ++r) {
    status |= requantize_row(acc + r * ld_acc, n, p, ch0, out_dtype, static_cast<char*>(out) + r * ld_out * bytes);
  }
  return Status(status);
}
}  // namespace scalar
namespace avx2 {
Status requantize_rows(const int32_t* acc, int64_t ld_acc, int64_t rows, int64_t n, const Requant& p, int64_t ch0,
                       int32_t out_dtype, void* out, int64_t ld_out);
}

// The dispatcher Cython calls: the ISA is an explicit argument (an Isa code);
// returns a Status code.
static inline int32_t requantize_row(int32_t isa, const int32_t* acc, int64_t n, const Requant& p, int64_t ch0,
                             int32_t out_dtype, void* out) {
  return isa == ISA_AVX2 ? avx2::requantize_row(acc, n, p, ch0, out_dtype, out)
                         : scalar::requantize_row(acc, n, p, ch0, out_dtype, out);
}

static inline int32_t requantize_rows(int32_t isa, const int32_t* acc, int64_t ld_acc, int64_t rows, int64_t n,
                                      const Requant& p, int64_t ch0, int32_t out_dtype, void* out, int64_t ld_out) {
  return isa == ISA_AVX2 ? avx2::requantize_rows(acc, ld_acc, rows, n, p, ch0, out_dtype, out, ld_out)
                         : scalar::requantize_rows(acc, ld_acc, rows, n, p, ch0, out_dtype, out, ld_out);
}

// ---------------------------------------------------------------------------
// Parameters along an axis, and the requantize operator
// ---------------------------------------------------------------------------

// Element f of a flat tensor uses parameter (f / inner) % mid: per tensor,
// mid = 1; per axis, mid = the axis length and inner = the product of the
// later dimensions; one parameter per element, mid = size and inner = 1.
// for_each_segment(f0, n, mid, inner, fn) calls fn(j, len, m, stride) for
// consecutive runs covering the elements f0 + [0, n): element f0 + j + k
// (0 <= k < len) uses parameter m + k * stride, where stride is 1 when
// inner == 1 (a parameter per element) and 0 otherwise (one for the run).
// (static: each translation unit, compiled with its own ISA flags, keeps
// its own copy.)
template <class F>
static inline void for_each_segment(int64_t f0, int64_t n, int64_t mid, int64_t inner, F&& fn) {
  if (mid == 1) {
    if (n > 0) fn(int64_t(0), n, int64_t(0), int64_t(0));
    return;
  }
  int64_t j = 0;
  if (inner == 1) {
    int64_t m = f0 % mid;
    while (j < n) {
      const int64_t len = n - j < mid - m ? n - j : mid - m;
      fn(j, len, m, int64_t(1));
      j += len;
      m = 0;
    }
    return;
  }
  int64_t m = (f0 / inner) % mid, r = f0 % inner;
  while (j < n) {
    const int64_t len = n - j < inner - r ? n - j : inner - r;
    fn(j, len, m, int64_t(0));
    j += len;
    r = 0;
    if (++m == mid) m = 0;
  }
}

// Requant of one channel c of a per-channel Requant, as a per-tensor one.
static inline Requant channel_requant(const Requant& p, int64_t c) {
  Requant q = p;
  if (p.per_channel) {
    q.multiplier += c;
    q.shift += c;
    q.real_f32 += c;
    q.real_f64 += c;
    q.per_channel = 0;
  }
  return q;
}

static inline int64_t dtype_bytes(int32_t dtype) { return dtype == DT_INT16 ? 2 : (dtype == DT_INT32 ? 4 : 1); }

// requantize_tensor: the requantize operator on n elements of x (x_dtype),
// element f with channel c = (f / inner) % mid:
//   y[f] = requantize_output(x[f] - x_zp[c], p with zero point y_zp[c], c)
// p is per channel with mid entries, or per tensor. Python guarantees:
// |x - x_zp| < 2^31 (x of at most 16 bits, or int32 with zero point 0);
// when inner == 1 and mid > 1, y_zp is uniform and equals p.zero_point.
// Threads split the elements. Returns STATUS_NEEDS_REFERENCE on a REQUIRE failure.
namespace scalar {
Status requantize_tensor(const void* x, int32_t x_dtype, int64_t n, int64_t mid, int64_t inner,
                         const int32_t* x_zp, const int32_t* y_zp, const Requant& p, int32_t out_dtype,
                         void* y, int32_t threads);
}
namespace avx2 {
Status requantize_tensor(const void* x, int32_t x_dtype, int64_t n, int64_t mid, int64_t inner,
                         const int32_t* x_zp, const int32_t* y_zp, const Requant& p, int32_t out_dtype,
                         void* y, int32_t threads);
}
static inline int32_t requantize_tensor(int32_t isa, const void* x, int32_t x_dtype, int64_t n, int64_t mid,
                                 int64_t inner, const int32_t* x_zp, const int32_t* y_zp, const Requant& p,
                                 int32_t out_dtype, void* y, int32_t threads) {
  return isa == ISA_AVX2 ? avx2::requantize_tensor(x, x_dtype, n, mid, inner, x_zp, y_zp, p, out_dtype, y, threads)
                         : scalar::requantize_tensor(x, x_dtype, n, mid, inner, x_zp, y_zp, p, out_dtype, y, threads);
}

// The body of requantize_tensor for one ISA (instantiated in each ISA's
// translation unit): chunks of kChunk elements are widened and centered
// into an int32 buffer, then requantize_row (of that ISA) finishes them.
constexpr int64_t kChunk = 256;        // elements per stack buffer
constexpr int64_t kGrain = 4096;       // elements per thread, at least

template <int32_t Isa, typename T>
static Status requantize_tensor_impl(const T* x, int64_t n, int64_t mid, int64_t inner, const int32_t* x_zp,
                                     const int32_t* y_zp, const Requant& p, int32_t out_dtype, void* y,
                                     int32_t threads) {
  const int64_t out_bytes = dtype_bytes(out_dtype);
  std::atomic<bool> failed{false};
  parallel_for(threads, n, kGrain, [&](int64_t begin, int64_t end) {
    int32_t acc[kChunk];
    int32_t st = STATUS_OK;
    for_each_segment(begin, end - begin, mid, inner, [&](int64_t j, int64_t len, int64_t m, int64_t stride) {
      // stride 0: one channel m for the whole run (its own zero points);
      // stride 1: channels m, m + 1, ... (per-channel p, uniform y zero point)
      Requant q = stride ? p : channel_requant(p, m);
      if (!stride) q.zero_point = y_zp[m];
      for (int64_t k = 0; k < len; k += kChunk) {
        const int64_t c = len - k < kChunk ? len - k : kChunk;
        const int64_t f = begin + j + k;
        if (stride) {
          const int32_t* zp = x_zp + m + k;
          for (int64_t i = 0; i < c; ++i) acc[i] = int32_t(x[f + i]) - zp[i];
        } else {
          const int32_t zp = x_zp[m];
          for (int64_t i = 0; i < c; ++i) acc[i] = int32_t(x[f + i]) - zp;
        }
        st |= requantize_row(Isa, acc, c, q, stride ? m + k : 0, out_dtype,
                             static_cast<char*>(y) + f * out_bytes);
      }
    });
    if (st != STATUS_OK) failed = true;
  });
  return failed ? STATUS_NEEDS_REFERENCE : STATUS_OK;
}

template <int32_t Isa>
static Status requantize_tensor_for(const void* x, int32_t x_dtype, int64_t n, int64_t mid, int64_t inner,
                                    const int32_t* x_zp, const int32_t* y_zp, const Requant& p,
                                    int32_t out_dtype, void* y, int32_t threads) {
  switch (x_dtype) {
    case DT_INT8:
    case DT_INT4:
      return requantize_tensor_impl<Isa>(static_cast<const int8_t*>(x), n, mid, inner, x_zp, y_zp, p, out_dtype, y, threads);
    case DT_UINT8:
    case DT_UINT4:
      return requantize_tensor_impl<Isa>(static_cast<const uint8_t*>(x), n, mid, inner, x_zp, y_zp, p, out_dtype, y, threads);
    case DT_INT16:
      return requantize_tensor_impl<Isa>(static_cast<const int16_t*>(x), n, mid, inner, x_zp, y_zp, p, out_dtype, y, threads);
    default:
      return requantize_tensor_impl<Isa>(static_cast<const int32_t*>(x), n, mid, inner, x_zp, y_zp, p, out_dtype, y, threads);
  }
}

}  // namespace qnnref

// ---------------------------------------------------------------------------
// AVX2 building blocks of the output stage, shared by the AVX2 kernels (only
// in translation units compiled with -mavx2). Each reproduces, lane by lane,
// the scalar function of arith.h / common.h named in its comment.
// ---------------------------------------------------------------------------
#if defined(__AVX2__)
#include <immintrin.h>

#include <type_traits>

namespace qnnref {
namespace avx2 {
namespace rq {

// round_float (arith.h) on 8 floats / 4 doubles. roundps/roundpd with an
// explicit direction is IEEE roundToIntegral, as nearbyint/floor/ceil/trunc;
// a tie is |v - rint(v)| == 1/2, exact as in arith.h (false for inf, NaN).
template <Rounding M>
static inline __m256 round8(__m256 v) {
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
static inline __m256d round4(__m256d v) {
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
static inline void store8(int32_t* out, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), v); }
static inline __m128i pack8_i16(__m256i v) {
  return _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}
static inline void store8(int16_t* out, __m256i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(out), pack8_i16(v)); }
static inline void store8(int8_t* out, __m256i v) {
  const __m128i w = pack8_i16(v);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packs_epi16(w, w));
}
static inline void store8(uint8_t* out, __m256i v) {
  const __m128i w = pack8_i16(v);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(w, w));
}

template <Rounding M>
using ModeTag = std::integral_constant<Rounding, M>;

// f(ModeTag<mode>{}) for the run-time rounding mode: one instantiation of f
// per mode, so that loops carry no branch on the mode.
template <class F>
static inline auto with_mode(int32_t mode, F&& f) {
  switch (mode) {
    case HALF_TO_EVEN: return f(ModeTag<HALF_TO_EVEN>{});
    case HALF_AWAY_FROM_ZERO: return f(ModeTag<HALF_AWAY_FROM_ZERO>{});
    case HALF_UP: return f(ModeTag<HALF_UP>{});
    case HALF_DOWN: return f(ModeTag<HALF_DOWN>{});
    case FLOOR: return f(ModeTag<FLOOR>{});
    case CEIL: return f(ModeTag<CEIL>{});
    default: return f(ModeTag<TRUNCATE>{});
  }
}

}  // namespace rq
}  // namespace avx2
}  // namespace qnnref
#endif  // __AVX2__
