// add, scalar: the definition (include/qnnref/add.h) with the scalar
// requantize_row and the float recipe element by element.
#include "qnnref/add.h"

namespace qnnref {
namespace scalar {

template <typename T>
static Status add_as(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const AddParams& ap,
                     const Requant& ra, const Requant& rb, const Requant& ro, T* y, int32_t threads) {
  auto float_row = [&ap](const int32_t* ca, const int32_t* cb, int64_t c, T* out) {
    for (int64_t i = 0; i < c; ++i) {
      out[i] = static_cast<T>(ap.float_dtype == FLOAT32 ? add_float_value<float>(ca[i], cb[i], ap)
                                                        : add_float_value<double>(ca[i], cb[i], ap));
    }
  };
  return add_impl<ISA_SCALAR>(a, b, dtype, n, ap, ra, rb, ro, y, threads, float_row);
}

Status add(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const AddParams& ap, const Requant& ra,
           const Requant& rb, const Requant& ro, void* y, int32_t threads) {
  switch (dtype) {
    case DT_INT8: return add_as(a, b, dtype, n, ap, ra, rb, ro, static_cast<int8_t*>(y), threads);
    case DT_UINT8: return add_as(a, b, dtype, n, ap, ra, rb, ro, static_cast<uint8_t*>(y), threads);
    default: return add_as(a, b, dtype, n, ap, ra, rb, ro, static_cast<int16_t*>(y), threads);
  }
}

}  // namespace scalar
}  // namespace qnnref
