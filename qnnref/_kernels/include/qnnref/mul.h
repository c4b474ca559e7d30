// The mul operator (qnnref/ops/mul.py).
#pragma once

#include "qnnref/add.h"

namespace qnnref {

// mul: n output elements of dtype (DT_INT8 / DT_UINT8 / DT_INT16):
// y = requantize_output((a - zp_a) * (b - zp_b), r), the operands broadcast
// as add.h's Operand says. Python guarantees |(a - zp_a) * (b - zp_b)| <=
// 2^31 - 1 for every input value (mul.py checks the zero points at load
// time), so the int32 product is exact. Threads split the output.
// STATUS_NEEDS_REFERENCE: a gemmlowp REQUIRE failed.
namespace scalar {
Status mul(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const Requant& r, void* y,
           int32_t threads);
}
namespace avx2 {
Status mul(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const Requant& r, void* y,
           int32_t threads);
}
inline int32_t mul(int32_t isa, const Operand& a, const Operand& b, int32_t dtype, int64_t n, const Requant& r,
                   void* y, int32_t threads) {
  return isa == ISA_AVX2 ? avx2::mul(a, b, dtype, n, r, y, threads) : scalar::mul(a, b, dtype, n, r, y, threads);
}

// The body of mul for one ISA (instantiated in each ISA's translation unit).
template <int32_t Isa, typename T>
static Status mul_impl(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const Requant& r, T* y,
                       int32_t threads) {
  std::atomic<bool> failed{false};
  parallel_for(threads, n, kGrain, [&](int64_t begin, int64_t end) {
    int32_t ca[kChunk], cb[kChunk];
    int32_t st = STATUS_OK;
    for (int64_t f = begin; f < end; f += kChunk) {
      const int64_t c = end - f < kChunk ? end - f : kChunk;
      // Step 1: remove the zero points; Step 2: the exact product
      gather_centered<T>(a, f, c, 0, ca);
      gather_centered<T>(b, f, c, 0, cb);
      for (int64_t i = 0; i < c; ++i) ca[i] *= cb[i];
      // Step 3: the output stage
      st |= requantize_row(Isa, ca, c, r, 0, dtype, y + f);
    }
    if (st != STATUS_OK) failed = true;
  });
  return failed ? STATUS_NEEDS_REFERENCE : STATUS_OK;
}

template <int32_t Isa>
static Status mul_for(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const Requant& r, void* y,
                      int32_t threads) {
  switch (dtype) {
    case DT_INT8: return mul_impl<Isa>(a, b, dtype, n, r, static_cast<int8_t*>(y), threads);
    case DT_UINT8: return mul_impl<Isa>(a, b, dtype, n, r, static_cast<uint8_t*>(y), threads);
    default: return mul_impl<Isa>(a, b, dtype, n, r, static_cast<int16_t*>(y), threads);
  }
}

}  // namespace qnnref
