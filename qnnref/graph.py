"""The in-memory graph: tensors, quantization parameters, nodes, metadata.

These plain dataclasses are what the file format reads and writes
(qnnref/format.py), what the builder creates (qnnref/builder.py) and what
the interpreter runs (qnnref/interpreter.py). They hold no behaviour beyond
structural checks; operator semantics live in qnnref/ops/.
"""
from __future__ import annotations

import math
import mmap
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import dtypes
from .errors import FormatError, ReadOnlyError, ValidationError

#: The model size limit (spec/format.md, "Limits"): the most elements that a
#: tensor the runtime computes may have -- every graph input and node output
#: -- and every working array an operator's reference materializes (a padded
#: conv2d input, the im2col patches, the taps of all pooling windows). A model
#: that declares more is invalid: refused when it is loaded or built, before
#: anything is allocated. 2^28 int64 working values are 2 GiB. Constants are
#: exempt: they already exist (in the file, already in memory). Read at validation
#: time, so a program may change it.
MAX_TENSOR_ELEMENTS = 2**28

#: The highest rank of a shape and the largest dimension (also block size)
#: of a tensor, in memory as in a file (spec/format.md, "Limits").
MAX_RANK = 32
MAX_DIM = 2**31 - 1


#: A symbolic batch (spec/format.md, "Symbolic batch"): the leading entry of
#: a shape may be a name such as "N" instead of a length. It must match this
#: pattern; one model uses one name.
SYMBOL_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")


def is_symbol(d) -> bool:
    """True for a symbolic dimension (a batch name such as ``"N"``)."""
    return isinstance(d, str)


def leading_symbol(shape) -> str | None:
    """The batch symbol a shape starts with, or None for a static shape."""
    return shape[0] if isinstance(shape, (tuple, list)) and shape and isinstance(shape[0], str) else None


def element_count(shape) -> int:
    """Number of elements of ``shape``, in exact Python integers (never
    overflows). A symbolic leading dimension counts as 1 (batch 1)."""
    return math.prod(1 if isinstance(d, str) else int(d) for d in shape)


def check_element_count(count: int, what: str) -> None:
    """ValidationError (naming ``what``) if ``count`` exceeds MAX_TENSOR_ELEMENTS."""
    if count > MAX_TENSOR_ELEMENTS:
        raise ValidationError(f"{what} would have {count} elements, beyond the model size limit "
                              f"of {MAX_TENSOR_ELEMENTS} (qnnref.graph.MAX_TENSOR_ELEMENTS)")


