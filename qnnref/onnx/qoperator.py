"""QOperator graphs: operators that take integers and their quantization
parameters explicitly (QLinearConv, QLinearMatMul, com.microsoft's QGemm,
QLinearAdd, ...). Each maps onto one qnnref integer operator; the tensors'
quantization must be the one their producer gave them (qnnref tensors carry
one quantization each).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .compute import (Operand, Output, emit_avg_pool, emit_binary, emit_concat, emit_conv,
                      emit_global_avg_pool, emit_matmul, emit_table, operand_of, plain_int32_quant)
from . import layout
from .context import Const, Importer, Tensor
from .qdq import dequantize_linear, gemm_operands, quantize_linear
from .quantparams import triple_quant
from .reader import OnnxNode, OnnxQuant, Refused, make_onnx_quant
from ..profiles import get_profile
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
    """ONNX Runtime's QGemm: acc = (A - zp_a) @ (B - zp_b) + C in int32, then
    scaled by ``fl32(fl32(alpha * s_a) * s_b[n])`` (and divided by ``s_y``
    and rounded, when ``y_scale`` is given; else the float32 output
    ``fl32(float32(acc) * scale)``). With y_scale: a ``matmul``. Without: a
    ``matmul`` whose int32 output is the accumulator quantized at that scale,
    bound as a dequantized view (its ``dequantize`` is exactly that float)."""
    a = stated_operand(imp, node, 0, 1, 2, "A")
    trans_b = node.attr("transB", 0)
    b = stated_operand(imp, node, 3, 4, 5, "B", vector_axis=lambda r: 0 if trans_b else 1)
    a, b = gemm_operands(imp, node, a, b, checked=())
    alpha = float(node.attr("alpha", 1.0))
    if alpha != 1.0:
        b = _alpha_in_weight_scales(imp, node, a, b, alpha)
    bias = imp.const(node, 6, "bias C")
    if node.input(7):
        emit_matmul(imp, node, a, b, bias, output_triple(imp, node, 7, 8, a.quant.dtype))
        return
    if node.input(8):
        raise Refused(f"{node.where()}: y_zero_point without y_scale")
    acc_scale = (np.float32(a.quant.scale) * b.quant.scale).astype(np.float32)   # fl32(s_a * s_b[n])
    per_column = acc_scale.ndim == 1
    q = OnnxQuant("int32", acc_scale, np.zeros(acc_scale.shape, np.int32), 1 if per_column else None)
    emit_matmul(imp, node, a, b, bias, Output(node.outputs[0], q, dequantized=True))


def _alpha_in_weight_scales(imp: Importer, node: OnnxNode, a: Operand, b: Operand, alpha: float) -> Operand:
    """Fold QGemm's ``alpha`` into the constant weights' scales: float32 scales
    ``s_b'`` with ``fl32(s_a * s_b') == fl32(fl32(alpha * s_a) * s_b)``, the
    product ONNX Runtime forms (qnnref's matmul forms ``fl32(s_a * s_b')``).
    ``alpha * B`` is then what qnnref's integers and scales describe. A
    power-of-two alpha always works (``s_b' = alpha * s_b``); otherwise the
    float32 neighbours of the quotient are searched; with a quantized output
    under a float32-multiplier profile it is enough that the final
    multiplier ``fl32(fl32(s_a * s_b') / s_y)`` is ONNX Runtime's. A column
    with no such scale refuses the node."""
    if not (alpha > 0 and np.isfinite(alpha)):
        raise Refused(f"{node.where()}: alpha = {alpha} (qnnref scales are positive)")
    if not b.is_const:
        raise Refused(f"{node.where()}: alpha = {alpha} with a run-time B (alpha is folded into constant "
                      "weights' scales)")
    f32 = np.float32
    s_a = f32(a.quant.scale)
    s_y = f32(imp.const(node, 7, "y_scale")) if node.input(7) else None
    relaxed = s_y is not None and get_profile(imp.profile).recipe_for("matmul").scale_dtype == "float32"
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        want = (f32(f32(alpha) * s_a) * b.quant.scale).astype(f32)      # ONNX Runtime's fl32(alpha s_a s_b)
        s_new = np.empty_like(want)
        for idx, t in np.ndenumerate(want):
            near = [f32(t / s_a)]                   # the quotient and its float32 neighbours, nearest first
            up = down = near[0]
            for _ in range(8):
                up, down = np.nextafter(up, f32(np.inf)), np.nextafter(down, f32(0))
                near += [up, down]
            near = [c for c in near if np.isfinite(c) and c > 0]
            exact = [c for c in near if f32(s_a * c) == t]
            if not exact and relaxed:
                exact = [c for c in near if f32(f32(s_a * c) / s_y) == f32(t / s_y)]
            if not exact:
                raise Refused(f"{node.where()}: alpha = {alpha}: no float32 weight scale s_b' gives ONNX Runtime's "
                              f"fl32(fl32(alpha * s_a) * s_b) = {float(t)!r} as fl32(s_a * s_b')")
            s_new[idx] = exact[0]
    return Operand(b.value, OnnxQuant(b.quant.dtype, s_new, b.quant.zero_point, b.quant.axis, None), b.source)


# ---------------------------------------------------------------------------
# MatMulInteger, ConvInteger: int32 accumulators
# ---------------------------------------------------------------------------

def zero_point_operand(imp: Importer, node: OnnxNode, i: int, z: int, what: str, vector_axis=None) -> Operand:
    """Input ``i`` of an ...Integer operator with its zero point (input ``z``,
    default 0). These operators state no scale: their output is the int32
    accumulator, which no scale enters. A constant gets the unit scale 1; a
    run-time tensor keeps the quantization it has (its zero point must be the
    stated one). ``vector_axis(rank)``: the axis of a 1-D zero point, None if
    only a scalar one is allowed."""
    v = imp.value(node.input(i))
    dtype, shape = imp.dtype(v), imp.shape(v)
    if dtype not in ("int8", "uint8"):
        raise Refused(f"{node.where()}: {what} has type {dtype} (int8 or uint8 expected)")
    if node.input(z) and not isinstance(imp.value(node.input(z)), Const):
        if vector_axis is not None:
            raise Refused(f"{node.where()}: the {what} zero point is computed at run time; qnnref takes a "
                          "run-time zero point only for the activations (input 0)")
        return _runtime_zero_point_operand(imp, node, v, imp.value(node.input(z)), dtype, what)
    zp = imp.const(node, z, f"{what} zero point")
    if zp is not None and imp.const_dtype(node, z) != dtype:
        raise Refused(f"{node.where()}: {what} zero point of type {imp.const_dtype(node, z)} for a {dtype} tensor")
    zp = np.zeros((), dtypes.get(dtype).numpy) if zp is None else np.asarray(zp)
    axis = vector_axis(len(shape)) if vector_axis is not None else None
    if zp.size != 1 and axis is None:
        raise Refused(f"{node.where()}: {what} zero point of shape {list(zp.shape)}: only a scalar one is "
                      "supported here")
    stated = make_onnx_quant(f"{node.where()}: {what}", dtype, np.ones(zp.shape, np.float32), zp,
                             axis if axis is not None else 0, 0, shape)
    if isinstance(v, Const):
        if v.quant is not None:
            raise Refused(f"{node.where()}: {what} is a float (dequantized) value")
        return Operand(v.data, stated, node.input(i))
    if v.dequantized:
        raise Refused(f"{node.where()}: {what} is a float (dequantized) value")
    have = imp.onnx_quant(v)
    if have is None:
        raise Refused(f"{node.where()}: {what} {v.name!r} is an integer tensor of unknown quantization")
    if have.block_size is not None or not _same_zero_points(have, stated):
        raise Refused(f"{node.where()}: {what} is read with zero point(s) {stated.zero_points().tolist()} but "
                      f"was produced as {have.describe()}; qnnref tensors have one quantization")
    return Operand(v, have, v.name)


def _runtime_zero_point_operand(imp: Importer, node: OnnxNode, v, zv, dtype: str, what: str) -> Operand:
    """Input 0 of MatMulInteger / ConvInteger whose zero point is a run-time
    value (ONNX Runtime's dynamic quantization: both come from a
    DynamicQuantizeLinear): an unquantized integer tensor, and its zero point
    as a scalar tensor, which qnnref's matmul / conv2d take as input 3."""
    if not isinstance(v, Tensor) or v.dequantized or v.cast is not None or imp.info(v).quant is not None:
        raise Refused(f"{node.where()}: {what} has a run-time zero point, so it must be a plain (unquantized) "
                      "integer tensor such as DynamicQuantizeLinear's output")
    if not isinstance(zv, Tensor) or zv.dequantized or zv.cast is not None or imp.info(zv).dtype != dtype \
            or imp.shape(zv) != () or imp.info(zv).quant is not None:
        raise Refused(f"{node.where()}: the run-time {what} zero point must be a plain {dtype} scalar")
    placeholder = OnnxQuant(dtype, np.float32(1), np.zeros((), dtypes.get(dtype).numpy), None, None)
    return Operand(v, placeholder, v.name, runtime_zero_point=imp.onnx_layout(zv))


def _accumulator_output(node: OnnxNode, x: Operand) -> Output:
    """The int32 output of MatMulInteger / ConvInteger: unquantized, or the
    plain integer (scale 1) when the zero point is a run-time value."""
    return Output(node.outputs[0], plain_int32_quant() if x.runtime_zero_point is not None else None)


def _same_zero_points(have, stated) -> bool:
    """Whether two per-tensor / per-axis quantizations give every element the same zero point."""
    hz, sz = have.zero_points(), stated.zero_points()
    if have.axis is not None and have.axis == stated.axis:
        return hz.shape == sz.shape and np.array_equal(hz, sz)
    # one of them (or both, on different axes) must be a single value for all elements
    return len(np.unique(hz)) == 1 and len(np.unique(sz)) == 1 and hz.reshape(-1)[0] == sz.reshape(-1)[0]


@handles("MatMulInteger")
def matmul_integer(imp: Importer, node: OnnxNode) -> None:
    """y = (a - a_zero_point) @ (b - b_zero_point) in int32: matmul with
    output dtype int32 (the accumulator; pairwise int16 saturation as the
    profile says: ONNX Runtime runs the same u8 x s8 GEMM as QLinearMatMul)."""
    a = zero_point_operand(imp, node, 0, 2, "A")
    b = zero_point_operand(imp, node, 1, 3, "B", vector_axis=lambda r: r - 1)
    emit_matmul(imp, node, a, b, None, _accumulator_output(node, a))


@handles("ConvInteger")
def conv_integer(imp: Importer, node: OnnxNode) -> None:
    """y = conv(x - x_zero_point, w - w_zero_point) in int32: conv2d with
    output dtype int32, summed exactly (``pairwise_int16_saturation: false``).

    ONNX Runtime computes it as the GEMM weights [M, K] x im2col(x) [K, OH*OW]
    with K in (c, kh, kw) order. Its x86 kernel without VNNI saturates pairs
    along K when the first operand is u8 and the second s8: never for u8 x
    with s8 w (the common case), but for s8 x with u8 w, in an order qnnref's
    conv2d does not have. Under a profile with pairwise int16 saturation such
    a node is imported only when no pair can reach the int16 range."""
    x = zero_point_operand(imp, node, 0, 2, "x")
    w = zero_point_operand(imp, node, 1, 3, "w", vector_axis=lambda r: 0)
    if (x.quant.dtype, w.quant.dtype) == ("int8", "uint8") and get_profile(imp.profile).pairwise_int16_saturation \
            and not (w.is_const and _pairs_cannot_saturate(w.value)):
        if x.runtime_zero_point is not None:
            raise Refused(f"{node.where()}: int8 x with a run-time zero point and uint8 w under pairwise int16 "
                          "saturation (ONNX Runtime's GEMM order) is not supported")
        _conv_integer_as_ort_gemm(imp, node, x, w)
        return
    emit_conv(imp, node, x, w, None, _accumulator_output(node, x),
              extra_attrs={"pairwise_int16_saturation": False})


def _conv_integer_as_ort_gemm(imp: Importer, node: OnnxNode, x: Operand, w: Operand) -> None:
    """ConvInteger of int8 x and uint8 w as ONNX Runtime computes it on x86
    without VNNI: per group, the GEMM w [M/g, K] x im2col(x) [K, OH*OW] with
    K in (c, kh, kw) order, u8 x s8 products summed in int16-saturated pairs
    along K. In qnnref: pad x with its zero point, gather the patches into
    that order, and a ``matmul`` (u8 weights as ``a``, the patches as ``b``)
    with an int32 output, whose pairwise saturation is exactly this one."""
    if not w.is_const or w.quant.axis is not None:
        raise Refused(f"{node.where()}: int8 x with uint8 w needs constant weights with one zero point here")
    n, c, h, wd = imp.shape(x.value)
    m, cg, kh, kw = w.value.shape
    group = node.attr("group", 1)
    geo = layout.window_geometry(node, (n, c, h, wd), kernel=[kh, kw])
    (sh, sw), (dh, dw), (top, left, bottom, right) = geo["strides"], geo["dilations"], geo["pads"]
    hp, wp = h + top + bottom, wd + left + right
    oh, ow = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    if c != group * cg or m % group or oh < 1 or ow < 1:
        raise Refused(f"{node.where()}: inconsistent shapes for group {group}")
    xq = imp.info(x.value).quant
    name = node.outputs[0]
    # x padded with its zero point (ONNX Runtime's im2col pads with it), flattened per channel
    t = imp.emit("pad", [imp.onnx_layout(x.value)], {"pads": [0, 0, top, left, 0, 0, bottom, right],
                                                   "mode": "constant", "value": int(x.quant.zero_points())},
                 imp.fresh(f"{name}_padded"), xq)
    t = imp.emit("reshape", [t], {"shape": [n, c, hp * wp]}, imp.fresh(f"{name}_flat"), xq)
    # im2col: index [kh*KW + kw, oh*OW + ow] -> the pixel (oh*sh + kh*dh, ow*sw + kw*dw)
    rows = np.arange(kh)[:, None] * dh + np.arange(oh)[None, :] * sh          # [KH, OH]
    cols = np.arange(kw)[:, None] * dw + np.arange(ow)[None, :] * sw          # [KW, OW]
    index = rows[:, None, :, None] * wp + cols[None, :, None, :]              # [KH, KW, OH, OW]
    index = index.reshape(kh * kw, oh * ow).astype(np.int64)
    t = imp.emit("gather", [t, imp.constant(index, "int64", None, f"{name}_im2col")], {"axis": 2},
                 imp.fresh(f"{name}_patches"), xq)                       # [N, C, KH*KW, OH*OW]
    t = imp.emit("reshape", [t], {"shape": [n, group, cg * kh * kw, oh * ow]}, imp.fresh(f"{name}_cols"), xq)
    wq = OnnxQuant("uint8", np.ones((), np.float32), w.quant.zero_point, None, None).to_quant(())
    a = imp.constant(np.ascontiguousarray(w.value.reshape(group, m // group, cg * kh * kw)), "uint8", wq,
                     f"{w.source or name}_rows")
    t = imp.emit("matmul", [a, t], {"dtype": "int32"}, imp.fresh(f"{name}_gemm"), node_name=node.name)
    out = imp.out_name(name, layout.identity(4))
    imp.emit("reshape", [t], {"shape": [n, m, oh, ow]}, out)
    imp.bind(name, Tensor(out, layout.identity(4)))


def _pairs_cannot_saturate(w: np.ndarray) -> bool:
    """Whether every pair w[m, 2i] * x + w[m, 2i+1] * x' of ConvInteger's GEMM
    rows (ONNX weights [M, C/group, KH, KW] flattened per output channel: K in
    (c, kh, kw) order) stays within int16 for every int8 x, x' (|x| <= 128)."""
    rows = w.reshape(w.shape[0], -1).astype(np.int64)
    if rows.shape[1] % 2:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], 1), np.int64)], axis=1)
    pair_sums = rows[:, 0::2] + rows[:, 1::2]
    return bool(np.all(128 * pair_sums <= 32767))


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


