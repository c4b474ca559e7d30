"""ONNX -> qnnref: the driver.

1. Read the model (:mod:`.reader`); declare the graph inputs (an integer
   input takes the quantization its first quantized consumer states).
2. Walk the nodes in their (topological) order. A node whose inputs are all
   constants is folded (QuantizeLinear with the profile's quantize recipe,
   the rest with ``onnx.reference``); every other node goes to the handler
   registered for its operator (:mod:`.qdq`, :mod:`.qoperator`,
   :mod:`.movement`, :mod:`.selection`, :mod:`.activations`), which emits
   qnnref nodes through the helpers of :mod:`.context` and :mod:`.compute`.
3. Give every graph output its ONNX name, layout and type (a dequantized
   value gets a ``dequantize`` node).
4. If any node could not be imported, raise one ValidationError listing all
   of them; else return the validated qnnref Model.
"""
from __future__ import annotations

import functools
import json
from collections import deque

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper

from .. import dtypes
from ..builder import GraphBuilder
from ..errors import QnnError, ValidationError
from ..graph import Quant
from ..interpreter import Model
from ..profiles import get_profile
from . import layout, symbolic
from .context import Const, Importer, Tensor
from .quantparams import input_slots, qdq_quant, triple_quant
from .reader import (OnnxNode, Refused, make_onnx_quant, numpy_dtype_name, qnnref_dtype, read_model, tensor_to_numpy,
                     to_numpy)
from .registry import FLOAT_OPS, HANDLERS
from . import activations, movement, qdq, qoperator, selection  # noqa: F401  (register the handlers)
from . import floatops  # noqa: F401,E402  (last: routes some operators to float32 when no integer form applies)

#: movement operators through which an integer graph input's quantization is looked for
_PASS_THROUGH = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "MaxPool", "Relu", "Clip",
                 "Pad", "Gather", "Concat", "DepthToSpace"}


def load_model(model_or_path) -> onnx.ModelProto:
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    if isinstance(model_or_path, (bytes, bytearray)):
        try:
            return onnx.load_from_string(bytes(model_or_path))
        except DecodeError as e:
            raise ValidationError(f"ONNX import: the bytes are not a readable ONNX model ({e})") from None
    try:
        return onnx.load(str(model_or_path))
    except FileNotFoundError:
        raise ValidationError(f"{model_or_path}: no such file") from None
    except Exception as e:               # protobuf decode errors and the like
        raise ValidationError(f"{model_or_path}: not a readable ONNX model ({e})") from None


def import_model(model_or_path, profile: str, input_shapes: dict | None = None,
                 constants: dict | None = None, mlas_nchwc_block: int | None = None) -> Model:
    """The importer; every problem of the model is a qnnref error. Anything
    else is a bug in qnnref, reported as one (the fuzzers fail on it)."""
    try:
        return _import_model(model_or_path, profile, input_shapes, constants, mlas_nchwc_block)
    except QnnError:
        raise
    except Exception as e:               # a backstop, not an answer: tests/fuzz counts it as a failure
        raise QnnError(f"ONNX import: internal error: please report ({type(e).__name__}: {e})") from e


def _import_model(model_or_path, profile: str, input_shapes: dict | None, constants: dict | None,
                  mlas_nchwc_block: int | None) -> Model:
    proto = load_model(model_or_path)
    if mlas_nchwc_block is not None and (isinstance(mlas_nchwc_block, bool) or mlas_nchwc_block not in (0, 8, 16)):
        raise ValidationError(f"import_onnx: mlas_nchwc_block must be 0, 8 or 16 (MLAS's NCHWc block: none, "
                              f"AVX2/FMA3, AVX-512F), got {mlas_nchwc_block!r}")
    static = functools.partial(_import_static, mlas_nchwc_block=mlas_nchwc_block)
    found = symbolic.batch_inputs(proto, input_shapes, constants)
    if found:       # a symbolic batch is kept (qnnref/onnx/symbolic.py)
        get_profile(profile, "import_onnx")
        return symbolic.import_with_batch(static, proto, profile, input_shapes, constants, found)
    return static(proto, profile, input_shapes, constants)


