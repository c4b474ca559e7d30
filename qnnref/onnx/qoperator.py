"""QOperator graphs: operators that take integers and their quantization
parameters explicitly (QLinearConv, QLinearMatMul, com.microsoft's QGemm,
QLinearAdd, ...). Each maps onto one qnnref integer operator; the tensors'
quantization must be the one their producer gave them (qnnref tensors carry
one quantization each).
"""
from __future__ import annotations

from .compute import (Operand, Output, emit_avg_pool, emit_binary, emit_concat, emit_conv,
                      emit_global_avg_pool, emit_matmul, emit_table, operand_of)
from .context import Importer
from .qdq import dequantize_linear, gemm_operands, quantize_linear
from .quantparams import triple_quant
from .reader import OnnxNode, Refused
from .registry import MS, handles


def _dtype_shape(imp: Importer, node: OnnxNode, i: int):
    v = imp.value(node.input(i))
    return imp.dtype(v), imp.shape(v)


def stated_operand(imp: Importer, node: OnnxNode, i: int, s: int, z: int, what: str,
                   vector_axis=None) -> Operand:
    """Input ``i`` with the parameters of the triple (i, s, z). ``vector_axis``:
    a function of the input's rank giving the axis of a 1-D scale, or None."""
    dtype, shape = _dtype_shape(imp, node, i)
    axis = vector_axis(len(shape)) if vector_axis is not None else None
    q = triple_quant(imp, node, s, z, dtype, shape, axis, what)
    return operand_of(imp, node, i, what, stated=q)


def output_triple(imp: Importer, node: OnnxNode, s: int, z: int, default_dtype: str) -> Output:
    dtype = imp.const_dtype(node, z) or default_dtype
    return Output(node.outputs[0], triple_quant(imp, node, s, z, dtype, None, None, "output"))


@handles("QLinearConv")
def qlinear_conv(imp: Importer, node: OnnxNode) -> None:
    x = stated_operand(imp, node, 0, 1, 2, "x")
    w = stated_operand(imp, node, 3, 4, 5, "w", vector_axis=lambda r: 0)
    out = output_triple(imp, node, 6, 7, x.quant.dtype)
    emit_conv(imp, node, x, w, imp.const(node, 8, "bias B"), out)


@handles("QLinearMatMul")
def qlinear_matmul(imp: Importer, node: OnnxNode) -> None:
    a = stated_operand(imp, node, 0, 1, 2, "a")
    b = stated_operand(imp, node, 3, 4, 5, "b", vector_axis=lambda r: r - 1)
    emit_matmul(imp, node, a, b, None, output_triple(imp, node, 6, 7, a.quant.dtype))


@handles("QGemm", domain=MS)
def qgemm(imp: Importer, node: OnnxNode) -> None:
    if not node.input(7):
        raise Refused(f"{node.where()}: QGemm without y_scale outputs float32 (qnnref has no float "
                      "output for a matmul)")
    a = stated_operand(imp, node, 0, 1, 2, "A")
    trans_b = node.attr("transB", 0)
    b = stated_operand(imp, node, 3, 4, 5, "B", vector_axis=lambda r: 0 if trans_b else 1)
    a, b = gemm_operands(imp, node, a, b)
    emit_matmul(imp, node, a, b, imp.const(node, 6, "bias C"), output_triple(imp, node, 7, 8, a.quant.dtype))


@handles("QLinearAdd", "QLinearMul", domain=MS)
def qlinear_binary(imp: Importer, node: OnnxNode) -> None:
    a = stated_operand(imp, node, 0, 1, 2, "A")
    b = stated_operand(imp, node, 3, 4, 5, "B")
    op = "add" if node.op_type == "QLinearAdd" else "mul"
    emit_binary(imp, node, op, a, b, output_triple(imp, node, 6, 7, a.quant.dtype))


@handles("QLinearSigmoid", "QLinearLeakyRelu", domain=MS)
def qlinear_lookup(imp: Importer, node: OnnxNode) -> None:
    x = stated_operand(imp, node, 0, 1, 2, "X")
    out = output_triple(imp, node, 3, 4, x.quant.dtype)
    if node.op_type == "QLinearSigmoid":
        emit_table(imp, node, "sigmoid", x, out)
    else:
        emit_table(imp, node, "leaky_relu", x, out, alpha=node.attr("alpha", 0.01))


@handles("QLinearAveragePool", domain=MS)
def qlinear_average_pool(imp: Importer, node: OnnxNode) -> None:
    x = stated_operand(imp, node, 0, 1, 2, "X")
    emit_avg_pool(imp, node, x, output_triple(imp, node, 3, 4, x.quant.dtype),
                  channels_last=bool(node.attr("channels_last", 0)))


@handles("QLinearGlobalAveragePool", domain=MS)
def qlinear_global_average_pool(imp: Importer, node: OnnxNode) -> None:
    x = stated_operand(imp, node, 0, 1, 2, "X")
    emit_global_avg_pool(imp, node, x, output_triple(imp, node, 3, 4, x.quant.dtype))


@handles("QLinearConcat", domain=MS)
def qlinear_concat(imp: Importer, node: OnnxNode) -> None:
    if (len(node.inputs) - 2) % 3 or len(node.inputs) < 5:
        raise Refused(f"{node.where()}: inputs must be Y_scale, Y_zero_point, then (X, scale, zero point) triples")
    ops = [stated_operand(imp, node, i, i + 1, i + 2, f"input {(i - 2) // 3}") for i in range(2, len(node.inputs), 3)]
    out = output_triple(imp, node, 0, 1, ops[0].quant.dtype)
    emit_concat(imp, node, ops, node.attr("axis"), out)


@handles("QuantizeLinear", domain=MS)
def ms_quantize_linear(imp: Importer, node: OnnxNode) -> None:
    quantize_linear(imp, node)


@handles("DequantizeLinear", domain=MS)
def ms_dequantize_linear(imp: Importer, node: OnnxNode) -> None:
    dequantize_linear(imp, node)


# ---------------------------------------------------------------------------
# Operators refused for a known reason
# ---------------------------------------------------------------------------

_INT32_OUT = ("outputs int32 accumulators; qnnref's matmul and conv2d output int8/uint8/int16 only "
              "(an int32-output mode is needed)")
REFUSED = {
    ("", "MatMulInteger"): _INT32_OUT,
    ("", "ConvInteger"): _INT32_OUT,
    ("", "DynamicQuantizeLinear"): "computes its scale and zero point at run time (dynamic quantization); "
                                   "qnnref's quantization parameters are fixed in the model",
    (MS, "DynamicQuantizeMatMul"): "dynamic quantization with float output",
    (MS, "MatMulIntegerToFloat"): "integer matmul with float32 output (needs float32 operators)",
    (MS, "MatMulNBits"): "float activations times 4-bit weights, float output (needs float32 operators)",
    (MS, "QLinearSoftmax"): "ONNX Runtime's table-based softmax (qnnref's softmax is TFLite's integer "
                            "algorithm, not this one)",
    (MS, "QLinearReduceMean"): "not mapped yet (qnnref mean could express it)",
    (MS, "QLinearWhere"): "not supported",
    (MS, "QLinearConvTranspose"): "transposed convolution is not a qnnref operator",
    (MS, "QAttention"): "attention is not a qnnref operator",
}


def _refuse(reason: str):
    def handler(imp: Importer, node: OnnxNode) -> None:
        raise Refused(f"{node.where()}: {reason}")
    return handler


for (_domain, _op), _reason in REFUSED.items():
    handles(_op, domain=_domain)(_refuse(_reason))
