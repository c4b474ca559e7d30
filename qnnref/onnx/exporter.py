"""qnnref -> ONNX: ``export_onnx(model, path, format="qoperator" | "qdq")``.

Every qnnref model becomes an ONNX model (opset 21, plus the
``com.microsoft`` quantized operators of ONNX Runtime) with the same graph
inputs and outputs: names, integer dtypes and shapes (NHWC stays NHWC; the
convolutions and pools are wrapped in Transpose nodes, which ONNX Runtime
cancels). Two formats:

* ``"qoperator"``: integer tensors flow between quantized operators
  (QLinearMatMul, QGemm, QLinearConv, QLinearAdd, QLinearMul,
  QLinearAveragePool, QLinearGlobalAveragePool) and integer data-movement
  operators (Reshape, Transpose, Concat, Pad, Gather, Clip, MaxPool).
* ``"qdq"``: each compute node becomes DequantizeLinear -> float operator ->
  QuantizeLinear, the form quantizers emit; ONNX Runtime fuses the patterns
  it knows back into the quantized operators above.

Exactness. ONNX Runtime computes its own arithmetic, which is qnnref's
``ort-cpu-x86`` profile (``ort-cpu-x86-vnni`` on CPUs with VNNI or AMX): an
exported model reproduces a qnnref model bit for bit on ONNX Runtime's CPU
provider only when the qnnref model uses the profile that describes the CPU
it runs on, and only for the nodes this exporter maps exactly. Every node it
cannot map exactly (a float operator such as Softmax, an unsupported type
combination, or a recipe other than ONNX Runtime's) is still exported, in
float, and listed with the reason in the model's metadata
(``qnnref.inexact``, a JSON list) and in :func:`export_report`.
spec/profiles/README.md, "Export to ONNX", has the table.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .. import dtypes
from ..errors import ValidationError
from ..graph import Graph, Node, Quant, TensorInfo
from ..ops.registry import check_attrs, get_op
from ..profiles import DEFAULT_PROFILE, PROFILES, get_profile

FORMATS = ("qoperator", "qdq")
OPSET = 21
MS_DOMAIN = "com.microsoft"

#: the profile that describes what ONNX Runtime computes (its VNNI twin differs
#: only in pairwise_int16_saturation, which the CPU decides)
ORT_PROFILE = "ort-cpu-x86"


def _onnx():
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - exercised only without onnx
        raise ImportError("qnnref.onnx.exporter needs the onnx package (pip install qnnref[onnx])") from e
    return onnx


def _elem_type(dtype_name: str) -> int:
    from onnx import TensorProto as T
    return {"int4": T.INT4, "uint4": T.UINT4, "int8": T.INT8, "uint8": T.UINT8, "int16": T.INT16,
            "int32": T.INT32, "int64": T.INT64, "float16": T.FLOAT16, "float32": T.FLOAT}[dtype_name]


@dataclass
class ExportReport:
    """What an export did: the format, the profile of the qnnref model, and
    the nodes ONNX Runtime will not compute exactly as qnnref does."""

    format: str
    profile: str
    inexact: list[dict] = field(default_factory=list)     # {"node", "op", "reason"}

    @property
    def exact(self) -> bool:
        return not self.inexact


def export_onnx(model, path=None, format: str = "qoperator"):
    """Export a ``qnnref.Model`` (or ``qnnref.Graph``) to ONNX; write it to
    ``path`` if given; return the ``onnx.ModelProto``."""
    proto, _ = _export(model, format)
    if path is not None:
        _onnx().save(proto, str(path))
    return proto


def export_report(model, format: str = "qoperator") -> ExportReport:
    """The :class:`ExportReport` of ``export_onnx(model, format=format)``."""
    return _export(model, format)[1]


def _export(model, format: str):
    if format not in FORMATS:
        raise ValidationError(f"export_onnx: format must be one of {', '.join(FORMATS)}, got {format!r}")
    graph = model.graph if hasattr(model, "graph") else model
    if not isinstance(graph, Graph):
        raise ValidationError("export_onnx: expected a qnnref.Model or qnnref.Graph")
    if graph.batch_symbol is not None:
        raise ValidationError(f"export_onnx: the model has a symbolic batch {graph.batch_symbol!r}; the exporter "
                              "writes fixed shapes: export model.concrete_graph(n) for a batch size n")
    ex = _Exporter(graph, format)
    return ex.build(), ex.report


# ---------------------------------------------------------------------------

class _Exporter:
    def __init__(self, graph: Graph, format: str):
        self.onnx = _onnx()
        self.g = graph
        self.format = format
        self.profile = get_profile(graph.metadata.get("profile", DEFAULT_PROFILE), "export_onnx")
        self.report = ExportReport(format, self.profile.name)
        self.nodes: list = []
        self.inits: list = []
        self.used_names = set(graph.tensors) | {n.name for n in graph.nodes}
        self.const_cache: dict = {}

    # -- names, constants, nodes ------------------------------------------------
    def fresh(self, base: str) -> str:
        name, i = base, 0
        while name in self.used_names:
            i += 1
            name = f"{base}_{i}"
        self.used_names.add(name)
        return name

    def const(self, base: str, value, dtype_name: str | None = None) -> str:
        """An initializer holding ``value`` (numpy); returns its name. ``dtype_name``
        int4/uint4 stores a 4-bit tensor."""
        from onnx import helper, numpy_helper
        arr = np.asarray(value)
        key = (dtype_name or arr.dtype.str, arr.shape, arr.tobytes())
        if key in self.const_cache:
            return self.const_cache[key]
        name = self.fresh(base)
        if dtype_name in ("int4", "uint4"):
            t = helper.make_tensor(name, _elem_type(dtype_name), arr.shape, arr.astype(np.int64).ravel().tolist())
        else:
            t = numpy_helper.from_array(arr, name)
        self.inits.append(t)
        self.const_cache[key] = name
        return name

    def add(self, op: str, inputs, outputs=None, domain: str = "", base: str = "", **attrs) -> str:
        """Append an ONNX node; returns its (first) output name."""
        from onnx import helper
        if outputs is None:
            outputs = [self.fresh(f"{base or op}_out")]
        node = helper.make_node(op, list(inputs), list(outputs), name=self.fresh(base or op),
                                domain=domain or None, **attrs)
        self.nodes.append(node)
        return outputs[0]

    def inexact(self, node: Node, reason: str) -> None:
        self.report.inexact.append({"node": node.name, "op": node.op, "reason": reason})

    # -- quantization parameters ----------------------------------------------------
    def tensor(self, name: str) -> TensorInfo:
        return self.g.tensors[name]

    def qparams(self, t: TensorInfo, onnx_dtype: str | None = None) -> tuple[str, str]:
        """(scale, zero point) initializers of ``t``: float32 scale, zero point
        of the tensor's dtype (zeros when symmetric)."""
        q = t.quant
        if q is None:
            raise ValidationError(f"export_onnx: tensor {t.name!r} is not quantized")
        dt = onnx_dtype or t.dtype
        scale = np.asarray(q.scale, dtype=np.float32)          # float16 scales convert exactly
        zp = q.zero_point_or_zeros().astype(dtypes.get(dt).numpy if dt not in ("int4", "uint4")
                                            else np.int64)
        return self.const(f"{t.name}_scale", scale), self.const(f"{t.name}_zero_point", zp, dt)

    @staticmethod
    def axis_attrs(q: Quant) -> dict:
        if q.axis is None:
            return {}
        a = {"axis": int(q.axis)}
        if q.block_size is not None:
            a["block_size"] = int(q.block_size)
        return a

    def dq(self, name: str, value: str | None = None) -> str:
        """DequantizeLinear of a quantized tensor -> float32 (of ``value``, the
        tensor transposed or reshaped in the integer domain, if given)."""
        t = self.tensor(name)
        s, z = self.qparams(t)
        return self.add("DequantizeLinear", [value or self.value(name), s, z], base=f"{name}_dq",
                        **self.axis_attrs(t.quant))

    def q(self, x: str, out: TensorInfo, output: str | None = None) -> str:
        """QuantizeLinear of a float32 tensor into ``out``'s quantization."""
        s, z = self.qparams(out)
        return self.add("QuantizeLinear", [x, s, z], [output] if output else None, base=f"{out.name}_q",
                        **self.axis_attrs(out.quant))

    # -- values -------------------------------------------------------------------------
    def value(self, name: str) -> str:
        """The ONNX name holding qnnref tensor ``name`` (constants become initializers)."""
        t = self.tensor(name)
        if t.data is not None and name not in self.const_cache:
            self.const_cache[name] = self.const(name, t.data, t.dtype)
        return self.const_cache.get(name, name)

    def as_int8(self, name: str) -> str:
        """An int4 weight as an int8 tensor (the same integers)."""
        t = self.tensor(name)
        if t.dtype != "int4":
            return self.value(name)
        if t.data is not None:
            return self.const(f"{name}_int8", t.data.astype(np.int8))
        from onnx import TensorProto
        return self.add("Cast", [self.value(name)], base=f"{name}_int8", to=TensorProto.INT8)

    def nhwc_to_nchw(self, x: str) -> str:
        return self.add("Transpose", [x], base="to_nchw", perm=[0, 3, 1, 2])

    def nchw_to_nhwc(self, x: str, output: str) -> str:
        return self.add("Transpose", [x], [output], base="to_nhwc", perm=[0, 2, 3, 1])

    def clip(self, x: str, dtype_name: str, lo, hi, output: str) -> str:
        """Clip of an integer tensor to [lo, hi] (either may be None)."""
        np_dt = dtypes.get(dtype_name).numpy.type
        if dtype_name not in ("int8", "uint8"):           # ORT's Clip: int8/uint8/int32/int64/float
            from onnx import TensorProto
            x32 = self.add("Cast", [x], base="clip_in", to=TensorProto.INT32)
            args = [x32, self.const("clip_min", np.int32(lo)) if lo is not None else "",
                    self.const("clip_max", np.int32(hi)) if hi is not None else ""]
            y32 = self.add("Clip", args, base="clip")
            return self.add("Cast", [y32], [output], base="clip_out", to=_elem_type(dtype_name))
        args = [x, self.const("clip_min", np_dt(lo)) if lo is not None else "",
                self.const("clip_max", np_dt(hi)) if hi is not None else ""]
        return self.add("Clip", args, [output], base="clip")

    def finish(self, y: str, out: TensorInfo, act_min, act_max) -> None:
        """Route ``y`` to the qnnref output name, through a Clip for a fused activation."""
        if act_min is not None or act_max is not None:
            self.clip(y, out.dtype, act_min, act_max, out.name)
        else:
            self.add("Identity", [y], [out.name], base="out")

    # -- recipes: is this node's arithmetic ONNX Runtime's? ----------------------------------
    def recipe_mismatch(self, node: Node, attrs: dict) -> str | None:
        from ..arith import Recipe
        r = Recipe.from_dict(attrs["recipe"]) if attrs.get("recipe") else self.profile.recipe_for(node.op)
        want = PROFILES[ORT_PROFILE].recipe_for(node.op)
        if r != want:
            return (f"its recipe ({r.kind}, {r.rounding}, float_dtype {r.float_dtype}, scale_dtype "
                    f"{r.scale_dtype}) is not ONNX Runtime's; ORT computes {want.kind} in {want.float_dtype}")
        return None

    def quantize_mismatch(self, node: Node, attrs: dict) -> str | None:
        from ..arith import QuantizeRecipe
        r = QuantizeRecipe.from_dict(attrs["quantize_recipe"]) if attrs.get("quantize_recipe") else self.profile.quantize
        if r != PROFILES[ORT_PROFILE].quantize:
            return f"its quantize recipe ({r.method}, {r.rounding}, {r.float_dtype}) is not ONNX Runtime's"
        return None

    def saturation_note(self, node: Node, attrs: dict, a: TensorInfo, b: TensorInfo, depthwise: bool) -> str | None:
        """ORT on a CPU without VNNI saturates u8 x s8 pairs (except depthwise
        convolutions); a qnnref node that does otherwise is exact only on the other CPUs."""
        if (a.dtype, b.dtype) != ("uint8", "int8"):
            return None
        flag = attrs.get("pairwise_int16_saturation")
        if flag is None:
            flag = self.profile.pairwise_int16_saturation and not (depthwise and self.profile.pairwise_exempt_depthwise)
        ort_saturates = not depthwise
        if flag and not ort_saturates:
            return "qnnref saturates u8 x s8 pairs here; ONNX Runtime's depthwise kernel never does"
        return None

    # -- the graph ------------------------------------------------------------------------
    def build(self):
        from onnx import helper
        for node in self.g.nodes:
            attrs = check_attrs(get_op(node.op, node.name), node, f"node {node.name!r}")
            handler = getattr(self, f"op_{node.op}", None)
            if handler is None:
                raise ValidationError(f"export_onnx: operator {node.op!r} (node {node.name!r}) has no ONNX mapping")
            handler(node, attrs)
        for name in self.g.outputs:          # an output that is a graph input or a constant
            if not any(name in n.output for n in self.nodes):
                self.add("Identity", [self.value(name) if self.tensor(name).data is not None else name],
                         [self.fresh(name)] if name in self.g.inputs else [name])
        vi = lambda t: helper.make_tensor_value_info(t.name, _elem_type(t.dtype), list(t.shape))
        graph = helper.make_graph(self.nodes, str(self.g.metadata.get("description") or "qnnref"),
                                  [vi(self.tensor(n)) for n in self.g.inputs],
                                  [vi(self.tensor(n)) for n in self.g.outputs], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid(MS_DOMAIN, 1)],
                              producer_name="qnnref")
        m.ir_version = 10
        helper.set_model_props(m, {"qnnref.profile": self.profile.name, "qnnref.format": self.format,
                                   "qnnref.inexact": json.dumps(self.report.inexact),
                                   "qnnref.input_quantization": json.dumps(self.input_quantization())})
        return m

    def input_quantization(self) -> dict:
        """The quantization of the quantized graph inputs, which an ONNX graph
        states only where a quantized operator reads them (not before a
        MaxPool, a Concat or a Cast): the importer's hint for the others, so
        that qnnref -> ONNX -> qnnref keeps them."""
        out = {}
        for name in self.g.inputs:
            t = self.tensor(name)
            if t.quant is None:
                continue
            q = t.quant
            out[name] = {"dtype": t.dtype, "scale": np.asarray(q.scale, np.float32).tolist(),
                         "zero_point": None if q.zero_point is None else np.asarray(q.zero_point).tolist(),
                         "axis": q.axis, "block_size": q.block_size}
        return out

    # =====================================================================================
    # Operators
    # =====================================================================================

    def op_quantize(self, node, attrs):
        from onnx import TensorProto
        x, y = self.tensor(node.inputs[0]), self.tensor(node.outputs[0])
        xv = self.value(x.name)
        if x.dtype == "float16":      # exact; qnnref quantizes float16 input in float32
            xv = self.add("Cast", [xv], base=f"{x.name}_f32", to=TensorProto.FLOAT)
        why = self.quantize_mismatch(node, attrs)
        if why:
            self.inexact(node, why)
        self.q(xv, y, output=y.name)

    def op_dequantize(self, node, attrs):
        self.add("Identity", [self.dq(node.inputs[0])], [node.outputs[0]])

    def float_fallback(self, node, attrs, float_op: str, inputs: list[str], reason: str, **op_attrs) -> None:
        """DQ(inputs) -> float_op -> Q(output) [-> Clip]: runs everywhere, not exact."""
        out = self.tensor(node.outputs[0])
        self.inexact(node, reason)
        y = self.add(float_op, [self.dq(i) for i in inputs], base=node.name, **op_attrs)
        y = self.q(y, out)
        self.finish(y, out, attrs.get("act_min"), attrs.get("act_max"))

    # -- matmul ---------------------------------------------------------------------------
    def op_matmul(self, node, attrs):
        if len(node.inputs) > 3 and node.inputs[3]:
            raise ValidationError(f"export_onnx: node {node.name!r} (matmul) has a run-time zero point of a "
                                  "(dynamic quantization), which the exporter does not write yet")
        a, b, out = self.tensor(node.inputs[0]), self.tensor(node.inputs[1]), self.tensor(node.outputs[0])
        bias = self.tensor(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        b_dt = "int8" if b.dtype == "int4" else b.dtype
        per_col = b.quant.axis is not None
        why = None
        if (a.dtype, b_dt) not in (("uint8", "int8"), ("uint8", "uint8"), ("int8", "int8")):
            why = f"ONNX Runtime has no quantized matmul for {a.dtype} x {b.dtype}"
        elif out.dtype != a.dtype:
            why = f"ONNX Runtime's quantized matmul outputs {a.dtype}, this node {out.dtype}"
        elif per_col and len(b.shape) != 2:
            why = "per-column weights of a batched matmul"
        elif bias is not None and len(b.shape) != 2:
            why = "a bias with batched weights"
        elif b.dtype == "int4" and b.data is None:
            why = "a non-constant int4 weight"
        if why:
            self.matmul_float(node, attrs, a, b, bias, out, why)
            return
        why = self.recipe_mismatch(node, attrs) or self.saturation_note(node, attrs, a, b, False)
        if why:
            self.inexact(node, why)
        if self.format == "qdq":
            self.matmul_qdq(node, attrs, a, b, bias, out)
            return
        sa, za = self.qparams(a)
        sb, zb = self.qparams(b, b_dt)
        sy, zy = self.qparams(out)
        bv = self.as_int8(b.name)
        if bias is None:
            y = self.add("QLinearMatMul", [self.value(a.name), sa, za, bv, sb, zb, sy, zy], base=node.name)
        else:
            # QGemm (2-D, int32 bias added to the accumulator); a batched a is flattened to 2-D
            k = b.shape[0]
            av = self.value(a.name)
            if len(a.shape) != 2:
                av = self.add("Reshape", [av, self.const("shape", np.array([-1, k], np.int64))], base="flatten")
            y = self.add("QGemm", [av, sa, za, bv, sb, zb, self.value(bias.name), sy, zy], domain=MS_DOMAIN,
                         base=node.name)
            if len(a.shape) != 2:
                y = self.add("Reshape", [y, self.const("shape", np.array(out.shape, np.int64))], base="unflatten")
        self.finish(y, out, attrs["act_min"], attrs["act_max"])

    def matmul_qdq(self, node, attrs, a, b, bias, out):
        fb = self.dq_weight(b)
        if bias is None:
            y = self.add("MatMul", [self.dq(a.name), fb], base=node.name)
        else:
            av = self.value(a.name)
            if len(a.shape) != 2:     # Gemm is 2-D: flatten the batch in the integer domain
                av = self.add("Reshape", [av, self.const("shape", np.array([-1, b.shape[0]], np.int64))],
                              base="flatten")
            y = self.add("Gemm", [self.dq(a.name, av), fb, self.dq_bias(bias, a, b)], base=node.name)
        y = self.q(y, out)
        if bias is not None and len(a.shape) != 2:
            y = self.add("Reshape", [y, self.const("shape", np.array(out.shape, np.int64))], base="unflatten")
        self.finish(y, out, attrs["act_min"], attrs["act_max"])

    def dq_weight(self, w: TensorInfo, axis: int | None = None) -> str:
        """DequantizeLinear of a weight (int4 as int8), per-axis on ``axis`` if given."""
        dt = "int8" if w.dtype == "int4" else w.dtype
        s, z = self.qparams(w, dt)
        q = w.quant
        extra = {"axis": int(axis if axis is not None else q.axis)} if q.axis is not None else {}
        return self.add("DequantizeLinear", [self.as_int8(w.name), s, z], base=f"{w.name}_dq", **extra)

    def dq_bias(self, bias: TensorInfo, x: TensorInfo, w: TensorInfo) -> str:
        """The int32 bias dequantized at s_x * s_w (per channel), zero point 0."""
        s = (np.float32(x.quant.scale) * np.asarray(w.quant.scale, np.float32)).astype(np.float32)
        extra = {"axis": 0} if s.ndim else {}
        return self.add("DequantizeLinear", [self.value(bias.name), self.const("bias_scale", s),
                                             self.const("bias_zp", np.zeros(s.shape, np.int32))],
                        base=f"{bias.name}_dq", **extra)

    def matmul_float(self, node, attrs, a, b, bias, out, why):
        self.inexact(node, why + "; exported in float")
        y = self.add("MatMul", [self.dq(a.name), self.dq_weight(b)], base=node.name)
        if bias is not None:
            y = self.add("Add", [y, self.dq_bias(bias, a, b)], base=f"{node.name}_bias")
        self.finish(self.q(y, out), out, attrs["act_min"], attrs["act_max"])

    # -- conv2d ---------------------------------------------------------------------------
    def op_conv2d(self, node, attrs):
        if len(node.inputs) > 3 and node.inputs[3]:
            raise ValidationError(f"export_onnx: node {node.name!r} (conv2d) has a run-time zero point of x "
                                  "(dynamic quantization), which the exporter does not write yet")
        x, w, out = self.tensor(node.inputs[0]), self.tensor(node.inputs[1]), self.tensor(node.outputs[0])
        bias = self.tensor(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        w_dt = "int8" if w.dtype == "int4" else w.dtype
        groups = attrs["groups"]
        depthwise = w.shape[3] == 1 and w.shape[0] == groups
        conv_attrs = dict(strides=list(attrs["strides"]), dilations=list(attrs["dilations"]),
                          pads=list(attrs["pads"]), group=groups, kernel_shape=list(w.shape[1:3]))
        why = None
        if (x.dtype, w_dt) not in (("uint8", "int8"), ("uint8", "uint8"), ("int8", "int8")):
            why = f"ONNX Runtime has no quantized convolution for {x.dtype} x {w.dtype}"
        elif out.dtype != x.dtype:
            why = f"ONNX Runtime's QLinearConv outputs {x.dtype}, this node {out.dtype}"
        elif len(np.unique(w.quant.zero_point_or_zeros())) > 1:
            why = "ONNX Runtime's QLinearConv needs one weight zero point for all channels"
        elif w.dtype == "int4" and w.data is None:
            why = "a non-constant int4 weight"
        xv = self.nhwc_to_nchw(self.value(x.name))
        if w.data is not None:
            wv = self.const(f"{w.name}_oihw", w.data.astype(dtypes.get(w_dt).numpy).transpose(0, 3, 1, 2).copy())
        else:
            wv = self.nhwc_to_nchw(self.as_int8(w.name))
        if why or self.format == "qdq":
            if why:
                self.inexact(node, why + "; exported in float")
            elif x.dtype == "int8":
                self.inexact(node, "ONNX Runtime (x86) does not fuse a QDQ convolution of int8 activations "
                                   "into QLinearConv; it runs in float (use format='qoperator')")
            else:
                why = self.recipe_mismatch(node, attrs) or self.saturation_note(node, attrs, x, w, depthwise)
                if why:
                    self.inexact(node, why)
            sx, zx = self.qparams(x)
            fx = self.add("DequantizeLinear", [xv, sx, zx], base=f"{x.name}_dq")
            sw, zw = self.qparams(w, w_dt)
            fw = self.add("DequantizeLinear", [wv, sw, zw], base=f"{w.name}_dq",
                          **({"axis": 0} if w.quant.axis is not None else {}))
            ins = [fx, fw] + ([self.dq_bias(bias, x, w)] if bias is not None else [])
            y = self.q(self.add("Conv", ins, base=node.name, **conv_attrs), out)
        else:
            why = self.recipe_mismatch(node, attrs) or self.saturation_note(node, attrs, x, w, depthwise)
            if why:
                self.inexact(node, why)
            sx, zx = self.qparams(x)
            sw, zw = self.qparams(w, w_dt)
            sy, zy = self.qparams(out)
            ins = [xv, sx, zx, wv, sw, zw, sy, zy] + ([self.value(bias.name)] if bias is not None else [])
            y = self.add("QLinearConv", ins, base=node.name, **conv_attrs)
        y = self.nchw_to_nhwc(y, self.fresh(f"{node.name}_nhwc"))
        self.finish(y, out, attrs["act_min"], attrs["act_max"])

    # -- add, mul ---------------------------------------------------------------------------
    def binary(self, node, attrs, float_op: str, ort_op: str):
        a, b, out = (self.tensor(n) for n in (*node.inputs, node.outputs[0]))
        if a.dtype not in ("int8", "uint8"):
            self.float_fallback(node, attrs, float_op, node.inputs[:2],
                                f"ONNX Runtime has no {ort_op} for {a.dtype}; exported in float")
            return
        why = self.recipe_mismatch(node, attrs)
        if why:
            self.inexact(node, why)
        if self.format == "qdq":
            y = self.q(self.add(float_op, [self.dq(a.name), self.dq(b.name)], base=node.name), out)
        else:
            sa, za = self.qparams(a)
            sb, zb = self.qparams(b)
            sy, zy = self.qparams(out)
            y = self.add(ort_op, [self.value(a.name), sa, za, self.value(b.name), sb, zb, sy, zy],
                         domain=MS_DOMAIN, base=node.name)
        self.finish(y, out, attrs["act_min"], attrs["act_max"])

    def op_add(self, node, attrs):
        self.binary(node, attrs, "Add", "QLinearAdd")

    def op_mul(self, node, attrs):
        self.binary(node, attrs, "Mul", "QLinearMul")

    # -- pools and mean ------------------------------------------------------------------------
    def op_max_pool2d(self, node, attrs):
        from onnx import TensorProto
        x, out = self.tensor(node.inputs[0]), self.tensor(node.outputs[0])
        xv = self.value(x.name)
        cast = x.dtype not in ("int8", "uint8")
        if cast:          # float32 holds every int16 / int4 value exactly, and max is exact
            xv = self.add("Cast", [xv], base="pool_in", to=TensorProto.FLOAT)
        y = self.add("MaxPool", [self.nhwc_to_nchw(xv)], base=node.name, kernel_shape=list(attrs["kernel"]),
                     strides=list(attrs["strides"]), dilations=list(attrs["dilations"]), pads=list(attrs["pads"]))
        y = self.nchw_to_nhwc(y, self.fresh(f"{node.name}_nhwc"))
        if cast:
            y = self.add("Cast", [y], base="pool_out", to=_elem_type(x.dtype))
        self.finish(y, out, attrs["act_min"], attrs["act_max"])

    def op_avg_pool2d(self, node, attrs):
        x, out = self.tensor(node.inputs[0]), self.tensor(node.outputs[0])
        geometry = dict(kernel_shape=list(attrs["kernel"]), strides=list(attrs["strides"]),
                        pads=list(attrs["pads"]), count_include_pad=int(attrs["count_include_pad"]))
        if x.dtype not in ("int8", "uint8") or list(attrs["dilations"]) != [1, 1]:
            self.inexact(node, "ONNX Runtime's QLinearAveragePool takes int8/uint8 without dilations; exported in float")
            y = self.add("AveragePool", [self.dq(x.name, self.nhwc_to_nchw(self.value(x.name)))], base=node.name,
                         dilations=list(attrs["dilations"]), **geometry)
            y = self.q(self.nchw_to_nhwc(y, self.fresh(f"{node.name}_nhwc")), out)
            self.finish(y, out, attrs["act_min"], attrs["act_max"])
            return
        from ..ops._common import same_quant
        if same_quant(x, out):
            self.inexact(node, "with equal input and output quantization qnnref divides the integer sum "
                               "exactly; ONNX Runtime computes in float32")
        elif any(attrs["pads"]):
            self.inexact(node, "ONNX Runtime's QLinearAveragePool computes windows that touch the padding "
                               "by another float path (spec/profiles/ort-cpu-x86.md)")
        elif list(attrs["kernel"]) == list(x.shape[1:3]):
            self.inexact(node, "ONNX Runtime computes a pool whose one window is the whole unpadded input as "
                               "QLinearGlobalAveragePool (an integer sum: qnnref's mean), not by its float average")
        else:
            why = self.recipe_mismatch(node, attrs)
            if why:
                self.inexact(node, why)
        if self.format == "qdq":
            y = self.add("AveragePool", [self.dq(x.name, self.nhwc_to_nchw(self.value(x.name)))], base=node.name,
                         **geometry)
            y = self.nchw_to_nhwc(self.q(y, out), self.fresh(f"{node.name}_nhwc"))
        else:
            sx, zx = self.qparams(x)
            sy, zy = self.qparams(out)
            y = self.add("QLinearAveragePool", [self.value(x.name), sx, zx, sy, zy], domain=MS_DOMAIN,
                         base=node.name, channels_last=1, **geometry)
        self.finish(y, out, attrs["act_min"], attrs["act_max"])

    def op_mean(self, node, attrs):
        x, out = self.tensor(node.inputs[0]), self.tensor(node.outputs[0])
        rank = len(x.shape)
        axes = sorted(a % rank for a in attrs["axes"])
        spatial = rank == 4 and axes == [1, 2]
        if not spatial or x.dtype not in ("int8", "uint8"):
            self.inexact(node, "only the mean over H and W of an int8/uint8 NHWC tensor is ONNX Runtime's "
                               "QLinearGlobalAveragePool; exported in float")
            y = self.add("ReduceMean", [self.dq(x.name), self.const("axes", np.array(axes, np.int64))],
                         base=node.name, keepdims=int(attrs["keepdims"]))
            self.q(y, out, output=out.name)
            return
        why = self.recipe_mismatch(node, attrs)
        if why:
            self.inexact(node, why)
        if self.format == "qdq":
            y = self.add("GlobalAveragePool", [self.dq(x.name, self.nhwc_to_nchw(self.value(x.name)))],
                         base=node.name)
            y = self.nchw_to_nhwc(self.q(y, out), self.fresh(f"{node.name}_nhwc"))
        else:
            sx, zx = self.qparams(x)
            sy, zy = self.qparams(out)
            y = self.add("QLinearGlobalAveragePool", [self.value(x.name), sx, zx, sy, zy], domain=MS_DOMAIN,
                         base=node.name, channels_last=1)
        if not attrs["keepdims"]:
            y = self.add("Reshape", [y, self.const("shape", np.array(out.shape, np.int64))], base="squeeze")
        self.finish(y, out, None, None)

    # -- requantize and concat ---------------------------------------------------------------------
    def requantize_value(self, node, attrs, x: TensorInfo, out: TensorInfo) -> str:
        """x brought into out's quantization; returns the ONNX value name.

        Exact route (per-tensor, same dtype u8/s8): a 1 x 1 QLinearConv with one
        channel and weight 1 over x reshaped to [1, 1, n, 1]: ONNX Runtime's
        depthwise kernel computes round(fl32(x - zp_x) * fl32(s_x / s_y)) + zp_y,
        which is qnnref's requantize under the ort-cpu-x86 recipe."""
        per_tensor = x.quant.axis is None and out.quant.axis is None
        if not (per_tensor and x.dtype == out.dtype and x.dtype in ("int8", "uint8")):
            self.inexact(node, f"requantizing {x.dtype} to {out.dtype} (or per axis) is done by "
                               "DequantizeLinear -> QuantizeLinear, in float")
            return self.q(self.dq(x.name), out)
        why = self.recipe_mismatch(node, attrs)
        if why:
            self.inexact(node, why)
        n = int(np.prod(x.shape, dtype=np.int64))
        flat = self.add("Reshape", [self.value(x.name), self.const("shape", np.array([1, 1, n, 1], np.int64))],
                        base=f"{x.name}_flat")
        sx, zx = self.qparams(x)
        sy, zy = self.qparams(out)
        wdt = np.int8 if x.dtype == "int8" else np.uint8
        one = self.const("one_weight", np.ones((1, 1, 1, 1), wdt))
        ins = [flat, sx, zx, one, self.const("one_scale", np.float32(1)), self.const("zero_w", wdt(0)), sy, zy]
        y = self.add("QLinearConv", ins, base=f"{node.name}_requantize")
        return self.add("Reshape", [y, self.const("shape", np.array(x.shape, np.int64))], base="unflatten")

    def op_requantize(self, node, attrs):
        x, out = self.tensor(node.inputs[0]), self.tensor(node.outputs[0])
        self.add("Identity", [self.requantize_value(node, attrs, x, out)], [out.name])

    def op_concat(self, node, attrs):
        from ..ops._common import same_quant
        out = self.tensor(node.outputs[0])
        parts = []
        for name in node.inputs:
            t = self.tensor(name)
            parts.append(self.value(name) if same_quant(t, out) else self.requantize_value(node, attrs, t, out))
        self.add("Concat", parts, [out.name], base=node.name, axis=int(attrs["axis"]))

    # -- integer data movement and clamps -----------------------------------------------------------
    def op_clamp(self, node, attrs):
        x, out = self.tensor(node.inputs[0]), self.tensor(node.outputs[0])
        self.clip(self.value(x.name), x.dtype, attrs["min"], attrs["max"], out.name)

    def op_reshape(self, node, attrs):
        out = self.tensor(node.outputs[0])
        self.add("Reshape", [self.value(node.inputs[0]), self.const("shape", np.array(out.shape, np.int64))],
                 [out.name], base=node.name)

    def op_transpose(self, node, attrs):
        self.add("Transpose", [self.value(node.inputs[0])], [node.outputs[0]], base=node.name,
                 perm=list(attrs["perm"]))

    def op_pad(self, node, attrs):
        from onnx import TensorProto
        x, out = self.tensor(node.inputs[0]), self.tensor(node.outputs[0])
        value = attrs["value"] if attrs["value"] is not None else (
            int(x.quant.zero_point_or_zeros()) if x.quant is not None else 0)
        pads = self.const("pads", np.array(attrs["pads"], np.int64))
        xv = self.value(x.name)
        wide = x.dtype not in ("int8", "uint8", "int32", "int64")
        if wide:        # ORT's Pad: no int16 / 4-bit kernels; int32 holds them exactly
            xv = self.add("Cast", [xv], base="pad_in", to=TensorProto.INT32)
        np_dt = np.int32 if wide else dtypes.get(x.dtype).numpy.type
        ins = [xv, pads] + ([self.const("pad_value", np_dt(value))] if attrs["mode"] == "constant" else [])
        if wide:
            y = self.add("Pad", ins, base=node.name, mode=attrs["mode"])
            self.add("Cast", [y], [out.name], base="pad_out", to=_elem_type(x.dtype))
        else:
            self.add("Pad", ins, [out.name], base=node.name, mode=attrs["mode"])

    def op_gather(self, node, attrs):
        self.add("Gather", [self.value(node.inputs[0]), self.value(node.inputs[1])], [node.outputs[0]],
                 base=node.name, axis=int(attrs["axis"]))

    def op_table(self, node, attrs):
        """y = table[x - min(dtype)]: Gather with the codes as indices (exact)."""
        from onnx import TensorProto
        x = self.tensor(node.inputs[0])
        idx = self.add("Cast", [self.value(x.name)], base="table_index", to=TensorProto.INT32)
        if x.dtype == "int8":
            idx = self.add("Add", [idx, self.const("offset", np.int32(128))], base="table_offset")
        self.add("Gather", [self.value(node.inputs[1]), idx], [node.outputs[0]], base=node.name, axis=0)

    def op_softmax(self, node, attrs):
        x, out = self.tensor(node.inputs[0]), self.tensor(node.outputs[0])
        self.inexact(node, "qnnref's softmax is an integer algorithm; ONNX Runtime computes Softmax in float")
        fx = self.dq(x.name)
        if attrs["beta"] != 1.0:
            fx = self.add("Mul", [fx, self.const("beta", np.float32(attrs["beta"]))], base="beta")
        self.q(self.add("Softmax", [fx], base=node.name, axis=int(attrs["axis"])), out, output=out.name)