def _import_static(proto, profile: str, input_shapes: dict | None = None,
                   constants: dict | None = None, mlas_nchwc_block: int | None = None) -> Model:
    get_profile(profile, "import_onnx")
    try:
        graph = read_model(proto)
    except Refused as e:
        raise ValidationError(f"ONNX import: {e}") from None
    b = GraphBuilder(profile=profile, description=proto.doc_string or proto.graph.doc_string or "")
    imp = Importer(graph, profile, b)
    imp.mlas_nchwc_block = mlas_nchwc_block
    refusals: list[tuple[OnnxNode | None, str]] = []
    for name, arr in graph.initializers.items():
        imp.bind(name, Const(to_numpy(arr), numpy_dtype_name(arr) or str(arr.dtype)))
    declared = {i.name: i for i in graph.inputs}
    for name, arr in (constants or {}).items():
        if name not in declared:
            raise ValidationError(f"import_onnx: constant {name!r} is not a graph input")
        imp.bind(name, _given_constant(name, arr, declared[name].elem_type))
    graph.inputs = [i for i in graph.inputs if i.name not in (constants or {})]
    unknown = set(input_shapes or {}) - {i.name for i in graph.inputs}
    if unknown:
        raise ValidationError(f"import_onnx: input_shapes names {sorted(unknown)}, which are not graph inputs")
    for node in graph.nodes:             # Constant nodes first: look-aheads read Clip bounds, scales...
        if node.key == ("", "Constant"):
            _import_node(imp, node, refusals)
            imp.skip.add(node.index)
    _declare_inputs(imp, input_shapes or {}, refusals)
    for node in graph.nodes:
        _import_node(imp, node, refusals)
    if not refusals:
        _finish_outputs(imp, refusals)
    if refusals:
        raise ValidationError(_refusal_text(refusals))
    b.metadata["source"] = _source_metadata(imp)
    return b.build()


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def _given_constant(name: str, value, elem_type: int) -> Const:
    """A value given for a graph input, as that input's declared type."""
    try:
        dtype = qnnref_dtype(elem_type, f"constant {name!r}")
    except Refused as e:
        raise ValidationError(f"import_onnx: {e}") from None
    if isinstance(value, onnx.TensorProto):
        try:
            value = to_numpy(tensor_to_numpy(value, f"constant {name!r}"))
        except Refused as e:
            raise ValidationError(f"import_onnx: {e}") from None
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf" and numpy_dtype_name(arr) is None:     # (int4 / uint4: ml_dtypes)
        raise ValidationError(f"import_onnx: constant {name!r} must be numbers, got {arr.dtype}")
    if dtype in ("int4", "uint4"):
        arr = np.asarray(arr, dtype=np.int64)
    data = arr.astype(dtypes.get(dtype).numpy)
    if not np.array_equal(data.astype(np.float64), arr.astype(np.float64), equal_nan=True):
        raise ValidationError(f"import_onnx: constant {name!r} does not fit its declared type {dtype}")
    return Const(data, dtype)


def _declare_inputs(imp: Importer, input_shapes: dict, refusals) -> None:
    for gi in imp.onnx.inputs:
        try:
            shape = input_shapes.get(gi.name)
            if shape is None:
                if gi.shape is None:
                    raise Refused(f"graph input {gi.name!r} has no shape; "
                                  f"pass input_shapes={{{gi.name!r}: (...)}}")
                if any(not isinstance(d, int) for d in gi.shape):
                    raise Refused(f"graph input {gi.name!r} has symbolic dimensions {gi.shape}; "
                                  f"pass input_shapes={{{gi.name!r}: (...)}}")
                shape = gi.shape
            if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__") or \
                    any(not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 0 for d in shape):
                raise Refused(f"graph input {gi.name!r}: shape {shape!r} must be non-negative integers")
            shape = tuple(int(d) for d in shape)
            dtype = qnnref_dtype(gi.elem_type, f"graph input {gi.name!r}")
            q = None
            if dtype in ("int4", "uint4", "int8", "uint8", "int16"):
                q = _input_quant(imp, gi.name, dtype, shape) or _exported_quant(imp, gi.name, dtype)
            kw = {}
            if q is not None:
                kw = dict(scale=q.scale, zero_point=q.zero_point, axis=q.axis, block_size=q.block_size)
            imp.b.input(gi.name, dtype, shape, **kw)
            imp.bind(gi.name, Tensor(gi.name, layout.identity(len(shape))))
        except (Refused, QnnError) as e:
            refusals.append((None, str(e)))


