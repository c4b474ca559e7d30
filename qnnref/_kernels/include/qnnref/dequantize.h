// The dequantize operator (qnnref/ops/dequantize.py, arith.dequantize_values).
#pragma once

#include "qnnref/requantize.h"

namespace qnnref {

// dequantize: y[f] = float(x[f] - zp[c]) * scale[c] with c = (f / inner) % mid
// (requantize.h for_each_segment): the difference exact in int32 (Python
// guarantees it fits: inputs of at most 16 bits, or int32 with zero point
// 0), one conversion to float (exact below 2^24, else to nearest even, as
// numpy's int64 -> float32) and one IEEE float multiplication (the builds
// use -ffp-contract=off: no fused multiply-add). Threads split the elements.
namespace scalar {
void dequantize(const void* x, int32_t x_dtype, int64_t n, int64_t mid, int64_t inner, const float* scale,
                const int32_t* zp, float* y, int32_t threads);
}
namespace avx2 {
void dequantize(const void* x, int32_t x_dtype, int64_t n, int64_t mid, int64_t inner, const float* scale,
                const int32_t* zp, float* y, int32_t threads);
}
static inline int32_t dequantize(int32_t isa, const void* x, int32_t x_dtype, int64_t n, int64_t mid, int64_t inner,
                          const float* scale, const int32_t* zp, float* y, int32_t threads) {
  if (isa == ISA_AVX2) {
    avx2::dequantize(x, x_dtype, n, mid, inner, scale, zp, y, threads);
  } else {
    scalar::dequantize(x, x_dtype, n, mid, inner, scale, zp, y, threads);
  }
  return STATUS_OK;
}

// The body for one ISA: plain loops, which the compiler vectorizes with the
// translation unit's instruction set (SSE2 for scalar, AVX2 for avx2).
template <int32_t Isa, typename T>
static void dequantize_impl(const T* x, int64_t n, int64_t mid, int64_t inner, const float* scale,
                            const int32_t* zp, float* y, int32_t threads) {
  parallel_for(threads, n, kGrain, [&](int64_t begin, int64_t end) {
    for_each_segment(begin, end - begin, mid, inner, [&](int64_t j, int64_t len, int64_t m, int64_t stride) {
      const T* xs = x + begin + j;
      float* ys = y + begin + j;
      if (stride) {
        const float* s = scale + m;
        const int32_t* z = zp + m;
        for (int64_t i = 0; i < len; ++i) ys[i] = static_cast<float>(int32_t(xs[i]) - z[i]) * s[i];
      } else {
        const float s = scale[m];
        const int32_t z = zp[m];
        for (int64_t i = 0; i < len; ++i) ys[i] = static_cast<float>(int32_t(xs[i]) - z) * s;
      }
    });
  });
}

template <int32_t Isa>
static void dequantize_for(const void* x, int32_t x_dtype, int64_t n, int64_t mid, int64_t inner,
                           const float* scale, const int32_t* zp, float* y, int32_t threads) {
  switch (x_dtype) {
    case DT_INT8:
    case DT_INT4:
      return dequantize_impl<Isa>(static_cast<const int8_t*>(x), n, mid, inner, scale, zp, y, threads);
    case DT_UINT8:
    case DT_UINT4:
      return dequantize_impl<Isa>(static_cast<const uint8_t*>(x), n, mid, inner, scale, zp, y, threads);
    case DT_INT16:
      return dequantize_impl<Isa>(static_cast<const int16_t*>(x), n, mid, inner, scale, zp, y, threads);
    default:
      return dequantize_impl<Isa>(static_cast<const int32_t*>(x), n, mid, inner, scale, zp, y, threads);
  }
}

}  // namespace qnnref
