// Requantization of int32 accumulators: the last stage of every compute
// kernel, and the requantize operator itself.
#pragma once

#include "qnnref/common.h"

namespace qnnref {

// requantize_row: out[i] = requantize_output(acc[i], p, ch0 + i), stored as
// out_dtype (DType). Returns STATUS_NEEDS_REFERENCE if some element failed a
// REQUIRE (gemmlowp overflow); out is then unspecified.
namespace scalar {
Status requantize_row(const int32_t* acc, int64_t n, const Requant& p, int64_t ch0, int32_t out_dtype,
                      void* out);
}
namespace avx2 {
Status requantize_row(const int32_t* acc, int64_t n, const Requant& p, int64_t ch0, int32_t out_dtype,
                      void* out);
}

// The dispatcher Cython calls: the ISA is an explicit argument (an Isa code);
// returns a Status code.
inline int32_t requantize_row(int32_t isa, const int32_t* acc, int64_t n, const Requant& p, int64_t ch0,
                             int32_t out_dtype, void* out) {
  return isa == ISA_AVX2 ? avx2::requantize_row(acc, n, p, ch0, out_dtype, out)
                         : scalar::requantize_row(acc, n, p, ch0, out_dtype, out);
}

}  // namespace qnnref