#: operators that state only the zero point of an integer input: (domain, op) ->
#: {input index: (zero point index, axis of a 1-D zero point as a function of the rank)}
_ZERO_POINT_ONLY = {
    ("", "MatMulInteger"): {0: (2, None), 1: (3, lambda r: r - 1)},
    ("", "ConvInteger"): {0: (2, None), 1: (3, lambda r: 0)},
}


def _input_quant(imp: Importer, name: str, dtype: str, shape):
    """The quantization of an integer graph input, from the first consumer that
    states it (looking through movement operators); failing that, the zero
    point that a MatMulInteger / ConvInteger reading it directly states, with
    the unit scale 1 (their int32 outputs involve no scale); None if none does."""
    q = _stated_input_quant(imp, name, dtype, shape)
    if q is not None:
        return q
    for node in imp.consumers.get(name, []):
        for i, (z, vector_axis) in _ZERO_POINT_ONLY.get(node.key, {}).items():
            if node.input(i) != name or (node.input(z) and node.input(z) not in imp.values):
                continue
            zp = imp.const(node, z, "zero point") if node.input(z) else None
            if zp is not None and imp.const_dtype(node, z) != dtype:
                continue                         # refused at that node
            zp = np.zeros((), dtypes.get(dtype).numpy) if zp is None else np.asarray(zp)
            axis = vector_axis(len(shape)) if vector_axis is not None and zp.size > 1 else 0
            try:
                q = make_onnx_quant(node.where(), dtype, np.ones(zp.shape, np.float32), zp, axis, 0, shape)
            except Refused:
                continue
            return q.to_quant(layout.identity(len(shape)))
    return None


def _exported_quant(imp: Importer, name: str, dtype: str):
    """The quantization that qnnref's exporter recorded for graph input ``name``
    (metadata ``qnnref.input_quantization``), if nothing in the graph states
    one: an exported max_pool2d, concat or table reads its input without a
    quantized ONNX operator."""
    props = {p.key: p.value for p in imp.onnx.model.metadata_props}
    try:
        entry = json.loads(props.get("qnnref.input_quantization", "{}")).get(name)
    except (ValueError, AttributeError):
        return None
    if not isinstance(entry, dict) or entry.get("dtype") != dtype:
        return None
    try:
        zp = entry.get("zero_point")
        return Quant(np.asarray(entry["scale"], np.float32),
                     None if zp is None else np.asarray(zp).astype(dtypes.get(dtype).numpy),
                     entry.get("axis"), entry.get("block_size"))
    except (KeyError, TypeError, ValueError):
        return None


def _stated_input_quant(imp: Importer, name: str, dtype: str, shape):
    queue = deque([(name, True)])
    seen = set()
    while queue:
        cur, direct = queue.popleft()
        if cur in seen:
            continue
        seen.add(cur)
        for node in imp.consumers.get(cur, []):
            for t, s, z in input_slots(node):
                if node.input(t) == cur:
                    if any(node.input(i) and node.input(i) not in imp.values for i in (s, z)):
                        continue                  # computed parameters: refused at that node
                    if node.op_type == "DequantizeLinear":
                        q = qdq_quant(imp, node, dtype, shape if direct else None)
                    else:
                        q = triple_quant(imp, node, s, z, dtype, None, None, "input")
                    if not direct and q.axis is not None:
                        continue
                    return q.to_quant(layout.identity(len(shape)))
            if node.domain == "" and node.op_type in _PASS_THROUGH and node.outputs:
                queue.append((node.outputs[0], False))
    return None


# ---------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------

