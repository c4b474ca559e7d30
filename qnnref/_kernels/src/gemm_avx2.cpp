#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// AVX2 GEMM: the register tiles of the two packed formats (include/qnnref/gemm.h),
// A-row packing and the epilogue, with the shared driver.
//
// Register tiles: R rows x 16 columns = 2R accumulators of 8 int32, R <= 6
// (pairs) or R <= 4 (nibbles, which need more temporaries).
// Pairs: per pair of rows (k, k+1) of B, two 16-byte loads sign-extended to
// int16 (VPMOVSXBW), and per row of A one broadcast int16 pair; VPMADDWD
// gives a_k * b_k + a_k+1 * b_k+1 per column in int32 (exact: <= 2 * 255 * 128
// in magnitude), VPADDD accumulates (wrapping: exact modulo 2^32).
// Nibbles: per 8 rows of B, two 32-byte loads split into low and high
// nibbles; VPMADDUBSW multiplies the unsigned A bytes with the nibbles and
// adds pairs into int16 (<= 2 * 255 * 15 = 7650: never saturates, nor does
// the sum of the two halves, <= 15300), VPMADDWD by ones adds pairs of
// those into int32.
#include <immintrin.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "qnnref/gemm.h"
#include "qnnref/requantize.h"

namespace qnnref {
namespace avx2 {

static inline __m256i broadcast_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

static inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// x - zp for one run of len bytes into int16 at dst (16 values per step);
// with Sum, also adds the values into vsum (int32 lanes) and *sum (the
// scalar remainder).
template <bool Signed, bool Sum>
static void center_run(const uint8_t* src, int64_t len, int32_t zp_a, uint8_t* dst, __m256i* vsum, uint32_t* sum) {
  const __m256i zp = _mm256_set1_epi16(int16_t(zp_a));
  const __m256i ones = _mm256_set1_epi16(1);
  int64_t i = 0;
  for (; i + 16 <= len; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    const __m256i w = _mm256_sub_epi16(Signed ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v), zp);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * i), w);
    if (Sum) *vsum = _mm256_add_epi32(*vsum, _mm256_madd_epi16(w, ones));
  }
  for (; i < len; ++i) {
    const int16_t v = int16_t(gemm_centered(src[i], Signed, zp_a));
    std::memcpy(dst + 2 * i, &v, sizeof v);
    if (Sum) *sum += uint32_t(int32_t(v));
  }
}

template <bool Signed, bool Sum>
static int32_t pack_pairs_row(const Segment* seg, int64_t nseg, int32_t zp_a, int64_t k_pad, uint8_t* dst) {
  __m256i vsum = _mm256_setzero_si256();
  uint32_t sum = 0;
  int64_t k = 0;
  for (int64_t s = 0; s < nseg; ++s) {
    if (seg[s].src == nullptr) {
      std::memset(dst + 2 * k, 0, size_t(2 * seg[s].len));  // padding: x's zero point, centered: 0
    } else {
      center_run<Signed, Sum>(seg[s].src, seg[s].len, zp_a, dst + 2 * k, &vsum, &sum);
    }
    k += seg[s].len;
  }
  std::memset(dst + 2 * k, 0, size_t(2 * (k_pad - k)));
  return Sum ? int32_t(sum + uint32_t(hsum_epi32(vsum))) : 0;
}

