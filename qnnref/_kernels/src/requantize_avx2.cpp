#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// AVX2 requantization. Placeholder: forwards to the scalar definition until
// the vectorized version lands.
#include "qnnref/requantize.h"

namespace qnnref {
namespace avx2 {

Status requantize_row(const int32_t* acc, int64_t n, const Requant& p, int64_t ch0, int32_t out_dtype,
                      void* out) {
  return scalar::requantize_row(acc, n, p, ch0, out_dtype, out);
}

}  // namespace avx2
}  // namespace qnnref
