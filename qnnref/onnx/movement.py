"""Operators that move values without arithmetic: Identity, Transpose,
Reshape, Flatten, Squeeze, Unsqueeze, MaxPool, Gather, Pad, Concat, Shape,
DepthToSpace; and Relu / Clip on quantized values.

Each works on run-time integer tensors (QOperator graphs), on dequantized
views (QDQ graphs: moving the integers moves their dequantized values, since
dequantization is elementwise -- and for MaxPool, monotone), and on constants.
A quantized value keeps its quantization. Layouts: Transpose only relabels
the layout (nothing is emitted); MaxPool works in NHWC; Relu/Clip/Pad work
in any layout; the reshaping ones need ONNX's element order.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..arith import dequantize_values
from . import layout
from .compute import alias_name
from .context import Const, Importer, Tensor
from .reader import OnnxNode, OnnxQuant, Refused
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
    imp.bind(onnx_name, Tensor(name, tuple(perm_out), src.dequantized))


def _moved_const(imp: Importer, node: OnnxNode, c: Const, fn, axis_map=None) -> None:
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
        _moved_const(imp, node, v, lambda d: np.transpose(d, perm), axis_map=perm.index)
        return
    # y = x.transpose(perm): y's axis j is x's axis perm[j]. The qnnref tensor's
    # axis i holds x's axis v.perm[i], i.e. y's axis perm.index(v.perm[i]).
    imp.bind(node.outputs[0], Tensor(v.name, tuple(perm.index(a) for a in v.perm), v.dequantized))


# ---------------------------------------------------------------------------
# Reshaping
# ---------------------------------------------------------------------------

def reshape_to(imp: Importer, node: OnnxNode, target) -> None:
    v = imp.value(node.input(0))
    target = tuple(int(d) for d in target)
    if isinstance(v, Const):
        if v.quant is None:
            raise Refused(f"{node.where()}: unexpected constant")
        _moved_const(imp, node, v, lambda d: d.reshape(target))
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
    axes = node.attr("axes") if imp.onnx.opset < 13 else imp.const(node, 1, "axes")
    if axes is None:
        return None
    return sorted(layout.normalize_axis(int(a), rank, node.where()) for a in np.asarray(axes).reshape(-1))


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
    axes = _axes(imp, node, len(shape) + len(np.asarray(
        node.attr("axes") if imp.onnx.opset < 13 else imp.const(node, 1, "axes")).reshape(-1)))
    for a in axes:
        shape.insert(a, 1)
    reshape_to(imp, node, shape)


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


@handles("Resize", "Upsample")
def resize(imp: Importer, node: OnnxNode) -> None:
    """Nearest-neighbour Resize selects input elements: one gather per resized
    axis, with the index map ONNX's formulas give. The map is computed in
    float32 and float64; if they disagree (a coordinate lands on a rounding
    boundary), it depends on the runtime's float arithmetic and is refused."""
    v = imp.value(node.input(0))
    if not isinstance(v, Tensor):
        raise Refused(f"{node.where()}: a constant input is not supported")
    mode = node.attr("mode", "nearest")
    if mode != "nearest":
        raise Refused(f"{node.where()}: mode {mode!r} interpolates in float (only 'nearest' selects elements)")
    shape = imp.shape(v)
    rank = len(shape)
    old = node.op_type == "Upsample" or imp.onnx.opset < 11
    if node.attr("axes") is not None or node.attr("antialias", 0):
        raise Refused(f"{node.where()}: axes / antialias are not supported")
    if old:
        scales = node.attr("scales") if node.input(1) == "" else imp.const(node, 1, "scales")
        sizes = None
        coord, nearest = "asymmetric", "floor"
    else:
        scales = imp.const(node, 2, "scales")
        sizes = imp.const(node, 3, "sizes")
        coord = node.attr("coordinate_transformation_mode", "half_pixel")
        nearest = node.attr("nearest_mode", "round_prefer_floor")
    if sizes is not None and np.asarray(sizes).size:
        out = [int(d) for d in np.asarray(sizes).reshape(-1)]
        scales = [o / i for o, i in zip(out, shape)]
    else:
        scales = [float(s) for s in np.asarray(scales, np.float32).reshape(-1)]
        out = [int(np.floor(i * np.float32(s))) for i, s in zip(shape, scales)]
    if len(out) != rank:
        raise Refused(f"{node.where()}: scales / sizes must have one value per axis")
    src = v.name
    q = imp.info(v).quant
    if q is not None and q.axis is not None:
        raise Refused(f"{node.where()}: per-axis quantized input")
    for axis in range(rank):
        idx = _nearest_map(node, shape[axis], out[axis], scales[axis], coord, nearest)
        if idx is None:
            continue
        last = all(_nearest_map(node, shape[a], out[a], scales[a], coord, nearest) is None
                   for a in range(axis + 1, rank))
        index = imp.constant(idx, "int64", None, f"{node.name}_index{axis}")
        attrs = {"axis": v.perm.index(axis)}
        if last:
            emit_moved(imp, node, v, "gather", [src, index], attrs, v.perm, q)
            return
        src = imp.emit("gather", [src, index], attrs, imp.fresh(f"{node.outputs[0]}_axis{axis}"), q)
    imp.bind(node.outputs[0], v)                  # every map is the identity


