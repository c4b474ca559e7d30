"""C++ SIMD kernels bound with Cython (scalar + AVX2, chosen at run time).

Empty until the kernels land (issue 3): the numpy reference in qnnref/ops/
is the only backend for now.
"""
