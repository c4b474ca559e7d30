"""Operators that move values without arithmetic: Identity, Transpose,
Reshape, Flatten, Squeeze, Unsqueeze, Shape, DepthToSpace, MaxPool, Concat.
(Gather, Slice, Split, Resize and Pad are in :mod:`.selection`; Relu / Clip
in :mod:`.activations`.)

Each works on run-time integer tensors (QOperator graphs), on dequantized
views (QDQ graphs: moving the integers moves their dequantized values, since
dequantization is elementwise -- and for MaxPool, monotone), and on constants.
A quantized value keeps its quantization. Layouts: Transpose only relabels
the layout (nothing is emitted); MaxPool works in NHWC; the reshaping ones
need ONNX's element order.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from . import layout
from .compute import alias_name
from .context import Const, Importer, Tensor
from .. import dtypes
from .. import graph as qgraph
from .reader import OnnxNode, OnnxQuant, Refused, qnnref_dtype
from .registry import handles


def emit_moved(imp: Importer, node: OnnxNode, src: Tensor, op: str, inputs: list[str], attrs: dict,
               perm_out: tuple[int, ...], quant) -> None:
    """Emit one movement op reading ``src`` and bind the node's output."""
    onnx_name = node.outputs[0]
    if src.dequantized:
        oq = None if quant is None else OnnxQuant.from_quant(imp.info(src).dtype, quant, perm_out)
        name = alias_name(imp, onnx_name, oq, perm_out) or imp.out_name(onnx_name, perm_out, integer_view=True)
    else:
        name = imp.out_name(onnx_name, perm_out)
    imp.emit(op, inputs, attrs, name, quant, node_name=node.name)
    imp.bind(onnx_name, replace(src, name=name, perm=tuple(perm_out)))      # a view stays a view


def moved_const(imp: Importer, node: OnnxNode, c: Const, fn, axis_map=None) -> None:
    """Apply a movement ``fn`` to a dequantized constant's integers (per-tensor,
    or per-axis when ``axis_map`` says where the axis goes)."""
    q = c.quant
    if q.block_size is not None or (q.axis is not None and axis_map is None):
        raise Refused(f"{node.where()}: moving a per-axis quantized constant this way is not supported")
    if q.axis is not None:
        q = OnnxQuant(q.dtype, q.scale, q.zero_point, axis_map(q.axis), None)
    imp.bind(node.outputs[0], Const(np.ascontiguousarray(fn(c.data)), c.dtype, q))


@handles("Identity")
def identity(imp: Importer, node: OnnxNode) -> None:
    imp.bind(node.outputs[0], imp.value(node.input(0)))


@handles("Transpose")
def transpose(imp: Importer, node: OnnxNode) -> None:
    v = imp.value(node.input(0))
    rank = len(imp.shape(v))
    perm = tuple(node.attr("perm", list(reversed(range(rank)))))
    if sorted(perm) != list(range(rank)):
        raise Refused(f"{node.where()}: perm {list(perm)} is not a permutation of the {rank} axes")
    if isinstance(v, Const):
        moved_const(imp, node, v, lambda d: np.transpose(d, perm), axis_map=perm.index)
        return
    # y = x.transpose(perm): y's axis j is x's axis perm[j]. The qnnref tensor's
    # axis i holds x's axis v.perm[i], i.e. y's axis perm.index(v.perm[i]).
    imp.bind(node.outputs[0], replace(v, perm=tuple(perm.index(a) for a in v.perm)))


# ---------------------------------------------------------------------------
# Reshaping
# ---------------------------------------------------------------------------

def reshape_to(imp: Importer, node: OnnxNode, target) -> None:
    v = imp.value(node.input(0))
    target = tuple(int(d) for d in target)
    if isinstance(v, Const):
        if v.quant is None:
            raise Refused(f"{node.where()}: unexpected constant")
        moved_const(imp, node, v, lambda d: d.reshape(target))
        return
    shape = imp.shape(v)
    src = v.name if layout.keeps_order(shape, v.perm) else imp.onnx_layout(v)
    info = imp.info(src)
    if info.quant is not None and info.quant.axis is not None:
        raise Refused(f"{node.where()}: reshaping a per-axis quantized tensor is not supported")
    emit_moved(imp, node, v, "reshape", [src], {"shape": list(target)}, layout.identity(len(target)), info.quant)


