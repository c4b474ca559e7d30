// Packing of constant (or per-call) weights into the GEMM formats of
// include/qnnref/gemm.h. ISA-independent: runs once per weight at load time.
#include "qnnref/gemm.h"

namespace qnnref {

// int32 wrap-around of an int64 (two's complement, as the kernels compute).
static int32_t wrap32(int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v))); }

static int32_t load_b(int32_t b_dtype, const void* src, int64_t index) {
  if (b_dtype == DT_UINT8) return static_cast<const uint8_t*>(src)[index];
  return static_cast<const int8_t*>(src)[index];  // int8, int4 (held in int8)
}

// max over columns of sum_k |B[k, n] - zp_b[n]|
static int64_t max_column_abs_sum(int32_t b_dtype, const void* src, int64_t stride_k, int64_t stride_n, int64_t k,
                                  int64_t n, const int32_t* zp_b, int32_t zp_per_column) {
  int64_t best = 0;
  for (int64_t nn = 0; nn < n; ++nn) {
    const int64_t zp = zp_b[zp_per_column ? nn : 0];
    int64_t sum = 0;
    for (int64_t kk = 0; kk < k; ++kk) {
      const int64_t d = load_b(b_dtype, src, kk * stride_k + nn * stride_n) - zp;
      sum += d < 0 ? -d : d;
    }
    best = sum > best ? sum : best;
  }
  return best;
}

int64_t pack_b(int32_t b_dtype, const void* src, int64_t stride_k, int64_t stride_n, int64_t k, int64_t n,
               const int32_t* zp_b, int32_t zp_per_column, int32_t a_dtype, int32_t zp_a, uint8_t* data,
               int32_t* row_coef, int32_t* col_term) {
  const int64_t bound = max_column_abs_sum(b_dtype, src, stride_k, stride_n, k, n, zp_b, zp_per_column);
  const int32_t format = b_dtype == DT_INT4 ? GEMM_NIBBLES : GEMM_PAIRS;
  const int64_t kp = gemm_k_pad(format, k);
  const int64_t panels = gemm_panels(n);
  auto value = [&](int64_t kk, int64_t nn) { return load_b(b_dtype, src, kk * stride_k + nn * stride_n); };
  auto zero_point = [&](int64_t nn) { return zp_b[zp_per_column ? nn : 0]; };

  if (format == GEMM_PAIRS) {
    // b_s = b - s in [-128, 127]: s = 128 for uint8 (flip the top bit), 0 for int8.
    const int32_t s = b_dtype == DT_UINT8 ? 128 : 0;
    for (int64_t p = 0; p < panels; ++p) {
      uint8_t* panel = data + p * kp * GEMM_NR;
      for (int64_t kk = 0; kk < kp; ++kk) {
        for (int64_t c = 0; c < GEMM_NR; ++c) {
          const int64_t nn = p * GEMM_NR + c;
          const int32_t v = (kk < k && nn < n) ? value(kk, nn) - s : 0;
          panel[(kk / 2) * 2 * GEMM_NR + c * 2 + (kk % 2)] = static_cast<uint8_t>(static_cast<int8_t>(v));
        }
      }
      for (int64_t c = 0; c < GEMM_NR; ++c) {
        const int64_t nn = p * GEMM_NR + c;
        row_coef[nn] = nn < n ? zero_point(nn) - s : 0;
        col_term[nn] = 0;
      }
    }
    return bound;
  }

  // GEMM_NIBBLES: b_u = b + 8 in [0, 15]; padding (rows k >= K, columns n >= N) is 0.
  const int64_t ca = int64_t(zp_a) + (a_dtype == DT_INT8 ? 128 : 0);
  for (int64_t p = 0; p < panels; ++p) {
    uint8_t* panel = data + p * kp * GEMM_NR / 2;
    for (int64_t i = 0; i < kp * GEMM_NR / 2; ++i) panel[i] = 0;
    for (int64_t c = 0; c < GEMM_NR; ++c) {
      const int64_t nn = p * GEMM_NR + c;
      int64_t colsum = 0;
      for (int64_t kk = 0; kk < k && nn < n; ++kk) {
        const int32_t u = value(kk, nn) + 8;
        colsum += u;
        // octet kk / 8; half c / 8; byte (c % 8) * 4 + kk % 4; nibble (kk % 8) / 4
        const int64_t byte = (kk / 8) * 64 + (c / 8) * 32 + (c % 8) * 4 + kk % 4;
        panel[byte] = static_cast<uint8_t>(panel[byte] | (u << (((kk % 8) / 4) * 4)));
      }
      if (nn < n) {
        const int64_t cb = int64_t(zero_point(nn)) + 8;
        row_coef[nn] = static_cast<int32_t>(cb);
        col_term[nn] = wrap32(k * ca * cb - ca * colsum);
      } else {
        row_coef[nn] = 0;
        col_term[nn] = 0;
      }
    }
  }
  return bound;
}

}  // namespace qnnref
