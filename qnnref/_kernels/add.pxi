# Bindings of include/qnnref/add.h (add, and the broadcast Operand that mul shares).

cdef extern from "qnnref/add.h" namespace "qnnref":
    cdef struct Operand:
        const void* data
        int64_t mid
        int64_t inner
        int32_t zero_point
    cdef struct AddParams:
        int32_t kind
        int32_t left_shift
        int32_t float_dtype
        int32_t rounding
        float a_scale
        float b_scale
        float y_scale
        int32_t y_zero_point
        int32_t lo
        int32_t hi
    int32_t add_kernel "qnnref::add"(int32_t isa, const Operand& a, const Operand& b, int32_t dtype, int64_t n,
                                     const AddParams& ap, const Requant& ra, const Requant& rb,
                                     const Requant& ro, void* y, int32_t threads) nogil


cdef Operand make_operand(object x, object pattern, int32_t zero_point) except *:
    """An Operand over the non-empty C-contiguous array x; pattern = (mid, inner)."""
    cdef Operand o
    o.data = data_ptr(x)
    o.mid = pattern[0]
    o.inner = pattern[1]
    o.zero_point = zero_point
    return o


def add_run(int isa, object a, object b, object state, object y, int32_t threads):
    """add (include/qnnref/add.h) of the non-empty C-contiguous a and b into
    y; ``state`` is the glue's prepared state. Returns the Status."""
    cdef Operand oa = make_operand(a, state.a_pattern, state.a_zp)
    cdef Operand ob = make_operand(b, state.b_pattern, state.b_zp)
    cdef AddParams ap
    ap.kind, ap.left_shift, ap.float_dtype, ap.rounding = state.kind, state.left_shift, state.float_dtype, state.rounding
    ap.a_scale, ap.b_scale, ap.y_scale = state.scales
    ap.y_zero_point, ap.lo, ap.hi = state.y_zp, state.lo, state.hi
    cdef Requant ra = make_requant(state.pack_a)
    cdef Requant rb = make_requant(state.pack_b)
    cdef Requant ro = make_requant(state.pack_out)
    cdef void* yp = data_ptr(y)
    cdef int64_t n = y.size
    cdef int32_t dtype = state.dtype
    cdef int32_t st
    with nogil:
        st = add_kernel(isa, oa, ob, dtype, n, ap, ra, rb, ro, yp, threads)
    return st