@handles("DynamicQuantizeLinear")
def dynamic_quantize_linear(imp: Importer, node: OnnxNode) -> None:
    """``dynamic_quantize``: y (uint8, unquantized: its parameters are the
    other two outputs), y_scale and y_zero_point, in the input's layout."""
    v = imp.value(node.input(0))
    if not isinstance(v, Tensor):
        raise Refused(f"{node.where()}: a constant input is not supported")
    x = imp.emit("dequantize", [v.name], None, imp.fresh(f"{node.input(0)}_float")) if v.dequantized else v.name
    if imp.info(x).dtype != "float32":
        raise Refused(f"{node.where()}: input of type {imp.info(x).dtype} (float32 expected)")
    names = [imp.out_name(o, v.perm if k == 0 else ()) if o else imp.fresh(f"{node.name}_out{k}")
             for k, o in enumerate(node.outputs[:3])]
    names += [imp.fresh(f"{node.name}_out{k}") for k in range(len(names), 3)]
    imp.b.node("dynamic_quantize", [x], {}, name=imp.node_name(node.name), outputs=names)
    for k, o in enumerate(node.outputs[:3]):
        if o:
            imp.bind(o, Tensor(names[k], v.perm if k == 0 else ()))


# ---------------------------------------------------------------------------
# ONNX Runtime's fusions of dynamic quantization (in models it optimized)
# ---------------------------------------------------------------------------

