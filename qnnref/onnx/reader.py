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
    except (ValueError, TypeError):
        return f"element type {elem_type}"


def scalar(where: str, value, what: str, kinds: str = "fiu") -> np.ndarray:
    """``value`` as a 0-d array: Refused unless it holds one number of a
    numpy kind in ``kinds`` (a Clip bound, a scale, ...)."""
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in kinds:
        raise Refused(f"{where}: {what} must be one number, got {arr.dtype} of shape {list(arr.shape)}")
    return arr.reshape(())


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


#: ONNX element types numpy_helper decodes to numbers (the others: UNDEFINED,
#: STRING, COMPLEX*, unknown numbers, are refused where a tensor is read).
NUMERIC_TYPES = {
    TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8, TensorProto.UINT16, TensorProto.INT16,
    TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL, TensorProto.FLOAT16, TensorProto.DOUBLE,
    TensorProto.UINT32, TensorProto.UINT64, TensorProto.BFLOAT16, TensorProto.INT4, TensorProto.UINT4,
}
_FOUR_BIT = {TensorProto.INT4, TensorProto.UINT4}
#: the typed field that holds each element type's values (when raw_data is empty)
_FIELD = {TensorProto.FLOAT: "float_data", TensorProto.INT64: "int64_data", TensorProto.DOUBLE: "double_data",
          TensorProto.UINT32: "uint64_data", TensorProto.UINT64: "uint64_data"}
_FIELDS = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")


def check_tensor(t: onnx.TensorProto, what: str) -> int:
    """Refused unless ``t`` is a numeric tensor whose declared dims are
    within qnnref's limits and whose data has exactly that many elements;
    checked *before* anything is decoded or allocated. Returns the element count."""
    from .. import graph as qgraph          # the module, so that a lowered limit is seen
    if t.data_type not in NUMERIC_TYPES:
        raise Refused(f"{what} has element type {type_name(t.data_type)}, which qnnref cannot read")
    if t.data_location == TensorProto.EXTERNAL or len(t.external_data):
        raise Refused(f"{what} has external data that was not loaded (pass the model's path, not its "
                      "bytes, with the data file beside it)")
    if t.HasField("segment"):
        raise Refused(f"{what} is a segment of a tensor (segments are not supported)")
    dims = list(t.dims)
    if len(dims) > qgraph.MAX_RANK or any(d < 0 or d > qgraph.MAX_DIM for d in dims):
        raise Refused(f"{what} has dims {dims[:8]}: negative, above {qgraph.MAX_DIM}, or rank above "
                      f"{qgraph.MAX_RANK}")
    # an empty tensor's other dims still make a shape numpy must be able to hold
    nonzero = 1
    for d in dims:
        nonzero *= max(d, 1)
    if nonzero > 2**62:
        raise Refused(f"{what} has dims {dims[:8]}: their product (ignoring zeros) is beyond 2^62")
    count = 1
    for d in dims:
        count *= d
    if count > qgraph.MAX_TENSOR_ELEMENTS:
        raise Refused(f"{what} has dims {dims}: {count} elements exceed qnnref's limit of "
                      f"{qgraph.MAX_TENSOR_ELEMENTS} (qnnref.graph.MAX_TENSOR_ELEMENTS)")
    four = t.data_type in _FOUR_BIT
    if t.HasField("raw_data"):            # (set but empty is raw data too: numpy_helper reads it)
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
        want = (count + 1) // 2 if four else count * itemsize
        got, unit = len(t.raw_data), "bytes"
        field = "raw_data"
    else:
        field = _FIELD.get(t.data_type, "int32_data")
        want = (count + 1) // 2 if four else count
        got, unit = len(getattr(t, field)), "values"
    others = [f for f in _FIELDS if f != field and len(getattr(t, f))]
    if others and field == "raw_data":
        raise Refused(f"{what}: values both in raw_data and in {others[0]}")
    if others:
        raise Refused(f"{what}: values in {others[0]}, which does not hold {type_name(t.data_type)} data")
    if got != want:
        raise Refused(f"{what}: {got} {unit} of data for dims {dims} of type {type_name(t.data_type)} "
                      f"({want} {unit} expected)")
    return count


def tensor_to_numpy(t: onnx.TensorProto, what: str = "a tensor") -> np.ndarray:
    """An initializer or Constant value as numpy, checked first by
    :func:`check_tensor` (external data is loaded by onnx.load beforehand;
    int4/uint4 stay ml_dtypes here, see :func:`to_numpy`)."""
    check_tensor(t, what)
    return numpy_helper.to_array(t)


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


