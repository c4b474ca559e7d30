"""Reading an ONNX model into plain Python: nodes, constants, inputs, and the
quantization parameters of QuantizeLinear / DequantizeLinear / QLinear* nodes.

Nothing here builds qnnref tensors; :mod:`qnnref.onnx.importer` does that.
Only this module and the importer touch the ``onnx`` package directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..graph import Quant


class Refused(Exception):
    """A node (or a configuration of it) that qnnref cannot import; the
    message says why. The importer collects these and reports them all at once."""


#: ONNX element types that have a qnnref dtype of the same name and meaning.
DTYPES = {
    TensorProto.INT4: "int4", TensorProto.UINT4: "uint4",
    TensorProto.INT8: "int8", TensorProto.UINT8: "uint8",
    TensorProto.INT16: "int16", TensorProto.INT32: "int32", TensorProto.INT64: "int64",
    TensorProto.FLOAT16: "float16", TensorProto.FLOAT: "float32",
}
#: ONNX integer element types of quantized tensors that qnnref holds.
QUANT_TYPES = {TensorProto.INT4, TensorProto.UINT4, TensorProto.INT8, TensorProto.UINT8, TensorProto.INT16}


def type_name(elem_type: int) -> str:
    """The ONNX name of an element type (``UINT16``, ``FLOAT8E4M3FN``, ...)."""
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"element type {elem_type}"


def qnnref_dtype(elem_type: int, what: str) -> str:
    """The qnnref dtype of an ONNX element type; Refused if there is none."""
    if elem_type not in DTYPES:
        raise Refused(f"{what} has ONNX type {type_name(elem_type)}, which qnnref does not have "
                      f"(qnnref types: {', '.join(sorted(set(DTYPES.values())))})")
    return DTYPES[elem_type]


def numpy_dtype_name(arr: np.ndarray) -> str | None:
    """The qnnref dtype name of a numpy array from onnx.numpy_helper (int4 and
    uint4 come as ml_dtypes arrays), or None if qnnref has no such dtype."""
    name = str(arr.dtype)
    return {"int4": "int4", "uint4": "uint4", "int8": "int8", "uint8": "uint8", "int16": "int16",
            "int32": "int32", "int64": "int64", "float16": "float16", "float32": "float32"}.get(name)


def to_numpy(arr: np.ndarray) -> np.ndarray:
    """An array in qnnref's in-memory layout: int4/uint4 unpacked as int8/uint8."""
    name = str(arr.dtype)
    if name == "int4":
        return np.asarray(arr).astype(np.int8)
    if name == "uint4":
        return np.asarray(arr).astype(np.uint8)
    return np.asarray(arr)


def tensor_to_numpy(t: onnx.TensorProto, base_dir: str | None = None) -> np.ndarray:
    """An initializer or Constant value as numpy (external data is loaded by
    onnx.load beforehand; int4/uint4 stay ml_dtypes here, see :func:`to_numpy`)."""
    return numpy_helper.to_array(t, base_dir or "")


@dataclass
class OnnxNode:
    """One ONNX node, attributes decoded to Python values."""

    index: int
    name: str
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.domain, self.op_type)

    def where(self) -> str:
        dom = f"{self.domain}:" if self.domain else ""
        return f"node {self.name!r} ({dom}{self.op_type})"

    @property
    def is_quantize(self) -> bool:
        """QuantizeLinear of ai.onnx or com.microsoft (the same operator)."""
        return self.op_type == "QuantizeLinear" and self.domain in ("", "com.microsoft")

    def input(self, i: int) -> str:
        """The name of input ``i``, or "" when absent."""
        return self.inputs[i] if i < len(self.inputs) else ""

    def attr(self, name: str, default=None):
        return self.attrs.get(name, default)


def decode_attribute(a: onnx.AttributeProto):
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [s.decode("utf-8") for s in v]
    if isinstance(v, onnx.TensorProto):
        return tensor_to_numpy(v)
    return v


def node_domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


@dataclass
class GraphInput:
    name: str
    elem_type: int
    shape: list[int | str | None]         # a dim_param (str) or None when unknown


@dataclass
class OnnxGraph:
    """The parts of a ModelProto the importer uses."""

    nodes: list[OnnxNode]
    initializers: dict[str, np.ndarray]   # numpy (int4/uint4 as ml_dtypes)
    inputs: list[GraphInput]              # graph inputs that are not initializers
    outputs: list[str]
    opsets: dict[str, int]
    producer: str
    model: onnx.ModelProto

    @property
    def opset(self) -> int:
        return self.opsets.get("", 1)


def read_model(model: onnx.ModelProto) -> OnnxGraph:
    g = model.graph
    if len(g.sparse_initializer):
        raise Refused("sparse initializers are not supported (densify them first)")
    inits = {t.name: tensor_to_numpy(t) for t in g.initializer}
    nodes = []
    names_used = set()
    for i, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{i}"
        if name in names_used:
            name = f"{name}_{i}"
        names_used.add(name)
        nodes.append(OnnxNode(i, name, n.op_type, node_domain(n.domain), list(n.input), list(n.output),
                              {a.name: decode_attribute(a) for a in n.attribute}))
    inputs = []
    for vi in g.input:
        if vi.name in inits:
            continue                      # IR < 4: initializers listed as inputs
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise Refused(f"graph input {vi.name!r} is not a tensor")
        dims = None
        if tt.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim]
        inputs.append(GraphInput(vi.name, tt.elem_type, dims))
    opsets = {node_domain(o.domain): o.version for o in model.opset_import}
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    return OnnxGraph(nodes, inits, inputs, [o.name for o in g.output], opsets, producer, model)


# ---------------------------------------------------------------------------
# Quantization parameters
# ---------------------------------------------------------------------------

