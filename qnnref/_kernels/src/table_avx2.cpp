#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// AVX2 table lookup, 32 bytes at a time, with VPSHUFB, which looks each byte
// up in a 16-byte table by its low 4 bits, or gives 0 when the byte's top bit
// is set. The 256-entry table is 16 pieces P[k] = lut[16k .. 16k + 15].
//
// The indices below 128 (pieces 0..7): with D[0] = P[0] and
// D[k] = P[k] ^ P[k-1], look a_k = i - 16k (bytes, wrapping) up in D[k] for
// k = 0..7 and XOR the eight results. For i = 16h + l (h <= 7), a_k = 16(h-k) + l
// has its top bit clear when k <= h and set when h < k <= 7 (a_k is then in
// [-112, -1]): the XOR is D[0] ^ ... ^ D[h] at l = P[h][l] = lut[i], exactly.
// The indices from 128 do the same with i - 128 and pieces 8..15, and the top
// bit of i chooses between the two results (VPBLENDVB). The remainder
// (n mod 32) uses the scalar lookup.
#include <immintrin.h>

#include "qnnref/table.h"

namespace qnnref {
namespace avx2 {

Status table(const uint8_t* x, uint8_t* y, int64_t n, int32_t x_signed, const uint8_t* lut, int threads) {
  const uint8_t flip = x_signed ? 0x80 : 0;
  // the 16 pieces, each in both 128-bit lanes
  __m256i piece[16];
  for (int k = 0; k < 16; ++k) {
    piece[k] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 16 * k)));
  }
  // D[k] = P[k] ^ P[k-1] within each half (k = 0 and k = 8 start a half)
  __m256i delta[16];
  for (int k = 0; k < 16; ++k) delta[k] = (k % 8 == 0) ? piece[k] : _mm256_xor_si256(piece[k], piece[k - 1]);
  parallel_for(threads, n, TABLE_GRAIN, [&](int64_t begin, int64_t end) {
    const __m256i vflip = _mm256_set1_epi8(static_cast<char>(flip));
    const __m256i top = _mm256_set1_epi8(static_cast<char>(0x80));
    const __m256i sixteen = _mm256_set1_epi8(16);
    const int64_t vec_end = begin + (end - begin) / 32 * 32;
    for (int64_t i = begin; i < vec_end; i += 32) {
      const __m256i index = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), vflip);
      __m256i a = index, b = _mm256_xor_si256(index, top);           // i, i - 128 (bytes, wrapping)
      __m256i ra = _mm256_setzero_si256(), rb = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k) {
        ra = _mm256_xor_si256(ra, _mm256_shuffle_epi8(delta[k], a));
        rb = _mm256_xor_si256(rb, _mm256_shuffle_epi8(delta[k + 8], b));
        a = _mm256_sub_epi8(a, sixteen);
        b = _mm256_sub_epi8(b, sixteen);
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm256_blendv_epi8(ra, rb, index));
    }
    table_range(x, y, vec_end, end, flip, lut);
  });
  return STATUS_OK;
}

}  // namespace avx2
}  // namespace qnnref
