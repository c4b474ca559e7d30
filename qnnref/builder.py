"""Build graphs in Python.

Example::

    b = GraphBuilder(profile="qnnref", description="one conv")
    x = b.input("x", "int8", (1, 8, 8, 1), scale=0.02, zero_point=-128)
    w = b.constant("w", w_int8, scale=w_scales, axis=0)        # per-channel
    y = b.node("conv2d", [x, w, bias], attrs={"strides": [1, 1]},
               scale=0.05, zero_point=-10, name="conv1")
    b.output(y)
    model = b.build()           # a validated qnnref.Model
    qnnref.save(b.graph(), "one_conv.qnn")

Each ``node`` call infers the output dtype and shape from the operator and
validates the node at once, so a mistake is reported where it is made.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import batch as _batch
from . import dtypes
from .errors import ValidationError
from .graph import Graph, Node, Quant, TensorInfo, leading_symbol
from .ops import get_op
from .ops.registry import make_context
from .profiles import DEFAULT_PROFILE, get_profile


def make_quant(dtype: str, scale=None, zero_point=None, axis=None, block_size=None) -> Quant | None:
    """A Quant from plain values: ``scale`` as a float or array (stored as
    float32 unless already float16), ``zero_point`` as an int or array
    (stored in the dtype's in-memory numpy type; ``None`` = symmetric)."""
    if scale is None:
        if zero_point is not None:
            raise ValidationError("a zero point needs a scale")
        return None
    s = np.asarray(scale)
    s = s if s.dtype == np.float16 else s.astype(np.float32)
    zp = None
    if zero_point is not None:
        dt = dtypes.get(dtype)
        z = np.asarray(zero_point)
        if z.size and (z.min() < dt.min or z.max() > dt.max):
            raise ValidationError(f"zero point out of the {dtype} range")
        zp = np.broadcast_to(z, s.shape).astype(dt.numpy).copy()
    return Quant(s, zp, axis, block_size)


class GraphBuilder:
    def __init__(self, profile: str = DEFAULT_PROFILE, description: str = "", **metadata: Any):
        self._profile = get_profile(profile, "GraphBuilder")
        self.tensors: dict[str, TensorInfo] = {}
        self.nodes: list[Node] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.metadata: dict[str, Any] = {"profile": profile, "description": description, **metadata}

    # -- naming -----------------------------------------------------------------
    def _fresh(self, base: str) -> str:
        if base not in self.tensors:
            return base
        i = 1
        while f"{base}_{i}" in self.tensors:
            i += 1
        return f"{base}_{i}"

    def _add(self, t: TensorInfo) -> str:
        if t.name in self.tensors:
            raise ValidationError(f"tensor {t.name!r} already exists")
        if not isinstance(t.name, str) or not t.name:
            raise ValidationError("tensor names must be non-empty strings")
        t.check(f"tensor {t.name!r}")
        self.tensors[t.name] = t
        return t.name

    # -- tensors ------------------------------------------------------------------
    def input(self, name: str, dtype: str, shape, scale=None, zero_point=None, axis=None,
              block_size=None) -> str:
        """Declare a graph input; returns its name. A shape whose first entry
        is a name, e.g. ``("N", 8, 8, 1)``, declares a symbolic batch: the
        model then runs at any batch size (one symbol per model)."""
        shape = tuple(int(d) if isinstance(d, (int, np.integer)) and not isinstance(d, bool) else d
                      for d in shape)
        t = TensorInfo(name, dtype, shape, make_quant(dtype, scale, zero_point, axis, block_size))
        self._add(t)
        self.inputs.append(name)
        return name

    def constant(self, name: str, data: np.ndarray, dtype: str | None = None, scale=None,
                 zero_point=None, axis=None, block_size=None) -> str:
        """Add a constant tensor (weights, bias, table, shape, ...). ``dtype``
        defaults to the array's; for int4/uint4 pass the unpacked int8/uint8
        array and ``dtype="int4"``/``"uint4"``."""
        data = np.asarray(data)
        if dtype is None:
            dtype = {np.dtype(d.numpy): n for n, d in reversed(dtypes.DTYPES.items())
                     if d.bits != 4}.get(data.dtype)
            if dtype is None:
                raise ValidationError(f"constant {name!r}: unsupported numpy dtype {data.dtype}")
        dt = dtypes.get(dtype, f"constant {name!r}")
        if not dtypes.check_array(data, dt):
            raise ValidationError(f"constant {name!r}: data must be {dt.numpy} values in the {dtype} range")
        data = np.ascontiguousarray(data)
        t = TensorInfo(self._fresh(name), dtype, tuple(data.shape),
                       make_quant(dtype, scale, zero_point, axis, block_size), data)
        return self._add(t)

    def node(self, op: str, inputs: list[str | None], attrs: dict | None = None, *,
             name: str | None = None, output: str | None = None, scale=None, zero_point=None,
             axis=None, block_size=None, outputs: list[str] | None = None) -> str | list[str]:
        """Add a node; returns its output name (or names, for multi-output ops).

        The output's dtype and shape are inferred; its quantization is given
        by ``scale``/``zero_point``/``axis``/``block_size`` (single-output ops)."""
        opdef = get_op(op, f"node {name or op!r}")
        node_name = name or self._fresh_node(op)
        n_out = len(opdef.outputs)
        out_names = outputs or ([output] if output else [None] * n_out)
        out_names = [o or self._fresh(f"{node_name}_out{'' if n_out == 1 else i}") for i, o in enumerate(out_names)]
        node = Node(node_name, op, [i or "" for i in inputs], out_names, dict(attrs or {}))
        for i in node.inputs:
            if i and i not in self.tensors:
                raise ValidationError(f"node {node_name!r}: input {i!r} does not exist")
        inferred = _batch.infer_outputs(opdef, node, self.tensors, self._profile, make_context)
        for (dtype, shape), oname in zip(inferred, out_names):
            q = make_quant(dtype, scale, zero_point, axis, block_size) if n_out == 1 else None
            self._add(TensorInfo(oname, dtype, tuple(shape), q))
        try:
            view = self.tensors
            names = [n for n in (*node.inputs, *out_names) if n]
            if any(leading_symbol(self.tensors[n].shape) for n in names):
                # prepared as at batch 1 (the node's own tensors, the symbol replaced by 1)
                view = _batch.instantiate(Graph({n: self.tensors[n] for n in names}, [], [], [], {}), 1).tensors
            ctx = make_context(node, view, self._profile)
            opdef.prepare(ctx)
        except Exception:
            for oname in out_names:
                self.tensors.pop(oname, None)
            raise
        self.nodes.append(node)
        return out_names[0] if n_out == 1 else out_names

    def _fresh_node(self, op: str) -> str:
        used = {n.name for n in self.nodes}
        i = len(self.nodes)
        while f"{op}_{i}" in used:
            i += 1
        return f"{op}_{i}"

    def output(self, *names: str) -> None:
        for n in names:
            if n not in self.tensors:
                raise ValidationError(f"output {n!r} does not exist")
            self.outputs.append(n)

    # -- results --------------------------------------------------------------------
    def graph(self) -> Graph:
        g = Graph(dict(self.tensors), list(self.nodes), list(self.inputs), list(self.outputs),
                  dict(self.metadata))
        g.check_structure("GraphBuilder")
        return g

    def build(self, **options):
        """A validated, runnable ``qnnref.Model`` of the graph so far.
        ``options``: ``backend``, ``isa``, ``threads`` (as for ``qnnref.load``)."""
        from .interpreter import Model
        return Model(self.graph(), **options)
