// The quantize operator (qnnref/ops/quantize.py, arith.quantize_values).
#pragma once

#include <atomic>
#include <cmath>

#include "qnnref/requantize.h"

namespace qnnref {

// How quantize computes (a QuantizeRecipe, and the output dtype's range).
struct QuantizeParams {
  int32_t reciprocal;     // 0: v = x / factor ("divide"); 1: v = x * factor ("reciprocal")
  int32_t rounding;       // Rounding
  int32_t float_dtype;    // FloatDtype: the width of x, factor and v
  int32_t lo, hi;         // the output dtype's range
};

// quantize: y[f] = saturate(round(x[f] OP factor[c]) + zp[c]) with
// c = (f / inner) % mid (requantize.h for_each_segment). factor is s_y
// ("divide") or 1 / s_y ("reciprocal"), formed by Python in the recipe's
// float width (factor_f32 or factor_f64 is read); every factor is finite
// and > 0. A NaN x gives STATUS_NEEDS_REFERENCE (the reference raises).
// Threads split the elements.
namespace scalar {
Status quantize(const float* x, int64_t n, int64_t mid, int64_t inner, const float* factor_f32,
                const double* factor_f64, const int32_t* zp, const QuantizeParams& q, int32_t out_dtype, void* y,
                int32_t threads);
}
namespace avx2 {
Status quantize(const float* x, int64_t n, int64_t mid, int64_t inner, const float* factor_f32,
                const double* factor_f64, const int32_t* zp, const QuantizeParams& q, int32_t out_dtype, void* y,
                int32_t threads);
}
static inline int32_t quantize(int32_t isa, const float* x, int64_t n, int64_t mid, int64_t inner, const float* factor_f32,
                        const double* factor_f64, const int32_t* zp, const QuantizeParams& q, int32_t out_dtype,
                        void* y, int32_t threads) {
  return isa == ISA_AVX2 ? avx2::quantize(x, n, mid, inner, factor_f32, factor_f64, zp, q, out_dtype, y, threads)
                         : scalar::quantize(x, n, mid, inner, factor_f32, factor_f64, zp, q, out_dtype, y, threads);
}

// One element, the scalar definition: false for a NaN (no value then).
template <typename F>
static inline bool quantize_value(float x, F factor, int32_t zp, const QuantizeParams& q, int32_t* out) {
  const F v = q.reciprocal ? F(x) * factor : F(x) / factor;   // float -> F is exact
  const F r = round_float(v, Rounding(q.rounding));
  if (std::isnan(r)) return false;
  *out = int32_t(saturate(float_to_int64_clamped(r) + zp, q.lo, q.hi));
  return true;
}

// The body for one ISA. Run: (x, len, factor32, factor64, zp, stride, T* y)
// -> bool ok, one segment of constant (stride 0) or per-element (stride 1)
// parameters.
template <typename T, class Run>
static Status quantize_impl(const float* x, int64_t n, int64_t mid, int64_t inner, const float* factor_f32,
                            const double* factor_f64, const int32_t* zp, T* y, int32_t threads, Run&& run) {
  std::atomic<bool> failed{false};
  parallel_for(threads, n, kGrain, [&](int64_t begin, int64_t end) {
    bool ok = true;
    for_each_segment(begin, end - begin, mid, inner, [&](int64_t j, int64_t len, int64_t m, int64_t stride) {
      const int64_t f = begin + j;
      ok &= run(x + f, len, factor_f32 + m, factor_f64 + m, zp + m, stride, y + f);
    });
    if (!ok) failed = true;
  });
  return failed ? STATUS_NEEDS_REFERENCE : STATUS_OK;
}

}  // namespace qnnref
