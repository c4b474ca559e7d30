// max_pool2d: the maximum of each 2-D window of an NHWC tensor
// (spec/ops/max_pool2d.md). Also the pool geometry shared with avg_pool2d.h.
#pragma once

#include <cstdint>

#include "qnnref/common.h"

namespace qnnref {

// The geometry of a 2-D pool over an NHWC tensor, validated by Python
// (qnnref/ops/max_pool2d.py check_pool_geometry, plus the glue's bound that
// every attribute is below 2^40, so no index expression below overflows int64).
struct PoolGeometry {
  int64_t N, H, W, C;      // input
  int64_t OH, OW;          // output (computed by Python)
  int64_t kh, kw;          // window
  int64_t sh, sw;          // strides
  int64_t dh, dw;          // dilations
  int64_t pad_top, pad_left;
};

// The taps of one window along one axis that lie inside [0, size): tap
// indices i in [first, first + count), at input positions start + i * dilation
// (qnnref/ops/max_pool2d.py window_taps). Validation guarantees count >= 1.
struct Taps {
  int64_t first;   // first tap index inside the input
  int64_t count;   // number of taps inside the input
  int64_t pos;     // input position of the first inside tap
};

// floor(a / b) for b >= 1 (C++ division truncates toward zero).
static inline int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

static inline Taps window_taps(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t dilation, int64_t size) {
  const int64_t start = o * stride - pad;
  int64_t first = -floor_div(start, dilation);                // smallest i with start + i*dilation >= 0
  if (first < 0) first = 0;
  int64_t last = floor_div(size - 1 - start, dilation);       // largest i with start + i*dilation < size
  if (last > k - 1) last = k - 1;
  Taps t;
  t.first = first;
  t.count = last >= first ? last - first + 1 : 0;
  t.pos = start + first * dilation;
  return t;
}

// max_pool2d over x [N, H, W, C] into y [N, OH, OW, C], both of dtype `dtype`
// (DT_INT8/DT_INT4 held in int8, DT_UINT8/DT_UINT4 in uint8, DT_INT16), then
// clamped to [lo, hi] (the fused activation range within the dtype's).
// Output rows (n, oh) are split between `threads` threads.
namespace scalar {
Status max_pool2d(const void* x, void* y, const PoolGeometry& g, int32_t dtype, int32_t lo, int32_t hi,
                  int threads);
}
namespace avx2 {
Status max_pool2d(const void* x, void* y, const PoolGeometry& g, int32_t dtype, int32_t lo, int32_t hi,
                  int threads);
}

static inline int32_t max_pool2d(int32_t isa, const void* x, void* y, const PoolGeometry& g, int32_t dtype,
                          int32_t lo, int32_t hi, int threads) {
  return isa == ISA_AVX2 ? avx2::max_pool2d(x, y, g, dtype, lo, hi, threads)
                         : scalar::max_pool2d(x, y, g, dtype, lo, hi, threads);
}

// The scalar computation of output pixel (n, oh, ow), channels [c0, c1):
// shared by the scalar kernel and the AVX2 kernel's channel remainder.
template <typename T>
static inline void max_pool_pixel(const T* x, T* out, const PoolGeometry& g, const Taps& rows, const Taps& cols,
                           int64_t n, int64_t c0, int64_t c1, T lo, T hi) {
  const T* base = x + (n * g.H * g.W) * g.C;
  // the first inside tap starts the maximum: padded taps never take part
  const T* first = base + (rows.pos * g.W + cols.pos) * g.C;
  for (int64_t c = c0; c < c1; ++c) out[c] = first[c];
  for (int64_t i = 0; i < rows.count; ++i) {
    const int64_t r = rows.pos + i * g.dh;
    for (int64_t j = 0; j < cols.count; ++j) {
      const int64_t s = cols.pos + j * g.dw;
      const T* tap = base + (r * g.W + s) * g.C;
      for (int64_t c = c0; c < c1; ++c) out[c] = tap[c] > out[c] ? tap[c] : out[c];
    }
  }
  // the fused activation range
  for (int64_t c = c0; c < c1; ++c) out[c] = out[c] < lo ? lo : (out[c] > hi ? hi : out[c]);
}

}  // namespace qnnref
