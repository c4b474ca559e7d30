// The clamp operator (qnnref/ops/clamp.py).
#pragma once

#include "qnnref/common.h"

namespace qnnref {

// clamp: y[i] = min(max(x[i], lo), hi) for n elements of dtype (storage
// type; lo <= hi, both in the dtype's range, checked by the operator).
// Threads split the elements.
namespace scalar {
void clamp(const void* x, int32_t dtype, int64_t n, int32_t lo, int32_t hi, void* y, int32_t threads);
}
namespace avx2 {
void clamp(const void* x, int32_t dtype, int64_t n, int32_t lo, int32_t hi, void* y, int32_t threads);
}
static inline int32_t clamp(int32_t isa, const void* x, int32_t dtype, int64_t n, int32_t lo, int32_t hi, void* y,
                     int32_t threads) {
  if (isa == ISA_AVX2) {
    avx2::clamp(x, dtype, n, lo, hi, y, threads);
  } else {
    scalar::clamp(x, dtype, n, lo, hi, y, threads);
  }
  return STATUS_OK;
}

// The body for one ISA: a plain loop, which the compiler vectorizes with the
// translation unit's instruction set (min/max of packed integers).
template <int32_t Isa, typename T>
static void clamp_impl(const T* x, int64_t n, T lo, T hi, T* y, int32_t threads) {
  parallel_for(threads, n, 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T v = x[i] < lo ? lo : x[i];
      y[i] = v > hi ? hi : v;
    }
  });
}

template <int32_t Isa>
static void clamp_for(const void* x, int32_t dtype, int64_t n, int32_t lo, int32_t hi, void* y, int32_t threads) {
  switch (dtype) {
    case DT_INT8:
    case DT_INT4:
      return clamp_impl<Isa>(static_cast<const int8_t*>(x), n, int8_t(lo), int8_t(hi), static_cast<int8_t*>(y), threads);
    case DT_UINT8:
    case DT_UINT4:
      return clamp_impl<Isa>(static_cast<const uint8_t*>(x), n, uint8_t(lo), uint8_t(hi), static_cast<uint8_t*>(y),
                             threads);
    case DT_INT16:
      return clamp_impl<Isa>(static_cast<const int16_t*>(x), n, int16_t(lo), int16_t(hi), static_cast<int16_t*>(y),
                             threads);
    default:
      return clamp_impl<Isa>(static_cast<const int32_t*>(x), n, lo, hi, static_cast<int32_t*>(y), threads);
  }
}

}  // namespace qnnref