// One row of A, packed as the scalar pack_a_row does (same values, same
// sum; the pairs format skips the sum when no column needs it).
static int32_t pack_a_row(int32_t format, const Segment* seg, int64_t nseg, const Im2col& g, int64_t k_pad,
                          uint8_t* dst, bool need_sum) {
  const bool is_signed = g.a_dtype == DT_INT8;
  if (format == GEMM_PAIRS) {
    if (is_signed) {
      return need_sum ? pack_pairs_row<true, true>(seg, nseg, g.zp_a, k_pad, dst)
                      : pack_pairs_row<true, false>(seg, nseg, g.zp_a, k_pad, dst);
    }
    return need_sum ? pack_pairs_row<false, true>(seg, nseg, g.zp_a, k_pad, dst)
                    : pack_pairs_row<false, false>(seg, nseg, g.zp_a, k_pad, dst);
  }
  uint32_t sum = 0;
  int64_t k = 0;
  const uint8_t pad = gemm_offset(uint8_t(g.zp_a), is_signed);
  const __m256i flip = _mm256_set1_epi8(is_signed ? char(0x80) : 0);
  __m256i vsum = _mm256_setzero_si256();  // four uint64 sums (VPSADBW)
  for (int64_t s = 0; s < nseg; ++s) {
    const uint8_t* src = seg[s].src;
    const int64_t len = seg[s].len;
    if (src == nullptr) {
      std::memset(dst + k, pad, size_t(len));
      sum += uint32_t(pad) * uint32_t(len);
      k += len;
      continue;
    }
    int64_t i = 0;
    for (; i + 32 <= len; i += 32, k += 32) {
      const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)), flip);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k), v);
      vsum = _mm256_add_epi64(vsum, _mm256_sad_epu8(v, _mm256_setzero_si256()));
    }
    for (; i < len; ++i, ++k) {
      dst[k] = gemm_offset(src[i], is_signed);
      sum += dst[k];
    }
  }
  std::memset(dst + k, 0, size_t(k_pad - k));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), vsum);
  return int32_t(sum + uint32_t(lanes[0] + lanes[1] + lanes[2] + lanes[3]));
}

// The pairs tile for R < 6 rows (edge tiles and GEMV), in intrinsics.
template <int R>
static void tile_pairs(const uint8_t* a, int64_t lda, const uint8_t* b, int64_t k_pad, int32_t* c, int64_t ldc) {
  __m256i acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_si256();
  const int64_t pairs = k_pad / 2;
  for (int64_t i = 0; i < pairs; ++i) {
    const __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 * i)));
    const __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 * i + 16)));
    for (int r = 0; r < R; ++r) {
      const __m256i ar = broadcast_i32(a + r * lda + 4 * i);
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(ar, b0));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(ar, b1));
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc), acc0[r]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + 8), acc1[r]);
  }
}

// One row (GEMV): memory-bound, it streams the panel once. Two pairs of
// rows per iteration into four accumulators, and a prefetch 1 KB ahead.
template <>
void tile_pairs<1>(const uint8_t* a, int64_t lda, const uint8_t* b, int64_t k_pad, int32_t* c, int64_t ldc) {
  (void)lda;
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  const int64_t pairs = k_pad / 2;
  int64_t i = 0;
  for (; i + 2 <= pairs; i += 2) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 32 * i + 1024), _MM_HINT_T0);
    const __m256i a0 = broadcast_i32(a + 4 * i), a1 = broadcast_i32(a + 4 * i + 4);
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(a0, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 * i)))));
    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(a0, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 * i + 16)))));
    s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(a1, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 * i + 32)))));
    s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(a1, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 * i + 48)))));
  }
  if (i < pairs) {
    const __m256i a0 = broadcast_i32(a + 4 * i);
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(a0, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 * i)))));
    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(a0, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 * i + 16)))));
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), _mm256_add_epi32(s0, s2));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + 8), _mm256_add_epi32(s1, s3));
}

