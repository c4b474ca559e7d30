#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// AVX2 requantization: requantize_row, 8 accumulators at a time, bit-exact
// with scalar::requantize_row (= qnnref.arith.requantize_output) for every
// recipe, rounding mode, output dtype, zero point and clamp range.
//
// Strategy per recipe (each a "block" computing 8 outputs in [lo, hi]):
//
// * fixed_point, double_round none / tosa: the exact 64-bit products
//   acc * M (_mm256_mul_epi32 on the even and on the odd lanes), then one
//   exact floor division by 2^s after adding a rounding bias that depends on
//   the mode (see round_bias). AVX2 has no 64-bit arithmetic right shift, so
//   floor(v / 2^s) is computed as a logical shift of v + 2^63 (flip the sign
//   bit), minus 2^(63-s): exact for every int64 v. The zero point is folded
//   into that correction, then a 64-bit clamp to [lo, hi].
// * fixed_point, gemmlowp: 32-bit lanes. acc << left with an exact overflow
//   test (shift back and compare: the REQUIRE), srdhm from the 64-bit
//   products as floor((a*b + 2^30) / 2^31) (= gemmlowp's nudge-and-truncate,
//   see srdhm_lanes), then the rounding division by 2^right on int32 lanes.
// * float32 / float64: convert, one IEEE multiplication, round by the mode
//   (rq::round8/round4), then the exact clamp-and-offset in doubles
//   (rq::FloatFinish).
//
// Per-channel parameters (channel ch0 + i) are loaded 8 at a time (once for
// all rows of a requantize_rows call); the remainder n % 8 runs the scalar code. Every block is instantiated per
// rounding mode and per-channel-ness, so the hot loops carry no branches.
#include <type_traits>

#include "qnnref/requantize.h"

