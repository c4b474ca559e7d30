# Bindings of include/qnnref/gemm.h (weight packing, shared with conv2d.pxi)
# and include/qnnref/matmul.h.

cdef extern from "qnnref/gemm.h" namespace "qnnref":
    int64_t gemm_packed_bytes(int32_t format, int64_t k, int64_t n) nogil
    int64_t gemm_k_pad(int32_t format, int64_t k) nogil
    int64_t pack_b(int32_t b_dtype, const void* src, int64_t stride_k, int64_t stride_n, int64_t k, int64_t n,
                   const int32_t* zp_b, int32_t zp_per_column, int32_t a_dtype, int32_t zp_a, uint8_t* data,
                   int32_t* row_coef, int32_t* col_term) nogil

cdef extern from "qnnref/matmul.h" namespace "qnnref":
    cdef struct MatmulCall:
        const uint8_t* a
        int32_t a_dtype
        int32_t zp_a
        int64_t m, k, n
        int64_t batches
        const int64_t* a_index
        const int64_t* b_index
        int32_t b_format
        const uint8_t* b_data
        int64_t b_stride
        const int32_t* row_coef
        const int32_t* col_term
        int64_t coef_stride
        int32_t any_row_coef
        const int32_t* bias
        void* out
        int32_t out_dtype
        int64_t out_itemsize
        const Requant* requant
    int32_t matmul(int32_t isa, const MatmulCall& c, int threads) nogil


def gemm_packed_size(int32_t fmt, int64_t k, int64_t n):
    """Bytes of one packed [k, n] matrix in format ``fmt`` (gemm.h)."""
    return gemm_packed_bytes(fmt, k, n)


def gemm_pack(int32_t b_dtype, object src, int64_t stride_k, int64_t stride_n, int64_t k, int64_t n,
              const int32_t[::1] zp_b, int32_t a_dtype, int32_t zp_a, uint8_t[::1] data,
              int32_t[::1] row_coef, int32_t[::1] col_term):
    """pack_b of gemm.h: ``src`` is a C-contiguous int8/uint8 array holding
    B[k, n] at element k * stride_k + n * stride_n; zp_b has 1 or n values.
    Returns max_n sum_k |B[k, n] - zp_b[n]|."""
    cdef const uint8_t[::1] s = src.reshape(-1).view(np.uint8)
    cdef int32_t per_column = zp_b.shape[0] > 1
    cdef int64_t bound
    with nogil:
        bound = pack_b(b_dtype, &s[0], stride_k, stride_n, k, n, &zp_b[0], per_column, a_dtype, zp_a, &data[0],
                       &row_coef[0], &col_term[0])
    return bound


def matmul_run(int32_t isa, object a, int32_t a_dtype, int32_t zp_a, int64_t m, int64_t k, int64_t n,
               const int64_t[::1] a_index, const int64_t[::1] b_index, int32_t b_format,
               const uint8_t[:, ::1] b_data, const int32_t[:, ::1] row_coef, const int32_t[:, ::1] col_term,
               int32_t any_row_coef, object bias, object out, int32_t out_dtype, object pack, int threads):
    """matmul of matmul.h (every array C-contiguous and non-empty, validated
    by qnnref/_kernels/matmul.py). Returns the Status."""
    cdef Requant r = make_requant(pack)
    cdef const uint8_t[::1] av = a.reshape(-1).view(np.uint8)
    cdef uint8_t[::1] ov = out.reshape(-1).view(np.uint8)
    cdef const int32_t[::1] bv
    cdef MatmulCall c
    c.a = &av[0]
    c.a_dtype = a_dtype
    c.zp_a = zp_a
    c.m = m
    c.k = k
    c.n = n
    c.batches = a_index.shape[0]
    c.a_index = &a_index[0]
    c.b_index = &b_index[0]
    c.b_format = b_format
    c.b_data = &b_data[0, 0]
    c.b_stride = b_data.shape[1]
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
        st = matmul(isa, c, threads)
    return st
