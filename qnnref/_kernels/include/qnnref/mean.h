// mean: the average over some axes of a quantized tensor (spec/ops/mean.md).
//
// The kernel sees x as [outer, R, inner]: the averaged axes, contiguous in
// memory (the glue checks), merged into R, the kept axes before them into
// outer and after them into inner; y is [outer, inner]. Global average
// pooling of NHWC (axes [1, 2]) is outer = N, R = H*W, inner = C.
#pragma once

#include <cstdint>

#include "qnnref/common.h"
#include "qnnref/requantize.h"

namespace qnnref {

// Bound (checked by the glue): R * (dtype max - dtype min) < 2^31 and the zero
// point lies in the dtype's range. Then every sum of codes and every
// acc = sum(x - zp_x) fits int32: int32 sums are exact and the reference's
// REQUIRE "the mean sum fits int32" can never fail.
//
// y = requantize_output(sum over R of (x - zp_x)) per the prepared Requant
// (per tensor); returns STATUS_NEEDS_REFERENCE on a gemmlowp overflow.
namespace scalar {
Status mean(const void* x, void* y, int64_t outer, int64_t reduce, int64_t inner, int32_t dtype,
            int32_t x_zero_point, const Requant& p, int threads);
}
namespace avx2 {
Status mean(const void* x, void* y, int64_t outer, int64_t reduce, int64_t inner, int32_t dtype,
            int32_t x_zero_point, const Requant& p, int threads);
}

static inline int32_t mean(int32_t isa, const void* x, void* y, int64_t outer, int64_t reduce, int64_t inner,
                    int32_t dtype, int32_t x_zero_point, const Requant& p, int threads) {
  return isa == ISA_AVX2 ? avx2::mean(x, y, outer, reduce, inner, dtype, x_zero_point, p, threads)
                         : scalar::mean(x, y, outer, reduce, inner, dtype, x_zero_point, p, threads);
}

// ---------------------------------------------------------------------------
// Pieces shared by the scalar kernel and the AVX2 kernel's remainders.
// ---------------------------------------------------------------------------

// Channels per task when inner > 1 (a task: one outer index, one block of
// channels; each output element is one whole sum, never split).
constexpr int64_t MEAN_CHANNEL_BLOCK = 256;
// Outer indices per task when inner == 1.
constexpr int64_t MEAN_ROW_BLOCK = 64;

// acc[c] (+)= sum over r < R of x[r * inner + c], for channels [c0, c1).
template <typename T>
static inline void mean_sum_columns(const T* x, int64_t reduce, int64_t inner, int64_t c0, int64_t c1, int32_t* acc) {
  for (int64_t c = c0; c < c1; ++c) acc[c] = 0;
  for (int64_t r = 0; r < reduce; ++r) {
    const T* row = x + r * inner;
    for (int64_t c = c0; c < c1; ++c) acc[c] += row[c];
  }
}

// The sum of x[i] for i in [i0, i1).
template <typename T>
static inline int32_t mean_sum_range(const T* x, int64_t i0, int64_t i1) {
  int32_t s = 0;
  for (int64_t i = i0; i < i1; ++i) s += x[i];
  return s;
}

}  // namespace qnnref
