"""Which function imports which ONNX operator.

A handler ``fn(imp, node)`` reads the node's input values from
``imp.values``, emits qnnref nodes through the :class:`~qnnref.onnx.context.Importer`
helpers, and binds every output name; it raises :class:`~qnnref.onnx.reader.Refused`
for a configuration qnnref cannot represent exactly.
"""
from __future__ import annotations

from collections.abc import Callable

HANDLERS: dict[tuple[str, str], Callable] = {}

MS = "com.microsoft"

#: ONNX operators that compute in floating point. Between DequantizeLinear and
#: QuantizeLinear a runtime may fuse some of them into integer kernels (the
#: handlers do, where qnnref has an exact integer operator); anywhere else
#: they need float32 operators, which qnnref does not have yet.
FLOAT_OPS = {
    "Softmax", "LogSoftmax", "Resize", "Upsample", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Reciprocal",
    "Div", "Sub", "Pow", "Erf", "Gelu", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Selu",
    "PRelu", "Softplus", "BatchNormalization", "InstanceNormalization", "LayerNormalization",
    "GroupNormalization", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2",
    "Conv", "ConvTranspose", "MatMul", "Gemm", "Add", "Mul", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "Relu", "Clip", "Cast", "Einsum", "Where", "Neg", "Abs", "Min", "Max", "Sum", "Mean",
    "Sin", "Cos", "Mish", "LRN", "Attention", "MatMulNBits", "DynamicQuantizeLinear",
}


def handles(*ops: str, domain: str = ""):
    """Register a handler for ONNX ops ``ops`` of ``domain`` ("" = ai.onnx)."""
    def deco(fn):
        for op in ops:
            key = (domain, op)
            if key in HANDLERS:
                raise RuntimeError(f"two importers for {key}")
            HANDLERS[key] = fn
        return fn
    return deco
