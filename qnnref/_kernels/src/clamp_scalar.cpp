// clamp, scalar: the body of include/qnnref/clamp.h for the baseline ISA.
#include "qnnref/clamp.h"

namespace qnnref {
namespace scalar {

void clamp(const void* x, int32_t dtype, int64_t n, int32_t lo, int32_t hi, void* y, int32_t threads) {
  clamp_for<ISA_SCALAR>(x, dtype, n, lo, hi, y, threads);
}

}  // namespace scalar
}  // namespace qnnref
