"""A symbolic batch in ONNX import (spec/onnx-import.md, "Symbolic batch").

An ONNX graph input whose leading dimension is symbolic (a ``dim_param``
such as ``"N"``, or no value) and whose other dimensions are fixed keeps its
symbolic batch: the model is imported at batch 1 and at batch 2, and the two
graphs are compared tensor by tensor. A tensor whose leading dimension is 1
in one and 2 in the other gets the symbol; everything else (every other
dimension, every constant, every attribute but a reshape's leading entry)
must be the same in both, else the batch reaches something a qnnref model
cannot leave open, and the import is refused with the tensor or node named
(``input_shapes`` then fixes the batch).
"""
from __future__ import annotations

import numpy as np

from ..batch import DEFAULT_SYMBOL
from ..errors import ValidationError
from ..graph import SYMBOL_PATTERN, Graph, Node, TensorInfo


def _dims(value_info) -> list | None:
    tt = value_info.type.tensor_type
    if not tt.HasField("shape"):
        return None
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param if d.HasField("dim_param") else None)
    return dims


def batch_inputs(proto, input_shapes: dict | None, constants: dict | None) -> dict[str, tuple]:
    """The graph inputs that keep a symbolic batch: name -> their shape after
    the leading dimension. Inputs given in ``input_shapes`` or ``constants``,
    initializers, and inputs with other symbolic dimensions are left out (the
    importer fixes or refuses those as before)."""
    skip = set(input_shapes or {}) | set(constants or {}) | {t.name for t in proto.graph.initializer}
    found = {}
    for vi in proto.graph.input:
        if vi.name in skip:
            continue
        dims = _dims(vi)
        if not dims or isinstance(dims[0], int) or any(not isinstance(d, int) for d in dims[1:]):
            continue
        found[vi.name] = (dims[0], tuple(dims[1:]))
    return found


def _symbol(found: dict) -> str:
    names = {p for p, _ in found.values() if p}
    if len(names) > 1:
        raise ValidationError(f"import_onnx: graph inputs have different symbolic batches {sorted(names)}; "
                              "a qnnref model has one: pass input_shapes to fix them")
    name = next(iter(names), None)
    return name if name and SYMBOL_PATTERN.fullmatch(name) else DEFAULT_SYMBOL


def _same_array(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def _same_quant(q1, q2) -> bool:
    if q1 is None or q2 is None:
        return q1 is None and q2 is None
    return (q1.axis == q2.axis and q1.block_size == q2.block_size and _same_array(q1.scale, q2.scale)
            and _same_array(q1.zero_point, q2.zero_point))


def _tensor(t1: TensorInfo, t2: TensorInfo, symbol: str) -> TensorInfo:
    where = f"import_onnx: tensor {t1.name!r}"
    if t1.dtype != t2.dtype or not _same_quant(t1.quant, t2.quant):
        raise ValidationError(f"{where}: its type or quantization depends on the batch size")
    if t1.is_constant or t2.is_constant:
        if not _same_array(t1.data, t2.data):
            raise ValidationError(f"{where}: this constant depends on the batch size "
                                  f"({t1.dtype}{list(t1.shape)} at batch 1, {list(t2.shape)} at batch 2); "
                                  "pass input_shapes to fix the batch")
        return t1
    s1, s2 = tuple(t1.shape), tuple(t2.shape)
    if s1 == s2:
        return t1
    if s1 and s2 and (s1[0], s2[0]) == (1, 2) and s1[1:] == s2[1:]:
        return TensorInfo(t1.name, t1.dtype, (symbol, *s1[1:]), t1.quant, None)
    raise ValidationError(f"{where}: shape {list(s1)} at batch 1 but {list(s2)} at batch 2: the batch is "
                          "not its leading dimension (a reshape folds it, or a layout change moves it); "
                          "pass input_shapes to fix the batch")


def _node(n1: Node, n2: Node) -> Node:
    if (n1.name, n1.op, list(n1.inputs), list(n1.outputs)) != (n2.name, n2.op, list(n2.inputs), list(n2.outputs)):
        raise ValidationError(f"import_onnx: node {n1.name!r}: the imported graph depends on the batch size; "
                              "pass input_shapes to fix the batch")
    a1, a2 = dict(n1.attrs), dict(n2.attrs)
    if n1.op == "reshape" and isinstance(a1.get("shape"), list) and isinstance(a2.get("shape"), list):
        s1, s2 = a1["shape"], a2["shape"]
        if len(s1) == len(s2) and s1[1:] == s2[1:] and (s1[:1], s2[:1]) in (([1], [2]), ([-1], [-1])):
            a2 = {**a2, "shape": s1}
    if a1 != a2:
        changed = sorted(k for k in set(a1) | set(a2) if a1.get(k) != a2.get(k))
        raise ValidationError(f"import_onnx: node {n1.name!r} ({n1.op}): attribute(s) {changed} depend on the "
                              "batch size; pass input_shapes to fix the batch")
    return Node(n1.name, n1.op, list(n1.inputs), list(n1.outputs), a1)


def import_with_batch(import_static, proto, profile: str, input_shapes: dict | None,
                      constants: dict | None, found: dict):
    """Import ``proto`` keeping the symbolic batch of the inputs ``found``
    (see :func:`batch_inputs`): a Model whose batched shapes start with the symbol."""
    from ..interpreter import Model
    symbol = _symbol(found)
    models = []
    for n in (1, 2):
        shapes = dict(input_shapes or {})
        shapes.update({name: (n, *rest) for name, (_, rest) in found.items()})
        try:
            models.append(import_static(proto, profile, shapes, constants))
        except ValidationError as e:
            if n == 1:
                raise
            fixed = ", ".join(f"{name!r}: {(1, *rest)}" for name, (_, rest) in found.items())
            raise ValidationError(f"import_onnx: the symbolic batch {symbol!r} cannot be kept: at batch 2, {e}; "
                                  f"pass input_shapes={{{fixed}}} to fix the batch") from None
    g1, g2 = models[0].graph, models[1].graph
    if set(g1.tensors) != set(g2.tensors) or len(g1.nodes) != len(g2.nodes) \
            or list(g1.inputs) != list(g2.inputs) or list(g1.outputs) != list(g2.outputs):
        raise ValidationError("import_onnx: the imported graph depends on the batch size (other tensors or "
                              "nodes at batch 2 than at batch 1); pass input_shapes to fix the batch")
    tensors = {name: _tensor(t, g2.tensors[name], symbol) for name, t in g1.tensors.items()}
    nodes = [_node(a, b) for a, b in zip(g1.nodes, g2.nodes)]
    graph = Graph(tensors, nodes, list(g1.inputs), list(g1.outputs), g1.copy().metadata)
    m = models[0]
    try:
        return Model(graph, backend=m.backend, isa=m.isa, threads=m.threads)
    except ValidationError as e:
        raise ValidationError(f"import_onnx: the symbolic batch {symbol!r} cannot be kept: {e}; pass "
                              "input_shapes to fix the batch") from None
