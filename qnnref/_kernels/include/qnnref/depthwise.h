// Depthwise conv2d (conv2d with groups == C_in): every output channel c reads
// only input channel c, so the reduction is over the KH x KW taps alone and
// the channels, innermost in NHWC, are the vector lanes.
//
// A channel multiplier M > 1 (C_out = M * C_in) is handled by the Python glue
// (qnnref/_kernels/depthwise.py), which repeats each input channel M times so
// that the kernel always sees C_out channels, channel c reading channel c.
#pragma once

#include <cstdint>

#include "qnnref/common.h"

namespace qnnref {

// The geometry of one call. x is [n, h, w, c], y is [n, oh, ow, c]; input
// row ih = oh*sh - top + kh*dh, column iw = ow*sw - left + kw*dw; a tap
// outside the input lies in the padding and contributes exactly 0.
struct DepthwiseGeometry {
  int64_t n, h, w, c;
  int64_t kh, kw;
  int64_t sh, sw, dh, dw;
  int64_t top, left;
  int64_t oh, ow;
  int32_t x_dtype;        // DT_INT8 or DT_UINT8
  int32_t x_zero_point;   // zp_x, a value of x_dtype
  int32_t y_dtype;        // DT_INT8, DT_UINT8 or DT_INT16
};

// The constant weights, prepacked by Python at load time.
//
// Bound (checked by Python before any call): for every channel c,
//   |bias[c]| + max|x - zp_x| * sum_t |taps[t, c]| <= INT32_MAX,
// so every partial sum of the accumulator, in any order, fits int32.
struct DepthwiseWeights {
  const int16_t* taps;     // [kh*kw, c]: w - zp_w, tap t = kh_i*kw + kw_i, in [-255, 255]
  const int32_t* bias;     // [c]: the bias (zeros when absent)
  // AVX2 only (may be null for the scalar kernel):
  const int16_t* pairs;    // taps interleaved in pairs, see depthwise.py pack_pairs
  const int32_t* bias_zx;  // [c]: bias[c] - zp_x * sum_t taps[t, c], wrapped to int32
};

namespace scalar {
// y = requantize(depthwise conv of x); x and y are contiguous NHWC arrays of
// g.x_dtype and g.y_dtype. Returns STATUS_NEEDS_REFERENCE if requantization
// hit a REQUIRE failure (gemmlowp overflow); y is then unspecified.
Status depthwise_conv2d(const DepthwiseGeometry& g, const DepthwiseWeights& w, const Requant& rq,
                        int threads, const void* x, void* y);

// The exact accumulators of one output pixel (n_i, oh_i, ow_i) for the
// channels [c0, c1): acc[c - c0] = bias[c] + sum over the taps inside the
// input of (x - zp_x) * taps[t, c]. Shared with the AVX2 kernel (its
// remainder channels).
void depthwise_pixel(const DepthwiseGeometry& g, const DepthwiseWeights& w, const void* x, int64_t n_i,
                     int64_t oh_i, int64_t ow_i, int64_t c0, int64_t c1, int32_t* acc);

// Requantize the accumulators of `pixels` consecutive output pixels (g.c
// each) into out (g.y_dtype) with requantize_row(isa, ...). Shared by both
// kernels; defined in the scalar translation unit (it only loops and calls).
Status depthwise_requantize(int32_t isa, const int32_t* acc, int64_t pixels, const DepthwiseGeometry& g,
                            const Requant& rq, void* out);

// Bytes per element of a DType.
int64_t dtype_size(int32_t dtype);
}  // namespace scalar

namespace avx2 {
Status depthwise_conv2d(const DepthwiseGeometry& g, const DepthwiseWeights& w, const Requant& rq,
                        int threads, const void* x, void* y);
}  // namespace avx2

// The dispatcher Cython calls (isa: an Isa code; returns a Status code).
static inline int32_t depthwise_conv2d(int32_t isa, const DepthwiseGeometry& g, const DepthwiseWeights& w,
                                const Requant& rq, int threads, const void* x, void* y) {
  return isa == ISA_AVX2 ? avx2::depthwise_conv2d(g, w, rq, threads, x, y)
                         : scalar::depthwise_conv2d(g, w, rq, threads, x, y);
}

}  // namespace qnnref