namespace qnnref {
namespace avx2 {
namespace {

using namespace rq;

// ---------------------------------------------------------------------------
// Fixed point, one rounding: floor((x + bias) / 2^s) on 64-bit lanes
// ---------------------------------------------------------------------------

// The per-lane constants of a division by 2^s, s in [1, 62], for 4 lanes.
struct PotLanes {
  __m256i s;      // shift count
  __m256i half;   // 2^(s-1)
  __m256i dm1;    // 2^s - 1
  __m256i off;    // zp - 2^(63-s): removes the 2^63 added for the logical shift, adds zp
};

inline PotLanes pot_lanes(__m256i s, __m256i zp64) {
  const __m256i one = _mm256_set1_epi64x(1);
  PotLanes k;
  k.s = s;
  k.half = _mm256_sllv_epi64(one, _mm256_sub_epi64(s, one));
  k.dm1 = _mm256_sub_epi64(_mm256_sllv_epi64(one, s), one);
  k.off = _mm256_sub_epi64(zp64, _mm256_srlv_epi64(_mm256_set1_epi64x(INT64_MIN), s));
  return k;
}

inline __m256i negative64(__m256i x) { return _mm256_cmpgt_epi64(_mm256_setzero_si256(), x); }

// The bias b in [0, 2^s) with floor((x + b) / 2^s) = rounding_divide_by_pot(x, s, M)
// (arith.h round_quotient, with q = floor(x / 2^s), r = x - q 2^s):
//   half_up      up iff r >= 2^(s-1)                   b = 2^(s-1)
//   half_down    up iff r >  2^(s-1)                   b = 2^(s-1) - 1
//   half_away    as half_up for x >= 0, half_down for x < 0
//   half_to_even as half_down, or half_up when q is odd: b = 2^(s-1) - 1 + (q & 1)
//   floor        never up                              b = 0
//   ceil         up iff r > 0                          b = 2^s - 1
//   truncate     as ceil for x < 0, floor for x >= 0
// |x| <= 2^62 and b < 2^62, so x + b fits int64.
template <Rounding M>
inline __m256i round_bias(__m256i x, const PotLanes& k) {
  const __m256i one = _mm256_set1_epi64x(1);
  if constexpr (M == HALF_UP) return k.half;
  if constexpr (M == HALF_DOWN) return _mm256_sub_epi64(k.half, one);
  if constexpr (M == HALF_AWAY_FROM_ZERO) return _mm256_add_epi64(k.half, negative64(x));  // -1 if x < 0
  if constexpr (M == HALF_TO_EVEN) {
    const __m256i q_odd = _mm256_and_si256(_mm256_srlv_epi64(x, k.s), one);  // bit s of x = q & 1
    return _mm256_add_epi64(_mm256_sub_epi64(k.half, one), q_odd);
  }
  if constexpr (M == FLOOR) return _mm256_setzero_si256();
  if constexpr (M == CEIL) return k.dm1;
  return _mm256_and_si256(negative64(x), k.dm1);  // TRUNCATE
}

// floor(v / 2^s) + zp for any int64 v: (v + 2^63) as unsigned, shifted
// logically, is floor(v / 2^s) + 2^(63-s) exactly; k.off = zp - 2^(63-s).
inline __m256i floor_shift_add_zp(__m256i v, const PotLanes& k) {
  const __m256i flipped = _mm256_xor_si256(v, _mm256_set1_epi64x(INT64_MIN));
  return _mm256_add_epi64(_mm256_srlv_epi64(flipped, k.s), k.off);
}

inline __m256i clamp64(__m256i v, __m256i lo, __m256i hi) {
  v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
  return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

// The even lanes' low halves and the odd lanes' low halves, back in order.
inline __m256i merge_even_odd(__m256i even, __m256i odd) {
  return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// double_round none (any mode) or tosa (then M is ignored: half up plus the
// +-2^30 nudge for s > 31 by the sign of acc, as arith.h).
//
// Narrow (see narrow_usable): every shift s is >= 31 and the output dtype
// is at most 16 bits. Then the quotient q = floor((acc * M + b) / 2^s) fits
// int32: 0 <= M < 2^31 and |acc| <= 2^31 give -2^62 < acc * M < 2^62 - 2^32,
// the bias b is in [0, 2^s) (round_bias; tosa: 2^(s-1) +- 2^30, s > 31), so
// -2^31 <= q < 2^31. Its low 32 bits are q itself, and the clamp to
// [lo - zp, hi - zp] (both within +-2^17) and the + zp are done on int32
// lanes (VPMAXSD / VPMINSD / VPADDD) instead of the 64-bit compares and
// blends: the same value.
template <Rounding M, bool PerChannel, bool Tosa, bool Narrow = false>
struct FixedPointSingle {
  const Requant& p;
  __m256i m;          // per tensor: the multiplier in every lane
  PotLanes k;         // per tensor: the division constants
  __m256i zp64, lo64, hi64;
  __m256i zp32, lo_minus_zp32, hi_minus_zp32;   // Narrow only

  // Whether Narrow applies to channels ch0 .. ch0 + n - 1 with this output dtype.
  static bool narrow_usable(const Requant& p, int64_t ch0, int64_t n, int32_t out_dtype) {
    if (out_dtype == DT_INT32) return false;
    const int64_t first = p.per_channel ? ch0 : 0, count = p.per_channel ? n : 1;
    for (int64_t c = first; c < first + count; ++c) {
      if (p.shift[c] > 0 || p.multiplier[c] < 0) return false;   // s = 31 - shift >= 31, M >= 0
    }
    return true;
  }

  explicit FixedPointSingle(const Requant& req) : p(req) {
    // Narrow: the zero point is added after the 32-bit clamp, not in the 64-bit lanes
    zp64 = _mm256_set1_epi64x(Narrow ? 0 : p.zero_point);
    lo64 = _mm256_set1_epi64x(p.lo);
    hi64 = _mm256_set1_epi64x(p.hi);
    zp32 = _mm256_set1_epi32(p.zero_point);
    lo_minus_zp32 = _mm256_set1_epi32(Narrow ? p.lo - p.zero_point : 0);
    hi_minus_zp32 = _mm256_set1_epi32(Narrow ? p.hi - p.zero_point : 0);
    m = _mm256_set1_epi32(p.multiplier[0]);
    k = pot_lanes(_mm256_set1_epi64x(31 - p.shift[0]), zp64);
  }

  __m256i half_lanes(__m256i prod, __m256i acc_sign, const PotLanes& kk) const {
    __m256i bias;
    if constexpr (Tosa) {
      // 2^(s-1) + (s > 31 ? +-2^30 : 0), the sign of acc: (t ^ sg) - sg = sg ? -t : t
      const __m256i t = _mm256_and_si256(_mm256_cmpgt_epi64(kk.s, _mm256_set1_epi64x(31)),
                                         _mm256_set1_epi64x(int64_t(1) << 30));
      bias = _mm256_add_epi64(kk.half, _mm256_sub_epi64(_mm256_xor_si256(t, acc_sign), acc_sign));
    } else {
      bias = round_bias<M>(prod, kk);
    }
    const __m256i q = floor_shift_add_zp(_mm256_add_epi64(prod, bias), kk);
    return Narrow ? q : clamp64(q, lo64, hi64);   // Narrow: clamped on int32 lanes after merging
  }

  // The constants of channels c .. c + 7 (the same in every lane per tensor).
  struct Lanes {
    __m256i mult;
    PotLanes ke, ko;   // even and odd lanes
  };
  [[gnu::always_inline]] Lanes lanes(int64_t c) const {
    if constexpr (PerChannel) {
      const __m256i total = _mm256_sub_epi32(_mm256_set1_epi32(31),
                                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.shift + c)));
      return Lanes{_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.multiplier + c)),
                   pot_lanes(_mm256_and_si256(total, _mm256_set1_epi64x(0xFFFFFFFF)), zp64),
                   pot_lanes(_mm256_srli_epi64(total, 32), zp64)};
    } else {
      (void)c;
      return Lanes{m, k, k};
    }
  }