// The full 6 x 16 pairs tile: the same computation as tile_pairs<6>, written
// in assembly because GCC spills some of its 12 accumulators to the stack
// (it needs all 16 ymm registers: 12 accumulators, ymm12/13 = B widened,
// ymm14 = the broadcast A pair, ymm15 = a product), which halves the speed.
// Per pair of rows k, k+1: two VPMOVSXBW loads of B, six VPBROADCASTD of A
// (rows 0..2 from a, rows 3..5 from a3 = a + 3 * lda), twelve VPMADDWD and
// twelve VPADDD.
template <>
void tile_pairs<6>(const uint8_t* a, int64_t lda, const uint8_t* b, int64_t k_pad, int32_t* c, int64_t ldc) {
  int64_t pairs = k_pad / 2;
  const uint8_t* a3 = a + 3 * lda;
  int32_t* c3 = c + 3 * ldc;
  const int64_t ldc_bytes = ldc * 4;
  asm volatile(
      "vpxor %%xmm0, %%xmm0, %%xmm0\n\t"
      "vpxor %%xmm1, %%xmm1, %%xmm1\n\t"
      "vpxor %%xmm2, %%xmm2, %%xmm2\n\t"
      "vpxor %%xmm3, %%xmm3, %%xmm3\n\t"
      "vpxor %%xmm4, %%xmm4, %%xmm4\n\t"
      "vpxor %%xmm5, %%xmm5, %%xmm5\n\t"
      "vpxor %%xmm6, %%xmm6, %%xmm6\n\t"
      "vpxor %%xmm7, %%xmm7, %%xmm7\n\t"
      "vpxor %%xmm8, %%xmm8, %%xmm8\n\t"
      "vpxor %%xmm9, %%xmm9, %%xmm9\n\t"
      "vpxor %%xmm10, %%xmm10, %%xmm10\n\t"
      "vpxor %%xmm11, %%xmm11, %%xmm11\n\t"
      "test %[pairs], %[pairs]\n\t"
      "jz 2f\n\t"
      "1:\n\t"
      // B: columns 0..7 and 8..15 of rows k, k+1, widened to int16
      "vpmovsxbw (%[b]), %%ymm12\n\t"
      "vpmovsxbw 16(%[b]), %%ymm13\n\t"
      // row 0
      "vpbroadcastd (%[a]), %%ymm14\n\t"
      "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"
      "vpaddd %%ymm15, %%ymm0, %%ymm0\n\t"
      "vpmaddwd %%ymm13, %%ymm14, %%ymm14\n\t"
      "vpaddd %%ymm14, %%ymm1, %%ymm1\n\t"
      // row 1
      "vpbroadcastd (%[a],%[lda]), %%ymm14\n\t"
      "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"
      "vpaddd %%ymm15, %%ymm2, %%ymm2\n\t"
      "vpmaddwd %%ymm13, %%ymm14, %%ymm14\n\t"
      "vpaddd %%ymm14, %%ymm3, %%ymm3\n\t"
      // row 2
      "vpbroadcastd (%[a],%[lda],2), %%ymm14\n\t"
      "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"
      "vpaddd %%ymm15, %%ymm4, %%ymm4\n\t"
      "vpmaddwd %%ymm13, %%ymm14, %%ymm14\n\t"
      "vpaddd %%ymm14, %%ymm5, %%ymm5\n\t"
      // row 3
      "vpbroadcastd (%[a3]), %%ymm14\n\t"
      "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"
      "vpaddd %%ymm15, %%ymm6, %%ymm6\n\t"
      "vpmaddwd %%ymm13, %%ymm14, %%ymm14\n\t"
      "vpaddd %%ymm14, %%ymm7, %%ymm7\n\t"
      // row 4
      "vpbroadcastd (%[a3],%[lda]), %%ymm14\n\t"
      "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"
      "vpaddd %%ymm15, %%ymm8, %%ymm8\n\t"
      "vpmaddwd %%ymm13, %%ymm14, %%ymm14\n\t"
      "vpaddd %%ymm14, %%ymm9, %%ymm9\n\t"
      // row 5
      "vpbroadcastd (%[a3],%[lda],2), %%ymm14\n\t"
      "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"
      "vpaddd %%ymm15, %%ymm10, %%ymm10\n\t"
      "vpmaddwd %%ymm13, %%ymm14, %%ymm14\n\t"
      "vpaddd %%ymm14, %%ymm11, %%ymm11\n\t"
      "addq $32, %[b]\n\t"
      "addq $4, %[a]\n\t"
      "addq $4, %[a3]\n\t"
      "decq %[pairs]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqu %%ymm0, (%[c])\n\t"
      "vmovdqu %%ymm1, 32(%[c])\n\t"
      "vmovdqu %%ymm2, (%[c],%[ldc_bytes])\n\t"
      "vmovdqu %%ymm3, 32(%[c],%[ldc_bytes])\n\t"
      "vmovdqu %%ymm4, (%[c],%[ldc_bytes],2)\n\t"
      "vmovdqu %%ymm5, 32(%[c],%[ldc_bytes],2)\n\t"
      "vmovdqu %%ymm6, (%[c3])\n\t"
      "vmovdqu %%ymm7, 32(%[c3])\n\t"
      "vmovdqu %%ymm8, (%[c3],%[ldc_bytes])\n\t"
      "vmovdqu %%ymm9, 32(%[c3],%[ldc_bytes])\n\t"
      "vmovdqu %%ymm10, (%[c3],%[ldc_bytes],2)\n\t"
      "vmovdqu %%ymm11, 32(%[c3],%[ldc_bytes],2)\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [pairs] "+r"(pairs)
      : [lda] "r"(lda), [c] "r"(c), [c3] "r"(c3), [ldc_bytes] "r"(ldc_bytes)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}

template <int R>
static void tile_nibbles(const uint8_t* a, int64_t lda, const uint8_t* b, int64_t k_pad, int32_t* c,
                         int64_t ldc) {
  const __m256i mask = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_si256();
  const int64_t octets = k_pad / 8;
  for (int64_t o = 0; o < octets; ++o) {
    const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * o));
    const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * o + 32));
    const __m256i lo0 = _mm256_and_si256(v0, mask), hi0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), mask);
    const __m256i lo1 = _mm256_and_si256(v1, mask), hi1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), mask);
    for (int r = 0; r < R; ++r) {
      const __m256i q0 = broadcast_i32(a + r * lda + 8 * o);
      const __m256i q1 = broadcast_i32(a + r * lda + 8 * o + 4);
      const __m256i t0 = _mm256_add_epi16(_mm256_maddubs_epi16(q0, lo0), _mm256_maddubs_epi16(q1, hi0));
      const __m256i t1 = _mm256_add_epi16(_mm256_maddubs_epi16(q0, lo1), _mm256_maddubs_epi16(q1, hi1));
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(t0, ones));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(t1, ones));
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc), acc0[r]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + 8), acc1[r]);
  }
}

