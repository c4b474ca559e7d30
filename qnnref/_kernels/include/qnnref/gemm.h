// qnnref/gemm.h -- the packed integer GEMM shared by matmul and conv2d.
//
// It computes, for rows m of an activation matrix A (given as an im2col view
// of an NHWC tensor, so that a plain matrix and a convolution are the same
// thing) and a prepacked weight matrix B [K, N],
//
//   acc[m, n] = sum_k (A[m, k] - zp_a) * (B[k, n] - zp_b[n]) + bias[n]
//   y[m, n]   = requantize_output(acc[m, n], channel = channel0 + n)
//
// exactly (spec/ops/matmul.md). Two packed formats of B:
//
// * GEMM_PAIRS (int8 and uint8 weights): B as signed bytes b_s = b - s
//   (s = 0 for int8, 128 for uint8), in panels of 16 columns; inside a
//   panel, for each pair of rows (k, k+1), 32 bytes:
//   [c0 k, c0 k+1, c1 k, c1 k+1, ..., c15 k, c15 k+1]. A is packed as int16
//   a' = A - zp_a (|a'| <= 255). The kernel widens B to int16 in registers
//   and multiplies pairs with VPMADDWD (int16 x int16 -> int32 pair sums,
//   exact: |sum| <= 2 * 255 * 255).
//   dot[m, n] = sum_k a' * b_s; acc = dot - rowsum_a'[m] * (zp_b[n] - s) + bias.
//
// * GEMM_NIBBLES (int4 weights): B as unsigned nibbles b_u = b + 8 in
//   [0, 15], two per byte; A as unsigned bytes a_u = a + o in [0, 255]
//   (o = 128 for int8, 0 for uint8). Per panel and per 8 rows k0..k0+7,
//   64 bytes: in the first 32, byte j holds column j/4 (0..7), row k0 + j%4
//   in its low nibble and row k0 + 4 + j%4 in its high nibble; the next 32
//   bytes the same for columns 8..15. The kernel multiplies bytes with
//   VPMADDUBSW (u8 x s8 pair sums <= 2 * 255 * 15 = 7650: exact in int16,
//   and so is the sum of two of them), then VPMADDWD by ones into int32.
//   With ca = zp_a + o and cb[n] = zp_b[n] + 8:
//   acc = dot - rowsum_au[m] * cb[n] + (K * ca * cb[n] - ca * colsum_bu[n]) + bias.
//
// Both formats therefore end with the same epilogue,
//   acc[m, n] = dot[m, n] - rowsum[m] * row_coef[n] + col_term[n] + bias[n],
// computed modulo 2^32 (int32 wrap-around) except for the bias. That is
// exact whenever the true sum_k (A - zp_a)(B - zp_b) fits int32, which the
// caller proves at prepare time from the weights and the dtype range of A
// (qnnref/_kernels/matmul.py, accumulator_bound); the bias is then added in
// int64 and a sum outside int32 returns STATUS_NEEDS_REFERENCE (the
// reference raises the specified error).
#pragma once

#include <cstdint>

#include "qnnref/common.h"