A = onnx.AttributeProto
#: attribute kinds of the com.microsoft operators (onnx has no schemas for
#: them), and of any attribute of an operator without a schema, by name
KNOWN_KINDS = {
    "axis": A.INT, "axes": A.INTS, "alpha": A.FLOAT, "beta": A.FLOAT, "transA": A.INT, "transB": A.INT,
    "auto_pad": A.STRING, "ceil_mode": A.INT, "count_include_pad": A.INT, "kernel_shape": A.INTS,
    "pads": A.INTS, "strides": A.INTS, "dilations": A.INTS, "group": A.INT, "channels_last": A.INT,
    "K": A.INT, "N": A.INT, "bits": A.INT, "block_size": A.INT, "accuracy_level": A.INT, "keepdims": A.INT,
    "perm": A.INTS, "mode": A.STRING, "to": A.INT, "blocksize": A.INT, "output_dtype": A.INT, "saturate": A.INT,
    "precision": A.INT, "min": A.FLOAT, "max": A.FLOAT, "value": A.TENSOR,
}
_KIND_NAMES = {v: k for k, v in A.AttributeType.items()}
_SCHEMAS: dict = {}


#: required attributes of the com.microsoft operators the importer reads
MS_REQUIRED = {"QLinearConcat": {"axis"}, "QLinearAveragePool": {"kernel_shape"},
               "MatMulNBits": {"K", "N", "block_size"}}


def _schema_kinds(op_type: str, domain: str, opset: int | None):
    """({attribute name: AttributeProto kind}, {required names}, (min inputs,
    max inputs, min outputs, max outputs)) from onnx's schema of the
    operator (None when onnx has none: com.microsoft, unknown operators)."""
    if opset is None:
        return None
    key = (op_type, domain, opset)
    if key not in _SCHEMAS:
        try:
            schema = onnx.defs.get_schema(op_type, opset, domain)
            _SCHEMAS[key] = ({n: int(a.type.value) for n, a in schema.attributes.items()},
                             {n for n, a in schema.attributes.items() if a.required},
                             (schema.min_input, schema.max_input, schema.min_output, schema.max_output))
        except onnx.defs.SchemaError:         # no such operator, or not in this opset
            _SCHEMAS[key] = None
    return _SCHEMAS[key]


def decode_attributes(n: onnx.NodeProto, where: str, opset: int | None) -> dict[str, Any]:
    """A node's attributes as Python values, each checked against the kind
    the operator's schema (or :data:`KNOWN_KINDS`) gives it: as the ONNX
    checker and ONNX Runtime refuse a wrong kind, so does qnnref."""
    schema = _schema_kinds(n.op_type, node_domain(n.domain), opset)
    kinds, required, counts = schema if schema else (None, MS_REQUIRED.get(n.op_type, set()), None)
    if not len(n.output) or not n.output[0]:
        raise Refused(f"{where}: the node has no (first) output")
    if counts is not None:
        lo_in, hi_in, lo_out, hi_out = counts
        if not (lo_in <= len(n.input) <= hi_in and lo_out <= len(n.output) <= hi_out):
            raise Refused(f"{where}: {len(n.input)} inputs and {len(n.output)} outputs; {n.op_type}-{opset} "
                          f"takes {lo_in}..{hi_in} inputs and {lo_out}..{hi_out} outputs")
    out = {}
    for a in n.attribute:
        if a.name in out:
            raise Refused(f"{where}: attribute {a.name!r} is given twice")
        want = (kinds or KNOWN_KINDS).get(a.name)
        if kinds is not None and want is None:
            raise Refused(f"{where}: {n.op_type} has no attribute {a.name!r} (opset {opset})")
        if want is not None and a.type != want:
            raise Refused(f"{where}: attribute {a.name!r} must be {_KIND_NAMES.get(want, want)}, "
                          f"got {_KIND_NAMES.get(a.type, a.type)}")
        out[a.name] = decode_attribute(a, f"{where}: attribute {a.name!r}")
    missing = sorted(required - set(out))
    if missing:
        raise Refused(f"{where}: required attribute {missing[0]!r} is missing")
    return out


def decode_attribute(a: onnx.AttributeProto, what: str = "attribute"):
    """One attribute's value by its kind (strings decoded as UTF-8, tensors checked)."""
    try:
        if a.type == A.INT:
            return int(a.i)
        if a.type == A.FLOAT:
            return float(a.f)
        if a.type == A.STRING:
            return a.s.decode("utf-8")
        if a.type == A.INTS:
            return [int(v) for v in a.ints]
        if a.type == A.FLOATS:
            return [float(v) for v in a.floats]
        if a.type == A.STRINGS:
            return [v.decode("utf-8") for v in a.strings]
    except UnicodeDecodeError:
        raise Refused(f"{what}: a string that is not UTF-8") from None
    if a.type == A.TENSOR:
        return tensor_to_numpy(a.t, what)
    if a.type in (A.GRAPH, A.GRAPHS, A.TYPE_PROTO, A.TYPE_PROTOS):
        return helper.get_attribute_value(a)      # subgraphs and types: no handler reads them
    raise Refused(f"{what}: attribute kind {_KIND_NAMES.get(a.type, a.type)} is not supported")


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