def _nearest_map(node: OnnxNode, n_in: int, n_out: int, scale: float, coord: str, nearest: str):
    """Input index of each output index along one axis (None: identity)."""
    if n_in == n_out and scale == 1.0:
        return None
    maps = []
    for ft in (np.float32, np.float64):
        x = np.arange(n_out, dtype=ft)
        s = ft(scale)
        if coord == "asymmetric":
            orig = x / s
        elif coord == "half_pixel":
            orig = (x + ft(0.5)) / s - ft(0.5)
        elif coord == "pytorch_half_pixel":
            orig = (x + ft(0.5)) / s - ft(0.5) if n_out > 1 else np.zeros(n_out, ft)
        elif coord == "tf_half_pixel_for_nn":
            orig = (x + ft(0.5)) / s
        elif coord == "align_corners":
            orig = x * ft(n_in - 1) / ft(n_out - 1) if n_out > 1 else np.zeros(n_out, ft)
        else:
            raise Refused(f"{node.where()}: coordinate_transformation_mode {coord!r} is not supported")
        if nearest == "floor":
            idx = np.floor(orig)
        elif nearest == "ceil":
            idx = np.ceil(orig)
        elif nearest == "round_prefer_floor":
            idx = np.where(orig - np.floor(orig) == 0.5, np.floor(orig), np.rint(orig))
        elif nearest == "round_prefer_ceil":
            idx = np.where(orig - np.floor(orig) == 0.5, np.ceil(orig), np.rint(orig))
        else:
            raise Refused(f"{node.where()}: nearest_mode {nearest!r} is not supported")
        maps.append(np.clip(idx, 0, n_in - 1).astype(np.int64))
    if not np.array_equal(maps[0], maps[1]):
        raise Refused(f"{node.where()}: the nearest-neighbour index map depends on float precision")
    return maps[0]


# ---------------------------------------------------------------------------
# Windows and selections
# ---------------------------------------------------------------------------

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


@handles("Gather")
def gather(imp: Importer, node: OnnxNode) -> None:
    data, idx = imp.value(node.input(0)), imp.value(node.input(1))
    rank = len(imp.shape(data))
    axis = layout.normalize_axis(node.attr("axis", 0), rank, node.where())
    if isinstance(data, Const):
        if not isinstance(idx, Const) or data.quant is None:
            raise Refused(f"{node.where()}: gathering from a constant with run-time indices")
        _moved_const(imp, node, data, lambda d: np.take(d, idx.data, axis=axis))
        return
    if isinstance(idx, Const):
        if idx.dtype not in ("int32", "int64"):
            raise Refused(f"{node.where()}: indices of type {idx.dtype}")
        idx_name = imp.constant(np.ascontiguousarray(idx.data), idx.dtype, None, node.input(1) or "indices")
    else:
        if idx.dequantized or imp.info(idx).quant is not None:
            raise Refused(f"{node.where()}: indices must be plain integers")
        idx_name = imp.onnx_layout(idx)
    src = imp.onnx_layout(data)
    info = imp.info(src)
    q = info.quant
    if q is not None and q.axis is not None:
        # a per-axis quantization follows its axis (qnnref gather refuses the gathered axis)
        out_axis = q.axis if q.axis < axis else q.axis + len(imp.shape(idx)) - 1
        q = type(q)(q.scale, q.zero_point, out_axis, None)
    out_rank = rank - 1 + len(imp.shape(idx))
    emit_moved(imp, node, data, "gather", [src, idx_name], {"axis": axis}, layout.identity(out_rank), q)