  [[gnu::always_inline]] __m256i operator()(__m256i acc, int64_t c) const { return apply(acc, lanes(c)); }

  [[gnu::always_inline]] __m256i apply(__m256i acc, const Lanes& l) const {
    const __m256i mult = l.mult;
    const PotLanes& ke = l.ke;
    const PotLanes& ko = l.ko;
    // exact products: |acc * M| <= 2^62 (mul_epi32 sign-extends the low halves)
    const __m256i prod_even = _mm256_mul_epi32(acc, mult);
    const __m256i prod_odd = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), _mm256_srli_epi64(mult, 32));
    __m256i sign_even = _mm256_setzero_si256(), sign_odd = sign_even;
    if constexpr (Tosa) {
      const __m256i sg = _mm256_srai_epi32(acc, 31);  // -1 where acc < 0
      sign_even = _mm256_shuffle_epi32(sg, 0xA0);     // lanes 0,0,2,2 (per 128-bit half)
      sign_odd = _mm256_shuffle_epi32(sg, 0xF5);      // lanes 1,1,3,3
    }
    const __m256i y = merge_even_odd(half_lanes(prod_even, sign_even, ke), half_lanes(prod_odd, sign_odd, ko));
    if constexpr (Narrow) {
      return _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(y, lo_minus_zp32), hi_minus_zp32), zp32);
    }
    return y;
  }

  bool failed() const { return false; }
};

// ---------------------------------------------------------------------------
// Fixed point, gemmlowp double rounding, on 32-bit lanes
// ---------------------------------------------------------------------------

// srdhm(a, b) for 8 lanes (arith.h): gemmlowp adds 2^30 (a*b >= 0) or
// 1 - 2^30 (a*b < 0) and truncates toward zero; for a*b < 0 that is
// ceil((ab + 1 - 2^30) / 2^31) = floor((ab + 2^30) / 2^31), the same
// expression as for a*b >= 0. The result fits int32 except for
// a = b = INT32_MIN (2^31), which saturates to INT32_MAX.
inline __m256i srdhm_lanes(__m256i a, __m256i b) {
  const __m256i nudge = _mm256_set1_epi64x(int64_t(1) << 30);
  const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(a, b), nudge);
  const __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32)), nudge);
  // bits 31..62 of each sum are the low 32 bits of the (arithmetic) quotient:
  // move them to the low half (even lanes) or the high half (odd lanes)
  __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
  const __m256i min32 = _mm256_set1_epi32(INT32_MIN);
  const __m256i both_min = _mm256_and_si256(_mm256_cmpeq_epi32(a, min32), _mm256_cmpeq_epi32(b, min32));
  return _mm256_blendv_epi8(high, _mm256_set1_epi32(INT32_MAX), both_min);
}