class _Freezable:
    """A dataclass that :func:`freeze` can make read-only: then setting or
    deleting an attribute raises ReadOnlyError."""

    def __setattr__(self, name, value):
        if self.__dict__.get("_frozen"):
            _read_only(f"{type(self).__name__}.{name}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if self.__dict__.get("_frozen"):
            _read_only(f"{type(self).__name__}.{name}")
        object.__delattr__(self, name)

    @property
    def frozen(self) -> bool:
        """True for the read-only graph of a loaded Model."""
        return bool(self.__dict__.get("_frozen"))

    def __deepcopy__(self, memo):
        """A deep copy is mutable (containers and arrays copied, not frozen)."""
        import copy
        new = object.__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            if key != "_frozen":
                value = copy.deepcopy(value, memo)
                if isinstance(value, np.ndarray) and not value.flags.writeable:
                    value = value.copy()
                object.__setattr__(new, key, value)
        return new


def _read_only(what: str):
    raise ReadOnlyError(f"cannot change {what}: a loaded Model's graph is read-only (its kernels were "
                        "prepared for it); change a copy, g = model.graph.copy(), and build qnnref.Model(g)")


class FrozenDict(dict):
    """A dict that cannot be changed (a loaded Model's tensors, attributes, metadata)."""

    def _no(self, *args, **kwargs):
        _read_only("a read-only dict")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _no

    def __reduce__(self):
        return (dict, (dict(self),))

    def __copy__(self):
        return dict(self)

    def __deepcopy__(self, memo):
        import copy
        return {copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in self.items()}


class FrozenList(list):
    """A list that cannot be changed (a loaded Model's nodes, names, attribute values)."""

    def _no(self, *args, **kwargs):
        _read_only("a read-only list")

    __setitem__ = __delitem__ = __iadd__ = __imul__ = append = extend = insert = pop = remove = \
        clear = sort = reverse = _no

    def __reduce__(self):
        return (list, (list(self),))

    def __copy__(self):
        return list(self)

    def __deepcopy__(self, memo):
        import copy
        return [copy.deepcopy(v, memo) for v in self]


def check_symbolic(t: "TensorInfo", symbol: str, where: str) -> None:
    """ValidationError unless a tensor may carry the batch symbol ``symbol``
    in its leading dimension: a valid name, a computed tensor (not a
    constant), rank >= 1, quantization that does not run along the batch."""
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise ValidationError(f"{where}: batch symbol {symbol!r} is not a name "
                              "(letters, digits and '_', at most 32, not starting with a digit)")
    if t.data is not None:
        raise ValidationError(f"{where}: a constant cannot have a symbolic batch ({list(t.shape)})")
    q = t.quant
    if isinstance(q, Quant) and q.axis is not None:
        if q.block_size is not None:
            raise ValidationError(f"{where}: blocked quantization of a tensor with a symbolic batch "
                                  f"{list(t.shape)} is not supported (its scales would depend on the batch)")
        if isinstance(q.axis, int) and not isinstance(q.axis, bool) and q.axis == 0:
            raise ValidationError(f"{where}: per-axis quantization along the symbolic batch axis 0 of "
                                  f"{list(t.shape)} (each item must be quantized alike)")
#: The node work limit (spec/format.md, "The node work limit"): the most
#: work one node's reference implementation may cost, in work units of
#: roughly a nanosecond of this reference (calibrated on an AMD EPYC Zen 5):
#: an integer multiply-add costs INT_MAC_WORK, a float32 fused multiply-add
#: FLOAT_MAC_WORK, a pooling tap TAP_WORK and an iteration of a Python-level
#: loop of the reference LOOP_WORK. A node beyond it is invalid, refused when the model
#: is loaded or built, so that a legal-looking file cannot make the
#: reference run for hours. 2^36 units is at most about 80 s. Read at validation
#: time, so a program may change it.
MAX_NODE_WORK = 2**36
INT_MAC_WORK = 2
FLOAT_MAC_WORK = 32
TAP_WORK = 32
LOOP_WORK = 2**15


def check_node_work(work: int, what: str) -> None:
    """ValidationError (naming ``what``) if ``work`` exceeds MAX_NODE_WORK."""
    if work > MAX_NODE_WORK:
        raise ValidationError(f"{what} would cost {work} work units, beyond the node work limit "
                              f"of {MAX_NODE_WORK} (qnnref.graph.MAX_NODE_WORK; spec/format.md, "
                              "\"The node work limit\")")


@dataclass
class Quant(_Freezable):
    """Quantization parameters of one tensor: ``real = scale * (q - zero_point)``.

    Three granularities (spec/format.md, "Quantization"):

    * per-tensor: ``axis is None``; ``scale`` and ``zero_point`` have shape ().
    * per-axis:   ``axis`` set, ``block_size is None``; both have shape (D[axis],).
    * blocked:    ``axis`` and ``block_size`` set; both have the tensor's rank,
      with ``ceil(D[axis] / block_size)`` at ``axis`` and D[i] elsewhere.

    ``scale`` is float32 (float16 is allowed for blocked quantization).
    ``zero_point`` has the tensor's storage dtype (its in-memory numpy dtype)
    or is ``None``: symmetric quantization, i.e. all zero points 0.
    """

    scale: np.ndarray
    zero_point: np.ndarray | None = None
    axis: int | None = None
    block_size: int | None = None

    @property
    def granularity(self) -> str:
        if self.axis is None:
            return "per-tensor"
        return "per-axis" if self.block_size is None else "blocked"

    @property
    def symmetric(self) -> bool:
        return self.zero_point is None or not np.any(self.zero_point)

    def zero_point_or_zeros(self) -> np.ndarray:
        """The zero points as int32, zeros where absent (shape of ``scale``)."""
        if self.zero_point is None:
            return np.zeros(self.scale.shape, np.int32)
        return self.zero_point.astype(np.int32)

    def broadcast_shape(self, rank: int) -> tuple[int, ...]:
        """Shape to which scale / zero point reshape to broadcast against a
        tensor of rank ``rank`` (per-tensor and per-axis only)."""
        if self.axis is None:
            return ()
        if self.block_size is not None:
            raise ValueError("blocked quantization does not broadcast; expand it")
        shape = [1] * rank
        shape[self.axis] = self.scale.shape[0]   # never the batch axis (check_symbolic)
        return tuple(shape)

    def expanded(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Scale (float32) and zero point (int32) expanded to broadcast with a
        tensor of ``shape``, for any granularity."""
        scale = self.scale.astype(np.float32)
        zp = self.zero_point_or_zeros()
        if self.axis is None:
            return scale, zp
        if self.block_size is None:
            bshape = self.broadcast_shape(len(shape))
            return scale.reshape(bshape), zp.reshape(bshape)
        # blocked: repeat each block's parameter block_size times along axis,
        # then cut to the tensor's length (the last block may be short).
        n = shape[self.axis]
        idx = np.arange(n) // self.block_size
        return np.take(scale, idx, axis=self.axis), np.take(zp, idx, axis=self.axis)

    def check(self, dtype: dtypes.DType, shape: tuple[int, ...], where: str) -> None:
        """Raise ValidationError unless these parameters fit a tensor."""
        if not dtype.is_int:
            raise ValidationError(f"{where}: float tensor of dtype {dtype} cannot be quantized")
        scale = self.scale
        if not isinstance(scale, np.ndarray) or scale.dtype not in (np.float32, np.float16):
            raise ValidationError(f"{where}: scale must be a float32 array")
        if scale.dtype == np.float16 and self.block_size is None:
            raise ValidationError(f"{where}: float16 scales are allowed only for blocked quantization")
        rank = len(shape)
        for name in ("axis", "block_size"):
            if isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValidationError(f"{where}: quantization {name} must be an integer, not a boolean")
        if self.axis is None:
            if self.block_size is not None:
                raise ValidationError(f"{where}: block_size needs an axis")
            if scale.shape != ():
                raise ValidationError(f"{where}: per-tensor scale must be a scalar, got shape {scale.shape}")
        else:
            if not isinstance(self.axis, int) or not 0 <= self.axis < rank:
                raise ValidationError(f"{where}: quantization axis {self.axis!r} out of range for rank {rank}")
            if self.block_size is None:
                want = (shape[self.axis],)
            else:
                if not isinstance(self.block_size, int) or not 1 <= self.block_size <= MAX_DIM:
                    raise ValidationError(f"{where}: block_size must be an integer in [1, {MAX_DIM}], "
                                          f"got {self.block_size!r}")
                want = list(shape)
                want[self.axis] = -(-shape[self.axis] // self.block_size)
                want = tuple(want)
            if scale.shape != want:
                raise ValidationError(f"{where}: {self.granularity} scale must have shape {want}, got {scale.shape}")
        with np.errstate(invalid="ignore"):
            ok = np.all(np.isfinite(scale)) and np.all(scale > 0)
        if not ok:
            raise ValidationError(f"{where}: scales must be finite and > 0")
        if self.zero_point is not None:
            zp = self.zero_point
            if not isinstance(zp, np.ndarray) or zp.shape != scale.shape:
                raise ValidationError(f"{where}: zero_point must have the scale's shape {scale.shape}")
            if not dtypes.check_array(zp, dtype):
                raise ValidationError(f"{where}: zero_point must be {dtype} values (in memory {dtype.numpy})")


@dataclass
class TensorInfo(_Freezable):
    """A named tensor: its type and, for constants, its data."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    quant: Quant | None = None
    data: np.ndarray | None = None   # constants only (weights, biases, tables)

    @property
    def dt(self) -> dtypes.DType:
        return dtypes.get(self.dtype, f"tensor {self.name!r}")

    @property
    def size(self) -> int:
        return element_count(self.shape)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    def check(self, where: str) -> dtypes.DType:
        """Raise ValidationError unless the tensor is well typed: a known
        dtype; a shape of at most MAX_RANK integers in [0, MAX_DIM]; a non-constant
        within MAX_TENSOR_ELEMENTS; constant data of the in-memory dtype,
        range and shape the tensor declares; quantization that fits.
        (A file reader checks all this too; graphs built in memory may not be.)"""
        dt = dtypes.get(self.dtype, where)
        shape = self.shape
        symbol = leading_symbol(shape)
        if symbol is not None:
            check_symbolic(self, symbol, where)
        dims = shape[1:] if symbol is not None else shape
        if not isinstance(shape, (tuple, list)) or any(
                isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)) for d in dims):
            raise ValidationError(f"{where}: shape must be a tuple of integers (the first may be a batch "
                                  f"symbol such as 'N'), got {shape!r}")
        if len(shape) > MAX_RANK:
            raise ValidationError(f"{where}: rank {len(shape)} exceeds the limit {MAX_RANK}")
        if any(not 0 <= d <= MAX_DIM for d in dims):
            raise ValidationError(f"{where}: shape {list(shape)} has a dimension outside [0, {MAX_DIM}]")
        shape = tuple(d if isinstance(d, str) else int(d) for d in shape)
        if self.data is None:
            check_element_count(element_count(shape), f"{where}: shape {list(shape)}")
        else:
            data = self.data
            if not isinstance(data, np.ndarray) or data.dtype != dt.numpy or data.shape != shape:
                got = (f"{data.dtype}{list(data.shape)}" if isinstance(data, np.ndarray)
                       else type(data).__name__)
                raise ValidationError(f"{where}: constant data must be a numpy {dt.numpy} array of shape "
                                      f"{list(shape)} (a {dt} tensor), got {got}")
            if not dtypes.check_array(data, dt):
                raise ValidationError(f"{where}: constant data has values outside the {dt} range "
                                      f"[{dt.min}, {dt.max}]")
        if self.quant is not None:
            if not isinstance(self.quant, Quant):
                raise ValidationError(f"{where}: quant must be a Quant, got {type(self.quant).__name__}")
            self.quant.check(dt, shape, where)
        return dt

    def describe(self) -> str:
        """Short text such as ``int8[1,8,8,1] q(s=0.0078, zp=-128)``."""
        text = f"{self.dtype}[{','.join(map(str, self.shape))}]"
        q = self.quant
        if q is not None:
            if q.axis is None:
                zp = int(q.zero_point) if q.zero_point is not None else 0
                text += f" q(s={float(q.scale):.6g}, zp={zp})"
            elif q.block_size is None:
                text += f" q(per-axis {q.axis}, {q.scale.size} scales)"
            else:
                text += f" q(blocked axis {q.axis}, block {q.block_size})"
        return text


