// dequantize, scalar: the body of include/qnnref/dequantize.h for the baseline ISA.
#include "qnnref/dequantize.h"

namespace qnnref {
namespace scalar {

void dequantize(const void* x, int32_t x_dtype, int64_t n, int64_t mid, int64_t inner, const float* scale,
                const int32_t* zp, float* y, int32_t threads) {
  dequantize_for<ISA_SCALAR>(x, x_dtype, n, mid, inner, scale, zp, y, threads);
}

}  // namespace scalar
}  // namespace qnnref
