// The add operator (qnnref/ops/add.py), and the broadcast operands that add
// and mul share.
#pragma once

#include <atomic>

#include "qnnref/requantize.h"

namespace qnnref {

// One input of an elementwise binary operator, broadcast against the
// output: output element f reads data[(f / inner) % mid] (same shape:
// mid = n, inner = 1; a scalar: mid = 1; a row: mid = its length, inner = 1;
// a column: inner = the length of the trailing broadcast dimensions).
// data has the storage type of the operator's dtype; zero_point is its own.
struct Operand {
  const void* data;
  int64_t mid;
  int64_t inner;
  int32_t zero_point;
};

// out[j] = (x - zero_point) * 2^shift for the input value x of output
// element f0 + j, j < len. Exact in int32: |x - zp| < 2^16 and the callers
// keep (x - zp) * 2^shift below 2^31 (add.py: LEFT_SHIFT).
template <typename T>
static inline void gather_centered(const Operand& a, int64_t f0, int64_t len, int32_t shift, int32_t* out) {
  const T* x = static_cast<const T*>(a.data);
  const int32_t zp = a.zero_point;
  const int32_t scale = int32_t(1) << shift;
  for_each_segment(f0, len, a.mid, a.inner, [&](int64_t j, int64_t n, int64_t m, int64_t stride) {
    if (stride) {
      for (int64_t i = 0; i < n; ++i) out[j + i] = (int32_t(x[m + i]) - zp) * scale;
    } else {
      const int32_t v = (int32_t(x[m]) - zp) * scale;
      for (int64_t i = 0; i < n; ++i) out[j + i] = v;
    }
  });
}

// How add computes (ctx.prepared of the reference, flattened).
struct AddParams {
  int32_t kind;            // RecipeKind
  int32_t left_shift;      // fixed point: LEFT_SHIFT of the dtype
  // float recipes: (float(a - zp_a) * s_a + float(b - zp_b) * s_b) / s_y in
  // float_dtype, rounded by rounding, then + y_zero_point clamped to [lo, hi]
  int32_t float_dtype;
  int32_t rounding;
  float a_scale, b_scale, y_scale;
  int32_t y_zero_point, lo, hi;
};

// add: n output elements of dtype (DT_INT8 / DT_UINT8 / DT_INT16).
// Fixed point: a_scaled = requant ra (no zero point, int32 range) of
// (a - zp_a) << left_shift, the same for b, then ro of their sum (the
// output zero point and range are ro's). Float: AddParams. Threads split
// the output. STATUS_NEEDS_REFERENCE: a gemmlowp REQUIRE failed.
namespace scalar {
Status add(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const AddParams& ap, const Requant& ra,
           const Requant& rb, const Requant& ro, void* y, int32_t threads);
}
namespace avx2 {
Status add(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const AddParams& ap, const Requant& ra,
           const Requant& rb, const Requant& ro, void* y, int32_t threads);
}
inline int32_t add(int32_t isa, const Operand& a, const Operand& b, int32_t dtype, int64_t n, const AddParams& ap,
                   const Requant& ra, const Requant& rb, const Requant& ro, void* y, int32_t threads) {
  return isa == ISA_AVX2 ? avx2::add(a, b, dtype, n, ap, ra, rb, ro, y, threads)
                         : scalar::add(a, b, dtype, n, ap, ra, rb, ro, y, threads);
}

// The float recipe of add for one element (the scalar definition; the
// AVX2 code computes the same IEEE operations lane by lane).
template <typename F>
static inline int32_t add_float_value(int32_t ca, int32_t cb, const AddParams& ap) {
  // (a - zp_a) is exact in F (|.| < 2^17); each operation rounds once, in this order
  const F v = (F(ca) * F(ap.a_scale) + F(cb) * F(ap.b_scale)) / F(ap.y_scale);
  const int64_t r = float_to_int64_clamped(round_float(v, Rounding(ap.rounding)));
  return int32_t(saturate(r + ap.y_zero_point, ap.lo, ap.hi));
}

// The body of add for one ISA. FloatRow: (ca, cb, count, T* out) -> void,
// the float recipe over a chunk (scalar loop or SIMD).
template <int32_t Isa, typename T, class FloatRow>
static Status add_impl(const Operand& a, const Operand& b, int32_t dtype, int64_t n, const AddParams& ap,
                       const Requant& ra, const Requant& rb, const Requant& ro, T* y, int32_t threads,
                       FloatRow&& float_row) {
  std::atomic<bool> failed{false};
  parallel_for(threads, n, kGrain, [&](int64_t begin, int64_t end) {
    int32_t ca[kChunk], cb[kChunk], sa[kChunk], sb[kChunk];
    int32_t st = STATUS_OK;
    for (int64_t f = begin; f < end; f += kChunk) {
      const int64_t c = end - f < kChunk ? end - f : kChunk;
      if (ap.kind == FLOAT) {
        gather_centered<T>(a, f, c, 0, ca);
        gather_centered<T>(b, f, c, 0, cb);
        float_row(ca, cb, c, y + f);
        continue;
      }
      // Steps 1-2: each input centered, shifted left, brought to the common
      // scale (|a_scaled| <= 2^30: the multipliers are at most 1/2)
      gather_centered<T>(a, f, c, ap.left_shift, ca);
      gather_centered<T>(b, f, c, ap.left_shift, cb);
      st |= requantize_row(Isa, ca, c, ra, 0, DT_INT32, sa);
      st |= requantize_row(Isa, cb, c, rb, 0, DT_INT32, sb);
      // Step 3: the exact sum, |sum| < 2^31 (add.py); Step 4: the output stage
      for (int64_t i = 0; i < c; ++i) sa[i] += sb[i];
      st |= requantize_row(Isa, sa, c, ro, 0, dtype, y + f);
    }
    if (st != STATUS_OK) failed = true;
  });
  return failed ? STATUS_NEEDS_REFERENCE : STATUS_OK;
}

}  // namespace qnnref