// rounding_divide_by_pot(x, r, M) for int32 x and r in [0, 31]:
// q = x >> r (arithmetic), rem = x & (2^r - 1), and q + 1 iff
// rem + b >= 2^r with the bias b of round_bias (b <= 2^r - 1, and b = 0 for
// r = 0: the AND with the mask). rem + b < 2^32: unsigned lanes.
template <Rounding M>
inline __m256i rounding_divide_by_pot32(__m256i x, __m256i r) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i pot = _mm256_sllv_epi32(one, r);
  const __m256i mask = _mm256_sub_epi32(pot, one);
  const __m256i half = _mm256_srli_epi32(pot, 1);             // 2^(r-1), 0 for r = 0
  const __m256i q = _mm256_srav_epi32(x, r);
  const __m256i rem = _mm256_and_si256(x, mask);
  const __m256i neg = _mm256_srai_epi32(x, 31);                // -1 where x < 0
  __m256i bias;
  if constexpr (M == HALF_UP) bias = half;
  else if constexpr (M == HALF_DOWN) bias = _mm256_and_si256(_mm256_sub_epi32(half, one), mask);
  else if constexpr (M == HALF_AWAY_FROM_ZERO) bias = _mm256_and_si256(_mm256_add_epi32(half, neg), mask);
  else if constexpr (M == HALF_TO_EVEN)
    bias = _mm256_and_si256(_mm256_add_epi32(_mm256_sub_epi32(half, one), _mm256_and_si256(q, one)), mask);
  else if constexpr (M == FLOOR) bias = _mm256_setzero_si256();
  else if constexpr (M == CEIL) bias = mask;
  else bias = _mm256_and_si256(neg, mask);                     // TRUNCATE
  const __m256i up = _mm256_srlv_epi32(_mm256_add_epi32(rem, bias), r);  // 0 or 1
  return _mm256_add_epi32(q, up);
}

inline int32_t saturate32(int64_t v) { return int32_t(saturate(v, INT32_MIN_, INT32_MAX_)); }

template <Rounding M, bool PerChannel>
struct Gemmlowp {
  const Requant& p;
  __m256i m, left, right;      // per tensor
  __m256i lo_minus_zp, hi_minus_zp, zp;
  __m256i overflow = _mm256_setzero_si256();  // nonzero lanes: acc << left did not fit

  // Usable when [lo - zp, hi - zp] meets the int32 range (else every output
  // is lo or hi: the caller runs the scalar code). Then clamping the int32
  // result to the saturated bounds and adding zp is exact, without overflow.
  static bool usable(const Requant& p) {
    return int64_t(p.lo) - p.zero_point <= INT32_MAX_ && int64_t(p.hi) - p.zero_point >= INT32_MIN_;
  }

  explicit Gemmlowp(const Requant& req) : p(req) {
    m = _mm256_set1_epi32(p.multiplier[0]);
    left = _mm256_set1_epi32(p.shift[0] > 0 ? p.shift[0] : 0);
    right = _mm256_set1_epi32(p.shift[0] > 0 ? 0 : -p.shift[0]);
    lo_minus_zp = _mm256_set1_epi32(saturate32(int64_t(p.lo) - p.zero_point));
    hi_minus_zp = _mm256_set1_epi32(saturate32(int64_t(p.hi) - p.zero_point));
    zp = _mm256_set1_epi32(p.zero_point);
  }

  struct Lanes {
    __m256i mult, left, right;
  };
  [[gnu::always_inline]] Lanes lanes(int64_t c) const {
    if constexpr (PerChannel) {
      const __m256i sh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.shift + c));
      return Lanes{_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.multiplier + c)),
                   _mm256_max_epi32(sh, _mm256_setzero_si256()),
                   _mm256_max_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), sh), _mm256_setzero_si256())};
    } else {
      (void)c;
      return Lanes{m, left, right};
    }
  }

  [[gnu::always_inline]] __m256i operator()(__m256i acc, int64_t c) { return apply(acc, lanes(c)); }

  [[gnu::always_inline]] __m256i apply(__m256i acc, const Lanes& lc) {
    const __m256i mult = lc.mult, l = lc.left, r = lc.right;
    // acc * 2^left must fit int32 (REQUIRE): shifting back must give acc
    const __m256i scaled = _mm256_sllv_epi32(acc, l);
    overflow = _mm256_or_si256(overflow, _mm256_xor_si256(_mm256_srav_epi32(scaled, l), acc));
    const __m256i y = rounding_divide_by_pot32<M>(srdhm_lanes(scaled, mult), r);
    return _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(y, lo_minus_zp), hi_minus_zp), zp);
  }

  bool failed() const { return !_mm256_testz_si256(overflow, overflow); }
};

// ---------------------------------------------------------------------------
// Float recipes
// ---------------------------------------------------------------------------

