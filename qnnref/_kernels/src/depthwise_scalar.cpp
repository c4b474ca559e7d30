// Scalar depthwise conv2d: the plain definition the AVX2 kernel must match.
//
// For each output pixel and channel c:
//   acc = bias[c] + sum over the taps (i, j) inside the input of (x[ih, iw, c] - zp_x) * taps[i*kw + j, c]
// Taps in the padding are skipped: the reference pads with zp_x, so they
// contribute (zp_x - zp_x) * w = 0. Then the row of accumulators is
// requantized (requantize_row). Output rows (n, oh) are split over threads.
#include <atomic>
#include <vector>

#include "qnnref/depthwise.h"
#include "qnnref/requantize.h"

namespace qnnref {
namespace scalar {

template <typename T>
static void pixel_as(const DepthwiseGeometry& g, const DepthwiseWeights& w, const T* x, int64_t n_i,
                     int64_t oh_i, int64_t ow_i, int64_t c0, int64_t c1, int32_t* acc) {
  const int32_t zx = g.x_zero_point;
  for (int64_t c = c0; c < c1; ++c) acc[c - c0] = w.bias[c];
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t ih = oh_i * g.sh - g.top + i * g.dh;
    if (ih < 0 || ih >= g.h) continue;  // a padding row: contributes 0
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t iw = ow_i * g.sw - g.left + j * g.dw;
      if (iw < 0 || iw >= g.w) continue;  // a padding column: contributes 0
      const T* xp = x + ((n_i * g.h + ih) * g.w + iw) * g.c;
      const int16_t* wp = w.taps + (i * g.kw + j) * g.c;
      // |x - zp_x| <= 255 and |w - zp_w| <= 255. No overflow: by the bound
      // checked in Python, |bias| + sum of |products| <= INT32_MAX, so every
      // partial sum fits int32.
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += (int32_t(xp[c]) - zx) * int32_t(wp[c]);
    }
  }
}

void depthwise_pixel(const DepthwiseGeometry& g, const DepthwiseWeights& w, const void* x, int64_t n_i,
                     int64_t oh_i, int64_t ow_i, int64_t c0, int64_t c1, int32_t* acc) {
  if (g.x_dtype == DT_UINT8) {
    pixel_as(g, w, static_cast<const uint8_t*>(x), n_i, oh_i, ow_i, c0, c1, acc);
  } else {
    pixel_as(g, w, static_cast<const int8_t*>(x), n_i, oh_i, ow_i, c0, c1, acc);
  }
}

int64_t dtype_size(int32_t dtype) {
  return dtype == DT_INT16 ? 2 : (dtype == DT_INT32 ? 4 : 1);
}

Status depthwise_requantize(int32_t isa, const int32_t* acc, int64_t pixels, const DepthwiseGeometry& g,
                            const Requant& rq, void* out) {
  if (!rq.per_channel) {
    // one multiplier for every channel: the whole row in one call
    return Status(requantize_row(isa, acc, pixels * g.c, rq, 0, g.y_dtype, out));
  }
  // per channel: the pixels are rows of g.c channels (the AVX2 version sets
  // up each 8 channels' constants once for all pixels)
  return Status(requantize_rows(isa, acc, g.c, pixels, g.c, rq, 0, g.y_dtype, out, g.c));
}

Status depthwise_conv2d(const DepthwiseGeometry& g, const DepthwiseWeights& w, const Requant& rq,
                        int threads, const void* x, void* y) {
  const int64_t row_len = g.ow * g.c;  // accumulators of one output row
  const int64_t size = dtype_size(g.y_dtype);
  std::atomic<bool> failed(false);
  parallel_for(threads, g.n * g.oh, 1, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> acc(static_cast<size_t>(row_len));
    for (int64_t r = begin; r < end; ++r) {  // output row r = n_i * oh + oh_i
      const int64_t n_i = r / g.oh, oh_i = r % g.oh;
      for (int64_t ow_i = 0; ow_i < g.ow; ++ow_i) {
        depthwise_pixel(g, w, x, n_i, oh_i, ow_i, 0, g.c, &acc[size_t(ow_i * g.c)]);
      }
      if (depthwise_requantize(ISA_SCALAR, acc.data(), g.ow, g, rq,
                               static_cast<uint8_t*>(y) + r * row_len * size) != STATUS_OK) {
        failed = true;
      }
    }
  });
  return failed ? STATUS_NEEDS_REFERENCE : STATUS_OK;
}

}  // namespace scalar
}  // namespace qnnref