@handles("Pad")
def pad(imp: Importer, node: OnnxNode) -> None:
    v = imp.value(node.input(0))
    if not isinstance(v, Tensor):
        raise Refused(f"{node.where()}: a constant input is not supported")
    rank = len(v.perm)
    if imp.onnx.opset < 11:
        pads, value = node.attr("pads"), node.attr("value", 0.0)
    else:
        pads, value = imp.const(node, 1, "pads"), imp.const(node, 2, "constant_value")
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = imp.const(node, 3, "axes") if len(node.inputs) > 3 else None
    if axes is not None:
        full = [0] * (2 * rank)
        axes = [layout.normalize_axis(int(a), rank, node.where()) for a in np.asarray(axes).reshape(-1)]
        for k, a in enumerate(axes):
            full[a], full[rank + a] = pads[k], pads[len(axes) + k]
        pads = full
    if len(pads) != 2 * rank:
        raise Refused(f"{node.where()}: pads {pads} must have 2 * rank values")
    mode = node.attr("mode", "constant")
    if mode not in ("constant", "edge", "reflect"):
        raise Refused(f"{node.where()}: mode {mode!r} is not supported")
    info = imp.info(v)
    attrs = {"pads": layout.permute(pads[:rank], v.perm) + layout.permute(pads[rank:], v.perm), "mode": mode}
    if mode == "constant":
        attrs["value"] = _pad_code(imp, node, v, info, value)
    emit_moved(imp, node, v, "pad", [v.name], attrs, v.perm, info.quant)


def _pad_code(imp: Importer, node: OnnxNode, v: Tensor, info, value) -> int | None:
    """The integer that pads: the raw value for integer tensors; for a
    dequantized view, the code whose dequantized value is exactly ``value``."""
    value = 0 if value is None else np.asarray(value).reshape(())
    if not v.dequantized:
        if info.dt.is_int and not float(value).is_integer():
            raise Refused(f"{node.where()}: a non-integer pad value for integers")
        return int(value)
    q = info.quant
    if q is None or q.axis is not None:
        raise Refused(f"{node.where()}: padding a per-axis quantized tensor")
    s, zp = float(q.scale), int(q.zero_point_or_zeros())
    code = int(np.rint(float(value) / s)) + zp
    dt = dtypes.get(info.dtype)
    if not dt.min <= code <= dt.max or dequantize_values(code, q.scale, zp) != np.float32(value):
        raise Refused(f"{node.where()}: the pad value {float(value)} is not exactly a quantized value")
    return code


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


# ---------------------------------------------------------------------------
# Relu / Clip on quantized values
# ---------------------------------------------------------------------------

