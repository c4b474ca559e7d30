# Bindings of include/qnnref/table.h.

cdef extern from "qnnref/table.h" namespace "qnnref":
    int32_t table(int32_t isa, const uint8_t* x, uint8_t* y, int64_t n, int32_t x_signed, const uint8_t* lut,
                  int threads) nogil


def table_run(int isa, object x, object y, bint x_signed, const uint8_t[::1] lut, int threads):
    """y = lut[index(x)] over the bytes of the C-contiguous arrays x and y (not
    empty; 8-bit); lut: the table's 256 bytes. Returns the Status."""
    cdef const uint8_t[::1] xb = x.reshape(-1).view(np.uint8)
    cdef uint8_t[::1] yb = y.reshape(-1).view(np.uint8)
    cdef int64_t n = xb.shape[0]
    cdef int32_t st
    with nogil:
        st = table(isa, &xb[0], &yb[0], n, x_signed, &lut[0], threads)
    return st
