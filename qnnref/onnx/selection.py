"""Operators that select elements: Gather, Slice, Split, nearest Resize, Pad.

All exact data movement; Slice, Split and Resize are gathers of constant
index arrays along the axes they change, in whatever layout the input has.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from .. import graph as qgraph
from ..arith import dequantize_values
from . import layout
from .compute import alias_name
from .context import Const, Importer, Tensor
from .movement import emit_moved, moved_const
from .reader import OnnxNode, OnnxQuant, Refused
from .registry import handles


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
        # Upsample / Resize-10: asymmetric coordinates, floor (ONNX Runtime rounds up when shrinking)
        coord, nearest = "asymmetric", "floor"
        if scales is None or np.any(np.asarray(scales, np.float32) < 1):
            raise Refused(f"{node.where()}: opset-10 Resize / Upsample that shrinks an axis is not supported")
    else:
        scales = imp.const(node, 2, "scales")
        sizes = imp.const(node, 3, "sizes")
        coord = node.attr("coordinate_transformation_mode", "half_pixel")
        nearest = node.attr("nearest_mode", "round_prefer_floor")
    if sizes is not None and np.asarray(sizes).size:
        out = imp.const_ints(node, 3, "sizes")
        if len(out) != rank or any(o < 1 or o > qgraph.MAX_DIM for o in out) or 0 in shape:
            raise Refused(f"{node.where()}: sizes {out} must have one value in [1, {qgraph.MAX_DIM}] per axis "
                          "(of a non-empty input)")
        scales = [o / i for o, i in zip(out, shape)]
    else:
        scales = np.asarray(scales).reshape(-1) if scales is not None else np.zeros(0)
        if scales.dtype.kind != "f" or len(scales) != rank or not np.all(np.isfinite(scales) & (scales > 0)):
            raise Refused(f"{node.where()}: scales must be one finite float > 0 per axis, got {list(scales)}")
        scales = [float(s) for s in scales.astype(np.float32)]
        with np.errstate(over="ignore"):
            out = [np.floor(i * np.float32(s)) for i, s in zip(shape, scales)]
        if any(not 1 <= o <= qgraph.MAX_DIM for o in out):       # (inf and NaN fail too)
            raise Refused(f"{node.where()}: scales {scales} give the output shape {out}")
        out = [int(o) for o in out]
    qgraph.check_element_count(math.prod(out), f"{node.where()}: output")
    maps = {a: _nearest_map(node, shape[a], out[a], scales[a], coord, nearest) for a in range(rank)}
    _bind_selection(imp, node, v, node.outputs[0], {a: m for a, m in maps.items() if m is not None})


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


@handles("Gather")
def gather(imp: Importer, node: OnnxNode) -> None:
    data, idx = imp.value(node.input(0)), imp.value(node.input(1))
    rank = len(imp.shape(data))
    axis = layout.normalize_axis(node.attr("axis", 0), rank, node.where())
    if isinstance(idx, Tensor) and idx.cast:
        _gather_table(imp, node, data, idx)
        return
    if isinstance(data, Const):
        if not isinstance(idx, Const) or data.quant is None:
            raise Refused(f"{node.where()}: gathering from a constant with run-time indices")
        moved_const(imp, node, data, lambda d: np.take(d, idx.data, axis=axis))
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


def _gather_table(imp: Importer, node: OnnxNode, data, idx: Tensor) -> None:
    """Gather from a constant 1-D table with 8-bit integers (cast to int32 or
    int64, maybe shifted by a constant) as indices: a ``table``, entry
    ``data[x + offset]`` for each code x (ONNX's negative indices count from
    the end), e.g. an exported qnnref table: ``Cast -> Add(128) -> Gather``."""
    info = imp.info(idx)
    if not isinstance(data, Const) or data.quant is not None or data.data.ndim != 1:
        raise Refused(f"{node.where()}: integer indices from a Cast, into something other than a constant 1-D table")
    if info.dtype not in ("int8", "uint8") or data.dtype not in ("int8", "uint8"):
        raise Refused(f"{node.where()}: a table lookup needs 8-bit indices and entries (got {info.dtype} indices, "
                      f"{data.dtype} entries)")
    n = data.data.shape[0]
    codes = np.arange(info.dt.min, info.dt.max + 1) + idx.offset
    if codes.min() < -n or codes.max() >= n:
        raise Refused(f"{node.where()}: indices in [{codes.min()}, {codes.max()}] for a table of {n} entries")
    lut = np.ascontiguousarray(data.data[codes % n])
    table = imp.constant(lut, data.dtype, None, f"{node.name}_table")
    name = imp.out_name(node.outputs[0], idx.perm)
    imp.emit("table", [idx.name, table], None, name, node_name=node.name)
    imp.bind(node.outputs[0], Tensor(name, idx.perm))


def _gather_ranges(imp: Importer, node: OnnxNode, v: Tensor, out: str, ranges: dict, last_name=None):
    """Select ``ranges[axis]`` (index arrays) along ONNX axes of ``v``: one
    ``gather`` per axis whose selection is not the whole axis."""
    shape = imp.shape(v)
    q = imp.info(v).quant
    todo = [(a, idx) for a, idx in sorted(ranges.items()) if not np.array_equal(idx, np.arange(shape[a]))]
    if not todo:
        return None
    if q is not None and any(q.axis == v.perm.index(a) for a, _ in todo):
        raise Refused(f"{node.where()}: selecting along the per-axis quantization axis")
    src = v.name
    for k, (a, idx) in enumerate(todo):
        index = imp.constant(np.asarray(idx, np.int64), "int64", None, f"{node.name}_index{a}")
        attrs = {"axis": v.perm.index(a)}
        if k == len(todo) - 1:
            name = last_name(q) if last_name else imp.fresh(out)
            return imp.emit("gather", [src, index], attrs, name, q, node_name=node.name)
        src = imp.emit("gather", [src, index], attrs, imp.fresh(f"{out}_axis{a}"), q)
    return None


def _bind_selection(imp: Importer, node: OnnxNode, v: Tensor, out: str, ranges: dict) -> None:
    def name_for(q):
        if v.dequantized:
            oq = None if q is None else OnnxQuant.from_quant(imp.info(v).dtype, q, v.perm)
            return alias_name(imp, out, oq, v.perm) or imp.out_name(out, v.perm, integer_view=True)
        return imp.out_name(out, v.perm)
    name = _gather_ranges(imp, node, v, out, ranges, name_for)
    imp.bind(out, v if name is None else Tensor(name, v.perm, v.dequantized))


@handles("Slice")
def slice_op(imp: Importer, node: OnnxNode) -> None:
    """Slice with constant starts / ends / axes / steps: a gather of the
    selected indices along each sliced axis (exact)."""
    v = imp.value(node.input(0))
    if isinstance(v, Const):
        raise Refused(f"{node.where()}: slicing a quantized constant is not supported")
    shape = imp.shape(v)
    if imp.onnx.opset < 10:
        starts, ends, axes, steps = node.attr("starts"), node.attr("ends"), node.attr("axes"), None
    else:
        starts, ends = imp.const_ints(node, 1, "starts"), imp.const_ints(node, 2, "ends")
        axes, steps = imp.const_ints(node, 3, "axes", False), imp.const_ints(node, 4, "steps", False)
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps) or len(set(axes)) != len(axes):
        raise Refused(f"{node.where()}: starts, ends, axes and steps must have one value per sliced axis, "
                      "each axis once")
    ranges = {}
    for st, en, a, sp in zip(starts, ends, axes, steps):
        a = layout.normalize_axis(a, len(shape), node.where())
        if sp == 0:
            raise Refused(f"{node.where()}: step 0")
        ranges[a] = np.arange(shape[a])[slice(*slice(st, en, sp).indices(shape[a]))]
    _bind_selection(imp, node, v, node.outputs[0], ranges)


@handles("Split")
def split_op(imp: Importer, node: OnnxNode) -> None:
    v = imp.value(node.input(0))
    if isinstance(v, Const):
        raise Refused(f"{node.where()}: splitting a quantized constant is not supported")
    shape = imp.shape(v)
    axis = layout.normalize_axis(node.attr("axis", 0), len(shape), node.where())
    sizes = node.attr("split") if imp.onnx.opset < 13 else imp.const(node, 1, "split")
    n = len(node.outputs)
    if sizes is None:
        chunk = -(-shape[axis] // n)
        sizes = [min(chunk, shape[axis] - k * chunk) for k in range(n)]
    sizes = [int(x) for x in np.asarray(sizes).reshape(-1)]
    if sum(sizes) != shape[axis] or len(sizes) != n:
        raise Refused(f"{node.where()}: split sizes {sizes} do not cover axis {axis} of length {shape[axis]}")
    start = 0
    for out, size in zip(node.outputs, sizes):
        if out:
            _bind_selection(imp, node, v, out, {axis: np.arange(start, start + size)})
        start += size


@handles("Pad")
def pad(imp: Importer, node: OnnxNode) -> None:
    v = imp.value(node.input(0))
    if not isinstance(v, Tensor):
        raise Refused(f"{node.where()}: a constant input is not supported")
    rank = len(v.perm)
    if imp.onnx.opset < 11:
        pads, value = node.attr("pads"), node.attr("value", 0.0)
    else:
        pads, value = imp.const_ints(node, 1, "pads"), imp.const(node, 2, "constant_value")
    if pads is None:
        raise Refused(f"{node.where()}: attribute 'pads' is required")
    axes = imp.const_ints(node, 3, "axes", required=False) if len(node.inputs) > 3 else None
    if axes is not None:
        full = [0] * (2 * rank)
        axes = [layout.normalize_axis(a, rank, node.where()) for a in axes]
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
        code = int(value) - v.offset                  # a cast view holds the integers + offset
        if v.cast and not info.dt.min <= code <= info.dt.max:
            raise Refused(f"{node.where()}: pad value {float(value)} is not a {info.dtype} value cast to {v.cast}")
        return code
    q = info.quant
    if q is None or q.axis is not None:
        raise Refused(f"{node.where()}: padding a per-axis quantized tensor")
    s, zp = float(q.scale), int(q.zero_point_or_zeros())
    code = int(np.rint(float(value) / s)) + zp
    dt = dtypes.get(info.dtype)
    if not dt.min <= code <= dt.max or dequantize_values(code, q.scale, zp) != np.float32(value):
        raise Refused(f"{node.where()}: the pad value {float(value)} is not exactly a quantized value")
    return code