def _import_node(imp: Importer, node: OnnxNode, refusals) -> None:
    """Import one node; on refusal record why, and give its outputs
    placeholder tensors (their ONNX-inferred type and shape) so that the
    nodes after it are still examined: the error lists every node at once."""
    if node.index in imp.skip:
        return
    handler = HANDLERS.get(node.key)
    inputs = [i for i in node.inputs if i]
    poisoned = any(i not in imp.values for i in inputs)
    foldable = not poisoned and all(isinstance(imp.values[i], Const) and imp.values[i].quant is None
                                    for i in inputs) and node.op_type != "DequantizeLinear"
    fold = foldable and node.op_type != "QuantizeLinear"   # (a constant QuantizeLinear keeps its handler)
    if handler is None and not fold:
        refusals.append((node, _no_handler_reason(node)))
        _placeholders(imp, node)
        return
    if poisoned:
        return                            # outputs of a refused node with no inferred type
    views = [i for i in inputs if isinstance(imp.values[i], Tensor) and imp.values[i].cast]
    if views and node.key not in movement.CAST_VIEW_OPS:
        refusals.append((node, f"{node.where()}: reads {views[0]!r}, integers cast to {imp.values[views[0]].cast}; "
                               "only data movement, Clip / Relu, Pad, Gather (as table indices) and Cast take "
                               "those here"))
        _placeholders(imp, node)
        return
    tainted = any(i in imp.tainted for i in inputs)
    skip_before = set(imp.skip)
    bound_before = len(imp.bound)
    try:
        if fold:
            _fold(imp, node)
        else:
            handler(imp, node)
        missing = [o for o in node.outputs if o and o not in imp.values
                   and (o in imp.graph_outputs
                        or any(c.index not in imp.skip for c in imp.consumers.get(o, [])))]
        if missing:
            raise Refused(f"{node.where()}: outputs {missing} are not supported")
    except (Refused, QnnError) as e:
        imp.skip = skip_before           # a fusion that failed absorbs nothing
        for o in [*node.outputs, *imp.bound[bound_before:]]:     # (a fusion binds later nodes' outputs)
            imp.values.pop(o, None)
        del imp.bound[bound_before:]
        if not tainted:                  # else a consequence of an earlier refusal
            msg = str(e)
            refusals.append((node, msg if node.where() in msg else f"{node.where()}: {msg}"))
        _placeholders(imp, node)
        return
    if tainted:
        for o in node.outputs:
            v = imp.values.get(o)
            if isinstance(v, Tensor) and imp.info(v).quant is None and imp.info(v).dt.is_int:
                imp.tainted.add(o)


def _placeholders(imp: Importer, node: OnnxNode) -> None:
    """Stand-in graph inputs for the outputs of a refused node (the model is
    never built then). Integer stand-ins have no quantization: refusals they
    cause downstream are not reported."""
    if imp.inferred is None:
        try:
            inferred = onnx.shape_inference.infer_shapes(imp.onnx.model, strict_mode=False)
            vis = [*inferred.graph.value_info, *inferred.graph.output]
        except Exception:
            vis = []
        imp.inferred = {}
        for vi in vis:
            tt = vi.type.tensor_type
            if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
                imp.inferred[vi.name] = (tt.elem_type, tuple(d.dim_value for d in tt.shape.dim))
    for o in node.outputs:
        if not o or o in imp.values or o not in imp.inferred:
            continue
        elem, shape = imp.inferred[o]
        try:
            dtype = qnnref_dtype(elem, o)
        except Refused:
            continue
        name = imp.fresh(f"{o}_unimported")
        try:
            imp.b.input(name, dtype, shape)
        except QnnError:                 # an inferred shape qnnref cannot hold: no stand-in
            continue
        imp.bind(o, Tensor(name, layout.identity(len(shape))))
        if dtype not in ("float32", "float16"):
            imp.tainted.add(o)


def _no_handler_reason(node: OnnxNode) -> str:
    if node.domain == "" and node.op_type in FLOAT_OPS:
        return (f"{node.where()}: float operator with no quantized form here, and no qnnref float32 "
                "operator for it (spec/onnx-import.md, \"Float operators\")")
    if node.domain not in ("", "com.microsoft"):
        return f"{node.where()}: operator of the custom domain {node.domain!r} is not supported"
    return f"{node.where()}: operator not supported by the qnnref ONNX importer"


#: operators never folded: control flow (its cost is not bounded by its size)
_NOT_FOLDED = {"Loop", "Scan", "If", "SequenceMap"}
#: operators whose output may be far larger than their inputs: folded only
#: when ONNX shape inference states the output's size first
_GROWING = {"ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad", "OneHot", "Einsum",
            "MatMul", "Gemm", "MatMulInteger", "Col2Im", "CenterCropPad", "ConvTranspose", "Conv", "ConvInteger",
            "MaxUnpool", "Bernoulli", "RandomNormalLike", "RandomUniformLike", "Mul", "Add", "Sub", "Div", "Where",
            "Concat", "Gather", "GatherND", "GatherElements", "NonZero", "Unique", "TopK", "Compress", "Reshape"}
