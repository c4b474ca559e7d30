# Bindings of include/qnnref/mean.h.

cdef extern from "qnnref/mean.h" namespace "qnnref":
    int32_t mean(int32_t isa, const void* x, void* y, int64_t outer, int64_t reduce, int64_t inner,
                 int32_t dtype, int32_t x_zero_point, const Requant& p, int threads) nogil


def mean_run(int isa, object x, object y, int64_t outer, int64_t reduce, int64_t inner, int32_t dtype,
             int32_t x_zero_point, object pack, int threads):
    """mean of the C-contiguous x, seen as [outer, reduce, inner], over its
    middle axis into the C-contiguous y [outer, inner] (neither empty), with
    the RequantPack ``pack``. Returns the Status."""
    cdef Requant r = make_requant(pack)
    cdef const uint8_t[::1] xb = x.reshape(-1).view(np.uint8)
    cdef uint8_t[::1] yb = y.reshape(-1).view(np.uint8)
    cdef int32_t st
    with nogil:
        st = mean(isa, &xb[0], &yb[0], outer, reduce, inner, dtype, x_zero_point, r, threads)
    return st
