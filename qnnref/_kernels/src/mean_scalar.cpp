// Scalar mean (the definition the AVX2 version must match).
#include <atomic>
#include <vector>

#include "qnnref/mean.h"

namespace qnnref {
namespace scalar {

template <typename T>
static Status mean_as(const T* x, T* y, int64_t outer, int64_t reduce, int64_t inner, int32_t dtype,
                      int32_t x_zero_point, const Requant& p, int threads) {
  std::atomic<bool> needs_reference{false};
  // sum(x - zp) = sum(x) - R * zp (|R * zp| < 2^30 by the bound)
  const int32_t offset = static_cast<int32_t>(reduce * x_zero_point);
  if (inner == 1) {
    // Each output is the sum of one contiguous row of R values.
    const int64_t tasks = (outer + MEAN_ROW_BLOCK - 1) / MEAN_ROW_BLOCK;
    parallel_for(threads, tasks, 1, [&](int64_t begin, int64_t end) {
      std::vector<int32_t> acc(static_cast<size_t>(MEAN_ROW_BLOCK));
      for (int64_t t = begin; t < end; ++t) {
        const int64_t o0 = t * MEAN_ROW_BLOCK, o1 = o0 + MEAN_ROW_BLOCK < outer ? o0 + MEAN_ROW_BLOCK : outer;
        for (int64_t o = o0; o < o1; ++o) acc[o - o0] = mean_sum_range(x + o * reduce, 0, reduce) - offset;
        if (requantize_row(acc.data(), o1 - o0, p, 0, dtype, y + o0) != STATUS_OK) needs_reference = true;
      }
    });
  } else {
    // Each task sums R rows of one block of channels of one outer index.
    const int64_t blocks = (inner + MEAN_CHANNEL_BLOCK - 1) / MEAN_CHANNEL_BLOCK;
    parallel_for(threads, outer * blocks, 1, [&](int64_t begin, int64_t end) {
      std::vector<int32_t> acc(static_cast<size_t>(MEAN_CHANNEL_BLOCK));
      for (int64_t t = begin; t < end; ++t) {
        const int64_t o = t / blocks, c0 = (t % blocks) * MEAN_CHANNEL_BLOCK;
        const int64_t n = c0 + MEAN_CHANNEL_BLOCK < inner ? MEAN_CHANNEL_BLOCK : inner - c0;
        mean_sum_columns(x + o * reduce * inner + c0, reduce, inner, 0, n, acc.data());
        for (int64_t c = 0; c < n; ++c) acc[c] -= offset;
        if (requantize_row(acc.data(), n, p, 0, dtype, y + o * inner + c0) != STATUS_OK) needs_reference = true;
      }
    });
  }
  return needs_reference ? STATUS_NEEDS_REFERENCE : STATUS_OK;
}

Status mean(const void* x, void* y, int64_t outer, int64_t reduce, int64_t inner, int32_t dtype,
            int32_t x_zero_point, const Requant& p, int threads) {
  switch (dtype) {
    case DT_INT8:
    case DT_INT4:
      return mean_as(static_cast<const int8_t*>(x), static_cast<int8_t*>(y), outer, reduce, inner, dtype,
                     x_zero_point, p, threads);
    case DT_UINT8:
    case DT_UINT4:
      return mean_as(static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y), outer, reduce, inner, dtype,
                     x_zero_point, p, threads);
    default:  // DT_INT16 (the glue accepts nothing else)
      return mean_as(static_cast<const int16_t*>(x), static_cast<int16_t*>(y), outer, reduce, inner, dtype,
                     x_zero_point, p, threads);
  }
}

}  // namespace scalar
}  // namespace qnnref