def _texts(values, what: str) -> list[str]:
    """Protobuf string fields as str: a field that is not valid UTF-8 comes
    out of protobuf as bytes, which qnnref refuses."""
    out = list(values)
    for v in out:
        if not isinstance(v, str):
            raise Refused(f"{what}: a name that is not UTF-8 text ({bytes(v)[:40]!r})")
    return out


def _check_opsets(model: onnx.ModelProto) -> dict[str, int]:
    opsets = {}
    for o in model.opset_import:
        dom = node_domain(_texts([o.domain], "opset domain")[0])
        if dom in opsets:
            raise Refused(f"opset of domain {dom or 'ai.onnx'!r} imported twice")
        newest = onnx.defs.onnx_opset_version() if dom == "" else 2**31 - 1
        if not 1 <= o.version <= newest:
            raise Refused(f"opset {o.version} of domain {dom or 'ai.onnx'!r} is out of range [1, {newest}]")
        opsets[dom] = o.version
    return opsets


def read_model(model: onnx.ModelProto) -> OnnxGraph:
    """The model's graph, checked as the ONNX checker would (names defined
    before use and once, attribute kinds, tensor sizes) before anything is
    decoded: every problem is a Refused naming the node, tensor or attribute."""
    g = model.graph
    if len(g.sparse_initializer):
        raise Refused("sparse initializers are not supported (densify them first)")
    opsets = _check_opsets(model)
    _texts([model.producer_name, model.producer_version, model.doc_string, g.doc_string, g.name],
           "model producer, name or doc string")
    for p in model.metadata_props:
        _texts([p.key, p.value], "model metadata")
    inits = {}
    for t in g.initializer:
        _texts([t.name], "initializer")
        if not t.name or t.name in inits:
            raise Refused(f"initializer {t.name!r}: {'an empty name' if not t.name else 'the name is used twice'}")
        inits[t.name] = tensor_to_numpy(t, f"initializer {t.name!r}")
    defined = set(inits)
    inputs = []
    for vi in g.input:
        _texts([vi.name], "graph input")
        if vi.name in inits:
            continue                      # IR < 4: initializers listed as inputs
        if not vi.name or vi.name in defined:
            raise Refused(f"graph input {vi.name!r}: {'an empty name' if not vi.name else 'the name is used twice'}")
        defined.add(vi.name)
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise Refused(f"graph input {vi.name!r} is not a tensor")
        dims = None
        if tt.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else (_texts([d.dim_param], vi.name)[0] or None)
                    for d in tt.shape.dim]
            if any(isinstance(d, int) and d < 0 for d in dims):
                raise Refused(f"graph input {vi.name!r} has a negative dimension: {dims}")
        inputs.append(GraphInput(vi.name, tt.elem_type, dims))
    nodes = []
    names_used = set()
    for i, n in enumerate(g.node):
        _texts([n.name, n.op_type, n.domain, n.doc_string, *n.input, *n.output], f"node {i}")
        _texts([a.name for a in n.attribute], f"node {i}: attribute")
        name = n.name or f"{n.op_type}_{i}"
        if name in names_used:
            name = f"{name}_{i}"
        names_used.add(name)
        dom = node_domain(n.domain)
        where = f"node {name!r} ({dom + ':' if dom else ''}{n.op_type})"
        for x in n.input:
            if x and x not in defined:
                raise Refused(f"{where} reads {x!r}, which no graph input, initializer or earlier node "
                              "defines (a missing value, or nodes not in topological order: a cycle?)")
        for o in n.output:
            if o and o in defined:
                raise Refused(f"{where}: output {o!r} is already defined (ONNX graphs are in single "
                              "static assignment form)")
            defined.add(o)
        nodes.append(OnnxNode(i, name, n.op_type, dom, list(n.input), list(n.output),
                              decode_attributes(n, where, opsets.get("", 1) if dom == "" else None)))
    outputs = _texts([o.name for o in g.output], "graph output")
    if len(set(outputs)) != len(outputs) or "" in outputs:
        raise Refused(f"graph outputs {outputs[:8]}: an empty name or a name listed twice")
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    return OnnxGraph(nodes, inits, inputs, outputs, opsets, producer, model)


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
        if not -rank <= axis < rank:
            raise Refused(f"{where}: quantization axis {axis} is out of range for rank {rank}")
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
