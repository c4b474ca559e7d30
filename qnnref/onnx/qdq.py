"""QuantizeLinear, DequantizeLinear, and the QDQ fusions.

A QDQ graph states an integer computation as ``DequantizeLinear -> float op
-> QuantizeLinear``. Runtimes (ONNX Runtime's QDQ transformer) replace such
groups by integer operators; so does this importer:

* DequantizeLinear of a run-time tensor binds a *dequantized view* of it
  (nothing is emitted); of an initializer, a quantized constant.
* Conv, MatMul, Gemm, Add, Mul, AveragePool, GlobalAveragePool, Sigmoid,
  LeakyRelu, Concat whose inputs are dequantized views and whose output goes
  to exactly one QuantizeLinear -- optionally through one Relu or Clip --
  become one qnnref integer operator whose output is the QuantizeLinear's.
  Relu / Clip become the fused activation range [Q(min), Q(max)]: exact,
  because quantization is monotone, so ``Q(clip(v, a, b)) = clip(Q(v), Q(a), Q(b))``.
* QuantizeLinear of a dequantized view with the same parameters is the
  identity (nothing emitted); with other parameters it is a ``dequantize``
  then a ``quantize`` node (exactly ONNX's float32 definition).
* QuantizeLinear of a float input (the graph's edge) is a ``quantize`` node.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..arith import dequantize_values, quantize_values
from ..profiles import get_profile
from . import layout
from .compute import (Operand, Output, emit_avg_pool, reduce_mean_axes, emit_binary, emit_concat, emit_conv,
                      emit_global_avg_pool, emit_matmul, emit_mean, emit_table, operand_of)
from .context import Const, Importer, Tensor
from .movement import concat_plain
from .quantparams import qdq_quant
from .reader import OnnxNode, OnnxQuant, Refused, scalar
from .registry import handles


# ---------------------------------------------------------------------------
# QuantizeLinear / DequantizeLinear
# ---------------------------------------------------------------------------

def quantize_const(imp: Importer, data: np.ndarray, q: OnnxQuant) -> np.ndarray:
    """Quantize float constants with the profile's quantize recipe (what a
    qnnref ``quantize`` node would compute)."""
    qq = q.to_quant(layout.identity(data.ndim))
    scale, zp = qq.expanded(tuple(data.shape))
    if np.isnan(data).any():
        raise Refused("a NaN constant cannot be quantized")
    return quantize_values(data.astype(np.float32), scale, zp, q.dtype, get_profile(imp.profile).quantize)


def dequantize_const(data: np.ndarray, q: OnnxQuant) -> np.ndarray:
    qq = q.to_quant(layout.identity(data.ndim))
    scale, zp = qq.expanded(tuple(data.shape))
    return dequantize_values(data, scale, zp)


@handles("DequantizeLinear")
def dequantize_linear(imp: Importer, node: OnnxNode) -> None:
    v = imp.value(node.input(0))
    if isinstance(v, Const):
        if v.quant is not None or v.dtype not in ("int4", "uint4", "int8", "uint8", "int16", "int32"):
            raise Refused(f"{node.where()}: input of type {v.dtype} cannot be dequantized")
        q = qdq_quant(imp, node, v.dtype, v.data.shape)
        if q.dtype == "int32" and np.any(q.zero_points()):
            raise Refused(f"{node.where()}: int32 values need zero point 0")
        imp.bind(node.outputs[0], Const(v.data, v.dtype, q))
        return
    if v.dequantized:
        raise Refused(f"{node.where()}: input is already a float tensor")
    info = imp.info(v)
    q = qdq_quant(imp, node, info.dtype, imp.shape(v))
    have = imp.onnx_quant(v)
    if have is None:
        raise Refused(f"{node.where()}: its input {v.name!r} carries no quantization in qnnref "
                      "(integers computed without scale)")
    if not have.same(q):
        raise Refused(f"{node.where()}: dequantizes with {q.describe()} integers produced as {have.describe()}; "
                      "qnnref tensors have one quantization")
    imp.bind(node.outputs[0], Tensor(v.name, v.perm, dequantized=True))


@handles("QuantizeLinear")
def quantize_linear(imp: Importer, node: OnnxNode) -> None:
    v = imp.value(node.input(0))
    out = node.outputs[0]
    q = qdq_quant(imp, node, None, imp.shape(v))
    if q.dtype == "int32":
        raise Refused(f"{node.where()}: quantizing to int32 is not supported")
    if isinstance(v, Const):
        if v.quant is not None:
            data = v.data if v.quant.same(q) else quantize_const(imp, dequantize_const(v.data, v.quant), q)
        else:
            if v.dtype not in ("float32", "float16"):
                raise Refused(f"{node.where()}: cannot quantize a constant of type {v.dtype}")
            data = quantize_const(imp, v.data, q)
        imp.bind(out, Const(data, q.dtype))
        return
    info = imp.info(v)
    if v.dequantized:
        have = imp.onnx_quant(v)
        if have.same(q):
            imp.bind(out, Tensor(v.name, v.perm))          # DQ -> Q with equal parameters: identity
            return
        floats = imp.emit("dequantize", [v.name], None, imp.fresh(f"{out}_float"))
        name = imp.out_name(out, v.perm)
        imp.emit("quantize", [floats], {"dtype": q.dtype}, name, q.to_quant(v.perm), node_name=node.name)
        imp.bind(out, Tensor(name, v.perm))
        return
    if info.dtype not in ("float32", "float16"):
        raise Refused(f"{node.where()}: input of type {info.dtype} is not a float tensor")
    name = imp.out_name(out, v.perm)
    imp.emit("quantize", [v.name], {"dtype": q.dtype}, name, q.to_quant(v.perm), node_name=node.name)
    imp.bind(out, Tensor(name, v.perm))


# ---------------------------------------------------------------------------
# The quantized output of a fused group
# ---------------------------------------------------------------------------

def activation_range(imp: Importer, act: OnnxNode, q: OnnxQuant) -> tuple[int | None, int | None]:
    """The integer range [Q(min), Q(max)] of a Relu / Clip before QuantizeLinear ``q``."""
    dt = dtypes.get(q.dtype)
    if act.op_type == "Relu":
        lo, hi = 0.0, None
    elif imp.onnx.opset < 11:
        lo, hi = act.attr("min"), act.attr("max")
    else:
        lo = imp.const(act, 1, "Clip min")
        hi = imp.const(act, 2, "Clip max")
    recipe = get_profile(imp.profile).quantize

    def image(v):
        if v is None:
            return None
        return int(quantize_values(np.float32(scalar(act.where(), v, "a Clip bound")), q.scale, q.zero_points(),
                                   q.dtype, recipe))
    lo_q, hi_q = image(lo), image(hi)
    if lo_q is not None and hi_q is not None and lo_q > hi_q:
        raise Refused(f"{act.where()}: empty clip range")
    return (None if lo_q is None or lo_q <= dt.min else lo_q,
            None if hi_q is None or hi_q >= dt.max else hi_q)


def quantized_output(imp: Importer, node: OnnxNode, allow_act: bool = True) -> Output:
    """The QuantizeLinear (optionally after one Relu or Clip) that takes the
    float output of ``node``; marks them as absorbed. Refused if there is none."""
    name = node.outputs[0]
    act = None
    nxt = imp.single_consumer(name)
    if (allow_act and nxt is not None and nxt.domain == "" and nxt.op_type in ("Relu", "Clip")
            and nxt.input(0) == name):
        act = nxt
        name = act.outputs[0]
        nxt = imp.single_consumer(name)
    if nxt is None or not nxt.is_quantize or nxt.input(0) != name:
        q = _quantized_after_movement(imp, node.outputs[0])
        if q is None:
            raise Refused(f"{node.where()}: its float output does not go to one QuantizeLinear (optionally "
                          f"through Relu/Clip and data movement), so it is not an integer {node.op_type}")
        # Q commutes with data movement (and Relu / Clip are exact on the
        # quantized values): the result is a dequantized view with Q's parameters
        return Output(node.outputs[0], q, dequantized=True)
    q = qdq_quant(imp, nxt, None, None)
    if q.dtype == "int32":
        raise Refused(f"{nxt.where()}: quantizing to int32 is not supported")
    rng = activation_range(imp, act, q) if act is not None else (None, None)
    imp.skip.add(nxt.index)
    if act is not None:
        imp.skip.add(act.index)
    return Output(nxt.outputs[0], q, rng)


#: single-input operators that only move (or select, or monotonically clamp)
#: values: a QuantizeLinear after them can be moved before them
_MOVEMENT = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "DepthToSpace", "MaxPool",
             "GlobalMaxPool", "Gather", "Slice", "Resize", "Relu", "Clip"}


def _quantized_after_movement(imp: Importer, name: str) -> OnnxQuant | None:
    """The parameters of the QuantizeLinear reached from float value ``name``
    through single-consumer data movement (each moving input 0 only), or None."""
    seen = 0
    while seen < 16:
        nxt = imp.single_consumer(name)
        if nxt is None or nxt.input(0) != name:
            return None
        if nxt.is_quantize:
            q = qdq_quant(imp, nxt, None, None)
            return q if q.dtype != "int32" else None
        if nxt.domain != "" or nxt.op_type not in _MOVEMENT or (nxt.op_type == "Resize" and nxt.attr("mode", "nearest") != "nearest"):
            return None
        name = nxt.outputs[0]
        seen += 1
    return None


def _bias(imp: Importer, node: OnnxNode, i: int, x: Operand, w: Operand) -> np.ndarray | None:
    """An int32 bias given as DequantizeLinear(int32 initializer) with scale
    s_x * s_w (ONNX Runtime's fused operators read the integers and assume
    that scale; we check it)."""
    name = node.input(i)
    if not name:
        return None
    v = imp.value(name)
    if not isinstance(v, Const) or v.quant is None or v.quant.dtype != "int32":
        raise Refused(f"{node.where()}: the bias must be DequantizeLinear of an int32 initializer "
                      "(a float bias needs a float32 operator)")
    if np.any(v.quant.zero_points()):
        raise Refused(f"{node.where()}: the int32 bias must have zero point 0")
    if x.quant.scale.size != 1 or v.quant.scale.size not in (1, w.quant.scale.size):
        raise Refused(f"{node.where()}: the bias scale must be s_x * s_w with a per-tensor input scale "
                      f"(scales of {x.quant.scale.size}, {w.quant.scale.size} and {v.quant.scale.size} values)")
    expected = (x.quant.scale.astype(np.float32) * w.quant.scale.astype(np.float32)).reshape(-1)
    got = np.broadcast_to(v.quant.scale.astype(np.float32).reshape(-1), expected.shape)
    if not np.allclose(got, expected, rtol=2.0**-20, atol=0):
        raise Refused(f"{node.where()}: the bias scale is not s_x * s_w")
    return v.data.astype(np.int32)


def _producer(imp: Importer, name: str) -> OnnxNode | None:
    return next((n for n in imp.onnx.nodes if name in n.outputs), None) if name else None


def _only_reader(imp: Importer, name: str, node: OnnxNode) -> bool:
    """``node`` is the one node reading ``name``, which is no graph output."""
    users = imp.consumers.get(name, [])
    return name not in imp.graph_outputs and len(users) == 1 and users[0] is node


def ort_s8_as_u8(imp: Importer, node: OnnxNode, i: int) -> dict:
    """``{"s8_activations_as_u8": True}`` if ONNX Runtime on x86 feeds input
    ``i`` of ``node`` as uint8 codes + 128, else ``{}``.

    Its QDQS8ToU8Transformer (on x86, where ``session.qdqisint8allowed`` is
    off) rewrites a QuantizeLinear -> DequantizeLinear pair to uint8, zero
    point + 128, when both have an explicit int8 zero point and a constant
    scalar scale and zero point, the QuantizeLinear's only reader is the
    DequantizeLinear, and neither output is a graph output. A
    DequantizeLinear read by several nodes is first copied per reader
    (EnsureUniqueDQForNodeUnit), so its QuantizeLinear then has several
    readers and stays int8: the pair must also have ``node`` as its only
    reader. Weights (DequantizeLinear of an initializer) stay int8. ONNX
    Runtime then fuses the group only if its output QuantizeLinear (after an
    optional Relu / Clip) was rewritten too (uint8 in, uint8 out); otherwise
    it computes the node in float, without pairs, and nothing is marked.
    (spec/profiles/ort-cpu-x86.md rule 11; tests/profiles/test_pairwise_saturation.py)
    """
    rewritten = _s8_to_u8_rewrites(imp, node, i)
    return {"s8_activations_as_u8": True} if rewritten == (True, True) else {}


def ort_s8_to_u8_splits_group(imp: Importer, node: OnnxNode, i: int = 0) -> bool:
    """Whether ONNX Runtime's QDQS8ToU8Transformer rewrites exactly one of
    the int8 pairs around ``node`` (input ``i``'s, or the output's) to uint8:
    its QDQ selectors then see a uint8 input and an int8 output (or the
    reverse) and do not fuse the group, so ONNX Runtime computes the node in
    float32 (ort_s8_as_u8's docstring)."""
    rewritten = _s8_to_u8_rewrites(imp, node, i)
    if rewritten is None or rewritten[0] == rewritten[1]:
        return False
    dq, q_out = _producer(imp, node.input(i)), _output_quantize(imp, node)
    return (dq is not None and q_out is not None and _zero_point_dtype(imp, dq) == "int8"
            and _zero_point_dtype(imp, q_out) == "int8")


def _zero_point_dtype(imp: Importer, n: OnnxNode) -> str | None:
    zp = imp.values.get(n.input(2)) if n.input(2) else None
    return zp.dtype if isinstance(zp, Const) else None


def _output_quantize(imp: Importer, node: OnnxNode) -> OnnxNode | None:
    """The group's output QuantizeLinear: node -> [Relu | Clip] -> QuantizeLinear."""
    out = node.outputs[0]
    users = imp.consumers.get(out, [])
    if len(users) == 1 and users[0].op_type in ("Relu", "Clip") and users[0].domain == "":
        out = users[0].outputs[0]
        users = imp.consumers.get(out, [])
    if out in imp.graph_outputs or len(users) != 1 or not users[0].is_quantize:
        return None
    return users[0]


def _dq_uses(imp: Importer, dq: OnnxNode) -> int:
    """How many readers a DequantizeLinear's output has (a graph output counts as one)."""
    out = dq.outputs[0]
    return len(imp.consumers.get(out, [])) + (out in imp.graph_outputs)


def _s8_to_u8_rewrites(imp: Importer, node: OnnxNode, i: int) -> tuple[bool, bool] | None:
    """(input ``i``'s pair, the output's pair) rewritten to uint8 by ONNX
    Runtime's QDQS8ToU8Transformer; None where the profile has no such rewrite."""
    if not get_profile(imp.profile).qdq_s8_to_u8:
        return None
    dq = _producer(imp, node.input(i))
    in_rewritten = (dq is not None and dq.op_type == "DequantizeLinear" and dq.domain in ("", "com.microsoft")
                    and _only_reader(imp, dq.outputs[0], node)
                    and _rewritten_pair(imp, _producer(imp, dq.input(0)), dq))
    q_out = _output_quantize(imp, node)
    readers = imp.consumers.get(q_out.outputs[0], []) if q_out is not None else []
    # a DequantizeLinear read by several nodes is copied per reader first, so
    # that the QuantizeLinear has several readers and stays int8
    out_rewritten = (len(readers) == 1 and _dq_uses(imp, readers[0]) <= 1 and _rewritten_pair(imp, q_out, readers[0]))
    return bool(in_rewritten), bool(out_rewritten)


def _rewritten_pair(imp: Importer, q: OnnxNode | None, dq: OnnxNode) -> bool:
    """ONNX Runtime's QDQS8ToU8Transformer rewrites QuantizeLinear ``q`` ->
    DequantizeLinear ``dq`` to uint8: explicit int8 zero points, constant
    scalar scales and zero points, ``dq`` the only reader of ``q``."""
    if q is None or not q.is_quantize or dq.op_type != "DequantizeLinear" or dq.domain not in ("", "com.microsoft"):
        return False
    if not q.input(2) or not dq.input(2) or not _only_reader(imp, q.outputs[0], dq):
        return False
    for n in (q, dq):
        scale, zp = (imp.values.get(n.input(j)) for j in (1, 2))
        if not all(isinstance(v, Const) and v.quant is None and v.data.size == 1 for v in (scale, zp)):
            return False
        if zp.dtype != "int8":
            return False
    return True


# ---------------------------------------------------------------------------
# Fused groups
# ---------------------------------------------------------------------------

@handles("Conv")
def conv(imp: Importer, node: OnnxNode) -> None:
    x = operand_of(imp, node, 0, "input X")
    w = operand_of(imp, node, 1, "weight W")
    bias = _bias(imp, node, 2, x, w)
    emit_conv(imp, node, x, w, bias, quantized_output(imp, node), extra_attrs=ort_s8_as_u8(imp, node, 0))


@handles("MatMul")
def matmul(imp: Importer, node: OnnxNode) -> None:
    a = operand_of(imp, node, 0, "input A")
    b = operand_of(imp, node, 1, "input B")
    emit_matmul(imp, node, a, b, None, quantized_output(imp, node), extra_attrs=ort_s8_as_u8(imp, node, 0))


def transposed_operand(imp: Importer, node: OnnxNode, op: Operand) -> Operand:
    """The 2-D operand transposed (Gemm's transA / transB): constants are
    transposed here, run-time tensors by relabelling their layout."""
    q = op.quant
    if q.axis is not None:
        q = OnnxQuant(q.dtype, q.scale, q.zero_point, 1 - q.axis, q.block_size)
    if op.is_const:
        if op.value.ndim != 2:
            raise Refused(f"{node.where()}: Gemm operands must be 2-D")
        return Operand(np.ascontiguousarray(op.value.T), q, op.source)
    t = op.value
    if len(t.perm) != 2:
        raise Refused(f"{node.where()}: Gemm operands must be 2-D")
    return Operand(Tensor(t.name, tuple(1 - a for a in t.perm), t.dequantized), q, op.source)


def gemm_operands(imp: Importer, node: OnnxNode, a: Operand, b: Operand,
                  checked=("alpha", "beta")) -> tuple[Operand, Operand]:
    for attr in checked:
        if float(node.attr(attr, 1.0)) != 1.0:
            raise Refused(f"{node.where()}: {attr} = {node.attr(attr)} (only 1.0 is supported)")
    if node.attr("transA", 0):
        a = transposed_operand(imp, node, a)
    if node.attr("transB", 0):
        b = transposed_operand(imp, node, b)
    return a, b


@handles("Gemm")
def gemm(imp: Importer, node: OnnxNode) -> None:
    a = operand_of(imp, node, 0, "input A")
    b = operand_of(imp, node, 1, "input B")
    a, b = gemm_operands(imp, node, a, b)
    bias = _bias(imp, node, 2, a, b)
    emit_matmul(imp, node, a, b, bias, quantized_output(imp, node), extra_attrs=ort_s8_as_u8(imp, node, 0))


@handles("Add", "Mul")
def binary(imp: Importer, node: OnnxNode) -> None:
    a = operand_of(imp, node, 0, "input A")
    b = operand_of(imp, node, 1, "input B")
    emit_binary(imp, node, node.op_type.lower(), a, b, quantized_output(imp, node))


@handles("AveragePool")
def average_pool(imp: Importer, node: OnnxNode) -> None:
    x = operand_of(imp, node, 0, "input X")
    emit_avg_pool(imp, node, x, quantized_output(imp, node))


@handles("GlobalAveragePool")
def global_average_pool(imp: Importer, node: OnnxNode) -> None:
    x = operand_of(imp, node, 0, "input X")
    emit_global_avg_pool(imp, node, x, quantized_output(imp, node, allow_act=False))


@handles("ReduceMean")
def reduce_mean(imp: Importer, node: OnnxNode) -> None:
    x = operand_of(imp, node, 0, "input data")
    rank = len(imp.shape(imp.value(node.input(0))))
    emit_mean(imp, node, x, reduce_mean_axes(imp, node, rank), bool(node.attr("keepdims", 1)),
              quantized_output(imp, node, allow_act=False))


@handles("Sigmoid")
def sigmoid(imp: Importer, node: OnnxNode) -> None:
    x = operand_of(imp, node, 0, "input X")
    emit_table(imp, node, "sigmoid", x, quantized_output(imp, node, allow_act=False))


@handles("LeakyRelu")
def leaky_relu(imp: Importer, node: OnnxNode) -> None:
    x = operand_of(imp, node, 0, "input X")
    emit_table(imp, node, "leaky_relu", x, quantized_output(imp, node, allow_act=False),
               alpha=node.attr("alpha", 0.01))


@handles("Concat")
def concat(imp: Importer, node: OnnxNode) -> None:
    """Concat of dequantized views (fused with the QuantizeLinear that follows,
    or, with no QuantizeLinear, when all inputs share one quantization), of
    integers with one quantization (QOperator graphs), or of plain floats."""
    vals = [imp.value(n) for n in node.inputs]
    axis = node.attr("axis", 1 if imp.onnx.opset < 4 else None)     # Concat-1: axis 1 by default
    if axis is None:
        raise Refused(f"{node.where()}: attribute 'axis' is required")
    deq = [isinstance(v, Const) and v.quant is not None or isinstance(v, Tensor) and v.dequantized for v in vals]
    if all(deq):
        ops = [operand_of(imp, node, i, f"input {i}") for i in range(len(vals))]
        try:
            out = quantized_output(imp, node, allow_act=False)
        except Refused:
            if not all(o.quant.same(ops[0].quant) for o in ops):
                raise
            # data movement on one quantization: the result is again a dequantized view
            emit_concat(imp, node, ops, axis, Output(node.outputs[0], ops[0].quant, dequantized=True))
            return
        emit_concat(imp, node, ops, axis, out)
        return
    if any(deq):
        raise Refused(f"{node.where()}: mixes dequantized and other inputs")
    concat_plain(imp, node, vals, axis)