def _float_node(imp: Importer, function: str, inputs: list[str], base: str) -> str:
    return imp.emit("float_elementwise", inputs, {"function": function}, imp.fresh(base))


def _integer_to_float(imp: Importer, node: OnnxNode, a: Operand, s_a: str | np.ndarray, b_i: int, b_scale_i: int,
                      b_zp_i: int, bias_i: int) -> None:
    """``float32(acc) * fl32(s_a * s_b[n]) + bias[n]`` with ``acc`` the int32
    matmul of ``a`` (run-time zero point) and the constant B: MLAS's scale-bias
    output processor (a multiplication, then an addition; no FMA), which are
    also the unfused graph's Cast -> Mul -> Add."""
    b = zero_point_operand(imp, node, b_i, b_zp_i, "B", vector_axis=lambda r: r - 1)
    if not b.is_const:
        raise Refused(f"{node.where()}: B must be a constant")
    n = b.value.shape[-1]
    s_b = imp.const(node, b_scale_i, "B scale")
    if s_b.dtype != np.float32 or s_b.size not in (1, n):
        raise Refused(f"{node.where()}: B scale must be float32, one value or one per column ({n})")
    acc_value = imp.fresh(f"{node.outputs[0]}_acc")
    emit_matmul(imp, node, a, b, None, Output(acc_value, plain_int32_quant()))
    acc = imp.value(acc_value)
    f = imp.emit("dequantize", [acc.name], None, imp.fresh(f"{node.outputs[0]}_acc_float"))
    s_b = np.ascontiguousarray(s_b.reshape(-1) if s_b.size == n and n > 1 else s_b.reshape(()))
    if isinstance(s_a, np.ndarray):
        scale = imp.constant((np.float32(s_a.reshape(())) * s_b).astype(np.float32), "float32", None,
                             f"{node.name}_scale")
    else:
        scale = _float_node(imp, "mul", [s_a, imp.constant(s_b, "float32", None, f"{node.name}_b_scale")],
                            f"{node.name}_scale")
    y = _float_node(imp, "mul", [f, scale], f"{node.outputs[0]}_scaled")
    if node.input(bias_i):
        bias = imp.const(node, bias_i, "bias")
        if bias.dtype != np.float32 or bias.shape != (n,):
            raise Refused(f"{node.where()}: bias must be float32 [{n}]")
        y = _float_node(imp, "add", [y, imp.constant(bias, "float32", None, f"{node.name}_bias")],
                        f"{node.outputs[0]}_biased")
    out = imp.emit("reshape", [y], {"shape": list(imp.info(y).shape)}, imp.out_name(node.outputs[0], acc.perm))
    imp.bind(node.outputs[0], Tensor(out, acc.perm))


