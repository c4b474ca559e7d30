"""The symbolic batch: a model whose leading dimension is left open.

spec/format.md ("Symbolic batch") is the contract. In brief: the first entry
of a computed tensor's shape may be a name such as ``"N"`` instead of a
length, one name per model. Such a model is validated at batch 1 when it is
loaded (and at batch 2, to check that every shape follows the batch as the
file declares), and runs at any batch ``n >= 1``: :func:`instantiate` gives
the concrete graph at ``n`` (every ``"N"`` replaced by ``n``), which the
interpreter validates and prepares once per batch size, before allocating
anything.

Every item of a batch must get the same bits as when it runs alone (batch 1).
:func:`check_per_item` refuses, at load time, the nodes that would mix the
items of a batch: reductions and normalizations over axis 0, gathers along
it, reshapes that fold it into other dimensions, a dynamic quantization
whose scale is computed over the whole tensor, ...
"""
from __future__ import annotations

from .errors import ValidationError
from .graph import Graph, Node, TensorInfo, check_symbolic, leading_symbol

#: the symbol the ONNX importer and the builder use when none is given
DEFAULT_SYMBOL = "N"


def concrete_shape(shape, batch: int) -> tuple[int, ...]:
    """``shape`` with its batch symbol (if any) replaced by ``batch``."""
    return tuple(batch if isinstance(d, str) else d for d in shape)


def symbolic_names(graph: Graph) -> set[str]:
    """Names of the tensors whose leading dimension is the batch symbol."""
    return {name for name, t in graph.tensors.items() if leading_symbol(t.shape) is not None}


def model_symbol(graph: Graph, where: str = "model") -> str | None:
    """The model's batch symbol, None for a static model. ValidationError
    when tensors use two symbols, a symbol anywhere but the leading
    dimension, a constant or batch-wise quantization carries one, or no
    graph input carries it."""
    symbol = None
    for name, t in graph.tensors.items():
        shape = t.shape if isinstance(t.shape, (tuple, list)) else ()
        if any(isinstance(d, str) for d in shape[1:]):
            raise ValidationError(f"{where}: tensor {name!r}: shape must be a tuple of integers, only the "
                                  f"leading dimension may be a batch symbol; got {list(shape)}")
        s = leading_symbol(shape)
        if s is None:
            continue
        check_symbolic(t, s, f"{where}: tensor {name!r}")
        if symbol is None:
            symbol = s
        elif s != symbol:
            raise ValidationError(f"{where}: tensor {name!r} uses the batch symbol {s!r}, another tensor "
                                  f"{symbol!r}: a model has one symbolic batch")
    if symbol is not None and not any(leading_symbol(graph.tensors[i].shape) for i in graph.inputs):
        raise ValidationError(f"{where}: tensors have the symbolic batch {symbol!r}, but no graph input does")
    return symbol


def _reshape_attrs(node: Node, symbolic: set[str], batch: int) -> dict:
    """A reshape of a batched tensor: the leading entry of its ``shape``
    attribute (1 or -1 in the file) stands for the batch."""
    attrs = node.attrs
    shape = attrs.get("shape") if isinstance(attrs, dict) else None
    if (node.op != "reshape" or not node.inputs or node.inputs[0] not in symbolic
            or not isinstance(shape, (list, tuple)) or not shape or shape[0] not in (1, -1)):
        return attrs
    return {**attrs, "shape": [batch, *shape[1:]]}


def instantiate(graph: Graph, batch: int, symbolic: set[str] | None = None) -> Graph:
    """The concrete graph of a symbolic one at ``batch``. Tensors without the
    symbol, constants included, are shared, not copied."""
    symbolic = symbolic_names(graph) if symbolic is None else symbolic
    tensors = {}
    for name, t in graph.tensors.items():
        if name in symbolic:
            t = TensorInfo(t.name, t.dtype, concrete_shape(t.shape, batch), t.quant, t.data)
        tensors[name] = t
    nodes = [n if n.op != "reshape" else Node(n.name, n.op, n.inputs, n.outputs,
                                              _reshape_attrs(n, symbolic, batch))
             for n in graph.nodes]
    return Graph(tensors, nodes, graph.inputs, graph.outputs, graph.metadata)


def _axis(value, rank: int) -> int | None:
    """``value`` as an axis in [0, rank), None when it is not one."""
    return value % rank if isinstance(value, int) and rank and -rank <= value < rank else None


