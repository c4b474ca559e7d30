// Scalar GEMM: the definition of the packed formats' arithmetic, element by
// element (include/qnnref/gemm.h), and the driver instantiated for it.
#include <atomic>
#include <cstring>
#include <vector>

#include "qnnref/gemm.h"
#include "qnnref/requantize.h"

namespace qnnref {
namespace scalar {

// Unaligned, aliasing-safe access to the int16 values of packed A rows.
static inline int32_t load_i16(const uint8_t* p) {
  int16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
static inline void store_i16(uint8_t* p, int32_t v) {
  const int16_t w = static_cast<int16_t>(v);
  std::memcpy(p, &w, sizeof w);
}

// One row of A, packed (see gemm_driver.h). Pairs: int16 a - zp_a, padding 0.
// Nibbles: uint8 a_u = a + o (o = 128 for int8: flip the top bit), padding
// zp_a + o (the padding value is x's zero point). Zeros up to k_pad.
static int32_t pack_a_row(int32_t format, const Segment* seg, int64_t nseg, const Im2col& g, int64_t k_pad,
                          uint8_t* dst, bool need_sum) {
  (void)need_sum;  // always computed here
  const bool is_signed = g.a_dtype == DT_INT8;
  uint32_t sum = 0;
  int64_t k = 0;
  if (format == GEMM_PAIRS) {
    for (int64_t s = 0; s < nseg; ++s) {
      for (int64_t i = 0; i < seg[s].len; ++i, ++k) {
        const int32_t v = seg[s].src != nullptr ? gemm_centered(seg[s].src[i], is_signed, g.zp_a) : 0;
        store_i16(dst + 2 * k, v);
        sum += uint32_t(v);
      }
    }
    for (; k < k_pad; ++k) store_i16(dst + 2 * k, 0);
  } else {
    const uint8_t pad = gemm_offset(uint8_t(g.zp_a), is_signed);
    for (int64_t s = 0; s < nseg; ++s) {
      for (int64_t i = 0; i < seg[s].len; ++i, ++k) {
        const uint8_t u = seg[s].src != nullptr ? gemm_offset(seg[s].src[i], is_signed) : pad;
        dst[k] = u;
        sum += u;
      }
    }
    for (; k < k_pad; ++k) dst[k] = 0;
  }
  return int32_t(sum);
}

// c[r][j] = sum over k of a_r[k] * b_s[k][j] (int32, wrapping), pairs layout.
// (Row by row: GCC 12's -O3 loop vectorizer reads past the last row when
// the row loop is the inner one.)
template <int R>
static void tile_pairs(const uint8_t* a, int64_t lda, const uint8_t* b, int64_t k_pad, int32_t* c, int64_t ldc) {
  for (int r = 0; r < R; ++r) {
    const uint8_t* ar = a + r * lda;
    uint32_t acc[GEMM_NR] = {};
    for (int64_t i = 0; i < k_pad / 2; ++i) {
      const uint8_t* bp = b + i * 2 * GEMM_NR;
      const int32_t a0 = load_i16(ar + 4 * i);
      const int32_t a1 = load_i16(ar + 4 * i + 2);
      for (int j = 0; j < GEMM_NR; ++j) {
        // |a0 * b0 + a1 * b1| <= 2 * 255 * 128: no int32 overflow
        acc[j] += uint32_t(a0 * int8_t(bp[2 * j]) + a1 * int8_t(bp[2 * j + 1]));
      }
    }
    for (int j = 0; j < GEMM_NR; ++j) c[r * ldc + j] = int32_t(acc[j]);
  }
}

// The same for the nibbles layout: a_u (uint8) times b_u (4 bits).
template <int R>
static void tile_nibbles(const uint8_t* a, int64_t lda, const uint8_t* b, int64_t k_pad, int32_t* c,
                         int64_t ldc) {
  for (int r = 0; r < R; ++r) {
    uint32_t acc[GEMM_NR] = {};
    for (int64_t o = 0; o < k_pad / 8; ++o) {
      const uint8_t* ar = a + r * lda + 8 * o;
      const uint8_t* bp = b + o * 64;
      for (int j = 0; j < GEMM_NR; ++j) {
        const uint8_t* bj = bp + (j / 8) * 32 + (j % 8) * 4;
        uint32_t s = 0;
        for (int t = 0; t < 4; ++t) s += ar[t] * uint32_t(bj[t] & 15) + ar[4 + t] * uint32_t(bj[t] >> 4);
        acc[j] += s;
      }
    }
    for (int j = 0; j < GEMM_NR; ++j) c[r * ldc + j] = int32_t(acc[j]);
  }
}

// The epilogue of a row (gemm_finish_element).
static bool finish_row(const int32_t* dot, int64_t n, int32_t rowsum, const int32_t* row_coef,
                       const int32_t* col_term, const int32_t* bias, int32_t* acc) {
  bool overflow = false;
  for (int64_t j = 0; j < n; ++j) {
    acc[j] = gemm_finish_element(dot[j], rowsum, row_coef != nullptr ? row_coef[j] : 0, col_term[j],
                                 bias != nullptr ? bias[j] : 0, &overflow);
  }
  return overflow;
}

#include "qnnref/gemm_driver.h"

}  // namespace scalar
}  // namespace qnnref
