# Bindings of include/qnnref/clamp.h.

cdef extern from "qnnref/clamp.h" namespace "qnnref":
    int32_t clamp_kernel "qnnref::clamp"(int32_t isa, const void* x, int32_t dtype, int64_t n, int32_t lo,
                                         int32_t hi, void* y, int32_t threads) nogil


def clamp_run(int isa, object x, int32_t dtype, int32_t lo, int32_t hi, object y, int32_t threads):
    """clamp (include/qnnref/clamp.h) of the non-empty C-contiguous x into y."""
    cdef void* xp = data_ptr(x)
    cdef void* yp = data_ptr(y)
    cdef int64_t n = x.size
    with nogil:
        clamp_kernel(isa, xp, dtype, n, lo, hi, yp, threads)