def check_per_item(graph: Graph, contexts, where: str = "model") -> None:
    """ValidationError for a node that would mix the items of a batch (so an
    item would not get the bits it gets alone); ``contexts`` are the batch-1
    node contexts, in graph order."""
    symbolic = symbolic_names(graph)
    for ctx, node in zip(contexts, graph.nodes):     # the file's nodes (their attributes as written)
        batched = [i for i in node.inputs if i in symbolic]
        if not batched:
            continue
        why = _mixes_items(ctx, node, symbolic)
        if why is None and not all(o in symbolic for o in node.outputs):
            static = [o for o in node.outputs if o not in symbolic]
            why = (f"it reads the batched {batched[0]!r} but its output {static[0]!r} has no batch "
                   f"dimension ({list(graph.tensors[static[0]].shape)})")
        if why:
            raise ValidationError(f"{where}: {ctx.where()}: {why}; a model with a symbolic batch must "
                                  "compute every item on its own (spec/format.md, \"Symbolic batch\")")


def _mixes_items(ctx, node: Node, symbolic: set[str]) -> str | None:
    op, a = node.op, {**ctx.attrs, **node.attrs}
    x = ctx.inputs[0]
    rank = len(x.shape) if x is not None else 0
    x_batched = bool(node.inputs) and node.inputs[0] in symbolic
    if op in ("softmax", "float_softmax") and x_batched and _axis(a.get("axis"), rank) == 0:
        return f"its axis {a.get('axis')} is the batch axis"
    if op == "concat" and any(i in symbolic for i in node.inputs) and _axis(a.get("axis"), rank) == 0:
        return "it concatenates along the batch axis"
    if op == "gather" and x_batched and _axis(a.get("axis"), rank) == 0:
        return "it gathers along the batch axis"
    if op in ("mean", "float_mean") and x_batched and any(
            _axis(v, rank) == 0 for v in a.get("axes") or ()):
        return f"its axes {list(a.get('axes'))} include the batch axis"
    if op == "transpose" and x_batched and list(a.get("perm") or [0])[0] != 0:
        return f"its perm {list(a.get('perm'))} moves the batch axis"
    if op == "pad" and x_batched and rank and (a["pads"][0] or a["pads"][rank]):
        return f"its pads {list(a['pads'])} pad the batch axis"
    if op == "reshape" and x_batched:
        shape = list(a.get("shape") or [])
        if not shape or shape[0] not in (1, -1) or node.outputs[0] not in symbolic:
            return (f"its shape {shape} folds the batch into other dimensions (with a symbolic batch, "
                    "the output keeps it: the shape attribute starts with 1 or -1, which stands for the batch)")
    if op in ("matmul", "float_matmul"):
        b_batched = len(node.inputs) > 1 and node.inputs[1] in symbolic
        if (x_batched and rank < 2) or (b_batched and len(ctx.inputs[1].shape) < 3):
            return "it contracts over the batch axis"
    if op == "dynamic_quantize":
        return "it computes one scale from all items of the batch"
    return None


def infer_outputs(opdef, node: Node, tensors: dict, profile, make_context) -> list[tuple[str, tuple]]:
    """The outputs' (dtype, shape) of a node reading tensors with a symbolic
    batch, for the builder: inferred at batch 1 and at batch 2; an output
    whose leading dimension follows the batch gets the symbol."""
    symbolic = {n for n in node.inputs if n and leading_symbol(tensors[n].shape) is not None}
    if not symbolic:
        ctx = make_context(node, tensors, profile, with_outputs=False)
        return opdef.infer(ctx)
    symbol = leading_symbol(tensors[next(iter(symbolic))].shape)
    results = []
    for batch in (1, 2):
        view = {n: tensors[n] for n in node.inputs if n}      # the node's inputs, at this batch
        for n in symbolic:
            t = tensors[n]
            view[n] = TensorInfo(t.name, t.dtype, concrete_shape(t.shape, batch), t.quant, t.data)
        concrete = Node(node.name, node.op, node.inputs, node.outputs, _reshape_attrs(node, symbolic, batch))
        results.append(opdef.infer(make_context(concrete, view, profile, with_outputs=False)))
    out = []
    for (dtype, s1), (_, s2) in zip(*results):
        s1, s2 = tuple(s1), tuple(s2)
        if s1 == s2:
            out.append((dtype, s1))
        elif s1 and s2 and (s1[0], s2[0]) == (1, 2) and s1[1:] == s2[1:]:
            out.append((dtype, (symbol, *s1[1:])))
        else:
            raise ValidationError(f"node {node.name!r} ({node.op}): its output shape {list(s1)} at batch 1 "
                                  f"becomes {list(s2)} at batch 2: only a leading batch dimension can be "
                                  "symbolic")
    return out
