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
