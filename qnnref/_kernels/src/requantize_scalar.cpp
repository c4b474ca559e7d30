// Scalar requantization (the definition the AVX2 version must match).
#include "qnnref/requantize.h"

namespace qnnref {
namespace scalar {

template <typename T>
static Status requantize_row_as(const int32_t* acc, int64_t n, const Requant& p, int64_t ch0, T* out) {
  bool error = false;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<T>(requantize_output(acc[i], p, ch0 + i, &error));
  }
  return error ? STATUS_NEEDS_REFERENCE : STATUS_OK;
}

Status requantize_row(const int32_t* acc, int64_t n, const Requant& p, int64_t ch0, int32_t out_dtype,
                      void* out) {
  switch (out_dtype) {
    case DT_INT8:
    case DT_INT4: return requantize_row_as(acc, n, p, ch0, static_cast<int8_t*>(out));
    case DT_UINT8:
    case DT_UINT4: return requantize_row_as(acc, n, p, ch0, static_cast<uint8_t*>(out));
    case DT_INT16: return requantize_row_as(acc, n, p, ch0, static_cast<int16_t*>(out));
    default: return requantize_row_as(acc, n, p, ch0, static_cast<int32_t*>(out));
  }
}

Status requantize_tensor(const void* x, int32_t x_dtype, int64_t n, int64_t mid, int64_t inner,
                         const int32_t* x_zp, const int32_t* y_zp, const Requant& p, int32_t out_dtype,
                         void* y, int32_t threads) {
  return requantize_tensor_for<ISA_SCALAR>(x, x_dtype, n, mid, inner, x_zp, y_zp, p, out_dtype, y, threads);
}

}  // namespace scalar
}  // namespace qnnref