template <Rounding M, bool PerChannel>
struct Float32 {
  const Requant& p;
  __m256 real;
  FloatFinish finish;
  explicit Float32(const Requant& req)
      : p(req), real(_mm256_set1_ps(req.real_f32[0])), finish(req.zero_point, req.lo, req.hi) {}

  struct Lanes {
    __m256 r;
  };
  [[gnu::always_inline]] Lanes lanes(int64_t c) const {
    return Lanes{PerChannel ? _mm256_loadu_ps(p.real_f32 + c) : real};
  }
  [[gnu::always_inline]] __m256i operator()(__m256i acc, int64_t c) const { return apply(acc, lanes(c)); }

  [[gnu::always_inline]] __m256i apply(__m256i acc, const Lanes& l) const {
    const __m256 r = l.r;
    // int32 -> float32 rounds to nearest even (MXCSR default), as static_cast
    return finish(round8<M>(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), r)));
  }
  bool failed() const { return false; }
};

template <Rounding M, bool PerChannel>
struct Float64 {
  const Requant& p;
  __m256d real;
  FloatFinish finish;
  explicit Float64(const Requant& req)
      : p(req), real(_mm256_set1_pd(req.real_f64[0])), finish(req.zero_point, req.lo, req.hi) {}

  struct Lanes {
    __m256d r0, r1;   // channels c .. c + 3 and c + 4 .. c + 7
  };
  [[gnu::always_inline]] Lanes lanes(int64_t c) const {
    return Lanes{PerChannel ? _mm256_loadu_pd(p.real_f64 + c) : real,
                 PerChannel ? _mm256_loadu_pd(p.real_f64 + c + 4) : real};
  }
  [[gnu::always_inline]] __m256i operator()(__m256i acc, int64_t c) const { return apply(acc, lanes(c)); }

  [[gnu::always_inline]] __m256i apply(__m256i acc, const Lanes& l) const {
    const __m256d r0 = l.r0, r1 = l.r1;
    const __m256d a0 = _mm256_cvtepi32_pd(_mm256_castsi256_si128(acc));      // exact
    const __m256d a1 = _mm256_cvtepi32_pd(_mm256_extracti128_si256(acc, 1));
    const __m128i y0 = finish(round4<M>(_mm256_mul_pd(a0, r0)));
    const __m128i y1 = finish(round4<M>(_mm256_mul_pd(a1, r1)));
    return _mm256_set_m128i(y1, y0);
  }
  bool failed() const { return false; }
};

// ---------------------------------------------------------------------------
// The row loop and the dispatch
// ---------------------------------------------------------------------------

// Rows r < rows of n8 (a multiple of 8) columns: columns outer, so that the
// constants of channels ch0 + i .. + 7 (Block::lanes: loads, and for fixed
// point the shift constants) are set up once for all rows.
template <class Block, typename T>
bool run_blocks(Block& block, const int32_t* acc, int64_t ld_acc, int64_t rows, int64_t n8, int64_t ch0, T* out,
                int64_t ld_out) {
  for (int64_t i = 0; i < n8; i += 8) {
    const typename Block::Lanes lanes = block.lanes(ch0 + i);
    for (int64_t r = 0; r < rows; ++r) {
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + r * ld_acc + i));
      store8(out + r * ld_out + i, block.apply(a, lanes));
    }
  }
  return block.failed();
}

template <class Block>
Status run_rows(const int32_t* acc, int64_t ld_acc, int64_t rows, int64_t n, const Requant& p, int64_t ch0,
                int32_t out_dtype, void* out, int64_t ld_out) {
  Block block(p);
  const int64_t n8 = n - n % 8;
  bool failed;
  switch (out_dtype) {
    case DT_INT8:
    case DT_INT4: failed = run_blocks(block, acc, ld_acc, rows, n8, ch0, static_cast<int8_t*>(out), ld_out); break;
    case DT_UINT8:
    case DT_UINT4: failed = run_blocks(block, acc, ld_acc, rows, n8, ch0, static_cast<uint8_t*>(out), ld_out); break;
    case DT_INT16: failed = run_blocks(block, acc, ld_acc, rows, n8, ch0, static_cast<int16_t*>(out), ld_out); break;
    default: failed = run_blocks(block, acc, ld_acc, rows, n8, ch0, static_cast<int32_t*>(out), ld_out); break;
  }
  // the remainder of each row: the scalar definition itself
  const int64_t bytes = dtype_bytes(out_dtype);
  int32_t tail = STATUS_OK;
  for (int64_t r = 0; r < rows && n8 < n; ++r) {
    void* tail_out = static_cast<char*>(out) + (r * ld_out + n8) * bytes;
    tail |= scalar::requantize_row(acc + r * ld_acc + n8, n - n8, p, ch0 + n8, out_dtype, tail_out);
  }
  return failed || tail != STATUS_OK ? STATUS_NEEDS_REFERENCE : STATUS_OK;
}

