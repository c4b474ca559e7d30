#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// clamp, AVX2: the body of include/qnnref/clamp.h compiled for AVX2 (its loops
// vectorize to 256-bit lanes; the result is the same by construction: each
// element's operations are exact or single IEEE roundings, in any lane).
#include "qnnref/clamp.h"

namespace qnnref {
namespace avx2 {

void clamp(const void* x, int32_t dtype, int64_t n, int32_t lo, int32_t hi, void* y, int32_t threads) {
  clamp_for<ISA_AVX2>(x, dtype, n, lo, hi, y, threads);
}

}  // namespace avx2
}  // namespace qnnref