@handles("DynamicQuantizeMatMul", domain=MS)
def dynamic_quantize_matmul(imp: Importer, node: OnnxNode) -> None:
    """DynamicQuantizeLinear of A, then MatMulIntegerToFloat: ``dynamic_quantize``,
    ``matmul`` with its run-time zero point, ``dequantize``, float32 mul / add."""
    v = imp.value(node.input(0))
    if not isinstance(v, Tensor) or v.dequantized or imp.info(v).dtype != "float32":
        raise Refused(f"{node.where()}: input A must be a float32 run-time tensor")
    names = [imp.fresh(f"{node.name}_{x}") for x in ("a_quantized", "a_scale", "a_zero_point")]
    imp.b.node("dynamic_quantize", [imp.onnx_layout(v)], {}, name=imp.node_name(f"{node.name}_quantize"),
               outputs=names)
    a = Operand(Tensor(names[0], layout.identity(len(v.perm))),
                OnnxQuant("uint8", np.float32(1), np.zeros((), np.uint8), None, None), node.input(0),
                runtime_zero_point=names[2])
    _integer_to_float(imp, node, a, names[1], 1, 2, 3, 4)


@handles("MatMulIntegerToFloat", domain=MS)
def matmul_integer_to_float(imp: Importer, node: OnnxNode) -> None:
    """A with a run-time zero point (a DynamicQuantizeLinear's outputs: what
    ONNX Runtime's fusion of quantize_dynamic models produces)."""
    if not node.input(4) or isinstance(imp.value(node.input(4)), Const):
        raise Refused(f"{node.where()}: only an A zero point computed at run time (DynamicQuantizeLinear) "
                      "is supported")
    a = zero_point_operand(imp, node, 0, 4, "A")
    s_a = imp.value(node.input(2))
    if isinstance(s_a, Const):
        s_a = np.asarray(imp.const(node, 2, "A scale"), np.float32)
    elif s_a.dequantized or imp.info(s_a).dtype != "float32" or imp.shape(s_a) != ():
        raise Refused(f"{node.where()}: A scale must be a float32 scalar")
    else:
        s_a = s_a.name
    _integer_to_float(imp, node, a, s_a, 1, 3, 5, 6)


@handles("QuantizeLinear", domain=MS)
def ms_quantize_linear(imp: Importer, node: OnnxNode) -> None:
    quantize_linear(imp, node)


@handles("DequantizeLinear", domain=MS)
def ms_dequantize_linear(imp: Importer, node: OnnxNode) -> None:
    dequantize_linear(imp, node)


# ---------------------------------------------------------------------------
# Operators refused for a known reason
# ---------------------------------------------------------------------------

REFUSED = {
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
