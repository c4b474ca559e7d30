// qnnref/common.h -- what every kernel shares: instruction sets, dtypes, the
// prepared requantization parameters, and deterministic threading.
#pragma once

#include <cstdint>
#include <thread>
#include <vector>

#include "qnnref/arith.h"

namespace qnnref {

// The instruction set a kernel call runs with. Every kernel entry point takes
// it as an explicit argument; Python chooses it (CPU detection, QNNREF_ISA).
// Convention: the dispatchers that Cython calls (inline, in each NAME.h) take
// `int32_t isa` and return `int32_t` (a Status); the per-ISA functions in
// namespaces qnnref::scalar and qnnref::avx2 have identical signatures.
enum Isa : int32_t { ISA_SCALAR = 0, ISA_AVX2 = 1 };

// True when this CPU and OS support AVX2 and FMA (src/cpu.cpp).
bool cpu_has_avx2();

// Storage dtypes (int4/uint4 are held unpacked in int8/uint8, as in numpy).
enum DType : int32_t { DT_INT8 = 0, DT_UINT8 = 1, DT_INT16 = 2, DT_INT32 = 3, DT_INT4 = 4, DT_UINT4 = 5 };

// Status of a kernel call. NEEDS_REFERENCE: a runtime precondition (REQUIRE)
// may have failed; the caller reruns the reference, which raises the
// specified error (or, if the precondition held after all, gives the result).
enum Status : int32_t { STATUS_OK = 0, STATUS_NEEDS_REFERENCE = 1 };

// A requantization prepared for one node (qnnref.arith.RequantParams plus the
// output zero point and clamp range). Per-channel arrays are indexed by the
// output channel when per_channel is set, else by 0. Filled by Python
// (qnnref/_kernels/_common.py, common.pxi); the arrays outlive the call.
struct Requant {
  int32_t kind;            // RecipeKind
  int32_t rounding;        // Rounding
  int32_t double_round;    // DoubleRound (fixed point only)
  int32_t float_dtype;     // FloatDtype (float recipes only)
  int32_t per_channel;     // 0 or 1
  const int32_t* multiplier;  // fixed point: [C] or [1]
  const int32_t* shift;       // fixed point: [C] or [1]
  const float* real_f32;      // the real multiplier rounded to float32: [C] or [1]
  const double* real_f64;     // the real multiplier as float64: [C] or [1]
  int32_t zero_point;      // output zero point (per tensor)
  int32_t lo, hi;          // output range: the dtype's, narrowed by the fused activation
};

// apply_requant: one accumulator (|acc| <= 2^31) scaled and rounded per the
// recipe, before the zero point and clamp. Sets *error on a REQUIRE failure.
static inline int64_t apply_requant(int64_t acc, const Requant& p, int64_t channel, bool* error) {
  const int64_t c = p.per_channel ? channel : 0;
  if (p.kind == FIXED_POINT) {
    return multiply_by_quantized_multiplier(acc, p.multiplier[c], p.shift[c], Rounding(p.rounding),
                                            DoubleRound(p.double_round), error);
  }
  if (p.float_dtype == FLOAT32) {
    // int32 -> float32 rounds to nearest even above 2^24, as numpy and MLAS do
    const float v = static_cast<float>(acc) * p.real_f32[c];
    return float_to_int64_clamped(round_float(v, Rounding(p.rounding)));
  }
  const double v = static_cast<double>(acc) * p.real_f64[c];
  return float_to_int64_clamped(round_float(v, Rounding(p.rounding)));
}

// requantize_output: clamp(apply_requant(acc) + zero_point, lo, hi).
static inline int32_t requantize_output(int64_t acc, const Requant& p, int64_t channel, bool* error) {
  return static_cast<int32_t>(saturate(apply_requant(acc, p, channel, error) + p.zero_point, p.lo, p.hi));
}

// parallel_for: run f(begin, end) over [0, n) split into at most `threads`
// contiguous, disjoint ranges (each a multiple of `grain` but the last).
// Every output element is computed by exactly one call, in the same way
// whatever the split: results do not depend on the thread count as long as
// f partitions the OUTPUT and never splits a reduction.
template <typename F>
static void parallel_for(int threads, int64_t n, int64_t grain, F&& f) {
  if (grain < 1) grain = 1;
  const int64_t chunks = (n + grain - 1) / grain;
  int64_t t = threads < 1 ? 1 : threads;
  if (t > chunks) t = chunks;
  if (t <= 1) {
    if (n > 0) f(int64_t(0), n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(size_t(t - 1));
  int64_t begin = 0;
  for (int64_t i = 0; i < t; ++i) {
    const int64_t c = chunks / t + (i < chunks % t ? 1 : 0);
    const int64_t end = (begin + c * grain) < n ? begin + c * grain : n;
    if (i == t - 1) {
      f(begin, end);   // the calling thread takes the last range
    } else {
      pool.emplace_back([&f, begin, end] { f(begin, end); });
    }
    begin = end;
  }
  for (auto& th : pool) th.join();
}

}  // namespace qnnref
