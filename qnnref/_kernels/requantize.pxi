# Bindings of include/qnnref/requantize.h.

cdef extern from "qnnref/requantize.h" namespace "qnnref":
    int32_t requantize_row(int32_t isa, const int32_t* acc, int64_t n, const Requant& p, int64_t ch0,
                           int32_t out_dtype, void* out) nogil


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