@dataclass
class OnnxQuant:
    """Quantization parameters in ONNX terms: ``real = scale * (q - zero_point)``
    on integers of qnnref dtype ``dtype``; ``axis`` is an ONNX axis of the
    quantized tensor (non-negative), None for per-tensor."""

    dtype: str
    scale: np.ndarray                     # float32: () per-tensor, (D,) per-axis, rank-r blocked
    zero_point: np.ndarray | None         # the dtype's in-memory numpy type, shape of scale
    axis: int | None = None
    block_size: int | None = None

    def zero_points(self) -> np.ndarray:
        return (np.zeros(self.scale.shape, np.int64) if self.zero_point is None
                else self.zero_point.astype(np.int64))

    def same(self, other: "OnnxQuant | None") -> bool:
        """Identical dtype and parameters (a missing zero point equals zeros)."""
        if other is None:
            return False
        return (self.dtype == other.dtype and self.axis == other.axis
                and self.block_size == other.block_size
                and self.scale.shape == other.scale.shape
                and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_points(), other.zero_points()))

    def describe(self) -> str:
        if self.axis is None:
            return f"{self.dtype} scale {float(self.scale):.6g} zero point {int(self.zero_points())}"
        kind = "per-axis" if self.block_size is None else f"blocked (block {self.block_size})"
        return f"{self.dtype} {kind} on axis {self.axis}"

    def to_quant(self, perm: tuple[int, ...]) -> Quant:
        """The qnnref Quant of a tensor holding this ONNX tensor with its axes
        permuted by ``perm`` (qnnref axis i is ONNX axis perm[i])."""
        zp = None if self.zero_point is None else self.zero_point
        if self.axis is None:
            return Quant(self.scale, zp, None, None)
        axis = perm.index(self.axis)
        if self.block_size is None:
            return Quant(self.scale, zp, axis, None)
        scale = np.ascontiguousarray(np.transpose(self.scale, perm))
        zp = None if zp is None else np.ascontiguousarray(np.transpose(zp, perm))
        return Quant(scale, zp, axis, self.block_size)

    @classmethod
    def from_quant(cls, dtype: str, q: Quant, perm: tuple[int, ...]) -> "OnnxQuant":
        """The ONNX view of a qnnref tensor's Quant (inverse of :meth:`to_quant`)."""
        if q.axis is None:
            return cls(dtype, q.scale, q.zero_point, None, None)
        axis = perm[q.axis]
        if q.block_size is None:
            return cls(dtype, q.scale, q.zero_point, axis, None)
        inv = tuple(int(i) for i in np.argsort(perm))
        zp = None if q.zero_point is None else np.transpose(q.zero_point, inv)
        return cls(dtype, np.transpose(q.scale, inv), zp, axis, q.block_size)


def make_onnx_quant(where: str, dtype: str, scale: np.ndarray, zero_point: np.ndarray | None,
                    axis: int | None, block_size: int, shape: tuple[int, ...] | None,
                    broadcast_zero_point: bool = False) -> OnnxQuant:
    """Normalise ONNX scale / zero point tensors to an OnnxQuant.

    ``shape`` is the quantized tensor's ONNX shape (None when unknown, then
    only per-tensor parameters are accepted). A scale with one element is
    per-tensor whatever ``axis`` says (as ONNX Runtime reads it).
    ``broadcast_zero_point``: a one-element zero point with a 1-D scale of
    several elements is that zero point for every channel (the QLinear*
    operators allow it; QuantizeLinear / DequantizeLinear want equal shapes)."""
    scale = to_numpy(np.asarray(scale))
    if scale.dtype != np.float32:
        if scale.dtype == np.float16 and block_size:
            pass                          # qnnref keeps float16 scales for blocked quantization
        else:
            raise Refused(f"{where}: scale of type {scale.dtype} (qnnref quantization scales are float32"
                          f"{'; float16 only for blocked quantization' if scale.dtype == np.float16 else ''})")
    if zero_point is not None:
        zero_point = to_numpy(np.asarray(zero_point))
        if zero_point.size == 1 and scale.size == 1:
            zero_point = zero_point.reshape(scale.shape)     # () and [1] both mean one value
        elif zero_point.size == 1 and scale.ndim == 1 and broadcast_zero_point:
            zero_point = np.full(scale.shape, zero_point.reshape(()), zero_point.dtype)
        if zero_point.shape != scale.shape:
            raise Refused(f"{where}: zero point shape {list(zero_point.shape)} differs from the scale's "
                          f"{list(scale.shape)}")
    with np.errstate(invalid="ignore"):
        if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise Refused(f"{where}: scales must be finite and > 0 (qnnref refuses zero, negative, "
                          "infinite and NaN scales)")
    rank = None if shape is None else len(shape)
    if block_size:
        if shape is None or scale.ndim != rank:
            raise Refused(f"{where}: blocked quantization needs a scale of the tensor's rank")
        ax = axis % rank
        return OnnxQuant(dtype, scale, zero_point, ax, int(block_size))
    if scale.size == 1 and scale.ndim <= 1:
        zp = None if zero_point is None else zero_point.reshape(())
        return OnnxQuant(dtype, scale.reshape(()), zp, None, None)
    if scale.ndim != 1:
        raise Refused(f"{where}: a per-axis scale must be 1-D, got shape {list(scale.shape)}")
    if shape is None:
        raise Refused(f"{where}: per-axis quantization of a tensor of unknown shape")
    if not -rank <= axis < rank:
        raise Refused(f"{where}: quantization axis {axis} is out of range for rank {rank}")
    ax = axis % rank
    if shape[ax] != scale.shape[0]:
        raise Refused(f"{where}: {scale.shape[0]} scales for axis {ax} of length {shape[ax]}")
    return OnnxQuant(dtype, scale, zero_point, ax, None)
