"""Hypothesis strategies that mutate seed graphs and make random single-node
graphs (see tests/fuzz/test_model_fuzz.py)."""
from __future__ import annotations

import copy

import numpy as np
import qnnref
from hypothesis import note
from hypothesis import strategies as st
from qnnref import dtypes
from qnnref import graph as qgraph
from qnnref.graph import Graph, Node, Quant, TensorInfo
from qnnref.ops import OPS, operator_names
from qnnref.ops.registry import make_context
from qnnref.profiles import DEFAULT_PROFILE, get_profile

from .seeds import SEED_GRAPHS

# ---------------------------------------------------------------------------
# Mutations
# ---------------------------------------------------------------------------

INTERESTING_INTS = [0, 1, -1, 2, -2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 127, 128, -128, 255, 256, 4095, 4096,
                    2**15, 2**16, 2**24, 2**31 - 1, 2**31, -(2**31), 2**32, 2**40, 2**53 + 1, 2**62,
                    2**63, -(2**63), 2**64, 10**30, -(10**30), 2**1100]
WORDS = [*operator_names(), *dtypes.DTYPES, "constant", "edge", "reflect", "wrap", "half_up",
         "half_to_even", "half_away_from_zero", "floor", "fixed_point", "float", "gemmlowp", "tosa",
         "none", "divide", "reciprocal", "float32", "float64", "qnnref", "", "x"]

ints = st.one_of(st.sampled_from(INTERESTING_INTS), st.integers(-10, 10))
floats = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from([0.0, -0.0, 0.5, 1.0, -1.0, 1e-45, 1e-30, 3.5e38, 3.4e38, 1e300, 2.0**-26]))
scalars = st.one_of(st.none(), st.booleans(), ints, floats, st.sampled_from(WORDS), st.text(max_size=6))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=6), st.dictionaries(st.one_of(st.sampled_from(WORDS), st.text(max_size=4)),
                                                 inner, max_size=4)), max_leaves=12)
RECIPE_KEYS = ["kind", "rounding", "double_round", "float_dtype", "scale_dtype", "multiplier_rounding",
               "method"]
recipes = st.one_of(json_values, st.dictionaries(st.sampled_from(RECIPE_KEYS),
                                                 st.one_of(st.sampled_from(WORDS), scalars), max_size=5))


def attr_value(draw, current):
    """A new value for an attribute: mostly near its current kind."""
    kind = draw(st.integers(0, 9))
    if kind < 3 and isinstance(current, list):
        new = list(current)
        if new and draw(st.booleans()):
            new[draw(st.integers(0, len(new) - 1))] = draw(ints)
        else:
            new = draw(st.lists(ints, min_size=max(len(new) - 1, 0), max_size=len(new) + 1))
        return new
    if kind < 5 and isinstance(current, int) and not isinstance(current, bool):
        return draw(ints)
    if kind < 6 and isinstance(current, (int, float)) and not isinstance(current, bool):
        return draw(floats)
    if kind < 7:
        return draw(st.lists(ints, max_size=6))
    return draw(json_values)


def random_scale(draw, shape):
    special = draw(st.sampled_from(["ok", "ok", "ok", "zero", "neg", "nan", "inf", "tiny", "huge", "sub"]))
    v = {"ok": draw(st.sampled_from([0.5, 0.01, 1 / 256, 3.0, 0.0003])), "zero": 0.0, "neg": -0.5,
         "nan": np.nan, "inf": np.inf, "tiny": 1e-38, "huge": 3e38, "sub": 1e-45}[special]
    arr = np.full(shape, v, np.float32)
    if arr.size and special == "ok" and draw(st.booleans()):
        arr.reshape(-1)[0] = np.float32(draw(st.sampled_from([1e-10, 1e10, 2.0**-40, 2.0**40])))
    return arr


