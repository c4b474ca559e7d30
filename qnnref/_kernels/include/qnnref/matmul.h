// qnnref/matmul.h -- the matmul kernel: a batch of packed GEMMs (gemm.h).
//
// y[i] = requantize(a[a_index[i]] @ b[b_index[i]] + bias) for each of the
// `batches` output matrices (np.matmul broadcasting, resolved by Python into
// the two index arrays). a is [a_batches, m, k] (int8 or uint8), each b a
// packed [k, n] matrix, y [batches, m, n]. The per-ISA work is in gemm();
// this only walks the batch.
#pragma once

#include "qnnref/gemm.h"

namespace qnnref {

struct MatmulCall {
  const uint8_t* a;
  int32_t a_dtype, zp_a;
  int64_t m, k, n;
  int64_t batches;
  const int64_t* a_index;    // [batches]: which a matrix
  const int64_t* b_index;    // [batches]: which packed b
  int32_t b_format;          // GemmFormat
  const uint8_t* b_data;     // packed matrices, b_stride bytes apart
  int64_t b_stride;
  const int32_t* row_coef;   // per packed matrix, coef_stride apart
  const int32_t* col_term;
  int64_t coef_stride;
  int32_t any_row_coef;
  const int32_t* bias;       // [n] or null
  void* out;
  int32_t out_dtype;
  int64_t out_itemsize;
  const Requant* requant;
};

// Returns a Status (the OR of every GEMM's).
inline int32_t matmul(int32_t isa, const MatmulCall& c, int threads) {
  int32_t status = STATUS_OK;
  for (int64_t i = 0; i < c.batches; ++i) {
    // a [m, k] as an im2col view: h = m rows of one pixel of k channels
    const Im2col rows{c.a + c.a_index[i] * c.m * c.k, c.a_dtype, c.zp_a, c.m, 1, c.k, 0, c.k, 1, 1,
                      1, 1, 1, 1, 0, 0, c.m, 1};
    const int64_t j = c.b_index[i];
    const PackedB b{c.b_format, c.k, c.n, c.b_data + j * c.b_stride, c.row_coef + j * c.coef_stride,
                    c.col_term + j * c.coef_stride, c.any_row_coef};
    const GemmOutput out{static_cast<uint8_t*>(c.out) + i * c.m * c.n * c.out_itemsize, c.out_dtype, c.n, 0,
                         c.bias, c.requant};
    status |= gemm(isa, rows, c.m, b, out, threads);
  }
  return status;
}

}  // namespace qnnref
