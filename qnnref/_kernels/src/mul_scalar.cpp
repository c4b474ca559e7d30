// mul, scalar: the definition (include/qnnref/mul.h) with the scalar requantize_row.
#include "qnnref/mul.h"

namespace qnnref {
namespace scalar {

Status mul(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const Requant& r, void* y,
           int32_t threads) {
  return mul_for<ISA_SCALAR>(a, b, dtype, n, r, y, threads);
}

}  // namespace scalar
}  // namespace qnnref
