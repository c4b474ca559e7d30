"""The importer's state: what each ONNX value has become, and how qnnref
nodes are emitted (names, layouts, constants).

Every ONNX value name is bound to one of:

* :class:`Tensor` -- a qnnref tensor in some layout ``perm``. With
  ``dequantized=True`` the ONNX value is the float32 *dequantization* of that
  integer tensor: a DequantizeLinear output that no qnnref node computes
  (yet). Operators that fuse DequantizeLinear -> op -> QuantizeLinear read the
  integers directly; data movement (Reshape, Transpose, MaxPool, ...) moves
  the integers and keeps the flag; a graph output or an unfused consumer gets
  a real ``dequantize`` node.
* :class:`Const` -- a value known at import time (initializer, Constant,
  folded subgraph). With ``quant`` set it is the dequantization of integer
  data (a DequantizeLinear of an initializer): a quantized weight.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..builder import GraphBuilder
from ..graph import Quant
from . import layout
from .reader import OnnxGraph, OnnxNode, OnnxQuant, Refused


@dataclass(frozen=True)
class Tensor:
    name: str                       # the qnnref tensor
    perm: tuple[int, ...]           # qnnref axis i holds ONNX axis perm[i]
    dequantized: bool = False       # the ONNX value is dequantize(this integer tensor)
    #: a *cast view*: the ONNX value is this integer tensor plus ``offset``,
    #: converted exactly to the ONNX type ``cast`` (a qnnref dtype name): what
    #: ``Cast`` of integers to a wider type (and ``Add`` of an integer constant)
    #: make. Data movement keeps it; ``Cast`` back to the tensor's dtype ends it.
    cast: str | None = None
    offset: int = 0


@dataclass(frozen=True, eq=False)
class Const:
    data: np.ndarray                # qnnref in-memory layout (int4 unpacked as int8)
    dtype: str                      # qnnref dtype name, or the numpy name for others (bool, ...)
    quant: OnnxQuant | None = None  # set: the ONNX value is dequantize(data)


Value = Tensor | Const


class Importer:
    """Emission helpers shared by the operator handlers."""

    def __init__(self, graph: OnnxGraph, profile: str, builder: GraphBuilder):
        self.onnx = graph
        self.profile = profile
        self.b = builder
        self.values: dict[str, Value] = {}
        self.bound: list[str] = []           # names in binding order: a refused node's are undone
        self.graph_outputs = set(graph.outputs)
        # every ONNX value name: generated names avoid them
        self.reserved = {n for node in graph.nodes for n in (*node.inputs, *node.outputs) if n}
        self.reserved |= set(graph.initializers) | {i.name for i in graph.inputs} | set(graph.outputs)
        self.consumers: dict[str, list[OnnxNode]] = {}
        for node in graph.nodes:
            for i in node.inputs:
                if i:
                    self.consumers.setdefault(i, []).append(node)
        self.skip: set[int] = set()          # nodes absorbed by a fusion
        self.tainted: set[str] = set()       # values computed from stand-ins of refused nodes
        self.inferred: dict | None = None    # ONNX shape inference, computed on the first refusal
        self.node_names: set[str] = set()
        self._transposed: dict[tuple, str] = {}
        #: MLAS's NCHWc block on the target CPU (import_onnx's mlas_nchwc_block; None: unknown)
        self.mlas_nchwc_block: int | None = None

    # -- values -------------------------------------------------------------------
    def value(self, name: str) -> Value:
        """The value bound to ``name``; Refused when the input is absent ("")."""
        if name not in self.values:
            raise Refused("a required input is absent" if not name else f"input {name!r} has no value")
        return self.values[name]

    def bind(self, name: str, value: Value) -> None:
        self.values[name] = value
        self.bound.append(name)

    def const(self, node: OnnxNode, i: int, what: str) -> np.ndarray | None:
        """The constant array at input ``i`` (None when the input is absent);
        Refused if it is computed at run time."""
        name = node.input(i)
        if not name:
            return None
        v = self.value(name)
        if not isinstance(v, Const) or v.quant is not None:
            raise Refused(f"{node.where()}: {what} ({name!r}) must be a constant")
        return v.data

    def const_ints(self, node: OnnxNode, i: int, what: str, required: bool = True) -> list[int] | None:
        """Constant input ``i`` as a list of Python ints (shapes, axes, pads,
        starts...): Refused unless it is an integer tensor (None when absent
        and not ``required``)."""
        data = self.const(node, i, what)
        if data is None:
            if required:
                raise Refused(f"{node.where()}: {what} (input {i}) is required")
            return None
        data = np.asarray(data)
        if data.dtype.kind not in "iu":
            raise Refused(f"{node.where()}: {what} must be integers, got {data.dtype}")
        return [int(x) for x in data.reshape(-1)]

    def const_dtype(self, node: OnnxNode, i: int) -> str | None:
        """The dtype of constant input ``i`` (None when absent)."""
        name = node.input(i)
        if not name:
            return None
        v = self.value(name)
        if not isinstance(v, Const):
            raise Refused(f"{node.where()}: input {i} ({name!r}) must be a constant")
        return v.dtype

    def info(self, t: Tensor | str):
        return self.b.tensors[t.name if isinstance(t, Tensor) else t]

    def shape(self, v: Value) -> tuple[int, ...]:
        """The ONNX shape of a value."""
        if isinstance(v, Const):
            return tuple(v.data.shape)
        return layout.onnx_shape(self.info(v).shape, v.perm)

    def dtype(self, v: Value) -> str:
        return v.dtype if isinstance(v, Const) else self.info(v).dtype

    def onnx_quant(self, t: Tensor) -> OnnxQuant | None:
        """The quantization of a run-time tensor, in ONNX terms."""
        info = self.info(t)
        if info.quant is None:
            return None
        return OnnxQuant.from_quant(info.dtype, info.quant, t.perm)

    # -- names --------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        """A tensor name used neither in the qnnref graph nor in the ONNX model."""
        name, i = base, 1
        while name in self.b.tensors or name in self.reserved:
            name = f"{base}_{i}"
            i += 1
        return name

    def out_name(self, onnx_name: str, perm=None, integer_view: bool = False) -> str:
        """The qnnref name of a new tensor holding ONNX value ``onnx_name``.

        The ONNX name itself when the tensor means the same thing (a permuted
        layout is recorded in the metadata); a derived name when it holds the
        integers of a dequantized float value (``integer_view``), or when the
        value is a graph output in a non-ONNX layout (the output keeps the name)."""
        if integer_view:
            return self.fresh(f"{onnx_name}_q")
        permuted = perm is not None and not layout.is_identity(perm)
        if permuted and onnx_name in self.graph_outputs:
            return self.fresh(f"{onnx_name}_nhwc")
        if onnx_name in self.b.tensors:
            return self.fresh(onnx_name)
        return onnx_name

    def node_name(self, base: str) -> str:
        name, i = base, 1
        while name in self.node_names:
            name = f"{base}_{i}"
            i += 1
        self.node_names.add(name)
        return name

    # -- emission -------------------------------------------------------------------
    def emit(self, op: str, inputs: list[str | None], attrs: dict | None, out: str,
             quant: Quant | None = None, node_name: str | None = None) -> str:
        """Add one qnnref node with a single output named ``out`` (quantized
        by ``quant``); attributes that are None are left out."""
        name = self.node_name(node_name or out)
        return self.b.node(op, inputs, {k: v for k, v in (attrs or {}).items() if v is not None},
                           name=name, output=out, **_quant_kwargs(quant))

    def constant(self, data: np.ndarray, dtype: str, quant: Quant | None, base: str) -> str:
        """Add a constant under a fresh name derived from ``base``."""
        return self.b.constant(self.fresh(base), data, dtype=dtype, **_quant_kwargs(quant))

    def materialize(self, t: Tensor, perm: tuple[int, ...]) -> str:
        """The name of a qnnref tensor holding ``t`` in layout ``perm``: ``t``
        itself, or a transpose of it (emitted once per tensor and layout)."""
        if tuple(t.perm) == tuple(perm):
            return t.name
        key = (t.name, tuple(t.perm), tuple(perm))      # one tensor may be seen in several layouts
        if key not in self._transposed:
            src_info = self.info(t)
            tperm = layout.transpose_between(t.perm, tuple(perm))
            q = src_info.quant
            if q is not None and q.axis is not None:
                onnx_q = OnnxQuant.from_quant(src_info.dtype, q, t.perm)
                q = onnx_q.to_quant(tuple(perm))
            suffix = "nchw" if layout.is_identity(perm) else "nhwc" if tuple(perm) == layout.nhwc(len(perm)) \
                else "t"
            out = self.fresh(f"{t.name}_{suffix}")
            self._transposed[key] = self.emit("transpose", [t.name], {"perm": list(tperm)}, out, q)
        return self._transposed[key]

    def onnx_layout(self, t: Tensor) -> str:
        """``t`` in ONNX's axis order."""
        return self.materialize(t, layout.identity(len(t.perm)))

    # -- look-ahead for fusions ------------------------------------------------------
    def single_consumer(self, name: str) -> OnnxNode | None:
        """The only node reading ``name``, if exactly one does and ``name`` is
        not a graph output (else None)."""
        users = self.consumers.get(name, [])
        if name in self.graph_outputs or len(users) != 1 or users[0].index in self.skip:
            return None
        return users[0]


def _quant_kwargs(q: Quant | None) -> dict:
    """GraphBuilder's keyword arguments for quantization ``q``."""
    if q is None:
        return {}
    return {"scale": q.scale, "zero_point": q.zero_point, "axis": q.axis, "block_size": q.block_size}
