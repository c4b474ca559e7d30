#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// AVX2 max_pool2d: vectorized over channels (NHWC keeps a pixel's channels
// contiguous), one 32-byte vector of channels at a time; the channels left
// over (C mod 32 for 8-bit, C mod 16 for int16) use the scalar code.
#include <immintrin.h>

#include "qnnref/max_pool2d.h"

namespace qnnref {
namespace avx2 {

// The lane-wise maximum of each element type.
static inline __m256i vmax(__m256i a, __m256i b, int8_t) { return _mm256_max_epi8(a, b); }
static inline __m256i vmax(__m256i a, __m256i b, uint8_t) { return _mm256_max_epu8(a, b); }
static inline __m256i vmax(__m256i a, __m256i b, int16_t) { return _mm256_max_epi16(a, b); }
static inline __m256i vmin(__m256i a, __m256i b, int8_t) { return _mm256_min_epi8(a, b); }
static inline __m256i vmin(__m256i a, __m256i b, uint8_t) { return _mm256_min_epu8(a, b); }
static inline __m256i vmin(__m256i a, __m256i b, int16_t) { return _mm256_min_epi16(a, b); }
static inline __m256i vbroadcast(int8_t v) { return _mm256_set1_epi8(v); }
static inline __m256i vbroadcast(uint8_t v) { return _mm256_set1_epi8(static_cast<char>(v)); }
static inline __m256i vbroadcast(int16_t v) { return _mm256_set1_epi16(v); }

static inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

template <typename T>
static void max_pool2d_as(const T* x, T* y, const PoolGeometry& g, T lo, T hi, int threads) {
  constexpr int64_t LANES = 32 / sizeof(T);
  const int64_t c_vec = g.C - g.C % LANES;          // channels done with vectors
  const __m256i vlo = vbroadcast(lo), vhi = vbroadcast(hi);
  parallel_for(threads, g.N * g.OH, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / g.OH, oh = row % g.OH;
      const Taps rows = window_taps(oh, g.sh, g.pad_top, g.kh, g.dh, g.H);
      const T* base = x + (n * g.H * g.W) * g.C;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const Taps cols = window_taps(ow, g.sw, g.pad_left, g.kw, g.dw, g.W);
        T* out = y + (row * g.OW + ow) * g.C;
        const T* first = base + (rows.pos * g.W + cols.pos) * g.C;
        for (int64_t c = 0; c < c_vec; c += LANES) {
          // the first inside tap starts the maximum: padded taps never take part
          __m256i m = load(first + c);
          for (int64_t i = 0; i < rows.count; ++i) {
            const T* tap_row = base + ((rows.pos + i * g.dh) * g.W) * g.C + c;
            for (int64_t j = 0; j < cols.count; ++j) {
              m = vmax(m, load(tap_row + (cols.pos + j * g.dw) * g.C), T());
            }
          }
          m = vmin(vmax(m, vlo, T()), vhi, T());
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), m);
        }
        if (c_vec < g.C) max_pool_pixel(x, out, g, rows, cols, n, c_vec, g.C, lo, hi);
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

}  // namespace avx2
}  // namespace qnnref
