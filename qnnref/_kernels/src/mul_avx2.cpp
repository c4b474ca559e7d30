#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// mul, AVX2: the same body (include/qnnref/mul.h) compiled for AVX2 (the
// centering and product loops vectorize), ending with the AVX2 requantize_row.
#include "qnnref/mul.h"

namespace qnnref {
namespace avx2 {

Status mul(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const Requant& r, void* y,
           int32_t threads) {
  return mul_for<ISA_AVX2>(a, b, dtype, n, r, y, threads);
}

}  // namespace avx2
}  // namespace qnnref