def resolve_reshape(where: str, in_shape, shape, allowzero: bool) -> tuple[int, ...]:
    """ONNX Reshape's output shape: 0 copies the input dimension (unless
    allowzero), one -1 is inferred."""
    if any(not isinstance(d, (int, np.integer)) for d in shape) or len(shape) > qgraph.MAX_RANK:
        raise Refused(f"{where}: the shape must be at most {qgraph.MAX_RANK} integers, got {list(shape)[:8]}")
    out = [in_shape[i] if d == 0 and not allowzero and i < len(in_shape) else int(d) for i, d in enumerate(shape)]
    size = math.prod(in_shape)
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise Refused(f"{where}: invalid shape {list(shape)}")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or size % known:
            raise Refused(f"{where}: cannot reshape {list(in_shape)} to {list(shape)}")
        out[out.index(-1)] = size // known
    if math.prod(out) != size:
        raise Refused(f"{where}: cannot reshape {list(in_shape)} to {list(shape)}")
    return tuple(out)


@handles("Reshape")
def reshape(imp: Importer, node: OnnxNode) -> None:
    shape = node.attr("shape") if imp.onnx.opset < 5 else imp.const(node, 1, "shape")
    in_shape = imp.shape(imp.value(node.input(0)))
    reshape_to(imp, node, resolve_reshape(node.where(), in_shape, list(np.asarray(shape).reshape(-1)),
                                          bool(node.attr("allowzero", 0))))


