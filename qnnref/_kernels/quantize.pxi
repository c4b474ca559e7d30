# Bindings of include/qnnref/quantize.h.

cdef extern from "qnnref/quantize.h" namespace "qnnref":
    cdef struct QuantizeParams:
        int32_t reciprocal
        int32_t rounding
        int32_t float_dtype
        int32_t lo
        int32_t hi
    int32_t quantize_kernel "qnnref::quantize"(int32_t isa, const float* x, int64_t n, int64_t mid, int64_t inner,
                                               const float* factor_f32, const double* factor_f64,
                                               const int32_t* zp, const QuantizeParams& q, int32_t out_dtype,
                                               void* y, int32_t threads) nogil


def quantize_run(int isa, const float[::1] x, object state, object y, int32_t threads):
    """quantize (include/qnnref/quantize.h) of the non-empty float32 x into
    the C-contiguous y; ``state`` is the glue's prepared state. Returns the Status."""
    cdef const float[::1] f32 = state.factor_f32
    cdef const double[::1] f64 = state.factor_f64
    cdef const int32_t[::1] zp = state.zp
    cdef QuantizeParams q
    q.reciprocal, q.rounding, q.float_dtype, q.lo, q.hi = state.params
    cdef void* yp = data_ptr(y)
    cdef int64_t mid = state.mid, inner = state.inner
    cdef int32_t out_dtype = state.dtype
    cdef int32_t st
    with nogil:
        st = quantize_kernel(isa, &x[0], x.shape[0], mid, inner, &f32[0], &f64[0], &zp[0], q, out_dtype, yp,
                             threads)
    return st
