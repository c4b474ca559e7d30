# Bindings of include/qnnref/conv2d.h (weights packed with gemm_pack of matmul.pxi).

cdef extern from "qnnref/conv2d.h" namespace "qnnref":
    cdef struct Conv2dCall:
        const uint8_t* x
        int32_t x_dtype
        int32_t zp_x
        int64_t batch, h, w, c
        int64_t groups, cout_g
        int64_t kh, kw, sh, sw, dh, dw, top, left, out_h, out_w
        int32_t w_format
        const uint8_t* w_data
        int64_t w_stride
        const int32_t* row_coef
        const int32_t* col_term
        int64_t coef_stride
        int32_t any_row_coef
        const int32_t* bias
        void* out
        int32_t out_dtype
        int64_t out_itemsize
        const Requant* requant
    int32_t conv2d(int32_t isa, const Conv2dCall& c, int threads) nogil


def conv2d_run(int32_t isa, object x, int32_t x_dtype, int32_t zp_x, tuple geometry, int32_t w_format,
               const uint8_t[:, ::1] w_data, const int32_t[:, ::1] row_coef, const int32_t[:, ::1] col_term,
               int32_t any_row_coef, object bias, object out, int32_t out_dtype, object pack, int threads):
    """conv2d of conv2d.h. ``geometry`` = (batch, h, w, c, groups, cout_g, kh, kw,
    sh, sw, dh, dw, top, left, out_h, out_w); every array C-contiguous and
    non-empty (validated by qnnref/_kernels/conv2d.py). Returns the Status."""
    cdef Requant r = make_requant(pack)
    cdef const uint8_t[::1] xv = x.reshape(-1).view(np.uint8)
    cdef uint8_t[::1] ov = out.reshape(-1).view(np.uint8)
    cdef const int32_t[::1] bv
    cdef Conv2dCall c
    c.x = &xv[0]
    c.x_dtype = x_dtype
    c.zp_x = zp_x
    (c.batch, c.h, c.w, c.c, c.groups, c.cout_g, c.kh, c.kw,
     c.sh, c.sw, c.dh, c.dw, c.top, c.left, c.out_h, c.out_w) = geometry
    c.w_format = w_format
    c.w_data = &w_data[0, 0]
    c.w_stride = w_data.shape[1]
    c.row_coef = &row_coef[0, 0]
    c.col_term = &col_term[0, 0]
    c.coef_stride = row_coef.shape[1]
    c.any_row_coef = any_row_coef
    c.bias = NULL
    if bias is not None:
        bv = bias
        c.bias = &bv[0]
    c.out = &ov[0]
    c.out_dtype = out_dtype
    c.out_itemsize = out.itemsize
    c.requant = &r
    cdef int32_t st
    with nogil:
        st = conv2d(isa, c, threads)
    return st