#: multiply-adds a folded Conv / MatMul / pool may cost (onnx.reference is slow)
FOLD_WORK = 2**28


def _check_fold_cost(imp: Importer, node: OnnxNode, onnx_node, feeds: dict, outs) -> None:
    """Refused unless the folded outputs fit qnnref's size limit and the work
    is bounded, known *before* evaluating: ONNX shape inference (with data
    propagation: the constants are initializers here) gives the output
    shapes; an output of unknown size is refused for operators that can
    grow (``ConstantOfShape`` of a huge shape would allocate gigabytes)."""
    from .. import graph as qgraph
    if node.op_type in _NOT_FOLDED:
        raise Refused(f"{node.where()}: folding control flow is not supported")
    inits = [onnx.numpy_helper.from_array(np.ascontiguousarray(a), n) for n, a in feeds.items()]
    g = helper.make_graph([onnx_node], "fold", [], outs, inits)
    m = helper.make_model(g, opset_imports=imp.onnx.model.opset_import, ir_version=imp.onnx.model.ir_version)
    try:
        inferred = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(m, data_prop=True).graph.output}
    except Exception:                     # inference could not say: the sizes stay unknown
        inferred = {}
    if node.op_type == "Range" and len(feeds) == 3:
        start, limit, delta = (np.asarray(feeds[i]).reshape(-1)[:1] for i in node.inputs)
        with np.errstate(all="ignore"):
            n = np.ceil((limit.astype(np.float64) - start) / delta) if delta.size and delta[0] else None
        if n is None or n.size != 1 or not np.isfinite(n[0]):
            raise Refused(f"{node.where()}: cannot fold: a Range with delta 0 or a non-finite length")
        qgraph.check_element_count(int(max(n[0], 0)), f"{node.where()}: folded output")
        return
    for o in outs:
        vi = inferred.get(o.name)
        tt = vi.type.tensor_type if vi is not None else None
        if tt is None or not tt.HasField("shape") or not all(d.HasField("dim_value") for d in tt.shape.dim):
            if node.op_type in _GROWING:
                raise Refused(f"{node.where()}: cannot fold: the size of output {o.name!r} is not known "
                              "before evaluating it")
            continue
        count = 1
        for d in tt.shape.dim:
            count *= d.dim_value
        qgraph.check_element_count(count, f"{node.where()}: folded output {o.name!r}")
        shapes = [np.shape(feeds[i]) for i in node.inputs if i in feeds]
        k = 1
        if node.op_type in ("Conv", "ConvInteger", "ConvTranspose") and len(shapes) > 1:
            k = int(np.prod(shapes[1][1:], dtype=np.int64)) if len(shapes[1]) > 1 else 1
        elif node.op_type in ("MatMul", "Gemm", "MatMulInteger", "Einsum") and shapes and shapes[0]:
            k = max(max(s) if s else 1 for s in shapes)
        elif node.attr("kernel_shape") is not None:
            k = int(np.prod(node.attr("kernel_shape"), dtype=np.int64))
        if count * k > FOLD_WORK:
            raise Refused(f"{node.where()}: folding would cost about {count * k} multiply-adds "
                          f"(more than {FOLD_WORK})")


