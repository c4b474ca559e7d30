"""Emitting qnnref's integer compute operators, shared by the QOperator
handlers (QLinearConv, QGemm, QLinearAdd, ...) and the QDQ fusions
(DequantizeLinear -> Conv -> QuantizeLinear, ...): both end up as "these
quantized operands, this output quantization, this activation range".

An :class:`Operand` is a quantized run-time tensor or a quantized constant
in ONNX layout. :class:`Output` says which ONNX value the result becomes and
how it is quantized.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import layout
from .context import Const, Importer, Tensor
from .quantparams import qdq_quant
from .reader import OnnxNode, OnnxQuant, Refused
from .tables import lookup_table


@dataclass
class Operand:
    value: Tensor | np.ndarray          # run-time tensor, or integer data in ONNX layout
    quant: OnnxQuant
    source: str = ""                    # the ONNX value name (names qnnref constants)
    #: the qnnref scalar tensor holding this operand's zero point, computed at
    #: run time (DynamicQuantizeLinear -> MatMulInteger / ConvInteger); the
    #: operand is then an unquantized integer tensor and ``quant`` a placeholder
    runtime_zero_point: str | None = None

    @property
    def is_const(self) -> bool:
        return not isinstance(self.value, Tensor)


@dataclass
class Output:
    name: str                           # the ONNX value the result is bound to
    #: per-tensor; None: an unquantized int32 accumulator (MatMulInteger,
    #: ConvInteger); an int32 accumulator may also be quantized at s_a * s_b
    quant: OnnxQuant | None
    act: tuple[int | None, int | None] = (None, None)
    #: the ONNX value is the dequantization of the result (data movement on a
    #: dequantized view); the qnnref tensor then gets an integer name
    dequantized: bool = False

    @property
    def dtype(self) -> str:
        return "int32" if self.quant is None else self.quant.dtype

    def qnnref_quant(self, perm):
        return None if self.quant is None else self.quant.to_quant(tuple(perm))

    def attrs(self) -> dict:
        lo, hi = self.act
        return {"act_min": lo, "act_max": hi}


def runtime_operand(imp: Importer, node: OnnxNode, t: Tensor, stated: OnnxQuant | None, what: str) -> Operand:
    """A run-time operand whose quantization the node states (QOperator) or
    its producer fixed (QDQ: ``stated`` None). qnnref tensors carry one
    quantization: a node reading integers with other parameters than those
    they were produced with cannot be represented."""
    have = imp.onnx_quant(t)
    if have is None:
        raise Refused(f"{node.where()}: {what} {t.name!r} is not quantized")
    if stated is not None and not have.same(stated):
        raise Refused(f"{node.where()}: {what} is read as {stated.describe()} but was produced as "
                      f"{have.describe()}; qnnref tensors have one quantization")
    return Operand(t, have, t.name)


def operand_of(imp: Importer, node: OnnxNode, i: int, what: str, stated: OnnxQuant | None = None) -> Operand:
    """Input ``i`` as an operand: a dequantized value (QDQ) or integers with
    the parameters ``stated`` by the node (QOperator)."""
    v = imp.value(node.input(i))
    if isinstance(v, Const):
        if v.quant is not None:
            return Operand(v.data, v.quant, node.input(i))
        if stated is None:
            raise Refused(f"{node.where()}: {what} is a float constant; qnnref needs it quantized "
                          "(DequantizeLinear of integers)")
        if v.dtype != stated.dtype:
            raise Refused(f"{node.where()}: {what} has type {v.dtype}, its zero point says {stated.dtype}")
        return Operand(v.data, stated, node.input(i))
    if stated is None and not v.dequantized:
        raise Refused(f"{node.where()}: {what} is a float tensor; qnnref computes this operator on "
                      "quantized (dequantized integer) inputs only")
    return runtime_operand(imp, node, v, stated, what)


def alias_name(imp: Importer, onnx_name: str, q: OnnxQuant | None, perm) -> str | None:
    """If the only consumer of the float value ``onnx_name`` is a
    QuantizeLinear with parameters ``q`` (so that it is the identity), the
    name of its output: the integer tensor then carries that ONNX name."""
    nxt = imp.single_consumer(onnx_name)
    if q is None or nxt is None or not nxt.is_quantize or nxt.input(0) != onnx_name:
        return None
    try:
        shape = None if q.axis is None and q.block_size is None else imp.shape(imp.value(onnx_name))
        if not qdq_quant(imp, nxt, None, shape).same(q):
            return None
    except (Refused, KeyError):
        return None
    name = nxt.outputs[0]
    if name in imp.b.tensors or (not layout.is_identity(perm) and name in imp.graph_outputs):
        return None
    return name


def result_name(imp: Importer, out: Output, perm) -> str:
    """The qnnref name of the tensor an emitter creates for ``out``."""
    if out.dequantized:
        return alias_name(imp, out.name, out.quant, perm) or imp.out_name(out.name, perm, integer_view=True)
    return imp.out_name(out.name, perm)


def _bind(imp: Importer, out: Output, name: str, perm) -> None:
    imp.bind(out.name, Tensor(name, tuple(perm), out.dequantized))


def _const_tensor(imp: Importer, op: Operand, perm, base: str) -> str:
    data = np.ascontiguousarray(np.transpose(op.value, perm))
    return imp.constant(data, op.quant.dtype, op.quant.to_quant(tuple(perm)), base)


def _dtype_attr(imp: Importer, x_dtype: str, out: Output) -> str | None:
    return None if out.dtype == x_dtype else out.dtype


def _append_runtime_zero_point(inputs: list, x: Operand) -> None:
    """matmul / conv2d take a run-time zero point of their first input as
    input 3 (after the optional bias)."""
    if x.runtime_zero_point is not None:
        inputs.extend([""] * (3 - len(inputs)) + [x.runtime_zero_point])


#: the quantization of an int32 accumulator computed with a run-time zero
#: point: the plain integer (scale 1, zero point 0), so that ONNX's Cast to
#: float32 becomes a ``dequantize`` (spec/ops/matmul.md, "Run-time zero point")
def plain_int32_quant() -> OnnxQuant:
    return OnnxQuant("int32", np.float32(1), np.int32(0), None, None)


# ---------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------

def emit_conv(imp: Importer, node: OnnxNode, x: Operand, w: Operand, bias: np.ndarray | None,
              out: Output, extra_attrs: dict | None = None) -> None:
    if x.is_const:
        raise Refused(f"{node.where()}: a constant convolution input is not supported")
    xshape = imp.shape(x.value)
    if len(xshape) != 4:
        raise Refused(f"{node.where()}: only 2-D convolutions (NCHW inputs) are supported, input rank "
                      f"{len(xshape)}")
    if x.quant.axis is not None:
        raise Refused(f"{node.where()}: the input must be quantized per tensor")
    wq = w.quant
    if wq.block_size is not None or (wq.axis is not None and wq.axis != 0):
        raise Refused(f"{node.where()}: weights must be quantized per tensor or per output channel (axis 0)")
    kernel = list(imp.shape(w.value)[2:]) if not w.is_const else list(w.value.shape[2:])
    geo = layout.window_geometry(node, xshape, kernel=kernel)
    group = node.attr("group", 1)
    ks = node.attr("kernel_shape")
    if ks is not None and list(ks) != kernel:
        raise Refused(f"{node.where()}: kernel_shape {list(ks)} differs from the weight's {kernel}")
    NHWC = layout.nhwc(4)
    xs = imp.materialize(x.value, NHWC)
    # ONNX weights are [M, C/group, kH, kW]; qnnref's OHWI is [M, kH, kW, C/group].
    ws = (_const_tensor(imp, w, NHWC, f"{w.source or node.name}_ohwi") if w.is_const
          else imp.materialize(w.value, NHWC))
    inputs = [xs, ws]
    if bias is not None:
        bias = np.asarray(bias)
        if bias.dtype != np.int32:
            raise Refused(f"{node.where()}: the bias must be int32, got {bias.dtype}")
        inputs.append(imp.constant(np.ascontiguousarray(bias.reshape(-1)), "int32", None,
                                   f"{node.name}_bias"))
    _append_runtime_zero_point(inputs, x)
    attrs = dict(geo, groups=group, dtype=_dtype_attr(imp, x.quant.dtype, out), **out.attrs(), **(extra_attrs or {}))
    name = result_name(imp, out, NHWC)
    imp.emit("conv2d", inputs, attrs, name, out.qnnref_quant(NHWC), node_name=node.name)
    _bind(imp, out, name, NHWC)


# ---------------------------------------------------------------------------
# matmul (MatMul, Gemm)
# ---------------------------------------------------------------------------

def emit_matmul(imp: Importer, node: OnnxNode, a: Operand, b: Operand, bias: np.ndarray | None,
                out: Output, extra_attrs: dict | None = None) -> None:
    if a.is_const:
        raise Refused(f"{node.where()}: a constant first MatMul input is not supported")
    if a.quant.axis is not None:
        raise Refused(f"{node.where()}: the first input must be quantized per tensor")
    ashape = imp.shape(a.value)
    bshape = tuple(b.value.shape) if b.is_const else imp.shape(b.value)
    if len(ashape) < 2 or len(bshape) < 2:
        raise Refused(f"{node.where()}: 1-D MatMul operands are not supported")
    bq = b.quant
    if bq.block_size is not None or (bq.axis is not None and bq.axis != len(bshape) - 1):
        raise Refused(f"{node.where()}: the second input must be quantized per tensor or per column "
                      f"(axis {len(bshape) - 1}); {bq.describe()} is not supported")
    a_name = imp.onnx_layout(a.value)
    ident = layout.identity(len(bshape))
    b_name = (_const_tensor(imp, b, ident, b.source or f"{node.name}_b") if b.is_const
              else imp.onnx_layout(b.value))
    inputs = [a_name, b_name]
    if bias is not None:
        n = bshape[-1]
        bias = np.asarray(bias)
        if bias.dtype != np.int32:
            raise Refused(f"{node.where()}: the bias must be int32, got {bias.dtype}")
        if bias.size not in (1, n) or (bias.ndim == 2 and bias.shape[0] != 1) or bias.ndim > 2:
            raise Refused(f"{node.where()}: bias of shape {list(bias.shape)}: qnnref adds one value per "
                          f"output column (shape [{n}])")
        inputs.append(imp.constant(np.ascontiguousarray(np.broadcast_to(bias.reshape(-1), (n,))), "int32",
                                   None, f"{node.name}_bias"))
    _append_runtime_zero_point(inputs, a)
    attrs = dict(dtype=_dtype_attr(imp, a.quant.dtype, out), **out.attrs(), **(extra_attrs or {}))
    rank = len(np.broadcast_shapes(ashape[:-2], bshape[:-2])) + 2
    perm = layout.identity(rank)
    name = result_name(imp, out, perm)
    imp.emit("matmul", inputs, attrs, name, out.qnnref_quant(perm), node_name=node.name)
    _bind(imp, out, name, perm)


# ---------------------------------------------------------------------------
# Elementwise: add, mul, table
# ---------------------------------------------------------------------------

def _aligned(imp: Importer, node: OnnxNode, ops: list[Operand], what: str):
    """Names of the operands in one common layout (that of the first run-time
    operand of the highest rank), lower-rank operands expanded with leading
    1s as ONNX broadcasting does; returns (names, perm)."""
    rank = max(len(o.value.shape) if o.is_const else len(imp.shape(o.value)) for o in ops)
    runtime = [o for o in ops if not o.is_const and len(imp.shape(o.value)) == rank]
    perm = runtime[0].value.perm if runtime else layout.identity(rank)
    names = []
    for k, o in enumerate(ops):
        if o.is_const:
            data = o.value.reshape((1,) * (rank - o.value.ndim) + o.value.shape)
            names.append(_const_tensor(imp, Operand(data, _lift(o.quant, rank - o.value.ndim)), perm,
                                       o.source or f"{node.name}_{what}{k}"))
            continue
        t = o.value
        shape = imp.shape(t)
        if len(shape) < rank:
            src = imp.onnx_layout(t)
            info = imp.info(src)
            full = (1,) * (rank - len(shape)) + tuple(shape)
            lifted = _lift(o.quant, rank - len(shape))
            name = imp.emit("reshape", [src], {"shape": list(full)}, imp.fresh(f"{src}_r{rank}"),
                            lifted.to_quant(layout.identity(rank)) if info.quant is not None else None)
            t = Tensor(name, layout.identity(rank))
        names.append(imp.materialize(t, perm))
    return names, perm


def _lift(q: OnnxQuant, extra: int) -> OnnxQuant:
    """The same parameters for a tensor with ``extra`` leading axes added."""
    if q.axis is None or not extra:
        return q
    if q.block_size is not None:
        raise Refused("blocked quantization of a broadcast operand")
    return OnnxQuant(q.dtype, q.scale, q.zero_point, q.axis + extra, None)


def emit_binary(imp: Importer, node: OnnxNode, op: str, a: Operand, b: Operand, out: Output) -> None:
    for o, w in ((a, "A"), (b, "B")):
        if o.quant.axis is not None:
            raise Refused(f"{node.where()}: input {w} must be quantized per tensor")
    if a.is_const and b.is_const:
        raise Refused(f"{node.where()}: both inputs are constants")
    if a.quant.dtype != b.quant.dtype or out.quant.dtype != a.quant.dtype:
        raise Refused(f"{node.where()}: inputs and output must have one type (got {a.quant.dtype}, "
                      f"{b.quant.dtype} -> {out.quant.dtype})")
    names, perm = _aligned(imp, node, [a, b], "in")
    name = result_name(imp, out, perm)
    imp.emit(op, names, out.attrs(), name, out.quant.to_quant(perm), node_name=node.name)
    _bind(imp, out, name, perm)


def emit_table(imp: Importer, node: OnnxNode, function: str, x: Operand, out: Output, **params) -> None:
    if x.is_const:
        raise Refused(f"{node.where()}: a constant input is not supported")
    if x.quant.axis is not None:
        raise Refused(f"{node.where()}: the input must be quantized per tensor")
    lut = lookup_table(imp.profile, function, x.quant, out.quant, **params)
    lo, hi = out.act
    if lo is not None or hi is not None:
        lut = np.clip(lut, lo if lo is not None else lut.min(), hi if hi is not None else lut.max()).astype(lut.dtype)
    t = x.value
    table = imp.constant(lut, out.quant.dtype, None, f"{node.name}_table")
    name = result_name(imp, out, t.perm)
    imp.emit("table", [t.name, table], None, name, out.quant.to_quant(t.perm), node_name=node.name)
    _bind(imp, out, name, t.perm)


# ---------------------------------------------------------------------------
# Pools, mean, concat
# ---------------------------------------------------------------------------

def emit_avg_pool(imp: Importer, node: OnnxNode, x: Operand, out: Output, channels_last: bool = False) -> None:
    """AveragePool / QLinearAveragePool: ``avg_pool2d`` in NHWC. With
    ``channels_last`` (com.microsoft's attribute) the ONNX tensors themselves
    are NHWC: qnnref's layout is then ONNX's own axis order."""
    if x.is_const or x.quant.axis is not None:
        raise Refused(f"{node.where()}: the input must be a run-time tensor quantized per tensor")
    if x.quant.dtype != out.quant.dtype:
        raise Refused(f"{node.where()}: input and output types differ")
    xshape = imp.shape(x.value)
    NHWC = layout.nhwc(4)
    if channels_last:
        if len(xshape) != 4:
            raise Refused(f"{node.where()}: only 2-D windows (NHWC inputs) are supported, "
                          f"the input has rank {len(xshape)}")
        xshape = layout.onnx_shape(xshape, NHWC)      # the NCHW shape the geometry is written for
    geo = layout.window_geometry(node, xshape, pool=True)
    from ..profiles import get_profile
    if (get_profile(imp.profile).recipe_for("avg_pool2d").average_form == "float_average"
            and list(geo["kernel"]) == list(xshape[2:]) and not any(geo["pads"])
            and list(geo["dilations"]) == [1, 1] and out.act == (None, None)):
        # ONNX Runtime (whose float average this profile follows) computes a pool
        # whose one window is the whole unpadded input as QLinearGlobalAveragePool:
        # an integer sum, requantized -- qnnref's mean
        emit_global_avg_pool(imp, node, x, out)
        return
    include_pad = bool(node.attr("count_include_pad", 0))
    if include_pad and node.attr("ceil_mode", 0):
        plain = layout.window_geometry(OnnxNode(node.index, node.name, node.op_type, node.domain, node.inputs,
                                                node.outputs, {**node.attrs, "ceil_mode": 0}), xshape, pool=True)
        if plain["pads"] != geo["pads"]:
            raise Refused(f"{node.where()}: ceil_mode with count_include_pad=1 and a partial last window")
    # qnnref's NHWC tensor: ONNX's own layout for channels_last, else ONNX's NCHW permuted
    perm = layout.identity(4) if channels_last else NHWC
    xs = imp.materialize(x.value, perm)
    attrs = dict(geo, count_include_pad=include_pad, **out.attrs())
    if x.quant.same(out.quant):
        # the average of the codes, rounded as the profile rounds (qnnref's default
        # for this path is TFLite's ties-away; ONNX runtimes round half to even)
        from ..profiles import get_profile
        attrs["rounding"] = get_profile(imp.profile).recipe_for("avg_pool2d").rounding
    name = result_name(imp, out, perm)
    imp.emit("avg_pool2d", [xs], attrs, name, out.quant.to_quant(perm), node_name=node.name)
    _bind(imp, out, name, perm)


def reduce_mean_axes(imp: Importer, node: OnnxNode, rank: int) -> list[int]:
    """The ONNX axes of a ReduceMean: an attribute before opset 18, an input
    from it; none given: every axis."""
    axes = node.attr("axes") if imp.onnx.opset < 18 else imp.const_ints(node, 1, "axes", required=False)
    if axes is None:
        if node.attr("noop_with_empty_axes", 0):
            raise Refused(f"{node.where()}: noop_with_empty_axes is not supported")
        axes = range(rank)
    return list(axes)


def mean_layout(node: OnnxNode, perm, axes, keepdims: bool) -> tuple[list[int], tuple[int, ...]]:
    """For a mean over ONNX ``axes`` of a tensor held in layout ``perm``: the
    axes to average in qnnref's layout, and the layout of the result (without
    ``keepdims``, the kept axes in the input's layout, renumbered)."""
    rank = len(perm)
    axes = sorted({layout.normalize_axis(int(a), rank, node.where()) for a in axes})
    if keepdims:
        out_perm = tuple(perm)
    else:
        kept = [a for a in range(rank) if a not in axes]
        out_perm = tuple(kept.index(a) for a in perm if a in kept)
    return sorted(perm.index(a) for a in axes), out_perm


def emit_mean(imp: Importer, node: OnnxNode, x: Operand, axes, keepdims: bool, out: Output) -> None:
    """``mean`` over ONNX ``axes`` (GlobalAveragePool, ReduceMean), in the input's layout."""
    if x.is_const or x.quant.axis is not None:
        raise Refused(f"{node.where()}: the input must be a run-time tensor quantized per tensor")
    if x.quant.dtype != out.quant.dtype:
        raise Refused(f"{node.where()}: input and output types differ")
    if out.act != (None, None):
        raise Refused(f"{node.where()}: an activation after an average is not fused")
    t = x.value
    mean_axes, perm = mean_layout(node, t.perm, axes, keepdims)
    name = result_name(imp, out, perm)
    imp.emit("mean", [t.name], {"axes": mean_axes, "keepdims": bool(keepdims)}, name,
             out.quant.to_quant(perm), node_name=node.name)
    _bind(imp, out, name, perm)


def emit_global_avg_pool(imp: Importer, node: OnnxNode, x: Operand, out: Output) -> None:
    rank = len(imp.shape(x.value)) if not x.is_const else x.value.ndim
    spatial = range(1, rank - 1) if node.attr("channels_last", 0) else range(2, rank)
    emit_mean(imp, node, x, list(spatial), True, out)


def emit_concat(imp: Importer, node: OnnxNode, ops: list[Operand], axis: int, out: Output) -> None:
    if out.act != (None, None):
        raise Refused(f"{node.where()}: an activation after Concat is not fused")
    for o in ops:
        if o.quant.axis is not None:
            raise Refused(f"{node.where()}: inputs must be quantized per tensor")
        if o.quant.dtype != out.quant.dtype:
            raise Refused(f"{node.where()}: inputs and output must have one type")
    runtime = [o for o in ops if not o.is_const]
    if not runtime:
        raise Refused(f"{node.where()}: all inputs are constants")
    perm = runtime[0].value.perm
    rank = len(perm)
    if any((np.ndim(o.value) if o.is_const else len(o.value.perm)) != rank for o in ops):
        raise Refused(f"{node.where()}: inputs of different ranks")
    axis = layout.normalize_axis(axis, rank, node.where())
    names = []
    for k, o in enumerate(ops):
        if o.is_const:
            names.append(_const_tensor(imp, o, perm, o.source or f"{node.name}_in{k}"))
        else:
            names.append(imp.materialize(o.value, perm))
    name = result_name(imp, out, perm)
    imp.emit("concat", names, {"axis": perm.index(axis)}, name, out.quant.to_quant(perm), node_name=node.name)
    _bind(imp, out, name, perm)
