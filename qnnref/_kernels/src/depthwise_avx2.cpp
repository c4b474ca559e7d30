#ifndef __AVX2__
#error "an _avx2.cpp file must be compiled with the AVX2 flags (setup.py ISA_FLAGS)"
#endif
// AVX2 depthwise conv2d. Placeholder: forwards to the scalar kernel.
#include "qnnref/depthwise.h"

namespace qnnref {
namespace avx2 {

Status depthwise_conv2d(const DepthwiseGeometry& g, const DepthwiseWeights& w, const Requant& rq,
                        int threads, const void* x, void* y) {
  return scalar::depthwise_conv2d(g, w, rq, threads, x, y);
}

}  // namespace avx2
}  // namespace qnnref