@handles("Flatten")
def flatten(imp: Importer, node: OnnxNode) -> None:
    shape = imp.shape(imp.value(node.input(0)))
    axis = node.attr("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis <= len(shape):
        raise Refused(f"{node.where()}: axis {node.attr('axis')} out of range")
    reshape_to(imp, node, (math.prod(shape[:axis]), math.prod(shape[axis:])))


def _axes(imp: Importer, node: OnnxNode, rank: int):
    axes = node.attr("axes") if imp.onnx.opset < 13 else imp.const_ints(node, 1, "axes", required=False)
    if axes is None:
        return None
    axes = sorted(layout.normalize_axis(a, rank, node.where()) for a in axes)
    if len(set(axes)) != len(axes):
        raise Refused(f"{node.where()}: an axis is listed twice in {axes}")
    return axes


@handles("Squeeze")
def squeeze(imp: Importer, node: OnnxNode) -> None:
    shape = imp.shape(imp.value(node.input(0)))
    axes = _axes(imp, node, len(shape))
    if axes is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    if any(shape[a] != 1 for a in axes):
        raise Refused(f"{node.where()}: squeezed axes must have length 1")
    reshape_to(imp, node, [d for i, d in enumerate(shape) if i not in axes])


@handles("Unsqueeze")
def unsqueeze(imp: Importer, node: OnnxNode) -> None:
    shape = list(imp.shape(imp.value(node.input(0))))
    given = node.attr("axes") if imp.onnx.opset < 13 else imp.const_ints(node, 1, "axes", required=False)
    if given is None:
        raise Refused(f"{node.where()}: axes are required")
    axes = _axes(imp, node, len(shape) + len(given))
    for a in axes:
        shape.insert(a, 1)
    reshape_to(imp, node, shape)


# ---------------------------------------------------------------------------
# Cast of integers: exact widening (a cast view), and back
# ---------------------------------------------------------------------------

#: ONNX operators that take a cast view (see context.Tensor.cast); the
#: importer refuses any other consumer of one
CAST_VIEW_OPS = {("", op) for op in ("Identity", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
                                     "DepthToSpace", "MaxPool", "GlobalMaxPool", "Pad", "Clip", "Relu", "Cast",
                                     "Gather")}


def exact_range(dtype: str) -> tuple[int, int] | None:
    """The integers a value of ONNX type ``dtype`` (a qnnref dtype name) holds
    exactly, all of them in between (None: not a numeric type here)."""
    if dtype == "float32":
        return -(2**24), 2**24
    if dtype == "float16":
        return -2048, 2048
    dt = dtypes.get(dtype) if dtype in dtypes.DTYPES else None
    return (dt.min, dt.max) if dt is not None and dt.is_int else None


def view_range(imp: Importer, v: Tensor) -> tuple[int, int]:
    """The values a cast view (or a plain integer tensor) can take."""
    dt = imp.info(v).dt
    return dt.min + v.offset, dt.max + v.offset


def _fits(rng: tuple[int, int], dtype: str) -> bool:
    ex = exact_range(dtype)
    return ex is not None and ex[0] <= rng[0] and rng[1] <= ex[1]


def _plain_int32(imp: Importer, v: Tensor) -> bool:
    """An int32 tensor quantized with scale 1 and zero point 0 (the plain integer)."""
    info = imp.info(v)
    q = info.quant
    return (info.dtype == "int32" and q is not None and q.axis is None and q.block_size is None
            and np.all(q.scale == np.float32(1)) and not np.any(q.zero_point_or_zeros()))


@handles("Cast")
def cast(imp: Importer, node: OnnxNode) -> None:
    """Cast of integers to a type that holds each of them exactly (int8 ->
    int32, int16 -> float32, ...): no qnnref node, the value becomes a *cast
    view* of the same integer tensor, which data movement, Clip, Pad, Gather
    (as lookup-table indices) and Cast accept; an ``Add`` of an integer
    constant right after it shifts the view. Cast back to the tensor's own
    dtype gives the integer tensor again (exporters write int16 and 4-bit
    Clip / Pad / MaxPool this way for runtimes without those kernels)."""
    v = imp.value(node.input(0))
    to = qnnref_dtype(node.attr("to"), f"{node.where()}: target type")
    if not isinstance(v, Tensor) or v.dequantized or not imp.info(v).dt.is_int:
        raise Refused(f"{node.where()}: Cast of a float value (qnnref casts only integers, exactly)")
    base = imp.info(v).dtype
    rng = view_range(imp, v)
    if to == base and v.offset == 0:
        out = Tensor(v.name, v.perm)                       # back to the integers themselves
    elif _fits(rng, to):
        out = replace(v, cast=to)
    elif to == "float32" and v.offset == 0 and v.cast is None and _plain_int32(imp, v):
        # int32 -> float32, rounded to nearest even (an accumulator computed
        # with a run-time zero point, ONNX Runtime's dynamic quantization):
        # dequantize of the plain integer (scale 1, zero point 0) is exactly
        # that conversion, times 1
        imp.bind(node.outputs[0], Tensor(imp.emit("dequantize", [v.name], None,
                                                   imp.out_name(node.outputs[0], v.perm)), v.perm))
        return
    else:
        raise Refused(f"{node.where()}: Cast of {base} values in [{rng[0]}, {rng[1]}] to {to}, which does not hold "
                      "each of them exactly")
    name = node.outputs[0]
    imp.bind(name, out)
    while out.cast is not None:                           # Add of an integer constant: shift the view
        nxt = imp.single_consumer(name)
        if nxt is None or nxt.key != ("", "Add") or len(nxt.inputs) != 2:
            break
        other = imp.values.get(nxt.inputs[1] if nxt.inputs[0] == name else nxt.inputs[0])
        if not isinstance(other, Const) or other.quant is not None or other.data.size != 1:
            break
        c = float(np.asarray(other.data).reshape(()))
        rng = (rng[0] + c, rng[1] + c)
        if not c.is_integer() or len(np.broadcast_shapes(other.data.shape, imp.shape(out))) != len(out.perm) \
                or not _fits(rng, out.cast):
            break
        out = replace(out, offset=out.offset + int(c))
        name = nxt.outputs[0]
        imp.bind(name, out)
        imp.skip.add(nxt.index)


@handles("Shape")
def shape_op(imp: Importer, node: OnnxNode) -> None:
    shape = np.array(imp.shape(imp.value(node.input(0))), dtype=np.int64)
    start, end = node.attr("start", 0), node.attr("end", None)
    imp.bind(node.outputs[0], Const(shape[start:end], "int64"))


@handles("DepthToSpace")
def depth_to_space(imp: Importer, node: OnnxNode) -> None:
    """[N, C, H, W] -> [N, C/b^2, H*b, W*b], as reshape -> transpose -> reshape in
    NHWC (exact data movement). DCR reads channel (i*b + j)*C' + c, CRD reads
    c*b*b + i*b + j, for the block position (i, j) and output channel c."""
    v = imp.value(node.input(0))
    if not isinstance(v, Tensor):
        raise Refused(f"{node.where()}: a constant input is not supported")
    n, c, h, w = imp.shape(v)
    b = node.attr("blocksize")
    mode = node.attr("mode", "DCR")
    if c % (b * b):
        raise Refused(f"{node.where()}: channels {c} are not a multiple of blocksize^2")
    co = c // (b * b)
    NHWC = layout.nhwc(4)
    src = imp.materialize(v, NHWC)
    info = imp.info(src)
    if info.quant is not None and info.quant.axis is not None:
        raise Refused(f"{node.where()}: per-axis quantized input")
    q = info.quant
    if mode == "DCR":
        split, perm = [n, h, w, b, b, co], [0, 1, 3, 2, 4, 5]
    elif mode == "CRD":
        split, perm = [n, h, w, co, b, b], [0, 1, 4, 2, 5, 3]
    else:
        raise Refused(f"{node.where()}: unknown mode {mode!r}")
    t1 = imp.emit("reshape", [src], {"shape": split}, imp.fresh(f"{node.outputs[0]}_split"), q)
    t2 = imp.emit("transpose", [t1], {"perm": perm}, imp.fresh(f"{node.outputs[0]}_blocks"), q)
    emit_moved(imp, node, v, "reshape", [t2], {"shape": [n, h * b, w * b, co]}, NHWC, q)


# ---------------------------------------------------------------------------
# Windows and selections
# ---------------------------------------------------------------------------

@handles("GlobalMaxPool")
def global_max_pool(imp: Importer, node: OnnxNode) -> None:
    v = imp.value(node.input(0))
    shape = imp.shape(v)
    if len(shape) != 4:
        raise Refused(f"{node.where()}: only NCHW inputs are supported")
    max_pool(imp, OnnxNode(node.index, node.name, "MaxPool", node.domain, node.inputs, node.outputs,
                           {"kernel_shape": list(shape[2:])}))


@handles("MaxPool")
def max_pool(imp: Importer, node: OnnxNode) -> None:
    v = imp.value(node.input(0))
    if not isinstance(v, Tensor):
        raise Refused(f"{node.where()}: a constant input is not supported")
    if len(node.outputs) > 1 and node.outputs[1] and (node.outputs[1] in imp.consumers
                                                      or node.outputs[1] in imp.graph_outputs):
        raise Refused(f"{node.where()}: the Indices output is not supported")
    if imp.info(v).quant is None:
        raise Refused(f"{node.where()}: MaxPool of a float or unquantized tensor (qnnref's max_pool2d "
                      "takes quantized tensors)")
    geo = layout.window_geometry(node, imp.shape(v), pool=True)
    NHWC = layout.nhwc(4)
    src = imp.materialize(v, NHWC)
    emit_moved(imp, node, v, "max_pool2d", [src], geo, NHWC, imp.info(src).quant)


def concat_plain(imp: Importer, node: OnnxNode, vals, axis: int) -> None:
    """Concat of integers that share one quantization (or of unquantized
    tensors): a copy, exact."""
    runtime = [v for v in vals if isinstance(v, Tensor)]
    if not runtime:
        raise Refused(f"{node.where()}: all inputs are constants")
    first = runtime[0]
    perm = first.perm
    rank = len(perm)
    axis = layout.normalize_axis(axis, rank, node.where())
    q0 = imp.onnx_quant(first)
    dtype = imp.info(first).dtype
    names = []
    for k, v in enumerate(vals):
        if isinstance(v, Const):
            if v.dtype != dtype:
                raise Refused(f"{node.where()}: input {k} has type {v.dtype}, input {node.inputs[0]!r} {dtype}")
            data = np.ascontiguousarray(np.transpose(v.data, perm))
            names.append(imp.constant(data, dtype, None if q0 is None else q0.to_quant(perm), f"{node.name}_in{k}"))
            continue
        q = imp.onnx_quant(v)
        if (q is None) != (q0 is None) or (q is not None and not q.same(q0)):
            raise Refused(f"{node.where()}: inputs with different quantizations (a plain Concat copies "
                          "integers; QLinearConcat or QDQ requantizes)")
        names.append(imp.materialize(v, perm))
    info = imp.info(first)
    emit_moved(imp, node, first, "concat", names, {"axis": perm.index(axis)}, perm, info.quant)
