// qnnref/conv2d.h -- the (grouped) conv2d kernel: one packed GEMM per group
// over an im2col view of x (gemm.h). No patch matrix is materialized: the
// GEMM driver packs a bounded block of rows at a time straight from x
// (padding = x's zero point). A 1x1, stride 1, unpadded convolution is the
// plain matrix case (one contiguous run of C_in / groups values per row).
#pragma once

#include "qnnref/gemm.h"

namespace qnnref {

struct Conv2dCall {
  const uint8_t* x;
  int32_t x_dtype, zp_x;
  int64_t batch, h, w, c;    // x [batch, h, w, c] (NHWC)
  int64_t groups, cout_g;    // C_out = groups * cout_g
  int64_t kh, kw, sh, sw, dh, dw, top, left, out_h, out_w;
  int32_t w_format;          // GemmFormat
  const uint8_t* w_data;     // one packed [kh*kw*c/groups, cout_g] matrix per group, w_stride bytes apart
  int64_t w_stride;
  const int32_t* row_coef;   // per group, coef_stride apart
  const int32_t* col_term;
  int64_t coef_stride;
  int32_t any_row_coef;
  const int32_t* bias;       // [C_out] or null
  void* out;                 // y [batch, out_h, out_w, C_out]
  int32_t out_dtype;
  int64_t out_itemsize;
  const Requant* requant;
};

inline int32_t conv2d(int32_t isa, const Conv2dCall& c, int threads) {
  int32_t status = STATUS_OK;
  const int64_t cg = c.c / c.groups;
  const int64_t rows_count = c.batch * c.out_h * c.out_w;
  for (int64_t g = 0; g < c.groups; ++g) {
    const Im2col rows{c.x, c.x_dtype, c.zp_x, c.h, c.w, c.c, g * cg, cg, c.kh, c.kw,
                      c.sh, c.sw, c.dh, c.dw, c.top, c.left, c.out_h, c.out_w};
    const PackedB b{c.w_format, c.kh * c.kw * cg, c.cout_g, c.w_data + g * c.w_stride,
                    c.row_coef + g * c.coef_stride, c.col_term + g * c.coef_stride, c.any_row_coef};
    const GemmOutput out{static_cast<uint8_t*>(c.out) + g * c.cout_g * c.out_itemsize, c.out_dtype,
                         c.groups * c.cout_g, g * c.cout_g, c.bias != nullptr ? c.bias + g * c.cout_g : nullptr,
                         c.requant};
    status |= gemm(isa, rows, rows_count, b, out, threads);
  }
  return status;
}

}  // namespace qnnref