@handles("Relu", "Clip")
def relu_clip(imp: Importer, node: OnnxNode) -> None:
    """On a dequantized view: ``Relu(DQ(x)) = DQ(max(x, zp))`` exactly (DQ is
    monotone and DQ(zp) = 0), and Clip likewise when its bounds are exactly
    quantized values. On integers (QOperator): ONNX's integer Relu / Clip.
    Relu / Clip right after a fused operator were absorbed there."""
    v = imp.value(node.input(0))
    if not isinstance(v, Tensor):
        raise Refused(f"{node.where()}: a constant input is not supported")
    info = imp.info(v)
    if node.op_type == "Relu":
        lo, hi = 0, None
    elif imp.onnx.opset < 11:
        lo, hi = node.attr("min"), node.attr("max")
    else:
        lo, hi = imp.const(node, 1, "min"), imp.const(node, 2, "max")
    if v.dequantized:
        q = info.quant
        if q is None or q.axis is not None:
            raise Refused(f"{node.where()}: needs a per-tensor quantized input")
        try:
            lo, hi = (_exact_code(node, q, info.dtype, b) for b in (lo, hi))
        except Refused:
            if _clip_then_quantize(imp, node, v):
                return
            raise
    elif not info.dt.is_int:
        if _clip_then_quantize(imp, node, v):       # Relu / Clip of a float input right before a QuantizeLinear
            return
        raise Refused(f"{node.where()}: float {node.op_type} (qnnref has no float32 operators yet)")
    else:
        lo, hi = (None if b is None else int(np.asarray(b).reshape(())) for b in (lo, hi))
    dt = info.dt
    lo = None if lo is None or lo <= dt.min else lo
    hi = None if hi is None or hi >= dt.max else hi
    if lo is None and hi is None:
        imp.bind(node.outputs[0], v)
        return
    emit_moved(imp, node, v, "clamp", [v.name], {"min": lo, "max": hi}, v.perm, info.quant)


def _exact_code(node: OnnxNode, q, dtype: str, bound) -> int | None:
    """The integer code whose dequantized value is exactly the float ``bound``
    (None: no bound); saturating bounds beyond the range give the range's end."""
    if bound is None:
        return None
    b = np.float32(np.asarray(bound).reshape(()))
    dt = dtypes.get(dtype)
    s, zp = float(q.scale), int(q.zero_point_or_zeros())
    code = float(np.rint(np.float64(b) / s)) + zp
    if code <= dt.min or code >= dt.max:
        lo_real = dequantize_values(dt.min, q.scale, zp)
        hi_real = dequantize_values(dt.max, q.scale, zp)
        if code <= dt.min and b <= lo_real:
            return dt.min
        if code >= dt.max and b >= hi_real:
            return dt.max
    code = int(code)
    if dequantize_values(code, q.scale, zp) != b:
        raise Refused(f"{node.where()}: the bound {float(b)} is not exactly a quantized value, so the result is "
                      "not a dequantized integer; put a QuantizeLinear right after it")
    return code


def _clip_then_quantize(imp: Importer, node: OnnxNode, v: Tensor) -> bool:
    """Relu / Clip of ``r`` (a float input, or DQ(x) with bounds that are not
    codes of x) -> QuantizeLinear(q): ``Q(clip(r, a, b)) = clip(Q(r), Q(a), Q(b))``
    because Q is monotone, so the QuantizeLinear is applied first and the
    clamp happens in its integers."""
    from .qdq import activation_range, quantize_linear
    nxt = imp.single_consumer(node.outputs[0])
    if nxt is None or nxt.key != ("", "QuantizeLinear") or nxt.input(0) != node.outputs[0]:
        return False
    from .quantparams import qdq_quant
    q = qdq_quant(imp, nxt, None, None)
    lo, hi = activation_range(imp, node, q)
    # quantize the unclipped value (under a temporary ONNX name)...
    tmp = imp.fresh(f"{nxt.outputs[0]}_unclipped")
    imp.bind(node.outputs[0], v)
    quantize_linear(imp, OnnxNode(nxt.index, nxt.name, nxt.op_type, nxt.domain, nxt.inputs, [tmp], nxt.attrs))
    imp.values.pop(node.outputs[0])              # the clipped float value itself is never computed
    imp.skip.add(nxt.index)
    t = imp.values.pop(tmp)
    if lo is None and hi is None:
        imp.bind(nxt.outputs[0], t)
        return True
    # ...then clamp its integers: the result is the QuantizeLinear's output
    name = imp.out_name(nxt.outputs[0], t.perm)
    imp.emit("clamp", [t.name], {"min": lo, "max": hi}, name, imp.info(t).quant, node_name=node.name)
    imp.bind(nxt.outputs[0], Tensor(name, t.perm))
    return True
