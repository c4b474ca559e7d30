// qnnref/arith.h -- the exact integer arithmetic of spec/arithmetic.md, in C++.
//
// One function per function of qnnref/arith.py, with the same name and the
// same meaning, on scalars. Every kernel (scalar and AVX2) uses these for its
// per-element arithmetic or, in SIMD code, reproduces them lane by lane and
// falls back to them for the remainder of a row. Nothing here depends on a
// compiler flag: the translation units are built with -ffp-contract=off and
// -fno-fast-math, so a float expression is evaluated exactly as written
// (one IEEE rounding per operation, no fused multiply-add).
//
// Signed shifts: C++17 leaves a left shift of a negative value undefined,
// so shifts of values that may be negative are written as multiplications
// or on uint64_t. A right shift of a negative int64_t is an arithmetic shift
// (floor division by a power of two) on every compiler qnnref supports (GCC,
// Clang, MSVC) and is defined so from C++20.
#pragma once

#include <cmath>
#include <cstdint>

namespace qnnref {

// Rounding modes, in the order of qnnref.arith.ROUNDING_MODES.
enum Rounding : int32_t {
  HALF_TO_EVEN = 0,
  HALF_AWAY_FROM_ZERO = 1,
  HALF_UP = 2,
  HALF_DOWN = 3,
  FLOOR = 4,
  CEIL = 5,
  TRUNCATE = 6,
};

// Recipe.kind, Recipe.double_round, Recipe.float_dtype.
enum RecipeKind : int32_t { FIXED_POINT = 0, FLOAT = 1 };
enum DoubleRound : int32_t { DOUBLE_ROUND_NONE = 0, DOUBLE_ROUND_GEMMLOWP = 1, DOUBLE_ROUND_TOSA = 2 };
enum FloatDtype : int32_t { FLOAT32 = 0, FLOAT64 = 1 };

constexpr int64_t INT32_MIN_ = -2147483648LL;
constexpr int64_t INT32_MAX_ = 2147483647LL;

// round_quotient: finish the exact division n / d (d >= 1) given the floor
// quotient q, the remainder r in [0, d) and the sign of n. Returns q or q + 1.
// The fraction r/d is compared with 1/2 as 2r vs d: exact integers.
static inline int64_t round_quotient(int64_t q, int64_t r, int64_t d, bool negative, Rounding mode) {
  const bool nonzero = r != 0;
  const bool above = 2 * r > d;
  const bool tie = 2 * r == d;
  bool up = false;
  switch (mode) {
    case FLOOR: up = false; break;
    case CEIL: up = nonzero; break;
    case TRUNCATE: up = nonzero && negative; break;
    case HALF_UP: up = above || tie; break;
    case HALF_DOWN: up = above; break;
    case HALF_AWAY_FROM_ZERO: up = above || (tie && !negative); break;
    case HALF_TO_EVEN: up = above || (tie && (q & 1) != 0); break;
  }
  return q + (up ? 1 : 0);
}

// rounding_divide_by_pot: x / 2^e rounded by mode, exactly.
// REQUIRE |x| < 2^62 and 0 <= e <= 62 (so nothing below overflows).
static inline int64_t rounding_divide_by_pot(int64_t x, int32_t e, Rounding mode) {
  if (mode == HALF_UP) {
    // floor((x + 2^(e-1)) / 2^e): TOSA's rounding shift.
    const int64_t half = e > 0 ? (int64_t(1) << (e - 1)) : 0;
    return (x + half) >> e;
  }
  const int64_t q = x >> e;                                  // floor(x / 2^e)
  const int64_t r = x & ((int64_t(1) << e) - 1);             // x - q * 2^e, in [0, 2^e)
  return round_quotient(q, r, int64_t(1) << e, x < 0, mode);
}

// rounding_divide: n / d (d >= 1) rounded by mode, exactly. REQUIRE |n| < 2^62.
static inline int64_t rounding_divide(int64_t n, int64_t d, Rounding mode) {
  int64_t q = n / d;                                         // truncates toward zero
  if (n % d != 0 && n < 0) q -= 1;                           // now floor(n / d)
  const int64_t r = n - q * d;                               // in [0, d)
  return round_quotient(q, r, d, n < 0, mode);
}

// saturate: clamp to [lo, hi] (the caller casts to the storage type).
static inline int64_t saturate(int64_t x, int64_t lo, int64_t hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

// srdhm: SaturatingRoundingDoublingHighMul of int32 a, b (gemmlowp):
// a*b / 2^31 rounded half up, INT32_MIN * INT32_MIN -> INT32_MAX.
static inline int64_t srdhm(int64_t a, int64_t b) {
  if (a == INT32_MIN_ && b == INT32_MIN_) return INT32_MAX_;
  const int64_t ab = a * b;
  const int64_t nudged = ab + (ab >= 0 ? (int64_t(1) << 30) : 1 - (int64_t(1) << 30));
  return nudged >= 0 ? (nudged >> 31) : -((-nudged) >> 31);  // C division: toward zero
}

// round_float: round to an integral value by mode (same float type).
// A tie is recognised exactly as |x - rint(x)| == 1/2 (see arith.py).
template <typename F>
static inline F round_float(F x, Rounding mode) {
  switch (mode) {
    case HALF_TO_EVEN: return std::nearbyint(x);             // default FE_TONEAREST
    case FLOOR: return std::floor(x);
    case CEIL: return std::ceil(x);
    case TRUNCATE: return std::trunc(x);
    default: break;
  }
  const F r = std::nearbyint(x);
  const bool tie = std::fabs(x - r) == F(0.5);
  if (!tie) return r;
  if (mode == HALF_UP) return std::ceil(x);
  if (mode == HALF_DOWN) return std::floor(x);
  return x > 0 ? std::ceil(x) : std::floor(x);               // HALF_AWAY_FROM_ZERO
}

// The clamp of a rounded float before conversion to int64 (arith.py:
// values beyond +-2^40 saturate later, at the output dtype).
template <typename F>
static inline int64_t float_to_int64_clamped(F v) {
  const F lim = F(1099511627776.0);                          // 2^40
  if (v > lim) v = lim;
  if (v < -lim) v = -lim;
  return static_cast<int64_t>(v);
}

// multiply_by_quantized_multiplier: apply m ~= multiplier * 2^(shift - 31)
// to acc (|acc| <= 2^31) by a fixed-point recipe. Sets *error (a REQUIRE
// failure: gemmlowp's acc * 2^shift does not fit int32) and returns 0 then.
static inline int64_t multiply_by_quantized_multiplier(int64_t acc, int32_t multiplier, int32_t shift,
                                                Rounding mode, DoubleRound double_round,
                                                bool* error) {
  if (double_round == DOUBLE_ROUND_GEMMLOWP) {
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int64_t scaled = acc * (int64_t(1) << left);
    if (scaled < INT32_MIN_ || scaled > INT32_MAX_) {
      *error = true;
      return 0;
    }
    return rounding_divide_by_pot(srdhm(scaled, multiplier), right, mode);
  }
  const int32_t total = 31 - shift;                          // in [1, 62]
  const int64_t prod = acc * int64_t(multiplier);            // |prod| < 2^62
  if (double_round == DOUBLE_ROUND_TOSA) {
    const int64_t bias = total > 31 ? (acc >= 0 ? (int64_t(1) << 30) : -(int64_t(1) << 30)) : 0;
    return (prod + bias + (int64_t(1) << (total - 1))) >> total;
  }
  return rounding_divide_by_pot(prod, total, mode);
}

}  // namespace qnnref