@dataclass
class Node(_Freezable):
    """One operator application. ``inputs`` are tensor names in the operator's
    slot order ("" for an absent optional input); ``outputs`` likewise."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph(_Freezable):
    """A whole model: tensors, nodes in topological order, inputs, outputs."""

    tensors: dict[str, TensorInfo]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    def _check_types(self, where: str) -> None:
        """The containers hold what they should (a file reader guarantees
        this; a graph built in memory may not)."""
        def names_ok(v, allow_empty: bool) -> bool:
            return isinstance(v, (list, tuple)) and all(
                isinstance(i, str) and (allow_empty or i) for i in v)
        if not isinstance(self.tensors, dict) or not all(
                isinstance(k, str) and isinstance(t, TensorInfo) for k, t in self.tensors.items()):
            raise FormatError(f"{where}: tensors must be a dict of name -> TensorInfo")
        if not isinstance(self.nodes, (list, tuple)) or not all(isinstance(n, Node) for n in self.nodes):
            raise FormatError(f"{where}: nodes must be a list of Node")
        for n in self.nodes:
            if not (isinstance(n.name, str) and n.name and isinstance(n.op, str)
                    and names_ok(n.inputs, True) and names_ok(n.outputs, False)):
                raise FormatError(f"{where}: node {n.name!r}: name and op must be strings, inputs and "
                                  f"outputs lists of tensor names (got op {n.op!r}, inputs {n.inputs!r}, "
                                  f"outputs {n.outputs!r})")
        if not names_ok(self.inputs, False) or not names_ok(self.outputs, False):
            raise FormatError(f"{where}: graph inputs and outputs must be lists of tensor names")

    def check_structure(self, where: str = "model") -> None:
        """Structural checks: every name is defined once, nothing dangles,
        nodes are acyclic and in topological order. Raises FormatError."""
        self._check_types(where)
        names = set(self.tensors)
        for t_name, t in self.tensors.items():
            if t.name != t_name:
                raise FormatError(f"{where}: tensor table key {t_name!r} != tensor name {t.name!r}")
        node_names = set()
        produced: dict[str, str] = {}
        for n in self.nodes:
            if n.name in node_names:
                raise FormatError(f"{where}: duplicate node name {n.name!r}")
            node_names.add(n.name)
            for o in n.outputs:
                if o not in names:
                    raise FormatError(f"{where}: node {n.name!r} output {o!r} is not a declared tensor")
                if o in produced:
                    raise FormatError(f"{where}: tensor {o!r} is produced by both {produced[o]!r} and {n.name!r}")
                if o in self.inputs or self.tensors[o].is_constant:
                    raise FormatError(f"{where}: node {n.name!r} writes {o!r}, which is a graph input or constant")
                produced[o] = n.name
        for i in self.inputs:
            if i not in names:
                raise FormatError(f"{where}: graph input {i!r} is not a declared tensor")
            if self.tensors[i].is_constant:
                raise FormatError(f"{where}: graph input {i!r} is a constant")
        if len(set(self.inputs)) != len(self.inputs):
            raise FormatError(f"{where}: a graph input is listed twice")
        # Topological order: every input of a node must be available before it.
        # A node that reads a tensor produced later (or by itself) closes a cycle
        # or breaks the order; both are refused with the names involved.
        available = set(self.inputs) | {k for k, t in self.tensors.items() if t.is_constant}
        for n in self.nodes:
            for i in n.inputs:
                if i == "":
                    continue
                if i not in names:
                    raise FormatError(f"{where}: node {n.name!r} reads undeclared tensor {i!r}")
                if i not in available:
                    if i in produced:
                        raise FormatError(
                            f"{where}: node {n.name!r} reads {i!r} before node {produced[i]!r} produces it "
                            "(nodes must be in topological order; the graph may contain a cycle)")
                    raise FormatError(f"{where}: node {n.name!r} reads {i!r}, which no node produces "
                                      "and which is neither a graph input nor a constant")
            available.update(n.outputs)
        for o in self.outputs:
            if o not in available:
                raise FormatError(f"{where}: graph output {o!r} is never produced")

    @property
    def batch_symbol(self) -> str | None:
        """The name of the symbolic batch (e.g. ``"N"``), None for a static graph."""
        for t in self.tensors.values():
            symbol = leading_symbol(getattr(t, "shape", ()))
            if symbol is not None:
                return symbol
        return None

    def copy(self) -> "Graph":
        """A mutable copy (containers and quantization copied, constant arrays
        shared, read-only): edit it, then build a new ``qnnref.Model``."""
        def quant(q):
            if not isinstance(q, Quant):
                return q
            return Quant(q.scale, q.zero_point, q.axis, q.block_size)
        tensors = {k: TensorInfo(t.name, t.dtype, tuple(t.shape), quant(t.quant), t.data)
                   if isinstance(t, TensorInfo) else t for k, t in self.tensors.items()}
        nodes = [Node(n.name, n.op, list(n.inputs), list(n.outputs), _thaw(n.attrs))
                 if isinstance(n, Node) else n for n in self.nodes]
        return Graph(tensors, nodes, list(self.inputs), list(self.outputs), _thaw(self.metadata))


def _thaw(value):
    """Plain (mutable) lists and dicts for a frozen JSON-like value."""
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not isinstance(value, np.ndarray):
        return [_thaw(v) for v in value] if isinstance(value, list) else tuple(_thaw(v) for v in value)
    return value


def _frozen_value(value):
    """A read-only copy of a JSON-like value (attributes, metadata)."""
    if isinstance(value, dict):
        return FrozenDict({k: _frozen_value(v) for k, v in value.items()})
    if isinstance(value, list):
        return FrozenList(_frozen_value(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_frozen_value(v) for v in value)
    if isinstance(value, np.ndarray):
        return _frozen_array(value)
    return value


def _frozen_array(arr):
    """``arr`` if nobody can write it (a read-only view of a file or bytes),
    else a read-only copy: the caller's array cannot change the model."""
    if not isinstance(arr, np.ndarray):
        return arr
    base, writable = arr, False
    while isinstance(base, np.ndarray):
        writable = writable or base.flags.writeable
        base = base.base
    if not writable and isinstance(base, (bytes, mmap.mmap)) and not _writable_map(base):
        return arr                      # a view of an immutable buffer: nobody can write it
    # A private copy, seen through a read-only view of a read-only base, so
    # that not even ``flags.writeable = True`` makes it writable again.
    private = arr.copy()
    private.flags.writeable = False
    view = private.view()
    view.flags.writeable = False
    return view


