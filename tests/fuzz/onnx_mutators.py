"""Mutations of ONNX models for the importer fuzzers.

Two levels, both driven by a ``random.Random`` (so that hypothesis, which
draws the seed, and tools/fuzz.py, which counts, share one generator):

* :func:`mutate_bytes`: corrupt the serialized protobuf (bit flips, byte
  sets, insertions, deletions, truncation, splices of other seeds);
* :func:`mutate_graph`: structured edits of a ModelProto in place:
  attributes (values, kinds, removal, addition), graph input shapes and
  element types, initializer dtypes, dims, contents and sizes (scales of
  0 / NaN / inf / negative / denormal, zero points out of range, huge dims),
  node wiring (duplicate, missing and renamed nodes and values, cycles,
  op types, domains), graph outputs and opsets.

:func:`run_one` imports the result and, when the import succeeds, runs the
model once on small random inputs; only a ``qnnref.QnnError`` may escape
(a ``QnnError`` whose message says "internal error" counts as a failure:
it is the importer's backstop, not an answer).
"""
from __future__ import annotations

import random

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto

import qnnref
from qnnref import QnnError, dtypes
from qnnref import graph as qgraph
from qnnref.onnx import import_onnx

# ---------------------------------------------------------------------------
# Bytes
# ---------------------------------------------------------------------------


def mutate_bytes(data: bytes, rng: random.Random, others: list[bytes] = ()) -> bytes:
    """1-4 byte-level mutations of a serialized model."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["flip", "flip", "set", "insert", "delete", "truncate", "splice", "varint"])
        n = len(buf)
        if n == 0:
            buf = bytearray(rng.randbytes(rng.randint(1, 16)))
            continue
        i = rng.randrange(n)
        if kind == "flip":
            buf[i] ^= 1 << rng.randrange(8)
        elif kind == "set":
            buf[i] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        elif kind == "insert":
            buf[i:i] = rng.randbytes(rng.randint(1, 12))
        elif kind == "delete":
            del buf[i:i + rng.randint(1, 12)]
        elif kind == "truncate":
            del buf[i:]
        elif kind == "varint":                # a big varint where a length or value was
            buf[i:i + 1] = bytes([0xFF] * rng.randint(1, 9) + [rng.randrange(1, 0x80)])
        elif others:
            other = rng.choice(others)
            j = rng.randrange(len(other))
            buf[i:i + rng.randint(1, 64)] = other[j:j + rng.randint(1, 64)]
    return bytes(buf)


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------

INTS = [0, 1, -1, 2, 3, 4, 7, 8, -2, 2**15, 2**16, 2**28, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1, -2**63,
        -2**31, 1000, 255, 256, 127, -128, 10**12]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-45, 1e-38, 3.4e38, float("inf"), float("-inf"), float("nan"), 1e-7, 255.0]
STRINGS = ["", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "nearest", "linear", "DCR", "CRD", "x", "\udcff",
           "round_prefer_floor", "asymmetric", "half_pixel", "constant", "reflect", "edge"]
ATTR_NAMES = ["axis", "axes", "pads", "strides", "dilations", "kernel_shape", "group", "auto_pad", "ceil_mode",
              "block_size", "output_dtype", "perm", "keepdims", "transA", "transB", "alpha", "beta", "mode",
              "to", "blocksize", "min", "max", "value", "count_include_pad", "channels_last", "saturate",
              "noop_with_empty_axes", "storage_order", "allowzero", "coordinate_transformation_mode"]


def _int(rng):
    return rng.choice(INTS) if rng.random() < 0.7 else rng.randint(-10, 10)


def _ints(rng):
    n = rng.choice([0, 1, 2, 3, 4, 4, 4, 5, 8])
    return [_int(rng) for _ in range(n)]


def random_attribute(name: str, rng: random.Random) -> AttributeProto:
    """An attribute called ``name`` of a random kind and value."""
    kind = rng.choice(["int", "int", "ints", "ints", "float", "floats", "string", "strings", "tensor", "graph"])
    a = AttributeProto(name=name)
    if kind == "int":
        a.type, a.i = AttributeProto.INT, max(-2**63, min(2**63 - 1, _int(rng)))
    elif kind == "ints":
        a.type = AttributeProto.INTS
        a.ints.extend(max(-2**63, min(2**63 - 1, v)) for v in _ints(rng))
    elif kind == "float":
        a.type, a.f = AttributeProto.FLOAT, rng.choice(FLOATS)
    elif kind == "floats":
        a.type = AttributeProto.FLOATS
        a.floats.extend(rng.choice(FLOATS) for _ in range(rng.randint(0, 4)))
    elif kind == "string":
        a.type, a.s = AttributeProto.STRING, rng.choice(STRINGS).encode("utf-8", "surrogateescape")
    elif kind == "strings":
        a.type = AttributeProto.STRINGS
        a.strings.extend(rng.choice(STRINGS).encode("utf-8", "surrogateescape") for _ in range(rng.randint(0, 3)))
    elif kind == "tensor":
        a.type = AttributeProto.TENSOR
        a.t.CopyFrom(random_tensor(rng, ""))
    else:
        a.type = AttributeProto.GRAPH
        a.g.name = "g"
    if rng.random() < 0.05:
        a.type = rng.randint(0, 14)           # a kind that disagrees with the field set
    return a


def mutate_attribute_value(a: AttributeProto, rng: random.Random) -> None:
    """Change an attribute's value, keeping its kind (mostly)."""
    if a.type == AttributeProto.INT:
        a.i = max(-2**63, min(2**63 - 1, rng.choice([_int(rng), a.i + rng.choice([-1, 1]), -a.i])))
    elif a.type == AttributeProto.INTS:
        vals = list(a.ints)
        choice = rng.random()
        if vals and choice < 0.5:
            vals[rng.randrange(len(vals))] = _int(rng)
        elif vals and choice < 0.65:
            vals.pop(rng.randrange(len(vals)))
        elif choice < 0.8:
            vals.append(_int(rng))
        else:
            vals = _ints(rng)
        del a.ints[:]
        a.ints.extend(max(-2**63, min(2**63 - 1, v)) for v in vals)
    elif a.type == AttributeProto.FLOAT:
        a.f = rng.choice(FLOATS)
    elif a.type == AttributeProto.STRING:
        a.s = rng.choice([rng.choice(STRINGS).encode("utf-8", "surrogateescape"), b"\xff\xfe", a.s[:-1]])
    elif a.type == AttributeProto.TENSOR:
        mutate_tensor(a.t, rng)
    else:
        a.CopyFrom(random_attribute(a.name, rng))


