#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// add, AVX2: the body of include/qnnref/add.h with the AVX2 requantize_row
// (fixed point) and, for the float recipes, the same IEEE operations on 8
// lanes (float32) or 2 x 4 lanes (float64), rounded by rq::round8/round4 and
// finished by rq::FloatFinish; the remainder of a chunk runs the scalar
// add_float_value.
#include "qnnref/add.h"

namespace qnnref {
namespace avx2 {
namespace {

using namespace rq;

template <Rounding M, typename T>
void float32_row(const int32_t* ca, const int32_t* cb, int64_t c, T* out, const AddParams& ap) {
  const FloatFinish finish(ap.y_zero_point, ap.lo, ap.hi);
  const __m256 sa = _mm256_set1_ps(ap.a_scale), sb = _mm256_set1_ps(ap.b_scale), sy = _mm256_set1_ps(ap.y_scale);
  int64_t i = 0;
  for (; i + 8 <= c; i += 8) {
    const __m256 a = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ca + i)));  // exact
    const __m256 b = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(cb + i)));
    const __m256 v = _mm256_div_ps(_mm256_add_ps(_mm256_mul_ps(a, sa), _mm256_mul_ps(b, sb)), sy);
    store8(out + i, finish(round8<M>(v)));
  }
  for (; i < c; ++i) out[i] = static_cast<T>(add_float_value<float>(ca[i], cb[i], ap));
}

template <Rounding M>
__m128i float64_quad(const __m128i a4, const __m128i b4, __m256d sa, __m256d sb, __m256d sy,
                     const FloatFinish& finish) {
  const __m256d a = _mm256_cvtepi32_pd(a4), b = _mm256_cvtepi32_pd(b4);   // exact
  return finish(round4<M>(_mm256_div_pd(_mm256_add_pd(_mm256_mul_pd(a, sa), _mm256_mul_pd(b, sb)), sy)));
}

template <Rounding M, typename T>
void float64_row(const int32_t* ca, const int32_t* cb, int64_t c, T* out, const AddParams& ap) {
  const FloatFinish finish(ap.y_zero_point, ap.lo, ap.hi);
  // the float32 scales, converted exactly to double
  const __m256d sa = _mm256_set1_pd(ap.a_scale), sb = _mm256_set1_pd(ap.b_scale), sy = _mm256_set1_pd(ap.y_scale);
  int64_t i = 0;
  for (; i + 8 <= c; i += 8) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ca + i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cb + i));
    const __m128i lo = float64_quad<M>(_mm256_castsi256_si128(a), _mm256_castsi256_si128(b), sa, sb, sy, finish);
    const __m128i hi = float64_quad<M>(_mm256_extracti128_si256(a, 1), _mm256_extracti128_si256(b, 1), sa, sb, sy,
                                       finish);
    store8(out + i, _mm256_set_m128i(hi, lo));
  }
  for (; i < c; ++i) out[i] = static_cast<T>(add_float_value<double>(ca[i], cb[i], ap));
}

template <typename T>
Status add_as(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const AddParams& ap, const Requant& ra,
              const Requant& rb, const Requant& ro, T* y, int32_t threads) {
  auto float_row = [&ap](const int32_t* ca, const int32_t* cb, int64_t c, T* out) {
    with_mode(ap.rounding, [&](auto mode) {
      constexpr Rounding M = decltype(mode)::value;
      if (ap.float_dtype == FLOAT32) {
        float32_row<M>(ca, cb, c, out, ap);
      } else {
        float64_row<M>(ca, cb, c, out, ap);
      }
      return 0;
    });
  };
  return add_impl<ISA_AVX2>(a, b, dtype, n, ap, ra, rb, ro, y, threads, float_row);
}

}  // namespace

Status add(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const AddParams& ap, const Requant& ra,
           const Requant& rb, const Requant& ro, void* y, int32_t threads) {
  switch (dtype) {
    case DT_INT8: return add_as(a, b, dtype, n, ap, ra, rb, ro, static_cast<int8_t*>(y), threads);
    case DT_UINT8: return add_as(a, b, dtype, n, ap, ra, rb, ro, static_cast<uint8_t*>(y), threads);
    default: return add_as(a, b, dtype, n, ap, ra, rb, ro, static_cast<int16_t*>(y), threads);
  }
}

}  // namespace avx2
}  // namespace qnnref