def _writable_map(buf) -> bool:
    try:
        memoryview(buf).release()
        return not memoryview(buf).readonly
    except (TypeError, ValueError):
        return True


def _seal(obj):
    object.__setattr__(obj, "_frozen", True)
    return obj


def freeze(graph: Graph) -> Graph:
    """A read-only copy of ``graph`` (a loaded Model's): its dataclasses
    refuse changes, its containers are FrozenDict / FrozenList, its arrays
    read-only (copied unless already read-only views nobody can write).
    Containers of the wrong type are kept as they are, for check_structure
    to report. Graph.copy() gives a mutable copy back."""
    def quant(q):
        if not isinstance(q, Quant):
            return q
        return _seal(Quant(_frozen_array(q.scale), _frozen_array(q.zero_point), q.axis, q.block_size))

    def tensor(t):
        if not isinstance(t, TensorInfo):
            return t
        shape = tuple(t.shape) if isinstance(t.shape, (list, tuple)) else t.shape
        return _seal(TensorInfo(t.name, t.dtype, shape, quant(t.quant), _frozen_array(t.data)))

    def node(n):
        if not isinstance(n, Node):
            return n
        names = lambda v: FrozenList(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
        return _seal(Node(n.name, n.op, names(n.inputs), names(n.outputs), _frozen_value(n.attrs)))

    tensors = (FrozenDict({k: tensor(t) for k, t in graph.tensors.items()})
               if isinstance(graph.tensors, dict) else graph.tensors)
    nodes = FrozenList(node(n) for n in graph.nodes) if isinstance(graph.nodes, (list, tuple)) else graph.nodes
    inputs = FrozenList(graph.inputs) if isinstance(graph.inputs, (list, tuple)) else graph.inputs
    outputs = FrozenList(graph.outputs) if isinstance(graph.outputs, (list, tuple)) else graph.outputs
    return _seal(Graph(tensors, nodes, inputs, outputs, _frozen_value(graph.metadata)))
