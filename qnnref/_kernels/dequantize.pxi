# Bindings of include/qnnref/dequantize.h.

cdef extern from "qnnref/dequantize.h" namespace "qnnref":
    int32_t dequantize_kernel "qnnref::dequantize"(int32_t isa, const void* x, int32_t x_dtype, int64_t n,
                                                   int64_t mid, int64_t inner, const float* scale,
                                                   const int32_t* zp, float* y, int32_t threads) nogil


def dequantize_run(int isa, object x, object state, float[::1] y, int32_t threads):
    """dequantize (include/qnnref/dequantize.h) of the non-empty
    C-contiguous x into the flat float32 y; ``state``: the glue's prepared state."""
    cdef const float[::1] s = state.scale
    cdef const int32_t[::1] zp = state.zp
    cdef void* xp = data_ptr(x)
    cdef int32_t x_dtype = state.dtype
    cdef int64_t mid = state.mid, inner = state.inner
    with nogil:
        dequantize_kernel(isa, xp, x_dtype, y.shape[0], mid, inner, &s[0], &zp[0], &y[0], threads)