template <bool PC>
Status dispatch(const int32_t* acc, int64_t ld_acc, int64_t rows, int64_t n, const Requant& p, int64_t ch0,
                int32_t out_dtype, void* out, int64_t ld_out) {
  if (p.kind == FIXED_POINT) {
    const bool narrow = FixedPointSingle<HALF_UP, PC, false>::narrow_usable(p, ch0, n, out_dtype);
    if (p.double_round == DOUBLE_ROUND_TOSA) {
      if (narrow) {
        return run_rows<FixedPointSingle<HALF_UP, PC, true, true>>(acc, ld_acc, rows, n, p, ch0, out_dtype, out,
                                                                   ld_out);
      }
      return run_rows<FixedPointSingle<HALF_UP, PC, true>>(acc, ld_acc, rows, n, p, ch0, out_dtype, out, ld_out);
    }
    if (p.double_round == DOUBLE_ROUND_GEMMLOWP) {
      if (!Gemmlowp<HALF_UP, PC>::usable(p)) {
        return scalar::requantize_rows(acc, ld_acc, rows, n, p, ch0, out_dtype, out, ld_out);
      }
      return with_mode(p.rounding, [&](auto mode) {
        return run_rows<Gemmlowp<decltype(mode)::value, PC>>(acc, ld_acc, rows, n, p, ch0, out_dtype, out, ld_out);
      });
    }
    return with_mode(p.rounding, [&](auto mode) {
      if (narrow) {
        return run_rows<FixedPointSingle<decltype(mode)::value, PC, false, true>>(acc, ld_acc, rows, n, p, ch0,
                                                                                  out_dtype, out, ld_out);
      }
      return run_rows<FixedPointSingle<decltype(mode)::value, PC, false>>(acc, ld_acc, rows, n, p, ch0, out_dtype,
                                                                          out, ld_out);
    });
  }
  if (p.float_dtype == FLOAT32) {
    return with_mode(p.rounding, [&](auto mode) {
      return run_rows<Float32<decltype(mode)::value, PC>>(acc, ld_acc, rows, n, p, ch0, out_dtype, out, ld_out);
    });
  }
  return with_mode(p.rounding, [&](auto mode) {
    return run_rows<Float64<decltype(mode)::value, PC>>(acc, ld_acc, rows, n, p, ch0, out_dtype, out, ld_out);
  });
}

}  // namespace

Status requantize_tensor(const void* x, int32_t x_dtype, int64_t n, int64_t mid, int64_t inner,
                         const int32_t* x_zp, const int32_t* y_zp, const Requant& p, int32_t out_dtype,
                         void* y, int32_t threads) {
  return requantize_tensor_for<ISA_AVX2>(x, x_dtype, n, mid, inner, x_zp, y_zp, p, out_dtype, y, threads);
}

Status requantize_row(const int32_t* acc, int64_t n, const Requant& p, int64_t ch0, int32_t out_dtype,
                      void* out) {
  if (n < 8) return scalar::requantize_row(acc, n, p, ch0, out_dtype, out);
  return p.per_channel ? dispatch<true>(acc, n, 1, n, p, ch0, out_dtype, out, n)
                       : dispatch<false>(acc, n, 1, n, p, ch0, out_dtype, out, n);
}

Status requantize_rows(const int32_t* acc, int64_t ld_acc, int64_t rows, int64_t n, const Requant& p, int64_t ch0,
                       int32_t out_dtype, void* out, int64_t ld_out) {
  if (n < 8 || rows <= 0) return scalar::requantize_rows(acc, ld_acc, rows, n, p, ch0, out_dtype, out, ld_out);
  return p.per_channel ? dispatch<true>(acc, ld_acc, rows, n, p, ch0, out_dtype, out, ld_out)
                       : dispatch<false>(acc, ld_acc, rows, n, p, ch0, out_dtype, out, ld_out);
}

}  // namespace avx2
}  // namespace qnnref