namespace qnnref {

enum GemmFormat : int32_t { GEMM_PAIRS = 0, GEMM_NIBBLES = 1 };

constexpr int64_t GEMM_NR = 16;  // columns per packed panel
constexpr int64_t GEMM_MR = 6;   // rows per register tile (pairs format)
constexpr int64_t GEMM_MR_NIBBLES = 4;  // rows per register tile (nibbles format)

// K padded to the packed format's row granularity (pairs: 2, nibbles: 8).
inline int64_t gemm_k_pad(int32_t format, int64_t k) {
  return format == GEMM_PAIRS ? (k + 1) / 2 * 2 : (k + 7) / 8 * 8;
}
inline int64_t gemm_panels(int64_t n) { return (n + GEMM_NR - 1) / GEMM_NR; }
// Bytes of packed data of one [K, N] matrix.
inline int64_t gemm_packed_bytes(int32_t format, int64_t k, int64_t n) {
  const int64_t per_panel = format == GEMM_PAIRS ? gemm_k_pad(format, k) * GEMM_NR
                                                 : gemm_k_pad(format, k) * GEMM_NR / 2;
  return gemm_panels(n) * per_panel;
}

// One packed [K, N] weight matrix (filled by pack_b; arrays owned by Python).
struct PackedB {
  int32_t format;           // GemmFormat
  int64_t k, n;             // logical size
  const uint8_t* data;      // gemm_packed_bytes(format, k, n) bytes
  const int32_t* row_coef;  // [panels * 16]: multiplies rowsum[m] (0 for padded columns)
  const int32_t* col_term;  // [panels * 16]: added to every row
  int32_t any_row_coef;     // 0 when every row_coef is 0 (the correction is skipped)
};

// pack_b: pack B[k, n] = src[k * stride_k + n * stride_n] (elements of
// dtype b_dtype: DT_INT8, DT_UINT8 or DT_INT4 held in int8) with zero
// points zp_b[n] (zp_b[0] for all columns when zp_per_column is 0).
// a_dtype and zp_a are needed by the nibble format's column term.
// Also returns max over columns of sum_k |B[k, n] - zp_b[n]| (the weights'
// part of the accumulator bound). The caller validated the dtypes and sizes;
// out arrays have gemm_packed_bytes(...) bytes and panels * 16 int32 each.
int64_t pack_b(int32_t b_dtype, const void* src, int64_t stride_k, int64_t stride_n, int64_t k, int64_t n,
               const int32_t* zp_b, int32_t zp_per_column, int32_t a_dtype, int32_t zp_a, uint8_t* data,
               int32_t* row_coef, int32_t* col_term);

// The rows of A: an im2col view of an NHWC tensor x [batch, h, w, c] of
// int8 or uint8. Row m = (image, oy, ox) in row-major order over
// [batch, out_h, out_w]; its K = kh * kw * cg values are, in (ky, kx, ci)
// order, x[image, oy*sh - top + ky*dh, ox*sw - left + kx*dw, c_offset + ci]
// or zp_a where that position is outside x (padding). A plain matrix
// a [M, K] is the view h = M, w = 1, c = K, kh = kw = 1.
struct Im2col {
  const uint8_t* x;         // int8 or uint8 data (as bytes)
  int32_t a_dtype;          // DT_INT8 or DT_UINT8
  int32_t zp_a;             // zero point of x (also the padding value)
  int64_t h, w, c;          // x's spatial size and channels (row stride of a pixel)
  int64_t c_offset, cg;     // first channel of the group, channels per group
  int64_t kh, kw;           // kernel size
  int64_t sh, sw, dh, dw;   // strides and dilations
  int64_t top, left;        // padding before (after: implied by out_h, out_w)
  int64_t out_h, out_w;     // output size: rows = batch * out_h * out_w
};

// A run of K values of one row: `len` bytes from `src`, or padding (src null).
struct Segment {
  const uint8_t* src;
  int64_t len;
};

// The output position of row m: image, oy, ox (advanced row by row with
// next(), without dividing).
struct Im2colPosition {
  int64_t image, oy, ox;
  Im2colPosition(const Im2col& g, int64_t m)
      : image(m / (g.out_h * g.out_w)), oy((m / g.out_w) % g.out_h), ox(m % g.out_w) {}
  void next(const Im2col& g) {
    if (++ox < g.out_w) return;
    ox = 0;
    if (++oy < g.out_h) return;
    oy = 0;
    ++image;
  }
};

// The segments of the row at `pos` (at most kh * kw): static inline, so
// that each ISA's translation unit has its own copy (no cross-ISA symbol
// merging).
static inline int64_t im2col_segments(const Im2col& g, const Im2colPosition& pos, Segment* seg) {
  const uint8_t* base = g.x + pos.image * g.h * g.w * g.c + g.c_offset;
  int64_t count = 0;
  auto add = [&](const uint8_t* src, int64_t len) {
    // merge with the previous run when contiguous (or both padding)
    if (count > 0 && ((src == nullptr && seg[count - 1].src == nullptr) ||
                      (src != nullptr && seg[count - 1].src != nullptr &&
                       seg[count - 1].src + seg[count - 1].len == src))) {
      seg[count - 1].len += len;
    } else {
      seg[count++] = Segment{src, len};
    }
  };
  for (int64_t ky = 0; ky < g.kh; ++ky) {
    const int64_t iy = pos.oy * g.sh - g.top + ky * g.dh;
    if (iy < 0 || iy >= g.h) {
      add(nullptr, g.kw * g.cg);  // a whole kernel row of padding
      continue;
    }
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      const int64_t ix = pos.ox * g.sw - g.left + kx * g.dw;
      if (ix < 0 || ix >= g.w) {
        add(nullptr, g.cg);
      } else {
        add(base + (iy * g.w + ix) * g.c, g.cg);
      }
    }
  }
  return count;
}

// The epilogue of one element (gemm.h header comment): dot - rowsum *
// row_coef + col_term modulo 2^32 (the exact value, proven to fit int32),
// then + bias in int64; sets *overflow when that sum does not fit int32.
// Shared by the scalar kernel and the AVX2 remainder loop.
static inline int32_t gemm_finish_element(int32_t dot, int32_t rowsum, int32_t row_coef, int32_t col_term,
                                          int32_t bias, bool* overflow) {
  const uint32_t v = uint32_t(dot) - uint32_t(rowsum) * uint32_t(row_coef) + uint32_t(col_term);
  const int64_t s = int64_t(int32_t(v)) + bias;
  if (s < INT32_MIN_ || s > INT32_MAX_) *overflow = true;
  return int32_t(uint32_t(uint64_t(s)));
}

// One value of a packed A row: pairs: a - zp_a (int16 range); nibbles:
// a + o as a byte (o = 128 for int8: flip the top bit).
static inline int32_t gemm_centered(uint8_t byte, bool is_signed, int32_t zp_a) {
  return (is_signed ? int32_t(int8_t(byte)) : int32_t(byte)) - zp_a;
}
static inline uint8_t gemm_offset(uint8_t byte, bool is_signed) { return is_signed ? uint8_t(byte ^ 0x80) : byte; }

// Where and how the results go: y[m, n] at out + (m * ld + n) * itemsize,
// requantized with channel channel0 + n; bias (int32, may be null) is
// indexed by n (already offset by the caller).
struct GemmOutput {
  void* out;
  int32_t out_dtype;        // DType of y
  int64_t ld;               // elements between rows of y
  int64_t channel0;
  const int32_t* bias;
  const Requant* requant;
};

// gemm: rows [0, m) of `rows` times `b`, requantized into `out`, with up to
// `threads` threads (each output row block or column panel is computed by
// one thread, identically whatever the split). Returns a Status.
namespace scalar {
Status gemm(const Im2col& rows, int64_t m, const PackedB& b, const GemmOutput& out, int threads);
}
namespace avx2 {
Status gemm(const Im2col& rows, int64_t m, const PackedB& b, const GemmOutput& out, int threads);
}

inline int32_t gemm(int32_t isa, const Im2col& rows, int64_t m, const PackedB& b, const GemmOutput& out,
                    int threads) {
  return isa == ISA_AVX2 ? avx2::gemm(rows, m, b, out, threads) : scalar::gemm(rows, m, b, out, threads);
}

}  // namespace qnnref
