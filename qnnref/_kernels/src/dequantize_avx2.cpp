#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// dequantize, AVX2: the body of include/qnnref/dequantize.h compiled for AVX2 (its loops
// vectorize to 256-bit lanes; the result is the same by construction: each
// element's operations are exact or single IEEE roundings, in any lane).
#include "qnnref/dequantize.h"

namespace qnnref {
namespace avx2 {

void dequantize(const void* x, int32_t x_dtype, int64_t n, int64_t mid, int64_t inner, const float* scale,
                const int32_t* zp, float* y, int32_t threads) {
  dequantize_for<ISA_AVX2>(x, x_dtype, n, mid, inner, scale, zp, y, threads);
}

}  // namespace avx2
}  // namespace qnnref
