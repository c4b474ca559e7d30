// Scalar max_pool2d (the definition the AVX2 version must match).
#include "qnnref/max_pool2d.h"

namespace qnnref {
namespace scalar {

template <typename T>
static void max_pool2d_as(const T* x, T* y, const PoolGeometry& g, T lo, T hi, int threads) {
  // One task per output row (n, oh): each output pixel is computed whole by
  // one thread, so the result does not depend on the split.
  parallel_for(threads, g.N * g.OH, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / g.OH, oh = row % g.OH;
      const Taps rows = window_taps(oh, g.sh, g.pad_top, g.kh, g.dh, g.H);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const Taps cols = window_taps(ow, g.sw, g.pad_left, g.kw, g.dw, g.W);
        T* out = y + (row * g.OW + ow) * g.C;
        max_pool_pixel(x, out, g, rows, cols, n, 0, g.C, lo, hi);
      }
    }
  });
}

Status max_pool2d(const void* x, void* y, const PoolGeometry& g, int32_t dtype, int32_t lo, int32_t hi,
                  int threads) {
  switch (dtype) {
    case DT_INT8:
    case DT_INT4:
      max_pool2d_as(static_cast<const int8_t*>(x), static_cast<int8_t*>(y), g, int8_t(lo), int8_t(hi), threads);
      break;
    case DT_UINT8:
    case DT_UINT4:
      max_pool2d_as(static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y), g, uint8_t(lo), uint8_t(hi),
                    threads);
      break;
    default:  // DT_INT16 (the glue accepts nothing else)
      max_pool2d_as(static_cast<const int16_t*>(x), static_cast<int16_t*>(y), g, int16_t(lo), int16_t(hi),
                    threads);
      break;
  }
  return STATUS_OK;
}

}  // namespace scalar
}  // namespace qnnref
