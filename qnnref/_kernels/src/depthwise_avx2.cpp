#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// AVX2 depthwise conv2d: 16 channels at a time, two taps per instruction.
//
// Strategy (same result as the scalar kernel, bit for bit):
//  * A padded tap reads a row of zp_x (zbuf) instead of being skipped, so
//    every pixel runs the same loop over all taps. Its contribution is
//    cancelled by starting from bias_zx[c] = bias[c] - zp_x * sum_t w[t, c]:
//      bias_zx + sum_t x_t * w_t = bias + sum_t (x_t - zp_x) * w_t,
//    and a padded tap (x_t = zp_x) adds exactly 0 to the right-hand side.
//    This also saves subtracting zp_x from every input.
//  * The taps go in pairs (t, t+1): the 16 input bytes of both are
//    interleaved (x_t[0], x_t+1[0], x_t[1], ...), widened to int16 and
//    multiplied by the weights prepacked in the same order (depthwise.py
//    pack_pairs) with _mm256_madd_epi16, which adds each pair of products
//    into one int32 lane: x_t[c] * w_t[c] + x_t+1[c] * w_t+1[c]. An odd
//    last tap pairs with a weight of 0.
//  * |x| <= 255 and |w - zp_w| <= 255: each product and each pair sum fits
//    int32. The running sums may wrap around (x_t is not centred), but the
//    exact result fits int32 (the bound checked in Python), and wrap-around
//    addition is exact modulo 2^32: the final int32 is the exact value.
//  * Remainder channels (C % 8) use the scalar kernel's depthwise_pixel.
#include <immintrin.h>

#include <atomic>
#include <vector>

#include "qnnref/depthwise.h"

namespace qnnref {
namespace avx2 {
namespace {

// Widen 16 bytes to int16 lanes: sign extension for int8 input, zero
// extension for uint8 input.
inline __m256i widen(__m128i v, int8_t) { return _mm256_cvtepi8_epi16(v); }
inline __m256i widen(__m128i v, uint8_t) { return _mm256_cvtepu8_epi16(v); }

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Accumulators of 16 channels [c, c + 16) of one pixel. xs[t] points to
// the pixel of tap t (or zbuf), wp to the block's packed pairs.
template <typename T>
void block16(const T* const* xs, int64_t c, int64_t pairs, const int16_t* wp, const int32_t* init,
             int32_t* acc) {
  __m256i lo = load256(init + c);       // channels c .. c+7
  __m256i hi = load256(init + c + 8);   // channels c+8 .. c+15
  for (int64_t p = 0; p < pairs; ++p) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xs[2 * p] + c));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xs[2 * p + 1] + c));
    const __m256i ab_lo = widen(_mm_unpacklo_epi8(a, b), T());   // a0 b0 a1 b1 ... a7 b7
    const __m256i ab_hi = widen(_mm_unpackhi_epi8(a, b), T());   // a8 b8 ... a15 b15
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(ab_lo, load256(wp + 32 * p)));
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(ab_hi, load256(wp + 32 * p + 16)));
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c), lo);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c + 8), hi);
}

// The same for 8 channels [c, c + 8), c a multiple of 16: the first half of
// the block's packed pairs.
template <typename T>
void block8(const T* const* xs, int64_t c, int64_t pairs, const int16_t* wp, const int32_t* init,
            int32_t* acc) {
  __m256i lo = load256(init + c);
  for (int64_t p = 0; p < pairs; ++p) {
    const __m128i a = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(xs[2 * p] + c));
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(xs[2 * p + 1] + c));
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(widen(_mm_unpacklo_epi8(a, b), T()), load256(wp + 32 * p)));
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c), lo);
}

template <typename T>
Status conv_as(const DepthwiseGeometry& g, const DepthwiseWeights& w, const Requant& rq, int threads,
               const T* x, void* y) {
  const int64_t taps = g.kh * g.kw;
  const int64_t pairs = (taps + 1) / 2;
  const int64_t row_len = g.ow * g.c;
  const int64_t size = scalar::dtype_size(g.y_dtype);
  const std::vector<T> zbuf(static_cast<size_t>(g.c), static_cast<T>(g.x_zero_point));  // a padded pixel
  std::atomic<bool> failed(false);
  parallel_for(threads, g.n * g.oh, 1, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> acc(static_cast<size_t>(row_len));
    std::vector<const T*> xs(static_cast<size_t>(2 * pairs));
    for (int64_t r = begin; r < end; ++r) {  // output row r = n_i * oh + oh_i
      const int64_t n_i = r / g.oh, oh_i = r % g.oh;
      for (int64_t ow_i = 0; ow_i < g.ow; ++ow_i) {
        // Step 1: where each tap reads: its input pixel, or zbuf in the padding.
        for (int64_t i = 0; i < g.kh; ++i) {
          const int64_t ih = oh_i * g.sh - g.top + i * g.dh;
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t iw = ow_i * g.sw - g.left + j * g.dw;
            const bool inside = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w;
            xs[size_t(i * g.kw + j)] = inside ? x + ((n_i * g.h + ih) * g.w + iw) * g.c : zbuf.data();
          }
        }
        if (taps % 2) xs[size_t(taps)] = zbuf.data();  // the odd tap's partner (weight 0)
        // Step 2: the accumulators, 16 channels at a time, then 8, then the rest.
        int32_t* a = &acc[size_t(ow_i * g.c)];
        int64_t c = 0;
        for (; c + 16 <= g.c; c += 16) block16(xs.data(), c, pairs, w.pairs + (c / 16) * pairs * 32, w.bias_zx, a);
        if (c + 8 <= g.c) {
          block8(xs.data(), c, pairs, w.pairs + (c / 16) * pairs * 32, w.bias_zx, a);
          c += 8;
        }
        if (c < g.c) scalar::depthwise_pixel(g, w, x, n_i, oh_i, ow_i, c, g.c, a + c);
      }
      // Step 3: requantize the row.
      if (scalar::depthwise_requantize(ISA_AVX2, acc.data(), g.ow, g, rq,
                                       static_cast<uint8_t*>(y) + r * row_len * size) != STATUS_OK) {
        failed = true;
      }
    }
  });
  return failed ? STATUS_NEEDS_REFERENCE : STATUS_OK;
}

}  // namespace

Status depthwise_conv2d(const DepthwiseGeometry& g, const DepthwiseWeights& w, const Requant& rq,
                        int threads, const void* x, void* y) {
  if (g.x_dtype == DT_UINT8) return conv_as(g, w, rq, threads, static_cast<const uint8_t*>(x), y);
  return conv_as(g, w, rq, threads, static_cast<const int8_t*>(x), y);
}

}  // namespace avx2
}  // namespace qnnref