def random_quant(draw, dtype: str, shape: tuple) -> Quant | None:
    kind = draw(st.sampled_from(["none", "tensor", "tensor", "axis", "blocked", "wrong-shape"]))
    dt = dtypes.DTYPES.get(dtype) if isinstance(dtype, str) else None
    np_dtype = dt.numpy if dt is not None else np.dtype(np.int8)
    lo, hi = (dt.min, dt.max) if dt is not None and dt.is_int else (-128, 127)

    def zp(pshape):
        choice = draw(st.sampled_from(["none", "zero", "in", "in", "out"]))
        if choice == "none":
            return None
        if choice == "zero":
            return np.zeros(pshape, np_dtype)
        if choice == "in":
            return np.full(pshape, draw(st.integers(lo, hi)), np.int64).astype(np_dtype)
        return np.full(pshape, 1000, np.int64).astype(np.int16)   # wrong dtype / out of range
    if kind == "none":
        return None
    if kind == "tensor" or not shape:
        return Quant(random_scale(draw, ()), zp(()))
    axis = draw(st.integers(-1, len(shape)))
    if kind == "axis":
        n = shape[axis] if 0 <= axis < len(shape) else 3
        return Quant(random_scale(draw, (n,)), zp((n,)), axis)
    if kind == "blocked":
        block = draw(st.sampled_from([1, 2, 3, 4, 0, -1, 2**40]))
        a = axis if 0 <= axis < len(shape) else 0
        pshape = list(shape)
        pshape[a] = -(-shape[a] // block) if block > 0 else 1
        scale = random_scale(draw, tuple(pshape))
        if draw(st.booleans()):
            with np.errstate(over="ignore"):
                scale = scale.astype(np.float16)
        return Quant(scale, zp(tuple(pshape)), axis, block)
    return Quant(random_scale(draw, (draw(st.integers(0, 4)),)), zp(()), draw(st.sampled_from([None, 0, 1])))


def small_shape(shape) -> bool:
    """A shape the mutations may build quantization parameters for."""
    return (isinstance(shape, tuple) and all(type(d) is int and 0 <= d <= 10**4 for d in shape)
            and qgraph.element_count(shape) <= 10**4)


def fix_up(g: Graph, draw) -> None:
    """Re-infer each node's output dtype and shape (in order) so that mutated
    attributes reach prepare/run; output quantization that no longer fits
    becomes per-tensor, or copies the input's (for same-quant operators)."""
    try:
        profile = get_profile(g.metadata.get("profile", DEFAULT_PROFILE))
    except Exception:
        return
    for node in g.nodes:
        try:
            ctx = make_context(node, g.tensors, profile, with_outputs=False)
            inferred = OPS[node.op].infer(ctx)
        except Exception:       # QnnError, or a bug that Model() will meet again
            return
        for (dtype, shape), name in zip(inferred, node.outputs):
            t = g.tensors.get(name)
            if t is None or t.is_constant:
                return
            t.dtype, t.shape = dtype, tuple(shape)
            first = ctx.inputs[0] if ctx.inputs else None
            if first is not None and first.quant is not None and first.dtype == dtype and draw(st.booleans()):
                t.quant = copy.deepcopy(first.quant)
            if t.quant is not None:
                try:
                    t.quant.check(t.dt, t.shape, "fix-up")
                except Exception:
                    if dtypes.DTYPES[dtype].is_int:
                        t.quant = Quant(np.array(t.quant.scale.reshape(-1)[:1].sum() or 0.1, np.float32))
                    else:
                        t.quant = None


def mutate(g: Graph, draw) -> str:
    """One semantic mutation of ``g`` in place; returns what it did."""
    names = list(g.tensors)
    kind = draw(st.sampled_from(["attr", "attr", "attr", "attr", "attr-del", "attr-new", "recipe", "op",
                                 "rewire", "rewire", "inputs-len", "dtype", "shape", "shape", "quant",
                                 "quant", "data", "metadata", "io"]))
    node = g.nodes[draw(st.integers(0, len(g.nodes) - 1))] if g.nodes else None
    where = node.name if node is not None else ""
    if kind.startswith("attr") and node is not None:
        op = OPS.get(node.op)
        declared = [a.name for a in op.attrs] if op else []
        if kind == "attr-del" and node.attrs:
            del node.attrs[draw(st.sampled_from(sorted(node.attrs)))]
        elif kind == "attr-new" or not node.attrs:
            name = draw(st.sampled_from(declared + ["bogus", "recipe"]) if declared else st.just("bogus"))
            node.attrs[name] = attr_value(draw, node.attrs.get(name))
        else:
            name = draw(st.sampled_from(sorted(node.attrs)))
            node.attrs[name] = attr_value(draw, node.attrs[name])
    elif kind == "recipe" and node is not None:
        node.attrs[draw(st.sampled_from(["recipe", "quantize_recipe"]))] = draw(recipes)
    elif kind == "op" and node is not None:
        new = draw(st.sampled_from(operator_names()))
        op = OPS[new]
        keep = {a.name for a in op.attrs}
        node.op = new
        node.attrs = {k: v for k, v in node.attrs.items() if k in keep}
        for a in op.attrs:
            if a.default is qnnref.ops.registry.REQUIRED and a.name not in node.attrs:
                node.attrs[a.name] = draw(st.sampled_from(
                    {"ints": [[1, 1], [0, 1, 0, 1], [-1], [2, 0, 1], [0]], "str": ["int8", "uint8", "int4"],
                     "int": [0, 1]}.get(a.kind, [None])))
    elif kind == "rewire" and node is not None and node.inputs:
        i = draw(st.integers(0, len(node.inputs) - 1))
        node.inputs[i] = draw(st.sampled_from(names + [""]))
    elif kind == "inputs-len" and node is not None:
        if node.inputs and draw(st.booleans()):
            node.inputs.pop()
        else:
            node.inputs.append(draw(st.sampled_from(names + [""])))
    elif kind in ("dtype", "shape", "quant", "data"):
        t = g.tensors[draw(st.sampled_from(names))]
        where = t.name
        if kind == "dtype":
            t.dtype = draw(st.sampled_from([*dtypes.DTYPES, "bfloat16", 8, None]))
            dt = dtypes.DTYPES.get(t.dtype) if isinstance(t.dtype, str) else None
            if dt is not None and draw(st.booleans()):
                # carry zero points and constant data over to the new dtype
                q = t.quant
                if q is not None and q.zero_point is not None and dt.is_int:
                    q.zero_point = np.clip(q.zero_point.astype(np.int64), dt.min, dt.max).astype(dt.numpy)
                if t.data is not None:
                    data = t.data.astype(np.float64)
                    t.data = (np.clip(data, dt.min, dt.max) if dt.is_int else data).astype(dt.numpy)
        elif kind == "shape":
            shape = list(t.shape)
            how = draw(st.sampled_from(["dim", "dim", "add", "drop", "junk"]))
            if how == "dim" and shape:
                shape[draw(st.integers(0, len(shape) - 1))] = draw(ints)
            elif how == "add":
                shape.insert(draw(st.integers(0, len(shape))), draw(st.sampled_from([1, 2, 0, 3])))
            elif how == "drop" and shape:
                shape.pop(draw(st.integers(0, len(shape) - 1)))
            elif how == "junk":
                shape = draw(st.sampled_from([[1.5], ["2"], [True, 2], [None], [-1, 3], [2**63, 2**63]]))
            t.shape = tuple(shape)
        elif kind == "quant":
            t.quant = random_quant(draw, t.dtype, t.shape if small_shape(t.shape) else ())
        elif t.data is not None:
            how = draw(st.sampled_from(["dtype", "shape", "range", "values"]))
            if how == "dtype":
                t.data = t.data.astype(draw(st.sampled_from([np.int16, np.int32, np.float32, np.uint8])))
            elif how == "shape":
                t.data = t.data.reshape(-1)[:max(t.data.size - 1, 0)]
            elif how == "range" and t.data.dtype == np.int8:
                t.data = np.full(t.data.shape, 100, np.int8)     # out of range for int4
            else:
                dt = dtypes.get(t.dtype)
                if dt.is_int:
                    t.data = np.full(t.data.shape, draw(st.sampled_from([dt.min, dt.max, 0])), dt.numpy)
    elif kind == "metadata":
        g.metadata["profile"] = draw(st.one_of(st.sampled_from(["qnnref", "fixed-point-double-round",
                                                                 "float32-half-to-even", "tflite"]),
                                               json_values))
    elif kind == "io":
        target = draw(st.sampled_from([g.inputs, g.outputs]))
        if target and draw(st.booleans()):
            target.pop(draw(st.integers(0, len(target) - 1)))
        else:
            target.append(draw(st.sampled_from(names)))
    return f"{kind} {where}"


def mutate_types(g: Graph, draw) -> str:
    """Wrong Python types in the graph's containers (possible only for graphs
    built in memory; a file reader never makes them)."""
    names = list(g.tensors)
    node = g.nodes[draw(st.integers(0, len(g.nodes) - 1))] if g.nodes else None
    what = draw(st.sampled_from(["op", "inputs", "input", "outputs", "name", "attrs", "tensor",
                                 "graph-inputs", "metadata", "quant"]))
    junk = draw(st.sampled_from([None, 5, ["conv2d"], {"a": 1}, b"x", ("x",), 1.5]))
    if what == "op" and node is not None:
        node.op = junk
    elif what == "inputs" and node is not None:
        node.inputs = junk
    elif what == "input" and node is not None and node.inputs:
        node.inputs[0] = junk
    elif what == "outputs" and node is not None:
        node.outputs = junk
    elif what == "name" and node is not None:
        node.name = junk
    elif what == "attrs" and node is not None:
        node.attrs = junk
    elif what == "tensor":
        g.tensors[draw(st.sampled_from(names))] = junk
    elif what == "graph-inputs":
        g.inputs = junk
    elif what == "metadata":
        g.metadata = junk
    else:
        g.tensors[draw(st.sampled_from(names))].quant = junk
    return f"types {what}"


def symbolize(g: Graph, draw) -> str:
    """Give ``g`` a symbolic batch (spec/format.md, "Symbolic batch"): the
    leading dimension of computed tensors (all, or a random part, sometimes
    with a second or an invalid name) becomes a batch symbol."""
    symbol = draw(st.sampled_from(["N", "N", "N", "batch", "M", "1N", ""]))
    every = draw(st.booleans())
    for t in g.tensors.values():
        shape = tuple(t.shape) if isinstance(t.shape, (list, tuple)) else ()
        if t.data is None and shape and isinstance(shape[0], int) and (every or draw(st.booleans())):
            t.shape = (symbol if every or draw(st.integers(0, 9)) else "M", *shape[1:])
    return f"symbolize {symbol!r}{' every' if every else ''}"


@st.composite
def mutated_graphs(draw):
    seed = draw(st.sampled_from(sorted(SEED_GRAPHS)))
    g = copy.deepcopy(SEED_GRAPHS[seed])
    log = [seed]
    if draw(st.integers(0, 3)) == 0:
        log.append(symbolize(g, draw))
    log += [mutate(g, draw) for _ in range(draw(st.integers(1, 3)))]
    if draw(st.booleans()):
        fix_up(g, draw)
        log.append("fix-up")
    if draw(st.integers(0, 9)) == 0:
        log.append(mutate_types(g, draw))
    note(f"seed and mutations: {log}")
    return g


SCALES = [2.0**-8, 0.01, 0.05, 0.1, 0.5, 1.0, 3.0]
ODD_SCALES = [1e-10, 1e10, 2.0**-40, 2.0**40, 1e-45, 3e38]


def plausible_quant(draw, dtype: str, shape, axis=None) -> Quant:
    """Mostly sensible per-tensor (or per-axis on ``axis``) parameters,
    sometimes extreme scales or zero points at the ends of the range."""
    dt = dtypes.DTYPES[dtype]
    n = () if axis is None else (shape[axis],)
    pick = st.sampled_from(SCALES) if draw(st.integers(0, 9)) else st.sampled_from(ODD_SCALES)
    scale = np.array([draw(pick) for _ in range(int(np.prod(n)))] if n else draw(pick), np.float32).reshape(n)
    zp_kind = draw(st.sampled_from(["none", "zero", "any", "any", "end"]))
    if zp_kind == "none":
        return Quant(scale, None, axis)
    if zp_kind == "zero" or dtype == "int32":
        v = 0
    elif zp_kind == "end":
        v = draw(st.sampled_from([dt.min, dt.max]))
    else:
        v = draw(st.integers(max(dt.min, -300), min(dt.max, 300)))
    return Quant(scale, np.full(n, v, np.int64).astype(dt.numpy), axis)


def dims(draw, rank: int, lo: int = 1, hi: int = 5):
    return tuple(draw(st.integers(lo, hi)) for _ in range(rank))


@st.composite
def single_node_graphs(draw):
    """One node of a random operator on plausible random inputs and
    attributes (each operator's dtypes, ranks and geometry), its output
    declared as the operator infers it, then maybe one more mutation."""
    op_name = draw(st.sampled_from(operator_names()))
    tensors: dict[str, TensorInfo] = {}
    graph_inputs: list[str] = []
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))

    def tensor(dtype, shape, quant=True, constant=None, axis=None, values=None):
        name = f"t{len(tensors)}"
        dt = dtypes.DTYPES[dtype]
        if constant is None:
            constant = draw(st.booleans())
        data = None
        if constant:
            if values is not None:
                data = rng.integers(values[0], values[1], shape, endpoint=True).astype(dt.numpy)
            elif dt.is_int:
                data = rng.integers(dt.min, dt.max, shape, endpoint=True, dtype=np.int64).astype(dt.numpy)
            else:
                data = rng.standard_normal(shape).astype(dt.numpy)
        q = plausible_quant(draw, dtype, shape, axis) if quant and dt.is_int else None
        tensors[name] = TensorInfo(name, dtype, tuple(shape), q, data)
        if not constant:
            graph_inputs.append(name)
        return name

    qd = ("int8", "uint8", "int16", "int4", "uint4")
    attrs: dict = {}
    a = draw(st.sampled_from(["int8", "uint8"]))
    if op_name in ("add", "mul"):
        dtype = draw(st.sampled_from(["int8", "uint8", "int16"]))
        shape = dims(draw, draw(st.integers(0, 4)))
        other = tuple(d if draw(st.booleans()) else 1 for d in shape)[draw(st.integers(0, len(shape))):]
        ins = [tensor(dtype, shape), tensor(dtype, other)]
    elif op_name in ("clamp", "pad", "reshape", "transpose", "dequantize", "requantize"):
        floats_ok = op_name in ("reshape", "transpose")
        dtype = draw(st.sampled_from(qd + ("int32",) + (("float32",) if floats_ok else ())))
        rank = draw(st.integers(0 if op_name != "pad" else 1, 4))
        shape = dims(draw, rank, 0 if draw(st.integers(0, 5)) == 0 else 1)
        axis = draw(st.integers(0, len(shape) - 1)) if shape and draw(st.integers(0, 3)) == 0 else None
        ins = [tensor(dtype, shape, axis=axis)]
        if op_name == "clamp":
            dt = dtypes.DTYPES[dtype]
            attrs = {"min": draw(st.integers(dt.min, dt.max)) if dt.is_int else 0}
            if draw(st.booleans()):
                attrs["max"] = draw(st.integers(attrs["min"], dt.max)) if dt.is_int else 0
        elif op_name == "pad":
            mode = draw(st.sampled_from(["constant", "edge", "reflect"]))
            attrs = {"pads": [draw(st.integers(0, 2)) for _ in range(2 * len(shape))], "mode": mode}
            if mode == "constant" and draw(st.booleans()):
                attrs["value"] = draw(st.integers(-5, 5))
        elif op_name == "reshape":
            size = qgraph.element_count(shape)
            attrs = {"shape": draw(st.sampled_from([[size], [-1], [1, -1], [size, 1], [-1, 1, 1]]))}
        elif op_name == "transpose":
            attrs = {"perm": list(draw(st.permutations(range(len(shape)))))}
        elif op_name == "requantize":
            attrs = {"dtype": draw(st.sampled_from(qd))}
    elif op_name == "concat":
        dtype = draw(st.sampled_from(qd + ("int32", "float32")))
        shape = list(dims(draw, draw(st.integers(1, 4))))
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        ins = []
        for _ in range(draw(st.integers(1, 3))):
            shape[axis] = draw(st.integers(0, 3))
            ins.append(tensor(dtype, tuple(shape), quant=dtype != "float32" and draw(st.integers(0, 4)) > 0))
        attrs = {"axis": axis}
    elif op_name in ("conv2d", "max_pool2d", "avg_pool2d"):
        groups = draw(st.sampled_from([1, 1, 2, 3]))
        n, h, w = dims(draw, 3, 1, 6)
        c = groups * draw(st.integers(1, 3))
        x_dtype = a if op_name == "conv2d" else draw(st.sampled_from(qd))
        per_channel = op_name == "max_pool2d" and draw(st.booleans())
        ins = [tensor(x_dtype, (n, h, w, c), axis=3 if per_channel else None)]
        kh, kw = dims(draw, 2, 1, 3)
        geometry = {"strides": list(dims(draw, 2, 1, 3)), "dilations": list(dims(draw, 2, 1, 2)),
                    "pads": [draw(st.integers(0, 2)) for _ in range(4)]}
        attrs = {k: v for k, v in geometry.items() if draw(st.booleans())}
        if op_name == "conv2d":
            c_out = groups * draw(st.integers(1, 3))
            w_dtype = draw(st.sampled_from(["int8", "int4", "uint8"]))
            ins.append(tensor(w_dtype, (c_out, kh, kw, c // groups), axis=0 if draw(st.booleans()) else None))
            if draw(st.booleans()):
                ins.append(tensor("int32", (c_out,), quant=False, values=(-1000, 1000)))
            attrs["groups"] = groups
            if draw(st.booleans()):
                attrs["dtype"] = draw(st.sampled_from(["int8", "uint8", "int16"]))
        else:
            attrs["kernel"] = [kh, kw]
            if op_name == "avg_pool2d" and draw(st.booleans()):
                attrs["count_include_pad"] = True
    elif op_name == "matmul":
        m, k, n = dims(draw, 3, 1, 5)
        batch = dims(draw, draw(st.integers(0, 2)), 1, 3)
        ins = [tensor(a, batch + (m, k)),
               tensor(draw(st.sampled_from(["int8", "int4", "uint8"])), (k, n),
                      axis=1 if draw(st.booleans()) else None)]
        if draw(st.booleans()):
            ins.append(tensor("int32", (n,), quant=False, values=(-1000, 1000)))
    elif op_name == "mean":
        shape = dims(draw, draw(st.integers(1, 4)))
        ins = [tensor(draw(st.sampled_from(qd)), shape)]
        attrs = {"axes": draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=2,
                                       unique=True)), "keepdims": draw(st.booleans())}
    elif op_name == "gather":
        data_shape = dims(draw, draw(st.integers(1, 3)))
        ins = [tensor(draw(st.sampled_from(qd + ("int32", "float32"))), data_shape),
               tensor(draw(st.sampled_from(["int32", "int64"])), dims(draw, draw(st.integers(0, 2))),
                      quant=False, values=(-data_shape[0], data_shape[0] - 1))]
        attrs = {"axis": 0}
    elif op_name == "quantize":
        shape = dims(draw, draw(st.integers(0, 3)))
        ins = [tensor(draw(st.sampled_from(["float32", "float16"])), shape)]
        attrs = {"dtype": draw(st.sampled_from(qd))}
    elif op_name == "table":
        ins = [tensor(a, dims(draw, draw(st.integers(0, 3)))),
               tensor(draw(st.sampled_from(["int8", "uint8"])), (256,), constant=True,
                      quant=draw(st.booleans()))]
    elif op_name == "float_conv2d":
        groups = draw(st.sampled_from([1, 1, 2]))
        n, h, w = dims(draw, 3, 1, 5)
        c, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
        kh, kw = dims(draw, 2, 1, 3)
        ins = [tensor("float32", (n, h, w, c)), tensor("float32", (c_out, kh, kw, c // groups))]
        if draw(st.booleans()):
            ins.append(tensor("float32", (c_out,)))
        attrs = {"strides": list(dims(draw, 2, 1, 3)), "dilations": list(dims(draw, 2, 1, 2)),
                 "pads": [draw(st.integers(0, 2)) for _ in range(4)], "groups": groups,
                 "k_block": draw(st.integers(0, 5))}
    elif op_name == "float_matmul":
        m, k, n = dims(draw, 3, 1, 5)
        ins = [tensor("float32", dims(draw, draw(st.integers(0, 2)), 1, 3) + (m, k)), tensor("float32", (k, n))]
        if draw(st.booleans()):
            ins.append(tensor("float32", (n,)))
        attrs = {"k_block": draw(st.integers(0, 5)), "bias_first": draw(st.booleans())}
    elif op_name == "float_elementwise":
        from qnnref.ops.float_elementwise import BINARY, FUNCTIONS
        function = draw(st.sampled_from(FUNCTIONS))
        shape = dims(draw, draw(st.integers(0, 3)), 0 if draw(st.integers(0, 5)) == 0 else 1)
        ins = [tensor("float32", shape)]
        if function in BINARY:
            ins.append(tensor("float32", tuple(d if draw(st.booleans()) else 1 for d in shape)))
        attrs = {"function": function}
        if function == "clip":
            attrs.update(min=draw(st.sampled_from([-1.0, 0.0])), max=draw(st.sampled_from([0.0, 6.0])))
    elif op_name == "float_mean":
        shape = dims(draw, draw(st.integers(1, 3)), 1)
        ins = [tensor("float32", shape)]
        axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape),
                             unique_by=lambda a: a % len(shape)))
        attrs = {"axes": axes, "keepdims": draw(st.booleans())}
    elif op_name == "float_softmax":
        shape = dims(draw, draw(st.integers(1, 3)), 0 if draw(st.integers(0, 5)) == 0 else 1)
        ins = [tensor("float32", shape)]
        attrs = {"axis": draw(st.integers(-len(shape), len(shape) - 1))}
    else:  # softmax
        shape = dims(draw, draw(st.integers(1, 3)))
        ins = [tensor(a, shape)]
        attrs = {"axis": draw(st.integers(-len(shape), len(shape) - 1)),
                 "beta": draw(st.sampled_from([1.0, 0.5, 4.0, 1e-3, 100.0]))}
    for name in list(attrs):
        if draw(st.integers(0, 7)) == 0:
            del attrs[name]
    tensors["y"] = TensorInfo("y", "int8", (1,))
    profile = draw(st.sampled_from(["qnnref", "fixed-point-double-round", "float32-half-to-even"]))
    g = Graph(tensors, [Node("n", op_name, ins, ["y"], attrs)], graph_inputs, ["y"], {"profile": profile})
    if draw(st.integers(0, 4)) == 0:
        g.nodes[0].attrs["recipe"] = draw(st.fixed_dictionaries({}, optional={
            "kind": st.sampled_from(["fixed_point", "float"]),
            "rounding": st.sampled_from(["half_up", "half_to_even", "half_away_from_zero", "floor"]),
            "double_round": st.sampled_from(["none", "gemmlowp", "tosa"]),
            "float_dtype": st.sampled_from(["float32", "float64"]),
            "scale_dtype": st.sampled_from(["float32", "float64"])}))
    log = [op_name]
    if draw(st.integers(0, 2)) == 0:
        log.append(mutate(g, draw))
    fix_up(g, draw)
    y = g.tensors["y"]
    y_dt = dtypes.DTYPES.get(y.dtype) if isinstance(y.dtype, str) else None
    if y_dt is not None and y_dt.is_int and small_shape(y.shape) and draw(st.integers(0, 2)):
        src = next((tensors[n] for n in ins if n and tensors[n].quant is not None), None)
        if src is not None and src.dtype == y.dtype and draw(st.booleans()):
            y.quant = copy.deepcopy(src.quant)           # same quantization as the input
        else:
            y.quant = plausible_quant(draw, y.dtype, y.shape)
    note(f"single node: {log} {g.nodes[0].attrs}")
    return g
