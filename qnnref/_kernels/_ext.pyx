# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
# distutils: language = c++
"""qnnref._kernels._ext: the one compiled extension module.

Each operator's bindings live in NAME.pxi (thin: pointers, sizes, nogil);
the arithmetic is in C++ under include/ and src/.
"""
import numpy as np

include "common.pxi"
include "requantize.pxi"
include "quantize.pxi"
include "dequantize.pxi"
include "add.pxi"
include "mul.pxi"
include "clamp.pxi"
include "matmul.pxi"
include "conv2d.pxi"
include "max_pool2d.pxi"
include "avg_pool2d.pxi"
include "mean.pxi"
include "table.pxi"
include "softmax.pxi"
include "depthwise.pxi"
