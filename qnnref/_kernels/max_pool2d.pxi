# Bindings of include/qnnref/max_pool2d.h (PoolGeometry is shared with avg_pool2d.pxi).

cdef extern from "qnnref/max_pool2d.h" namespace "qnnref":
    cdef struct PoolGeometry:
        int64_t N, H, W, C
        int64_t OH, OW
        int64_t kh, kw
        int64_t sh, sw
        int64_t dh, dw
        int64_t pad_top, pad_left
    int32_t max_pool2d(int32_t isa, const void* x, void* y, const PoolGeometry& g, int32_t dtype,
                       int32_t lo, int32_t hi, int threads) nogil


cdef PoolGeometry make_pool_geometry(tuple geo) except *:
    """A PoolGeometry from (N, H, W, C, OH, OW, kh, kw, sh, sw, dh, dw, pad_top, pad_left)."""
    cdef PoolGeometry g
    (g.N, g.H, g.W, g.C, g.OH, g.OW, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pad_top, g.pad_left) = geo
    return g


def max_pool2d_run(int isa, object x, object y, tuple geo, int32_t dtype, int32_t lo, int32_t hi,
                   int threads):
    """max_pool2d of the C-contiguous NHWC array x into the C-contiguous
    array y (neither empty); geo as make_pool_geometry. Returns the Status."""
    cdef PoolGeometry g = make_pool_geometry(geo)
    cdef const uint8_t[::1] xb = x.reshape(-1).view(np.uint8)
    cdef uint8_t[::1] yb = y.reshape(-1).view(np.uint8)
    cdef int32_t st
    with nogil:
        st = max_pool2d(isa, &xb[0], &yb[0], g, dtype, lo, hi, threads)
    return st
