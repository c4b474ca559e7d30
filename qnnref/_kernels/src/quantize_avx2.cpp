#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// quantize, AVX2: 8 elements at a time, the IEEE division (or product) in
// float32 (8 lanes) or float64 (2 x 4 lanes), rounded by rq::round8/round4;
// then clamp(r, lo - zp, hi - zp) + zp, exact in floats since the output
// dtypes have at most 16 bits (every integer involved is below 2^24). A NaN
// is remembered (unordered compare) and reported. The remainder of a
// segment runs the scalar quantize_value.
#include "qnnref/quantize.h"

namespace qnnref {
namespace avx2 {
namespace {

using namespace rq;

template <typename T>
bool tail(const float* x, int64_t i, int64_t len, const float* f32, const double* f64, const int32_t* zs,
          int64_t stride, T* y, const QuantizeParams& q) {
  bool ok = true;
  for (; i < len; ++i) {
    const int64_t k = i * stride;
    int32_t v = 0;
    ok &= q.float_dtype == FLOAT32 ? quantize_value<float>(x[i], f32[k], zs[k], q, &v)
                                   : quantize_value<double>(x[i], f64[k], zs[k], q, &v);
    y[i] = static_cast<T>(v);
  }
  return ok;
}

template <Rounding M, typename T>
bool run_f32(const float* x, int64_t len, const float* f32, const int32_t* zs, int64_t stride, T* y,
             const QuantizeParams& q) {
  const __m256 lo = _mm256_set1_ps(float(q.lo)), hi = _mm256_set1_ps(float(q.hi));
  const __m256 f_const = _mm256_set1_ps(f32[0]);
  const __m256 z_const = _mm256_set1_ps(float(zs[0]));
  __m256 nan_seen = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    const __m256 f = stride ? _mm256_loadu_ps(f32 + i) : f_const;
    const __m256 z = stride ? _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(zs + i)))
                            : z_const;
    const __m256 r = round8<M>(q.reciprocal ? _mm256_mul_ps(xv, f) : _mm256_div_ps(xv, f));
    nan_seen = _mm256_or_ps(nan_seen, _mm256_cmp_ps(r, r, _CMP_UNORD_Q));
    // lo - zp, hi - zp, and the sum are integers below 2^17: exact
    const __m256 c = _mm256_min_ps(_mm256_max_ps(r, _mm256_sub_ps(lo, z)), _mm256_sub_ps(hi, z));
    store8(y + i, _mm256_cvttps_epi32(_mm256_add_ps(c, z)));
  }
  const bool ok = _mm256_testz_ps(nan_seen, nan_seen);
  return tail(x, i, len, f32, nullptr, zs, stride, y, q) && ok;
}

template <Rounding M>
__m128i quad_f64(__m128 x4, __m256d f, __m256d z, __m256d lo, __m256d hi, bool reciprocal, __m256d* nan_seen) {
  const __m256d xv = _mm256_cvtps_pd(x4);   // exact
  const __m256d r = round4<M>(reciprocal ? _mm256_mul_pd(xv, f) : _mm256_div_pd(xv, f));
  *nan_seen = _mm256_or_pd(*nan_seen, _mm256_cmp_pd(r, r, _CMP_UNORD_Q));
  const __m256d c = _mm256_min_pd(_mm256_max_pd(r, _mm256_sub_pd(lo, z)), _mm256_sub_pd(hi, z));
  return _mm256_cvttpd_epi32(_mm256_add_pd(c, z));
}

template <Rounding M, typename T>
bool run_f64(const float* x, int64_t len, const double* f64, const int32_t* zs, int64_t stride, T* y,
             const QuantizeParams& q) {
  const __m256d lo = _mm256_set1_pd(q.lo), hi = _mm256_set1_pd(q.hi);
  const __m256d f_const = _mm256_set1_pd(f64[0]);
  const __m256d z_const = _mm256_set1_pd(zs[0]);
  __m256d nan_seen = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    __m256d f0 = f_const, f1 = f_const, z0 = z_const, z1 = z_const;
    if (stride) {
      f0 = _mm256_loadu_pd(f64 + i);
      f1 = _mm256_loadu_pd(f64 + i + 4);
      z0 = _mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(zs + i)));
      z1 = _mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(zs + i + 4)));
    }
    const __m128i a = quad_f64<M>(_mm256_castps256_ps128(xv), f0, z0, lo, hi, q.reciprocal, &nan_seen);
    const __m128i b = quad_f64<M>(_mm256_extractf128_ps(xv, 1), f1, z1, lo, hi, q.reciprocal, &nan_seen);
    store8(y + i, _mm256_set_m128i(b, a));
  }
  const bool ok = _mm256_testz_pd(nan_seen, nan_seen);
  return tail(x, i, len, nullptr, f64, zs, stride, y, q) && ok;
}

template <typename T>
Status quantize_as(const float* x, int64_t n, int64_t mid, int64_t inner, const float* factor_f32,
                   const double* factor_f64, const int32_t* zp, const QuantizeParams& q, T* y, int32_t threads) {
  auto run = [&q](const float* xs, int64_t len, const float* f32, const double* f64, const int32_t* zs,
                  int64_t stride, T* ys) {
    return with_mode(q.rounding, [&](auto mode) {
      constexpr Rounding M = decltype(mode)::value;
      return q.float_dtype == FLOAT32 ? run_f32<M>(xs, len, f32, zs, stride, ys, q)
                                      : run_f64<M>(xs, len, f64, zs, stride, ys, q);
    });
  };
  return quantize_impl(x, n, mid, inner, factor_f32, factor_f64, zp, y, threads, run);
}

}  // namespace

Status quantize(const float* x, int64_t n, int64_t mid, int64_t inner, const float* factor_f32,
                const double* factor_f64, const int32_t* zp, const QuantizeParams& q, int32_t out_dtype, void* y,
                int32_t threads) {
  switch (out_dtype) {
    case DT_INT8:
    case DT_INT4: return quantize_as(x, n, mid, inner, factor_f32, factor_f64, zp, q, static_cast<int8_t*>(y), threads);
    case DT_UINT8:
    case DT_UINT4: return quantize_as(x, n, mid, inner, factor_f32, factor_f64, zp, q, static_cast<uint8_t*>(y), threads);
    default: return quantize_as(x, n, mid, inner, factor_f32, factor_f64, zp, q, static_cast<int16_t*>(y), threads);
  }
}

}  // namespace avx2
}  // namespace qnnref