def _fold(imp: Importer, node: OnnxNode) -> None:
    """Evaluate a node whose inputs are all constants with onnx.reference."""
    from onnx.reference import ReferenceEvaluator
    feeds, vis = {}, []
    for i, name in enumerate(node.inputs):
        if not name:
            continue
        c = imp.values[name]
        if c.dtype in ("int4", "uint4"):
            raise Refused(f"{node.where()}: folding constants of type {c.dtype} is not supported")
        arr = np.asarray(c.data)
        if arr.dtype.kind not in "biuf":
            raise Refused(f"{node.where()}: input {name!r} of numpy dtype {arr.dtype} is not a numeric tensor")
        feeds[name] = arr
        vis.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape))
    onnx_node = imp.onnx.model.graph.node[node.index]
    outs = [helper.make_tensor_value_info(o, 0, None) for o in node.outputs if o]
    _check_fold_cost(imp, node, onnx_node, feeds, outs)
    g = helper.make_graph([onnx_node], "fold", vis, outs)
    m = helper.make_model(g, opset_imports=imp.onnx.model.opset_import, ir_version=imp.onnx.model.ir_version)
    try:
        results = ReferenceEvaluator(m).run(None, feeds)
    except Exception as e:
        raise Refused(f"{node.where()}: could not fold this constant subgraph ({type(e).__name__}: {e})") from None
    for name, arr in zip([o for o in node.outputs if o], results):
        arr = np.asarray(arr)
        if arr.dtype.kind not in "biuf":     # strings, objects (an Optional's None, a sequence)
            raise Refused(f"{node.where()}: folding gave {name!r} of numpy dtype {arr.dtype}, not a "
                          "numeric tensor")
        imp.bind(name, Const(to_numpy(arr), numpy_dtype_name(arr) or str(arr.dtype)))


# ---------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------

def _finish_outputs(imp: Importer, refusals) -> None:
    for name in imp.onnx.outputs:
        try:
            v = imp.values.get(name)
            if v is None:
                raise Refused(f"graph output {name!r} is not computed")
            imp.b.output(_final_tensor(imp, name, v))
        except (Refused, QnnError) as e:
            refusals.append((None, f"graph output {name!r}: {e}"))


def _final_tensor(imp: Importer, name: str, v) -> str:
    if isinstance(v, Const):
        if v.quant is not None:
            raise Refused("a dequantized constant as a graph output is not supported")
        if name in imp.b.tensors:
            raise Refused("name clash")
        return imp.b.constant(name, v.data, dtype=v.dtype)
    if v.cast:
        raise Refused(f"integers cast to {v.cast} as a graph output (qnnref converts integers only by "
                      "(de)quantizing)")
    if name in imp.b.tensors and not (v.name == name and layout.is_identity(v.perm) and not v.dequantized):
        raise Refused(f"tensor name {name!r} is already used")
    if v.dequantized:
        return imp.emit("dequantize", [imp.onnx_layout(v)], None, name)
    if v.name == name and layout.is_identity(v.perm):
        return name
    info = imp.info(v)
    if not layout.is_identity(v.perm):            # back to ONNX's axis order, under the output's name
        q = None if info.quant is None else imp.onnx_quant(v).to_quant(layout.identity(len(v.perm)))
        tperm = layout.transpose_between(v.perm, layout.identity(len(v.perm)))
        return imp.emit("transpose", [v.name], {"perm": list(tperm)}, name, q)
    # the value lives under another name (an alias): copy it
    return imp.emit("reshape", [v.name], {"shape": list(info.shape)}, name, info.quant)


# ---------------------------------------------------------------------------
# Errors and metadata
# ---------------------------------------------------------------------------

def _refusal_text(refusals) -> str:
    lines = [f"  - {msg}" for _, msg in refusals]
    kinds = sorted({(n.domain or "ai.onnx", n.op_type) for n, _ in refusals if n is not None})
    head = f"ONNX import failed: {len(refusals)} node(s) or value(s) cannot be imported"
    if kinds:
        head += " (operators: " + ", ".join(f"{d}:{o}" for d, o in kinds) + ")"
    return head + "\n" + "\n".join(lines)


def _source_metadata(imp: Importer) -> dict:
    """``metadata["source"]``: where the model came from, and how each ONNX
    value that is not a qnnref tensor of the same name, layout and meaning
    can be read (see spec/onnx-import.md)."""
    g = imp.onnx
    tensors = {}
    for name, v in imp.values.items():
        if not isinstance(v, Tensor) or name in g.outputs:     # outputs keep name, layout and type
            continue
        if v.name == name and not v.dequantized and not v.cast and layout.is_identity(v.perm):
            continue
        entry = {"tensor": v.name}
        if not layout.is_identity(v.perm):
            entry["perm"] = list(v.perm)
        if v.dequantized:
            entry["dequantized"] = True
        if v.cast:                                   # the ONNX value is cast(integers + offset)
            entry["cast"] = v.cast
            if v.offset:
                entry["offset"] = v.offset
        tensors[name] = entry
    return {"format": "onnx", "opset": g.opset, "opsets": dict(g.opsets), "producer": g.producer,
            "tensors": tensors}
