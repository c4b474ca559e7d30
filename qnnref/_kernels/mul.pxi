# Bindings of include/qnnref/mul.h (Operand and make_operand: add.pxi).

cdef extern from "qnnref/mul.h" namespace "qnnref":
    int32_t mul_kernel "qnnref::mul"(int32_t isa, const Operand& a, const Operand& b, int32_t dtype, int64_t n,
                                     const Requant& r, void* y, int32_t threads) nogil


def mul_run(int isa, object a, object b, object state, object y, int32_t threads):
    """mul (include/qnnref/mul.h) of the non-empty C-contiguous a and b into
    y; ``state`` is the glue's prepared state. Returns the Status."""
    cdef Operand oa = make_operand(a, state.a_pattern, state.a_zp)
    cdef Operand ob = make_operand(b, state.b_pattern, state.b_zp)
    cdef Requant r = make_requant(state.pack)
    cdef void* yp = data_ptr(y)
    cdef int64_t n = y.size
    cdef int32_t dtype = state.dtype
    cdef int32_t st
    with nogil:
        st = mul_kernel(isa, oa, ob, dtype, n, r, yp, threads)
    return st
