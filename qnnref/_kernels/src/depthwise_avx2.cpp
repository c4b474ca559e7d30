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
//  * Per output pixel, xs[t] points to the input pixel of tap t; inside the
//    input, the window just slides right by sw columns from one pixel to
//    the next.
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

// One pair of taps (a, b) for 16 channels: a's and b's 16 input bytes
// interleaved and widened to int16, times the packed weights wp[0 .. 32),
// added to the accumulators of channels 0-7 (lo) and 8-15 (hi).
template <typename T>
inline void pair16(const T* a_ptr, const T* b_ptr, const int16_t* wp, __m256i& lo, __m256i& hi) {
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a_ptr));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b_ptr));
  const __m256i ab_lo = widen(_mm_unpacklo_epi8(a, b), T());   // a0 b0 a1 b1 ... a7 b7
  const __m256i ab_hi = widen(_mm_unpackhi_epi8(a, b), T());   // a8 b8 ... a15 b15
  lo = _mm256_add_epi32(lo, _mm256_madd_epi16(ab_lo, load256(wp)));
  hi = _mm256_add_epi32(hi, _mm256_madd_epi16(ab_hi, load256(wp + 16)));
}

// Accumulators of the 32 channels [c, c + 32) of one pixel: two blocks of
// 16 at once (four independent sums). xs[t] points to the pixel of tap t
// (or zbuf), wp to the first block's packed pairs. P > 0: the number of
// pairs known at compile time (5 for the common 3x3), so the loop unrolls.
template <int P, typename T>
void block32(const T* const* xs, int64_t c, int64_t pairs, const int16_t* wp, const int32_t* init,
             int32_t* acc) {
  __m256i s0 = load256(init + c), s1 = load256(init + c + 8);
  __m256i s2 = load256(init + c + 16), s3 = load256(init + c + 24);
  if (P > 0) pairs = P;
  const int16_t* wq = wp + pairs * 32;   // the second block
  for (int64_t p = 0; p < pairs; ++p) {
    const T* a = xs[2 * p] + c;
    const T* b = xs[2 * p + 1] + c;
    pair16(a, b, wp + 32 * p, s0, s1);
    pair16(a + 16, b + 16, wq + 32 * p, s2, s3);
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c), s0);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c + 8), s1);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c + 16), s2);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c + 24), s3);
}

// The same for 16 channels [c, c + 16).
template <typename T>
void block16(const T* const* xs, int64_t c, int64_t pairs, const int16_t* wp, const int32_t* init,
             int32_t* acc) {
  __m256i lo = load256(init + c), hi = load256(init + c + 8);
  for (int64_t p = 0; p < pairs; ++p) pair16(xs[2 * p] + c, xs[2 * p + 1] + c, wp + 32 * p, lo, hi);
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
    std::vector<const T*> xs(static_cast<size_t>(2 * pairs), zbuf.data());  // xs[taps] stays zbuf
    std::vector<const T*> rows(static_cast<size_t>(g.kh));
    for (int64_t r = begin; r < end; ++r) {  // output row r = n_i * oh + oh_i
      const int64_t n_i = r / g.oh, oh_i = r % g.oh;
      // Step 1: the input row of each kernel row i (null in the padding).
      bool rows_inside = true;
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t ih = oh_i * g.sh - g.top + i * g.dh;
        rows[size_t(i)] = ih >= 0 && ih < g.h ? x + (n_i * g.h + ih) * g.w * g.c : nullptr;
        rows_inside = rows_inside && rows[size_t(i)] != nullptr;
      }
      bool was_inside = false;
      for (int64_t ow_i = 0; ow_i < g.ow; ++ow_i) {
        // Step 2: where each tap reads: its input pixel, or zbuf in the
        // padding. (xs[taps], the odd tap's partner with weight 0, is zbuf.)
        const int64_t iw0 = ow_i * g.sw - g.left;  // the window's first column
        const bool inside = rows_inside && iw0 >= 0 && iw0 + (g.kw - 1) * g.dw < g.w;
        if (inside && was_inside) {
          // the whole window is inside the input, as it was for the previous
          // pixel: it slides right by sw columns
          for (int64_t t = 0; t < taps; ++t) xs[size_t(t)] += g.sw * g.c;
        } else {
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t iw = iw0 + j * g.dw;
            const bool column_inside = iw >= 0 && iw < g.w;
            for (int64_t i = 0; i < g.kh; ++i) {
              const T* row = rows[size_t(i)];
              xs[size_t(i * g.kw + j)] = row != nullptr && column_inside ? row + iw * g.c : zbuf.data();
            }
          }
        }
        was_inside = inside;
        // Step 3: the accumulators, 32 channels at a time, then 16, 8, then the rest.
        int32_t* a = &acc[size_t(ow_i * g.c)];
        const T* const* px = xs.data();
        auto wp = [&](int64_t c0) { return w.pairs + (c0 / 16) * pairs * 32; };  // block c0/16's pairs
        int64_t c = 0;
        for (; c + 32 <= g.c; c += 32) {
          if (pairs == 5) {
            block32<5>(px, c, pairs, wp(c), w.bias_zx, a);
          } else {
            block32<0>(px, c, pairs, wp(c), w.bias_zx, a);
          }
        }
        if (c + 16 <= g.c) {
          block16(px, c, pairs, wp(c), w.bias_zx, a);
          c += 16;
        }
        if (c + 8 <= g.c) {
          block8(px, c, pairs, wp(c), w.bias_zx, a);
          c += 8;
        }
        if (c < g.c) scalar::depthwise_pixel(g, w, x, n_i, oh_i, ow_i, c, g.c, a + c);
      }
      // Step 4: requantize the row.
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