NP_OF = {TensorProto.FLOAT: np.float32, TensorProto.UINT8: np.uint8, TensorProto.INT8: np.int8,
         TensorProto.INT16: np.int16, TensorProto.UINT16: np.uint16, TensorProto.INT32: np.int32,
         TensorProto.INT64: np.int64, TensorProto.FLOAT16: np.float16, TensorProto.DOUBLE: np.float64,
         TensorProto.BOOL: np.bool_, TensorProto.UINT32: np.uint32, TensorProto.UINT64: np.uint64}
ELEM_TYPES = list(range(0, 26)) + [99]


def random_tensor(rng: random.Random, name: str) -> TensorProto:
    """A small random tensor (sometimes of a weird type or shape)."""
    elem = rng.choice(list(NP_OF))
    shape = rng.choice([(), (1,), (3,), (2, 2), (4,), (1, 1, 1, 1)])
    arr = np.asarray(np.random.default_rng(rng.getrandbits(32)).integers(-3, 4, shape)).astype(NP_OF[elem])
    t = onnx.numpy_helper.from_array(arr, name)
    return t


def special_values(rng: random.Random, dtype) -> list:
    """Interesting values of a numpy dtype (scale- and zero-point-like)."""
    if np.issubdtype(dtype, np.floating):
        return [0.0, -0.0, float("nan"), float("inf"), float("-inf"), -1.0, 1e-45, 1e-40, 3.4e38, 1e-30, 1.0]
    if dtype == np.bool_:
        return [True, False]
    info = np.iinfo(dtype)
    return [info.min, info.max, 0, 1, -1 if info.min < 0 else 0, info.max // 2, info.min + 1]


def mutate_tensor(t: TensorProto, rng: random.Random) -> None:
    """One edit of an initializer or tensor attribute: contents, dtype,
    dims, data size, storage fields."""
    kind = rng.choice(["values", "values", "values", "dtype", "dims", "dims", "raw-truncate", "raw-extend",
                       "raw-random", "typed-fields", "external", "huge-dims", "segment", "name"])
    try:
        arr = onnx.numpy_helper.to_array(t)
    except Exception:
        arr = None
    if kind == "values" and arr is not None and arr.size and arr.dtype in [np.dtype(v) for v in NP_OF.values()]:
        flat = arr.copy().reshape(-1)
        for _ in range(rng.randint(1, 3)):
            flat[rng.randrange(flat.size)] = rng.choice(special_values(rng, flat.dtype.type))
        if rng.random() < 0.2:
            flat[:] = rng.choice(special_values(rng, flat.dtype.type))
        t.CopyFrom(onnx.numpy_helper.from_array(flat.reshape(arr.shape), t.name))
    elif kind == "dtype":
        new = rng.choice(ELEM_TYPES)
        if arr is not None and new in NP_OF and rng.random() < 0.7:
            with np.errstate(all="ignore"):
                t.CopyFrom(onnx.numpy_helper.from_array(arr.astype(NP_OF[new]), t.name))
        else:
            t.data_type = new                 # same bytes, another type
    elif kind == "dims":
        dims = list(t.dims)
        choice = rng.random()
        if dims and choice < 0.4:
            dims[rng.randrange(len(dims))] = rng.choice([0, 1, 2, 3, -1, dims[0] + 1])
        elif dims and choice < 0.6:
            dims.pop(rng.randrange(len(dims)))
        elif choice < 0.8:
            dims.insert(rng.randint(0, len(dims)), rng.choice([1, 1, 2, 0]))
        else:
            dims = [int(np.prod(dims, dtype=np.int64))] if dims else [1]
        del t.dims[:]
        t.dims.extend(dims)
    elif kind == "huge-dims":
        del t.dims[:]
        t.dims.extend(rng.choice([[2**31], [2**20, 2**20], [2**62], [2**40, 0], [-5], [2**63 - 1, 2**63 - 1],
                                  [1] * 40, [2**14, 2**14, 2**14]]))
    elif kind == "raw-truncate" and t.raw_data:
        t.raw_data = t.raw_data[:rng.randrange(len(t.raw_data))]
    elif kind == "raw-extend":
        t.raw_data = bytes(t.raw_data) + rng.randbytes(rng.randint(1, 9))
    elif kind == "raw-random" and t.raw_data:
        t.raw_data = rng.randbytes(len(t.raw_data))
    elif kind == "typed-fields":                # data in a field that does not match the type
        field = rng.choice(["float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data"])
        if field == "string_data":
            t.string_data.extend([b"\xff", b"abc"])
        elif field in ("float_data", "double_data"):
            getattr(t, field).extend([1.5, float("nan")] * rng.randint(1, 3))
        elif field == "uint64_data":
            t.uint64_data.extend([2**64 - 1, 0])
        else:
            getattr(t, field).extend([2**31 - 1 if field == "int32_data" else 2**63 - 1, -1] * rng.randint(1, 3))
    elif kind == "external":
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = rng.choice([("location", "nope.bin"), ("location", "../../../etc/passwd"),
                                     ("offset", "-1"), ("length", "99999999999")])
    elif kind == "segment":
        t.segment.begin, t.segment.end = 0, rng.randint(0, 3)
    else:
        t.name = rng.choice(["", t.name + "_x", "x"])


# ---------------------------------------------------------------------------
# Graph
# ---------------------------------------------------------------------------

OP_TYPES = ["Conv", "QLinearConv", "QuantizeLinear", "DequantizeLinear", "MatMul", "QLinearMatMul", "Gemm", "Add",
            "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Reshape", "Transpose", "Flatten",
            "Concat", "Squeeze", "Unsqueeze", "Pad", "Gather", "Slice", "Resize", "Identity", "Cast", "Softmax",
            "Sigmoid", "Mul", "ReduceMean", "Split", "DepthToSpace", "SpaceToDepth", "MatMulInteger", "ConvInteger",
            "DynamicQuantizeLinear", "Constant", "Shape", "Tile", "Expand", "LeakyRelu", "Tanh", "Min", "Max",
            "ArgMax", "TopK", "Where", "Equal", "ConvTranspose", "QLinearAdd", "QLinearConcat", "QGemm",
            "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearMul",
            "Loop", "If", "Scan"]
MS = "com.microsoft"


def _all_values(m: onnx.ModelProto) -> list[str]:
    g = m.graph
    names = [i.name for i in g.input] + [t.name for t in g.initializer]
    for n in g.node:
        names += [o for o in n.output if o]
    return names or ["x"]


def _pick_node(m, rng):
    return rng.choice(m.graph.node) if len(m.graph.node) else None


def _m_attr_value(m, rng):
    n = _pick_node(m, rng)
    if n is None or not len(n.attribute):
        return _m_attr_add(m, rng)
    mutate_attribute_value(rng.choice(n.attribute), rng)


def _m_attr_kind(m, rng):
    n = _pick_node(m, rng)
    if n is None or not len(n.attribute):
        return _m_attr_add(m, rng)
    a = rng.choice(n.attribute)
    a.CopyFrom(random_attribute(a.name, rng))


def _m_attr_add(m, rng):
    n = _pick_node(m, rng)
    if n is None:
        return
    name = rng.choice(ATTR_NAMES)
    for a in n.attribute:
        if a.name == name and rng.random() < 0.8:
            a.CopyFrom(random_attribute(name, rng))
            return
    n.attribute.append(random_attribute(name, rng))     # sometimes a duplicate attribute


def _m_attr_remove(m, rng):
    n = _pick_node(m, rng)
    if n is not None and len(n.attribute):
        del n.attribute[rng.randrange(len(n.attribute))]


def _initializer(m, rng, prefer=("scale", "zero_point", "_quantized", "_zp", "_scale")):
    inits = list(m.graph.initializer)
    if not inits:
        return None
    liked = [t for t in inits if any(p in t.name for p in prefer)]
    return rng.choice(liked if liked and rng.random() < 0.7 else inits)


def _m_init(m, rng):
    t = _initializer(m, rng)
    if t is not None:
        mutate_tensor(t, rng)


def _m_init_scale(m, rng):
    """A scale or zero point set to a special value (the importer's main diet)."""
    t = _initializer(m, rng, ("scale", "zero_point", "_zp"))
    if t is None:
        return
    try:
        arr = onnx.numpy_helper.to_array(t).copy()
    except Exception:
        return
    if arr.size == 0 or arr.dtype.kind not in "fiu":
        return
    flat = arr.reshape(-1)
    if arr.dtype.kind == "f":
        flat[rng.randrange(flat.size)] = rng.choice([0.0, -0.0, float("nan"), float("inf"), -1.0, 1e-45, 1e-40,
                                                     3.4e38, 1e-38, -1e-45])
    else:
        info = np.iinfo(arr.dtype)
        flat[rng.randrange(flat.size)] = rng.choice([info.min, info.max, 0, info.max - 1])
        if rng.random() < 0.3:           # a zero point of a wider type: out of the quantized range
            wide = flat.astype(np.int32)
            wide[rng.randrange(wide.size)] = rng.choice([300, -200, 2**20, 65535])
            t.CopyFrom(onnx.numpy_helper.from_array(wide.reshape(arr.shape), t.name))
            return
    t.CopyFrom(onnx.numpy_helper.from_array(flat.reshape(arr.shape), t.name))


def _m_init_resize(m, rng):
    """A scale / zero point / weight with a different number of elements."""
    t = _initializer(m, rng)
    if t is None:
        return
    try:
        arr = onnx.numpy_helper.to_array(t)
    except Exception:
        return
    n = rng.choice([0, 1, 2, 3, max(1, arr.size - 1), arr.size + 1, 2 * arr.size])
    shape = rng.choice([(n,), (1, n), (n, 1), ()]) if n == 1 else rng.choice([(n,), (1, n)])
    flat = np.resize(arr.reshape(-1), int(np.prod(shape))).reshape(shape) if arr.size else np.zeros(shape, arr.dtype)
    t.CopyFrom(onnx.numpy_helper.from_array(flat, t.name))


def _m_input_shape(m, rng):
    vis = [v for v in (*m.graph.input, *m.graph.output, *m.graph.value_info) if v.type.HasField("tensor_type")]
    if not vis:
        return
    v = rng.choice(vis)
    tt = v.type.tensor_type
    choice = rng.random()
    if choice < 0.1:
        tt.ClearField("shape")
        return
    dims = tt.shape.dim
    if choice < 0.5 and len(dims):
        d = rng.choice(dims)
        val = rng.choice([0, 1, 2, 3, 5, -1, -7, 2**31, 2**40, 2**62, "N", "", None])
        if isinstance(val, int):
            d.dim_value = val
        elif val is None:
            d.Clear()
        else:
            d.dim_param = val
    elif choice < 0.7 and len(dims):
        del dims[rng.randrange(len(dims))]
    elif choice < 0.85:
        dims.add().dim_value = rng.choice([1, 2, 0])
    else:
        tt.elem_type = rng.choice(ELEM_TYPES)


def _m_node_dup(m, rng):
    n = _pick_node(m, rng)
    if n is not None:
        m.graph.node.insert(rng.randint(0, len(m.graph.node)), onnx.NodeProto().__class__.FromString(
            n.SerializeToString()))


def _m_node_remove(m, rng):
    if len(m.graph.node):
        del m.graph.node[rng.randrange(len(m.graph.node))]


def _m_node_swap(m, rng):
    g = m.graph.node
    if len(g) >= 2:
        i, j = rng.randrange(len(g)), rng.randrange(len(g))
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(g[i])
        b.CopyFrom(g[j])
        g[i].CopyFrom(b)
        g[j].CopyFrom(a)


def _m_rewire(m, rng):
    """An input renamed: to another value (maybe later: a cycle), to a missing
    one, to "", to an output of the same node."""
    n = _pick_node(m, rng)
    if n is None:
        return
    names = _all_values(m)
    if len(n.input) and rng.random() < 0.8:
        i = rng.randrange(len(n.input))
        n.input[i] = rng.choice([rng.choice(names), rng.choice(names), "", "missing", n.output[0] if n.output else ""])
    elif rng.random() < 0.5:
        n.input.append(rng.choice(names + [""]))
    elif len(n.input):
        del n.input[rng.randrange(len(n.input))]


def _m_outputs(m, rng):
    n = _pick_node(m, rng)
    choice = rng.random()
    if n is not None and choice < 0.4 and len(n.output):
        n.output[rng.randrange(len(n.output))] = rng.choice(_all_values(m) + ["", "new"])
    elif n is not None and choice < 0.55:
        n.output.append(rng.choice(["extra", "", rng.choice(_all_values(m))]))
    elif len(m.graph.output) and choice < 0.8:
        m.graph.output[rng.randrange(len(m.graph.output))].name = rng.choice(_all_values(m) + ["", "missing"])
    elif len(m.graph.output) and choice < 0.9:
        m.graph.output.add().CopyFrom(rng.choice(m.graph.output))
    elif len(m.graph.output):
        del m.graph.output[rng.randrange(len(m.graph.output))]


def _m_op_type(m, rng):
    n = _pick_node(m, rng)
    if n is None:
        return
    if rng.random() < 0.8:
        n.op_type = rng.choice(OP_TYPES)
        if n.op_type.startswith(("QLinearA", "QLinearC", "QLinearG", "QLinearS", "QLinearL", "QLinearMul", "QGemm")):
            n.domain = MS
    else:
        n.domain = rng.choice(["", "ai.onnx", MS, "custom", "ai.onnx.ml"])


def _m_node_name(m, rng):
    n = _pick_node(m, rng)
    if n is not None:
        n.name = rng.choice(["", m.graph.node[0].name, "x", rng.choice(_all_values(m))])


def _m_opset(m, rng):
    choice = rng.random()
    if choice < 0.6 and len(m.opset_import):
        m.opset_import[rng.randrange(len(m.opset_import))].version = rng.choice(
            [0, 1, 6, 7, 10, 11, 12, 13, 17, 19, 21, 22, 23, 25, 1000, -1, 2**62])
    elif choice < 0.75 and len(m.opset_import):
        del m.opset_import[rng.randrange(len(m.opset_import))]
    elif choice < 0.9:
        o = m.opset_import.add()
        o.domain, o.version = rng.choice([("", 13), (MS, 1), ("ai.onnx", 21), ("x", 1)])
    else:
        m.ir_version = rng.choice([0, 1, 3, 4, 7, 10, 11, 99, -1])


def _m_constant_node(m, rng):
    """A Constant node feeding a random input (values, scales, shapes)."""
    n = _pick_node(m, rng)
    if n is None or not len(n.input):
        return
    name = f"const_{rng.randrange(1000)}"
    c = onnx.helper.make_node("Constant", [], [name], name=name)
    kind = rng.choice(["value", "value_int", "value_ints", "value_float", "value_floats", "sparse_value"])
    a = random_attribute(kind, rng)
    c.attribute.append(a)
    idx = rng.randrange(len(n.input))
    n.input[idx] = name
    nodes = list(m.graph.node)
    pos = nodes.index(n)
    m.graph.node.insert(pos if rng.random() < 0.9 else len(nodes), c)


def _m_metadata(m, rng):
    p = m.metadata_props.add()
    p.key = rng.choice(["qnnref.input_quantization", "x"])
    p.value = rng.choice(['{"x": {"dtype": "uint8", "scale": "a"}}', '{"x": {"dtype": "uint8", "scale": [1e40]}}',
                          '{"x": 5}', "[", '{"x": {"dtype": "int8", "scale": 0.5, "zero_point": 300, "axis": 9}}'])


GRAPH_MUTATIONS = [(_m_attr_value, 6), (_m_attr_kind, 2), (_m_attr_add, 3), (_m_attr_remove, 2), (_m_init, 5),
                   (_m_init_scale, 5), (_m_init_resize, 3), (_m_input_shape, 3), (_m_node_dup, 1),
                   (_m_node_remove, 1), (_m_node_swap, 1), (_m_rewire, 3), (_m_outputs, 1), (_m_op_type, 2),
                   (_m_node_name, 1), (_m_opset, 2), (_m_constant_node, 2), (_m_metadata, 1)]
_FUNCS = [f for f, _ in GRAPH_MUTATIONS]
_WEIGHTS = [w for _, w in GRAPH_MUTATIONS]


def mutate_graph(m: onnx.ModelProto, rng: random.Random, count: int | None = None) -> list[str]:
    """Apply 1-3 (or ``count``) structured mutations to ``m`` in place;
    returns their names."""
    done = []
    for _ in range(count or rng.choice([1, 1, 1, 2, 2, 3])):
        f = rng.choices(_FUNCS, _WEIGHTS)[0]
        f(m, rng)
        done.append(f.__name__[3:])
    return done


# ---------------------------------------------------------------------------
# Running one input
# ---------------------------------------------------------------------------

#: the profiles the fuzzers import under (the ort-* ones take ONNX Runtime's
#: own paths: float kernels' blocking, saturating pairs, ...)
PROFILES = ["onnx", "ort-cpu-x86", "ort-cpu-x86-vnni", "qnnref"]


class InternalError(AssertionError):
    """The importer's last-resort backstop was hit: a bug."""


def random_feeds(model: qnnref.Model, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for s in model.inputs:
        dt = dtypes.get(s.dtype)
        shape = tuple(2 if isinstance(d, str) else d for d in s.shape)    # a symbolic batch: 2 items
        if dt.is_int:
            feeds[s.name] = np.asarray(rng.integers(dt.min, dt.max, shape, endpoint=True, dtype=np.int64), dt.numpy)
        else:
            feeds[s.name] = np.asarray(rng.standard_normal(shape), dt.numpy)
    return feeds


def run_one(model_or_bytes, seed: int = 0, profile: str = "onnx") -> str:
    """Import, then (on success) run once on small random inputs. Returns
    "ok", "qnnref error" (refused at import) or "run error" (refused at run
    time); any other exception propagates, and so does the importer's
    internal-error backstop, as :class:`InternalError`."""
    try:
        model = import_onnx(model_or_bytes, profile=profile)
    except QnnError as e:
        if "internal error: please report" in str(e):
            raise (e.__cause__ or InternalError(str(e)))    # the bug itself, with its traceback
        return "qnnref error"
    for s in model.inputs:
        if qgraph.element_count(s.shape) > qgraph.MAX_TENSOR_ELEMENTS:
            return "ok"
    try:
        model.run(random_feeds(model, seed))
    except QnnError:
        return "run error"
    return "ok"


def signature(exc: BaseException) -> str:
    """A short, stable signature of an exception: type and innermost qnnref frame."""
    import traceback
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "qnnref" in f.filename] or frames
    where = f"{ours[-1].filename.rsplit('qnnref', 1)[-1]}:{ours[-1].lineno}" if ours else "?"
    return f"{type(exc).__name__} at {where}"


