# Bindings of include/qnnref/requantize.h.

cdef extern from "qnnref/requantize.h" namespace "qnnref":
    int32_t requantize_row(int32_t isa, const int32_t* acc, int64_t n, const Requant& p, int64_t ch0,
                           int32_t out_dtype, void* out) nogil
    int32_t requantize_tensor(int32_t isa, const void* x, int32_t x_dtype, int64_t n, int64_t mid,
                              int64_t inner, const int32_t* x_zp, const int32_t* y_zp, const Requant& p,
                              int32_t out_dtype, void* y, int32_t threads) nogil


cdef void* data_ptr(object a) except NULL:
    """The data pointer of a non-empty C-contiguous array (the caller keeps
    ``a`` alive during the call; the view below shares its memory)."""
    cdef const uint8_t[::1] v = a.reshape(-1).view(np.uint8)
    return <void*>&v[0]


def requantize_rows(int isa, const int32_t[::1] acc, object pack, int64_t channels, int32_t out_dtype,
                    object out):
    """Requantize acc (rows of ``channels`` accumulators, flattened) into the
    contiguous array ``out``; element i has channel i % channels. Returns the
    Status (0 ok, 1 needs the reference)."""
    cdef Requant r = make_requant(pack)
    cdef uint8_t[::1] o = out.reshape(-1).view(np.uint8)
    cdef int64_t n = acc.shape[0]
    cdef int64_t rows = n // channels if channels > 0 else 0
    cdef int64_t i
    cdef int64_t itemsize = out.itemsize
    cdef int32_t st = 0
    with nogil:
        for i in range(rows):
            st |= requantize_row(isa, &acc[i * channels], channels, r, 0, out_dtype,
                                 <void*>(&o[0] + i * channels * itemsize))
    return st


_OUT_NUMPY = {0: np.int8, 1: np.uint8, 2: np.int16, 3: np.int32, 4: np.int8, 5: np.uint8}


def requantize_row_test(int isa, const int32_t[::1] acc, object pack, int64_t ch0, int32_t out_dtype):
    """For tests: ONE requantize_row call over all of ``acc`` (element i has
    channel ch0 + i when the pack is per-channel, which must then hold at
    least ch0 + len(acc) channels). Returns (out, status)."""
    cdef Requant r = make_requant(pack)
    cdef int64_t n = acc.shape[0]
    out = np.zeros(n, dtype=_OUT_NUMPY[out_dtype])
    if n == 0:
        return out, 0
    cdef uint8_t[::1] o = out.view(np.uint8)
    cdef int32_t st
    with nogil:
        st = requantize_row(isa, &acc[0], n, r, ch0, out_dtype, <void*>&o[0])
    return out, st


def requantize_tensor_run(int isa, object x, int32_t x_dtype, int64_t mid, int64_t inner,
                          const int32_t[::1] x_zp, const int32_t[::1] y_zp, object pack, int32_t out_dtype,
                          object y, int32_t threads):
    """The requantize operator (include/qnnref/requantize.h requantize_tensor)
    on the non-empty C-contiguous x into y. Returns the Status."""
    cdef Requant r = make_requant(pack)
    cdef void* xp = data_ptr(x)
    cdef void* yp = data_ptr(y)
    cdef int64_t n = x.size
    cdef int32_t st
    with nogil:
        st = requantize_tensor(isa, xp, x_dtype, n, mid, inner, &x_zp[0], &y_zp[0], r, out_dtype, yp, threads)
    return st
