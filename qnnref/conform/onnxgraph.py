"""Small helpers around the ``onnx`` package for the conformance harness.

* :class:`OnnxGraph` builds a one-graph ONNX model with named nodes (the
  suite's cases are written with it);
* :func:`tensor_elem_types` finds the element type of every tensor of a
  model, including the outputs of the ``com.microsoft`` operators that
  ``onnx.shape_inference`` does not know;
* :func:`with_intermediate_outputs` exposes integer intermediate tensors as
  extra graph outputs, so ONNX Runtime returns them (the diagnosis compares
  them with qnnref's).

Only this module and the worker touch ``onnx`` protobufs in detail.
"""
from __future__ import annotations

import numpy as np

#: dtype names used across the harness -> ONNX TensorProto element types
_ELEM = {
    "float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7,
    "bool": 9, "float16": 10, "float64": 11, "uint32": 12, "uint64": 13,
    "uint4": 21, "int4": 22,
}
_NAME = {v: k for k, v in _ELEM.items()}

#: integer element types whose tensors ONNX Runtime can return to Python
FETCHABLE_INTEGER = {"uint8", "int8", "uint16", "int16", "int32", "int64"}

MS_DOMAIN = "com.microsoft"


def elem_type(dtype: str) -> int:
    return _ELEM[dtype]


def dtype_name(elem: int) -> str:
    return _NAME.get(elem, f"elem{elem}")


class OnnxGraph:
    """Build a model: ``input``, ``const``, ``node``, ``output``, then ``model_bytes``."""

    def __init__(self, name: str = "case", opset: int = 21):
        self.name = name
        self.opset = opset
        self.nodes: list = []
        self.inputs: list = []
        self.outputs: list = []
        self.initializers: list = []
        self.uses_ms = False
        self._count: dict[str, int] = {}

    def input(self, name: str, dtype: str, shape) -> str:
        from onnx import helper
        self.inputs.append(helper.make_tensor_value_info(name, elem_type(dtype), list(shape)))
        return name

    def const(self, name: str, values, dtype: str) -> str:
        """An initializer holding ``values`` (any array-like) as ``dtype``
        (4-bit types are packed by onnx.helper)."""
        from onnx import helper
        arr = np.asarray(values)
        if dtype in ("int4", "uint4"):
            t = helper.make_tensor(name, elem_type(dtype), list(arr.shape),
                                   arr.astype(np.int64).ravel().tolist())
        else:
            from onnx import numpy_helper
            t = numpy_helper.from_array(arr.astype(np.dtype(dtype)), name)
        self.initializers.append(t)
        return name

    def qparams(self, base: str, scale, zero_point, dtype: str) -> None:
        """Initializers ``{base}_scale`` (float32) and ``{base}_zero_point`` (``dtype``)."""
        self.const(f"{base}_scale", scale, "float32")
        self.const(f"{base}_zero_point", zero_point, dtype)

    def node(self, op: str, inputs, outputs, *, name: str | None = None, domain: str = "",
             **attrs) -> list[str]:
        from onnx import helper
        if domain == MS_DOMAIN:
            self.uses_ms = True
        if name is None:
            k = self._count.get(op, 0) + 1
            self._count[op] = k
            name = f"{op.lower()}_{k}"
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        self.nodes.append(helper.make_node(op, list(inputs), outputs, name=name, domain=domain,
                                           **attrs))
        return outputs

    def output(self, name: str, dtype: str, shape=None) -> None:
        from onnx import helper
        self.outputs.append(helper.make_tensor_value_info(
            name, elem_type(dtype), None if shape is None else list(shape)))

    def model_bytes(self) -> bytes:
        from onnx import helper
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        if self.uses_ms:
            opsets.append(helper.make_opsetid(MS_DOMAIN, 1))
        model = helper.make_model(graph, opset_imports=opsets, producer_name="qnnref-conform")
        model.ir_version = 10          # what onnxruntime 1.17+ reads, with opset <= 21
        return model.SerializeToString()


# ---------------------------------------------------------------------------
# Element types of every tensor
# ---------------------------------------------------------------------------

#: operators whose (first) output has the element type of one of their inputs
#: (the index of that input); QLinear* outputs take the type of the output zero point
_SAME_AS_INPUT = {
    "Transpose": 0, "Reshape": 0, "Flatten": 0, "Squeeze": 0, "Unsqueeze": 0, "Identity": 0,
    "MaxPool": 0, "Relu": 0, "Clip": 0, "Concat": 0, "Slice": 0, "Gather": 0, "Pad": 0,
    "Split": 0, "Tile": 0, "Expand": 0, "DepthToSpace": 0, "SpaceToDepth": 0, "Resize": 0,
    "Add": 0, "Mul": 0, "Sub": 0, "Max": 0, "Min": 0, "Softmax": 0, "Sigmoid": 0,
    "LeakyRelu": 0, "Conv": 0, "MatMul": 0, "Gemm": 0, "AveragePool": 0, "GlobalAveragePool": 0,
    "QLinearConv": 7, "QLinearMatMul": 7, "QLinearAdd": 7, "QLinearMul": 7,
    "QLinearSigmoid": 4, "QLinearLeakyRelu": 4, "QLinearAveragePool": 4,
    "QLinearGlobalAveragePool": 4, "QLinearConcat": 1, "QGemm": 8,
}


