// Scalar table lookup (the definition the AVX2 version must match).
#include "qnnref/table.h"

namespace qnnref {
namespace scalar {

Status table(const uint8_t* x, uint8_t* y, int64_t n, int32_t x_signed, const uint8_t* lut, int threads) {
  const uint8_t flip = x_signed ? 0x80 : 0;
  parallel_for(threads, n, TABLE_GRAIN, [&](int64_t begin, int64_t end) {
    table_range(x, y, begin, end, flip, lut);
  });
  return STATUS_OK;
}

}  // namespace scalar
}  // namespace qnnref
