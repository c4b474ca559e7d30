"""Quantization parameters as ONNX nodes state them.

QuantizeLinear / DequantizeLinear carry ``(x, scale, zero_point)`` plus the
attributes ``axis`` (opset 13), ``block_size`` and ``output_dtype`` (opset
21); the QLinear* operators carry one ``(tensor, scale, zero_point)`` triple
per quantized input and output. :data:`ACTIVATION_SLOTS` lists the triples
of each operator (input indices), used to read them and to find the
quantization of integer graph inputs.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto

from .reader import DTYPES, OnnxNode, OnnxQuant, Refused, make_onnx_quant, type_name

MS = "com.microsoft"

#: (domain, op) -> [(tensor index, scale index, zero point index)] of the
#: operator's quantized *inputs* (the output's triple is read by each handler).
ACTIVATION_SLOTS = {
    ("", "DequantizeLinear"): [(0, 1, 2)],
    (MS, "DequantizeLinear"): [(0, 1, 2)],
    ("", "QLinearConv"): [(0, 1, 2), (3, 4, 5)],
    ("", "QLinearMatMul"): [(0, 1, 2), (3, 4, 5)],
    (MS, "QGemm"): [(0, 1, 2), (3, 4, 5)],
    (MS, "QLinearAdd"): [(0, 1, 2), (3, 4, 5)],
    (MS, "QLinearMul"): [(0, 1, 2), (3, 4, 5)],
    (MS, "QLinearSigmoid"): [(0, 1, 2)],
    (MS, "QLinearLeakyRelu"): [(0, 1, 2)],
    (MS, "QLinearAveragePool"): [(0, 1, 2)],
    (MS, "QLinearGlobalAveragePool"): [(0, 1, 2)],
}


def input_slots(node: OnnxNode) -> list[tuple[int, int, int]]:
    if node.key == (MS, "QLinearConcat"):
        return [(i, i + 1, i + 2) for i in range(2, len(node.inputs) - 2, 3)]
    return ACTIVATION_SLOTS.get(node.key, [])


def triple_quant(imp, node: OnnxNode, scale_i: int, zp_i: int, dtype: str, shape, vector_axis: int | None,
                 what: str) -> OnnxQuant:
    """The OnnxQuant of one QLinear* triple. A 1-D scale with more than one
    element is per-axis on ``vector_axis`` (None: per-axis is not allowed)."""
    where = f"{node.where()}: {what}"
    scale = imp.const(node, scale_i, f"{what} scale")
    if scale is None:
        raise Refused(f"{where}: a scale is required")
    zp = imp.const(node, zp_i, f"{what} zero point")
    if zp is not None:
        zdt = imp.const_dtype(node, zp_i)
        if zdt != dtype:
            raise Refused(f"{where}: zero point of type {zdt} for a {dtype} tensor")
    if np.asarray(scale).size != 1 and vector_axis is None:
        raise Refused(f"{where}: only a per-tensor (scalar) scale is supported here")
    if np.asarray(scale).dtype == np.float16:
        # A QLinear* operator's float16 scales (ONNX's T2 may be float16) are
        # widened to float32, exactly: they only form the requantization
        # multiplier, which the profile's recipe computes in its own width
        # (the ONNX backend tests test_qlinearmatmul_*_float16 match). Not for
        # QuantizeLinear, whose division runs in the scale's type.
        scale = np.asarray(scale).astype(np.float32)
    return make_onnx_quant(where, dtype, scale, zp, vector_axis if vector_axis is not None else 0, 0, shape,
                           broadcast_zero_point=True)


def qdq_quant(imp, node: OnnxNode, dtype: str | None, shape) -> OnnxQuant:
    """The parameters of a QuantizeLinear (``dtype=None``: read from the zero
    point or ``output_dtype``) or DequantizeLinear (``dtype`` = its input's)."""
    # com.microsoft's QuantizeLinear / DequantizeLinear always have ``axis``
    opset = imp.onnx.opset if node.domain == "" else max(imp.onnx.opset, 13)
    if node.attr("precision") not in (None, 0, TensorProto.FLOAT):
        raise Refused(f"{node.where()}: precision {type_name(node.attr('precision'))} (qnnref quantizes "
                      "with the profile's float32 division)")
    if node.attr("saturate", 1) != 1:
        raise Refused(f"{node.where()}: saturate=0 applies to float8 types only")
    scale = imp.const(node, 1, "scale")
    zp = imp.const(node, 2, "zero point")
    if dtype is None:
        out_type = node.attr("output_dtype", 0)
        if zp is not None:
            dtype = imp.const_dtype(node, 2)
            if dtype not in DTYPES.values():
                raise Refused(f"{node.where()}: zero point of type {dtype}, which qnnref does not have")
            if out_type and DTYPES.get(out_type) != dtype:
                raise Refused(f"{node.where()}: output_dtype {type_name(out_type)} differs from the zero point's")
        elif out_type:
            if out_type not in DTYPES:
                raise Refused(f"{node.where()}: output type {type_name(out_type)}, which qnnref does not have")
            dtype = DTYPES[out_type]
        else:
            dtype = "uint8"
    elif zp is not None and imp.const_dtype(node, 2) != dtype:
        raise Refused(f"{node.where()}: zero point of type {imp.const_dtype(node, 2)} for a {dtype} input")
    if dtype not in ("int4", "uint4", "int8", "uint8", "int16", "int32"):
        raise Refused(f"{node.where()}: quantized type {dtype} (qnnref quantizes to int4, uint4, int8, "
                      "uint8, int16)")
    axis = node.attr("axis", 1) if opset >= 13 else 1
    block = node.attr("block_size", 0) if opset >= 21 else 0
    return make_onnx_quant(node.where(), dtype, scale, zp, axis, block, shape)
