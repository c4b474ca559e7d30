# Bindings of include/qnnref/avg_pool2d.h (PoolGeometry: max_pool2d.pxi).

cdef extern from "qnnref/avg_pool2d.h" namespace "qnnref":
    cdef struct AvgPoolParams:
        int32_t requantize
        int32_t count_include_pad
        int32_t x_zero_point
        int32_t rounding
        int32_t lo, hi
        const int64_t* counts
        int64_t num_counts
        Requant requant
    int32_t avg_pool2d(int32_t isa, const void* x, void* y, const PoolGeometry& g, int32_t dtype,
                       const AvgPoolParams& p, int threads) nogil


def avg_pool2d_run(int isa, object x, object y, tuple geo, int32_t dtype, bint count_include_pad,
                   int32_t x_zero_point, int32_t rounding, int32_t lo, int32_t hi,
                   const int64_t[::1] counts, object pack, int threads):
    """avg_pool2d of the C-contiguous NHWC array x into the C-contiguous array
    y (neither empty). pack None: same quantization (exact division by
    rounding, clamp [lo, hi]); else a RequantPack holding one multiplier per
    entry of the ascending ``counts``. Returns the Status."""
    cdef PoolGeometry g = make_pool_geometry(geo)
    cdef AvgPoolParams p
    p.requantize = pack is not None
    p.count_include_pad = count_include_pad
    p.x_zero_point = x_zero_point
    p.rounding = rounding
    p.lo = lo
    p.hi = hi
    p.counts = &counts[0]
    p.num_counts = counts.shape[0]
    if pack is not None:
        p.requant = make_requant(pack)
    cdef const uint8_t[::1] xb = x.reshape(-1).view(np.uint8)
    cdef uint8_t[::1] yb = y.reshape(-1).view(np.uint8)
    cdef int32_t st
    with nogil:
        st = avg_pool2d(isa, &xb[0], &yb[0], g, dtype, p, threads)
    return st