// The full 4 x 16 nibbles tile: the same computation as tile_nibbles<4>,
// in assembly for the same reason as tile_pairs<6>. Registers: ymm0..7 the
// accumulators (row r, columns 0..7 in ymm(2r), 8..15 in ymm(2r+1)), ymm15
// the nibble mask, ymm14 int16 ones, ymm8/ymm9 the unpacked B, ymm10/ymm11
// the broadcast A quads, ymm12/ymm13 the int16 pair sums.
template <>
void tile_nibbles<4>(const uint8_t* a, int64_t lda, const uint8_t* b, int64_t k_pad, int32_t* c, int64_t ldc) {
  int64_t octets = k_pad / 8;
  const uint8_t* a3 = a + 3 * lda;
  int32_t* c3 = c + 3 * ldc;
  const int64_t ldc_bytes = ldc * 4;
  asm volatile(
      "vpxor %%xmm0, %%xmm0, %%xmm0\n\t"
      "vpxor %%xmm1, %%xmm1, %%xmm1\n\t"
      "vpxor %%xmm2, %%xmm2, %%xmm2\n\t"
      "vpxor %%xmm3, %%xmm3, %%xmm3\n\t"
      "vpxor %%xmm4, %%xmm4, %%xmm4\n\t"
      "vpxor %%xmm5, %%xmm5, %%xmm5\n\t"
      "vpxor %%xmm6, %%xmm6, %%xmm6\n\t"
      "vpxor %%xmm7, %%xmm7, %%xmm7\n\t"
      "movl $0x0F0F0F0F, %%eax\n\t"
      "vmovd %%eax, %%xmm15\n\t"
      "vpbroadcastd %%xmm15, %%ymm15\n\t"
      "movl $0x00010001, %%eax\n\t"
      "vmovd %%eax, %%xmm14\n\t"
      "vpbroadcastd %%xmm14, %%ymm14\n\t"
      "test %[octets], %[octets]\n\t"
      "jz 2f\n\t"
      "1:\n\t"
      // columns 0..7: low nibbles = rows k..k+3 (ymm9), high nibbles = rows k+4..k+7 (ymm8)
      "vmovdqu 0(%[b]), %%ymm8\n\t"
      "vpand %%ymm15, %%ymm8, %%ymm9\n\t"
      "vpsrlw $4, %%ymm8, %%ymm8\n\t"
      "vpand %%ymm15, %%ymm8, %%ymm8\n\t"
      "vpbroadcastd (%[a]), %%ymm10\n\t"  // row 0: a[k..k+3]
      "vpbroadcastd 4(%[a]), %%ymm11\n\t"  //        a[k+4..k+7]
      "vpmaddubsw %%ymm9, %%ymm10, %%ymm12\n\t"
      "vpmaddubsw %%ymm8, %%ymm11, %%ymm13\n\t"
      "vpaddw %%ymm13, %%ymm12, %%ymm12\n\t"
      "vpmaddwd %%ymm14, %%ymm12, %%ymm12\n\t"
      "vpaddd %%ymm12, %%ymm0, %%ymm0\n\t"
      "vpbroadcastd (%[a],%[lda]), %%ymm10\n\t"  // row 1: a[k..k+3]
      "vpbroadcastd 4(%[a],%[lda]), %%ymm11\n\t"  //        a[k+4..k+7]
      "vpmaddubsw %%ymm9, %%ymm10, %%ymm12\n\t"
      "vpmaddubsw %%ymm8, %%ymm11, %%ymm13\n\t"
      "vpaddw %%ymm13, %%ymm12, %%ymm12\n\t"
      "vpmaddwd %%ymm14, %%ymm12, %%ymm12\n\t"
      "vpaddd %%ymm12, %%ymm2, %%ymm2\n\t"
      "vpbroadcastd (%[a],%[lda],2), %%ymm10\n\t"  // row 2: a[k..k+3]
      "vpbroadcastd 4(%[a],%[lda],2), %%ymm11\n\t"  //        a[k+4..k+7]
      "vpmaddubsw %%ymm9, %%ymm10, %%ymm12\n\t"
      "vpmaddubsw %%ymm8, %%ymm11, %%ymm13\n\t"
      "vpaddw %%ymm13, %%ymm12, %%ymm12\n\t"
      "vpmaddwd %%ymm14, %%ymm12, %%ymm12\n\t"
      "vpaddd %%ymm12, %%ymm4, %%ymm4\n\t"
      "vpbroadcastd (%[a3]), %%ymm10\n\t"  // row 3: a[k..k+3]
      "vpbroadcastd 4(%[a3]), %%ymm11\n\t"  //        a[k+4..k+7]
      "vpmaddubsw %%ymm9, %%ymm10, %%ymm12\n\t"
      "vpmaddubsw %%ymm8, %%ymm11, %%ymm13\n\t"
      "vpaddw %%ymm13, %%ymm12, %%ymm12\n\t"
      "vpmaddwd %%ymm14, %%ymm12, %%ymm12\n\t"
      "vpaddd %%ymm12, %%ymm6, %%ymm6\n\t"
      // columns 8..15: low nibbles = rows k..k+3 (ymm9), high nibbles = rows k+4..k+7 (ymm8)
      "vmovdqu 32(%[b]), %%ymm8\n\t"
      "vpand %%ymm15, %%ymm8, %%ymm9\n\t"
      "vpsrlw $4, %%ymm8, %%ymm8\n\t"
      "vpand %%ymm15, %%ymm8, %%ymm8\n\t"
      "vpbroadcastd (%[a]), %%ymm10\n\t"  // row 0: a[k..k+3]
      "vpbroadcastd 4(%[a]), %%ymm11\n\t"  //        a[k+4..k+7]
      "vpmaddubsw %%ymm9, %%ymm10, %%ymm12\n\t"
      "vpmaddubsw %%ymm8, %%ymm11, %%ymm13\n\t"
      "vpaddw %%ymm13, %%ymm12, %%ymm12\n\t"
      "vpmaddwd %%ymm14, %%ymm12, %%ymm12\n\t"
      "vpaddd %%ymm12, %%ymm1, %%ymm1\n\t"
      "vpbroadcastd (%[a],%[lda]), %%ymm10\n\t"  // row 1: a[k..k+3]
      "vpbroadcastd 4(%[a],%[lda]), %%ymm11\n\t"  //        a[k+4..k+7]
      "vpmaddubsw %%ymm9, %%ymm10, %%ymm12\n\t"
      "vpmaddubsw %%ymm8, %%ymm11, %%ymm13\n\t"
      "vpaddw %%ymm13, %%ymm12, %%ymm12\n\t"
      "vpmaddwd %%ymm14, %%ymm12, %%ymm12\n\t"
      "vpaddd %%ymm12, %%ymm3, %%ymm3\n\t"
      "vpbroadcastd (%[a],%[lda],2), %%ymm10\n\t"  // row 2: a[k..k+3]
      "vpbroadcastd 4(%[a],%[lda],2), %%ymm11\n\t"  //        a[k+4..k+7]
      "vpmaddubsw %%ymm9, %%ymm10, %%ymm12\n\t"
      "vpmaddubsw %%ymm8, %%ymm11, %%ymm13\n\t"
      "vpaddw %%ymm13, %%ymm12, %%ymm12\n\t"
      "vpmaddwd %%ymm14, %%ymm12, %%ymm12\n\t"
      "vpaddd %%ymm12, %%ymm5, %%ymm5\n\t"
      "vpbroadcastd (%[a3]), %%ymm10\n\t"  // row 3: a[k..k+3]
      "vpbroadcastd 4(%[a3]), %%ymm11\n\t"  //        a[k+4..k+7]
      "vpmaddubsw %%ymm9, %%ymm10, %%ymm12\n\t"
      "vpmaddubsw %%ymm8, %%ymm11, %%ymm13\n\t"
      "vpaddw %%ymm13, %%ymm12, %%ymm12\n\t"
      "vpmaddwd %%ymm14, %%ymm12, %%ymm12\n\t"
      "vpaddd %%ymm12, %%ymm7, %%ymm7\n\t"
      "addq $64, %[b]\n\t"
      "addq $8, %[a]\n\t"
      "addq $8, %[a3]\n\t"
      "decq %[octets]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "vmovdqu %%ymm0, (%[c])\n\t"
      "vmovdqu %%ymm1, 32(%[c])\n\t"
      "vmovdqu %%ymm2, (%[c],%[ldc_bytes])\n\t"
      "vmovdqu %%ymm3, 32(%[c],%[ldc_bytes])\n\t"
      "vmovdqu %%ymm4, (%[c],%[ldc_bytes],2)\n\t"
      "vmovdqu %%ymm5, 32(%[c],%[ldc_bytes],2)\n\t"
      "vmovdqu %%ymm6, (%[c3])\n\t"
      "vmovdqu %%ymm7, 32(%[c3])\n\t"
      : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [octets] "+r"(octets)
      : [lda] "r"(lda), [c] "r"(c), [c3] "r"(c3), [ldc_bytes] "r"(ldc_bytes)
      : "rax", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}

// The epilogue of a row, 8 columns at a time (gemm_finish_element for the
// remainder). Overflow of v + bias in int32: both operands have the same
// sign and the wrapped sum the other, i.e. (v ^ s) & (bias ^ s) < 0.
static bool finish_row(const int32_t* dot, int64_t n, int32_t rowsum, const int32_t* row_coef,
                       const int32_t* col_term, const int32_t* bias, int32_t* acc) {
  const __m256i rs = _mm256_set1_epi32(rowsum);
  __m256i ovf = _mm256_setzero_si256();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256i v = _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(dot + j)),
                                 _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col_term + j)));
    if (row_coef != nullptr) {
      v = _mm256_sub_epi32(v, _mm256_mullo_epi32(rs, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row_coef + j))));
    }
    if (bias != nullptr) {
      const __m256i bb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + j));
      const __m256i s = _mm256_add_epi32(v, bb);
      ovf = _mm256_or_si256(ovf, _mm256_and_si256(_mm256_xor_si256(v, s), _mm256_xor_si256(bb, s)));
      v = s;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + j), v);
  }
  bool overflow = _mm256_movemask_ps(_mm256_castsi256_ps(ovf)) != 0;
  for (; j < n; ++j) {
    acc[j] = gemm_finish_element(dot[j], rowsum, row_coef != nullptr ? row_coef[j] : 0, col_term[j],
                                 bias != nullptr ? bias[j] : 0, &overflow);
  }
  return overflow;
}

#include "qnnref/gemm_driver.h"

}  // namespace avx2
}  // namespace qnnref
