// Scalar avg_pool2d (the definition the AVX2 version must match).
#include <atomic>
#include <vector>

#include "qnnref/avg_pool2d.h"

namespace qnnref {
namespace scalar {

template <typename T>
static Status avg_pool2d_as(const T* x, T* y, const PoolGeometry& g, int32_t dtype, const AvgPoolParams& p,
                            int threads) {
  std::atomic<bool> needs_reference{false};
  // One task per output row (n, oh); each output pixel is computed whole by
  // one thread (its window sum is never split).
  parallel_for(threads, g.N * g.OH, 1, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> acc(static_cast<size_t>(g.C));
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / g.OH, oh = row % g.OH;
      const Taps rows = window_taps(oh, g.sh, g.pad_top, g.kh, g.dh, g.H);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const Taps cols = window_taps(ow, g.sw, g.pad_left, g.kw, g.dw, g.W);
        T* out = y + (row * g.OW + ow) * g.C;
        // Step 1: the sum of the codes over the taps inside the input.
        window_sum(x, g, rows, cols, n, 0, g.C, acc.data());
        // Step 2: the divisor.
        const int64_t inside = rows.count * cols.count;
        const int64_t count = p.count_include_pad ? g.kh * g.kw : inside;
        if (!p.requantize) {
          // Step 3a: same quantization: the exact rounded division.
          finish_same_quant(acc.data(), count, count - inside, p, 0, g.C, out);
          continue;
        }
        // Step 3b: requantize sum(x - zp_x) with the multiplier of this count.
        Requant q;
        if (!requant_for_count(p, count, &q)) {
          needs_reference = true;
          continue;
        }
        const int32_t offset = static_cast<int32_t>(inside * p.x_zero_point);
        for (int64_t c = 0; c < g.C; ++c) acc[c] -= offset;
        if (requantize_row(acc.data(), g.C, q, 0, dtype, out) != STATUS_OK) needs_reference = true;
      }
    }
  });
  return needs_reference ? STATUS_NEEDS_REFERENCE : STATUS_OK;
}

Status avg_pool2d(const void* x, void* y, const PoolGeometry& g, int32_t dtype, const AvgPoolParams& p,
                  int threads) {
  switch (dtype) {
    case DT_INT8:
    case DT_INT4:
      return avg_pool2d_as(static_cast<const int8_t*>(x), static_cast<int8_t*>(y), g, dtype, p, threads);
    case DT_UINT8:
    case DT_UINT4:
      return avg_pool2d_as(static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y), g, dtype, p, threads);
    default:  // DT_INT16 (the glue accepts nothing else)
      return avg_pool2d_as(static_cast<const int16_t*>(x), static_cast<int16_t*>(y), g, dtype, p, threads);
  }
}

}  // namespace scalar
}  // namespace qnnref
