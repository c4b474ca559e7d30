# Bindings of include/qnnref/softmax.h.

cdef extern from "qnnref/softmax.h" namespace "qnnref":
    cdef struct SoftmaxParams:
        int32_t input_multiplier
        int32_t input_left_shift
        int32_t diff_min
        int32_t output_multiplier
        int32_t output_shift
        int32_t y_zero_point
        int32_t lo, hi
        const int32_t* exp_table
    void softmax_exp_table(int32_t input_multiplier, int32_t input_left_shift, int32_t diff_min,
                           int32_t* exp_table) nogil
    int32_t softmax(int32_t isa, const void* x, void* y, int64_t rows, int64_t depth, int32_t x_signed,
                    const SoftmaxParams& p, int threads) nogil


def softmax_exp_table_run(int32_t input_multiplier, int32_t input_left_shift, int32_t diff_min):
    """The 256 exponentials (int32 array) of the differences 0, -1, ..., -255."""
    out = np.empty(256, dtype=np.int32)
    cdef int32_t[::1] o = out
    softmax_exp_table(input_multiplier, input_left_shift, diff_min, &o[0])
    return out


def softmax_run(int isa, object x, object y, int64_t rows, int64_t depth, bint x_signed, tuple params,
                const int32_t[::1] exp_table, int threads):
    """softmax of the C-contiguous x, ``rows`` rows of ``depth``, into the
    C-contiguous y (neither empty); params = (input_multiplier,
    input_left_shift, diff_min, output_multiplier, output_shift, y_zero_point,
    lo, hi). Returns the Status."""
    cdef SoftmaxParams p
    (p.input_multiplier, p.input_left_shift, p.diff_min, p.output_multiplier, p.output_shift,
     p.y_zero_point, p.lo, p.hi) = params
    p.exp_table = &exp_table[0]
    cdef const uint8_t[::1] xb = x.reshape(-1).view(np.uint8)
    cdef uint8_t[::1] yb = y.reshape(-1).view(np.uint8)
    cdef int32_t st
    with nogil:
        st = softmax(isa, &xb[0], &yb[0], rows, depth, x_signed, p, threads)
    return st
