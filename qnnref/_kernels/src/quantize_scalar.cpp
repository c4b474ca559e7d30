// quantize, scalar: element by element (include/qnnref/quantize.h).
#include "qnnref/quantize.h"

namespace qnnref {
namespace scalar {

template <typename T>
static Status quantize_as(const float* x, int64_t n, int64_t mid, int64_t inner, const float* factor_f32,
                          const double* factor_f64, const int32_t* zp, const QuantizeParams& q, T* y,
                          int32_t threads) {
  auto run = [&q](const float* xs, int64_t len, const float* f32, const double* f64, const int32_t* zs,
                  int64_t stride, T* ys) {
    bool ok = true;
    for (int64_t i = 0; i < len; ++i) {
      const int64_t k = i * stride;
      int32_t v = 0;
      ok &= q.float_dtype == FLOAT32 ? quantize_value<float>(xs[i], f32[k], zs[k], q, &v)
                                     : quantize_value<double>(xs[i], f64[k], zs[k], q, &v);
      ys[i] = static_cast<T>(v);
    }
    return ok;
  };
  return quantize_impl(x, n, mid, inner, factor_f32, factor_f64, zp, y, threads, run);
}

Status quantize(const float* x, int64_t n, int64_t mid, int64_t inner, const float* factor_f32,
                const double* factor_f64, const int32_t* zp, const QuantizeParams& q, int32_t out_dtype, void* y,
                int32_t threads) {
  switch (out_dtype) {
    case DT_INT8:
    case DT_INT4: return quantize_as(x, n, mid, inner, factor_f32, factor_f64, zp, q, static_cast<int8_t*>(y), threads);
    case DT_UINT8:
    case DT_UINT4: return quantize_as(x, n, mid, inner, factor_f32, factor_f64, zp, q, static_cast<uint8_t*>(y), threads);
    default: return quantize_as(x, n, mid, inner, factor_f32, factor_f64, zp, q, static_cast<int16_t*>(y), threads);
  }
}

}  // namespace scalar
}  // namespace qnnref
