# Declarations shared by every kernel binding (included by _ext.pyx).
# Bindings are thin: they take numpy arrays (already validated by Python),
# pass pointers and sizes to C++, and release the GIL. No arithmetic here.
from libc.stdint cimport int8_t, uint8_t, int16_t, int32_t, int64_t, uint64_t

cdef extern from "qnnref/common.h" namespace "qnnref":
    cdef struct Requant:
        int32_t kind
        int32_t rounding
        int32_t double_round
        int32_t float_dtype
        int32_t per_channel
        const int32_t* multiplier
        const int32_t* shift
        const float* real_f32
        const double* real_f64
        int32_t zero_point
        int32_t lo
        int32_t hi
    bint cpu_has_avx2() nogil


def has_avx2():
    """True when this CPU (and OS) supports AVX2 and FMA."""
    return cpu_has_avx2()


cdef Requant make_requant(object pack) except *:
    """A Requant whose pointers point into ``pack``'s arrays (a
    qnnref._kernels._common.RequantPack, which must outlive the call)."""
    cdef Requant r
    cdef const int32_t[::1] m = pack.multiplier
    cdef const int32_t[::1] s = pack.shift
    cdef const float[::1] f32 = pack.real_f32
    cdef const double[::1] f64 = pack.real_f64
    r.kind = pack.kind
    r.rounding = pack.rounding
    r.double_round = pack.double_round
    r.float_dtype = pack.float_dtype
    r.per_channel = pack.per_channel
    r.multiplier = &m[0]
    r.shift = &s[0]
    r.real_f32 = &f32[0]
    r.real_f64 = &f64[0]
    r.zero_point = pack.zero_point
    r.lo = pack.lo
    r.hi = pack.hi
    return r