def tensor_elem_types(model) -> dict[str, int]:
    """Element type of every named tensor of ``model`` (an onnx.ModelProto)
    that can be found: graph inputs/outputs, initializers, value_info, the
    standard operators through onnx.shape_inference, and the com.microsoft
    operators by their typing rules (their output has the type of their
    output zero point)."""
    import onnx
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:               # a contrib op it cannot type: use the rules below
        inferred = model
    g = inferred.graph
    types: dict[str, int] = {}
    for vi in [*g.input, *g.output, *g.value_info]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    for t in g.initializer:
        types[t.name] = t.data_type
    for node in g.node:              # topological order (an ONNX requirement)
        outs = [o for o in node.output if o and o not in types]
        if not outs:
            continue
        t = _node_output_type(node, types)
        if t:
            for o in outs:
                types[o] = t
    return types


def _node_output_type(node, types: dict[str, int]) -> int | None:
    op = node.op_type
    attrs = {a.name: a for a in node.attribute}
    if op in ("MatMulInteger", "ConvInteger"):
        return elem_type("int32")
    if op == "DequantizeLinear":
        return elem_type("float32")
    if op == "DynamicQuantizeLinear":
        return elem_type("uint8")
    if op == "QuantizeLinear":
        if "output_dtype" in attrs and attrs["output_dtype"].i:
            return attrs["output_dtype"].i
        if len(node.input) > 2 and node.input[2]:
            return types.get(node.input[2])
        return elem_type("uint8")
    if op == "QGemm" and (len(node.input) < 9 or not node.input[8]):
        return elem_type("float32")          # no y_zero_point and no y_scale: float output
    if op in ("Cast",) and "to" in attrs:
        return attrs["to"].i
    k = _SAME_AS_INPUT.get(op)
    if k is not None and k < len(node.input):
        return types.get(node.input[k])
    return None


def with_intermediate_outputs(model_bytes: bytes) -> tuple[bytes, list[str]]:
    """The model with every integer-typed node output that is not already a
    graph output added as a graph output (name kept). Returns the new
    serialized model and the added names (empty: nothing to add).

    Float intermediates are never exposed: in a QDQ graph they sit inside the
    DequantizeLinear -> op -> QuantizeLinear patterns that ONNX Runtime fuses,
    and making them graph outputs would stop the fusion (and change what is
    computed)."""
    import onnx
    from onnx import helper
    model = onnx.load_from_string(model_bytes)
    types = tensor_elem_types(model)
    present = {o.name for o in model.graph.output}
    added = []
    for node in model.graph.node:
        for o in node.output:
            if not o or o in present or o in added:
                continue
            if dtype_name(types.get(o, 0)) in FETCHABLE_INTEGER:
                added.append(o)
    if not added:
        return model_bytes, []
    for name in added:
        model.graph.output.append(helper.make_tensor_value_info(name, types[name], None))
    return model.SerializeToString(), added


def node_table(model) -> list[dict]:
    """The graph's nodes in order: ``{"name", "op", "domain", "inputs", "outputs"}``
    (a node without a name gets ``op#index``)."""
    rows = []
    for i, n in enumerate(model.graph.node):
        rows.append({"name": n.name or f"{n.op_type}#{i}", "op": n.op_type, "domain": n.domain,
                     "inputs": list(n.input), "outputs": list(n.output)})
    return rows


def initializer_arrays(model) -> dict[str, np.ndarray]:
    """Initializers as numpy arrays (4-bit types widened to int8 / uint8)."""
    from onnx import numpy_helper
    out = {}
    for t in model.graph.initializer:
        a = numpy_helper.to_array(t)
        if t.data_type == elem_type("int4"):
            a = a.astype(np.int8)
        elif t.data_type == elem_type("uint4"):
            a = a.astype(np.uint8)
        out[t.name] = a
    return out


def dequantize_steps(model) -> dict[str, np.ndarray]:
    """For each graph output computed by a DequantizeLinear with a constant
    per-tensor or per-axis scale: that scale, shaped to broadcast against the
    output (one step of the output's grid)."""
    inits = initializer_arrays(model)
    outputs = {o.name: o for o in model.graph.output}
    steps = {}
    for n in model.graph.node:
        if n.op_type != "DequantizeLinear" or n.output[0] not in outputs or len(n.input) < 2:
            continue
        scale = inits.get(n.input[1])
        if scale is None:
            continue
        scale = np.asarray(scale, np.float64)
        attrs = {a.name: a.i for a in n.attribute}
        if attrs.get("block_size"):
            continue                   # blocked: not a broadcast
        if scale.ndim == 0 or scale.size == 1:
            steps[n.output[0]] = scale.reshape(())
            continue
        dims = outputs[n.output[0]].type.tensor_type.shape.dim
        rank = len(dims)
        if rank == 0:
            continue
        axis = attrs.get("axis", 1) % rank
        shape = [1] * rank
        shape[axis] = scale.size
        steps[n.output[0]] = scale.reshape(shape)
    return steps
