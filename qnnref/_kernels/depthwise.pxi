# Bindings of include/qnnref/depthwise.h: the depthwise conv2d kernel
# (called by qnnref/_kernels/depthwise.py, which validated everything).

cdef extern from "qnnref/depthwise.h" namespace "qnnref":
    cdef struct DepthwiseGeometry:
        int64_t n, h, w, c
        int64_t kh, kw
        int64_t sh, sw, dh, dw
        int64_t top, left
        int64_t oh, ow
        int32_t x_dtype
        int32_t x_zero_point
        int32_t y_dtype
    cdef struct DepthwiseWeights:
        const int16_t* taps
        const int32_t* bias
        const int16_t* pairs
        const int32_t* bias_zx
    int32_t depthwise_conv2d(int32_t isa, const DepthwiseGeometry& g, const DepthwiseWeights& w,
                             const Requant& rq, int threads, const void* x, void* y) nogil


def depthwise_conv2d_run(int isa, tuple geometry, const int16_t[::1] taps, const int32_t[::1] bias,
                         const int16_t[::1] pairs, const int32_t[::1] bias_zx, object pack,
                         int threads, object x, object y):
    """y = the depthwise conv of x (both contiguous NHWC, non-empty).
    ``geometry``: (n, h, w, c, kh, kw, sh, sw, dh, dw, top, left, oh, ow,
    x_dtype, x_zero_point, y_dtype). Returns the Status (0 ok, 1 needs the
    reference)."""
    cdef DepthwiseGeometry g
    (g.n, g.h, g.w, g.c, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.top, g.left, g.oh, g.ow,
     g.x_dtype, g.x_zero_point, g.y_dtype) = geometry
    cdef DepthwiseWeights wt
    wt.taps = &taps[0]
    wt.bias = &bias[0]
    wt.pairs = &pairs[0]
    wt.bias_zx = &bias_zx[0]
    cdef Requant r = make_requant(pack)
    cdef const uint8_t[::1] xv = x.reshape(-1).view(np.uint8)
    cdef uint8_t[::1] yv = y.reshape(-1).view(np.uint8)
    cdef int32_t st
    with nogil:
        st = depthwise_conv2d(isa, g, wt, r, threads, &xv[0], &yv[0])
    return st
