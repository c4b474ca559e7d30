// table: y = lut[x - dtype_min(x)] for 8-bit x and a 256-entry 8-bit table
// (spec/ops/table.md).
#pragma once

#include <cstdint>

#include "qnnref/common.h"

namespace qnnref {

// x and y are n bytes (int8 or uint8; y has the table's dtype, whose bytes
// are copied). x_signed: x is int8, so its index x + 128 is its byte with
// the top bit flipped; else x is uint8 and its byte is the index.
// The elements are split between `threads` threads in blocks.
namespace scalar {
Status table(const uint8_t* x, uint8_t* y, int64_t n, int32_t x_signed, const uint8_t* lut, int threads);
}
namespace avx2 {
Status table(const uint8_t* x, uint8_t* y, int64_t n, int32_t x_signed, const uint8_t* lut, int threads);
}

static inline int32_t table(int32_t isa, const uint8_t* x, uint8_t* y, int64_t n, int32_t x_signed, const uint8_t* lut,
                     int threads) {
  return isa == ISA_AVX2 ? avx2::table(x, y, n, x_signed, lut, threads)
                         : scalar::table(x, y, n, x_signed, lut, threads);
}

// Elements per thread task.
constexpr int64_t TABLE_GRAIN = 1 << 16;

// The scalar lookup of elements [i0, i1): shared by the scalar kernel and the
// AVX2 kernel's remainder. flip is 0x80 for int8 x, 0 for uint8 x.
static inline void table_range(const uint8_t* x, uint8_t* y, int64_t i0, int64_t i1, uint8_t flip, const uint8_t* lut) {
  for (int64_t i = i0; i < i1; ++i) y[i] = lut[x[i] ^ flip];
}

}  // namespace qnnref
