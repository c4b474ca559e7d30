// avg_pool2d: the average of each 2-D window of an NHWC tensor
// (spec/ops/avg_pool2d.md). The window geometry is max_pool2d.h's.
#pragma once

#include <cstdint>

#include "qnnref/arith.h"
#include "qnnref/common.h"
#include "qnnref/max_pool2d.h"
#include "qnnref/requantize.h"

namespace qnnref {

// What avg_pool2d does after summing a window, prepared by Python
// (qnnref/_kernels/avg_pool2d.py).
//
// Bound (checked by the glue): kh * kw * (dtype max - dtype min) < 2^31, and
// the zero point lies in the dtype's range. Then every window sum of codes,
// every sum of (x - zp_x) and every sum of codes with padding counted as zp_x
// fits int32, so int32 sums are exact and the reference's REQUIRE "the
// window sum fits int32" can never fail.
struct AvgPoolParams {
  int32_t requantize;         // 0: same quantization (exact division); 1: requantize by count
  int32_t count_include_pad;  // divide by kh*kw (1) or by the taps inside the input (0)
  int32_t x_zero_point;
  int32_t rounding;           // same quantization: the rounding of the division (Rounding)
  int32_t lo, hi;             // same quantization: the output clamp range
  const int64_t* counts;      // requantize: the distinct counts of the geometry, ascending
  int64_t num_counts;
  Requant requant;            // requantize: multiplier arrays indexed by the count's position
};

namespace scalar {
Status avg_pool2d(const void* x, void* y, const PoolGeometry& g, int32_t dtype, const AvgPoolParams& p,
                  int threads);
}
namespace avx2 {
Status avg_pool2d(const void* x, void* y, const PoolGeometry& g, int32_t dtype, const AvgPoolParams& p,
                  int threads);
}

static inline int32_t avg_pool2d(int32_t isa, const void* x, void* y, const PoolGeometry& g, int32_t dtype,
                          const AvgPoolParams& p, int threads) {
  return isa == ISA_AVX2 ? avx2::avg_pool2d(x, y, g, dtype, p, threads)
                         : scalar::avg_pool2d(x, y, g, dtype, p, threads);
}

// ---------------------------------------------------------------------------
// Pieces shared by the scalar kernel and the AVX2 kernel's remainders.
// ---------------------------------------------------------------------------

// acc[c] = the sum of the codes x[n, r, s, c] over the window's taps inside
// the input, for channels [c0, c1). Exact in int32 (the bound above).
template <typename T>
static inline void window_sum(const T* x, const PoolGeometry& g, const Taps& rows, const Taps& cols, int64_t n,
                       int64_t c0, int64_t c1, int32_t* acc) {
  const T* base = x + (n * g.H * g.W) * g.C;
  for (int64_t c = c0; c < c1; ++c) acc[c] = 0;
  for (int64_t i = 0; i < rows.count; ++i) {
    const int64_t r = rows.pos + i * g.dh;
    for (int64_t j = 0; j < cols.count; ++j) {
      const T* tap = base + (r * g.W + cols.pos + j * g.dw) * g.C;
      for (int64_t c = c0; c < c1; ++c) acc[c] += tap[c];
    }
  }
}

// Same quantization, channels [c0, c1): out = clamp(round(S / count)), where
// S = acc + padded * zp_x is the sum of the codes with each of the `padded`
// padded taps counted as zp_x (0 when count_include_pad is false).
template <typename T>
static inline void finish_same_quant(const int32_t* acc, int64_t count, int64_t padded, const AvgPoolParams& p,
                              int64_t c0, int64_t c1, T* out) {
  for (int64_t c = c0; c < c1; ++c) {
    const int64_t codes_sum = int64_t(acc[c]) + padded * p.x_zero_point;
    const int64_t v = rounding_divide(codes_sum, count, Rounding(p.rounding));
    out[c] = static_cast<T>(saturate(v, p.lo, p.hi));
  }
}

// Requantize: the prepared multiplier of `count` (a Requant whose arrays
// start at the count's position), or false if count is not one of p.counts
// (impossible for a validated geometry).
static inline bool requant_for_count(const AvgPoolParams& p, int64_t count, Requant* out) {
  int64_t lo = 0, hi = p.num_counts;            // binary search in the ascending counts
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (p.counts[mid] < count) lo = mid + 1; else hi = mid;
  }
  if (lo == p.num_counts || p.counts[lo] != count) return false;
  *out = p.requant;
  out->per_channel = 0;
  out->multiplier += lo;
  out->shift += lo;
  out->real_f32 += lo;
  out->real_f64 += lo;
  return true;
}

}  // namespace qnnref
