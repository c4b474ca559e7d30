"""Float operators: what stays in float32 between QuantizeLinear / DequantizeLinear.

A QDQ graph is an integer computation only where a runtime fuses
``DequantizeLinear -> op -> QuantizeLinear`` into an integer kernel (see
:mod:`.qdq`). Everything else -- a Conv with a float bias, BatchNormalization,
Softmax, an operator whose output does not go straight to a QuantizeLinear,
a float graph input -- is computed in float32, as ONNX Runtime computes it
too. This module imports those nodes as qnnref's float operators
(``float_conv2d``, ``float_matmul``, ``float_elementwise``,
``float_softmax``, spec/ops/) on float32 tensors: a dequantized view becomes
a real ``dequantize`` node, a quantized constant (DequantizeLinear of an
initializer) a float32 constant holding the same float32 values.

Which nodes are float (spec/onnx-import.md, "Float operators"):

* ``ort-*`` profiles: exactly those ONNX Runtime's CPU provider leaves in
  float. Its QDQ selectors fuse Conv / MatMul / Gemm / Add / Mul only when
  every input is a DequantizeLinear output (a Conv / Gemm bias: of int32)
  and the only consumer of the output is a QuantizeLinear -- after removing a
  Relu / Clip that the QuantizeLinear's range makes redundant. A node that
  fails that test is float, even where qnnref could fuse it exactly (e.g.
  through DepthToSpace): ORT's float arithmetic is what the profile
  reproduces.
* other profiles: the integer operator wherever the importer can form one,
  float otherwise.

Float rounding that depends on the profile: the ``k_block`` of float_conv2d
and float_matmul (each dot product is a chain of float32 FMAs cut into
blocks; ``ort-*`` profiles use MLAS's SGEMM blocking, the others one chain)
and Gemm's bias order. BatchNormalization becomes ``x * a + b`` with
``a = scale / sqrt(var + eps)`` and ``b = B - mean * a`` formed in float32 as
ONNX Runtime forms them, two float32 operations per element.
"""
from __future__ import annotations

import numpy as np

from ..errors import QnnError
from . import layout
from .compute import mean_layout, reduce_mean_axes
from .context import Const, Importer, Tensor
from .qdq import dequantize_const
from .reader import OnnxNode, Refused, scalar
from .reader import OnnxQuant
from .registry import HANDLERS, MS, handles
from . import activations, qdq  # noqa: F401  (the integer handlers are registered first)


# ---------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------

def ort_profile(imp: Importer) -> bool:
    """True under the profiles that reproduce ONNX Runtime (``ort-*``)."""
    return imp.profile.startswith("ort")


def sgemm_k_block(n: int, k: int) -> int:
    """MLAS's K blocking for an SGEMM with ``n`` output columns and ``k``
    terms per dot product (``MlasSgemmOperation``, ``MlasConvOperation``):
    strides start at N = K = 128; if ``n >= k`` the K stride only shrinks
    towards ``k`` (one block), else it doubles while the N stride halves
    (N stride > 16 and N stride / 2 >= n). Returns the block length, or 0
    when all ``k`` terms form one block."""
    stride_n, stride_k = 128, 128
    if n < k:
        while stride_n > 16 and stride_n // 2 >= n:
            stride_k *= 2
            stride_n //= 2
    return 0 if stride_k >= k else stride_k


#: MLAS's K blocking when B is a constant (packed once: MLAS_SGEMM_PACKED_STRIDEK)
PACKED_K_BLOCK = 256


def _k_block(imp: Importer, n: int, k: int, packed: bool) -> int:
    if not ort_profile(imp):
        return 0
    if packed:
        return 0 if k <= PACKED_K_BLOCK else PACKED_K_BLOCK
    return sgemm_k_block(n, k)


# ---------------------------------------------------------------------------
# Float values
# ---------------------------------------------------------------------------

def float_value(imp: Importer, node: OnnxNode, i: int, what: str) -> Tensor | np.ndarray:
    """Input ``i`` as float32: a qnnref float32 tensor (a dequantized view
    gets a ``dequantize`` node, once per tensor) or a float32 constant array in
    ONNX layout (a quantized constant is dequantized here, exactly as the
    ``dequantize`` operator would)."""
    name = node.input(i)
    v = imp.value(name)
    if isinstance(v, Const):
        if v.quant is not None:
            if v.quant.block_size is not None and v.quant.scale.dtype != np.float32:
                raise Refused(f"{node.where()}: {what}: float16 block scales are not supported here")
            return np.asarray(dequantize_const(v.data, v.quant), np.float32)
        if v.dtype != "float32":
            raise Refused(f"{node.where()}: {what} is a {v.dtype} constant (float operators take float32)")
        return np.asarray(v.data, np.float32)
    if v.dequantized:
        views = imp.__dict__.setdefault("float_views", {})
        if v.name not in views:
            base = name if name not in imp.graph_outputs else f"{name}_float"
            views[v.name] = imp.emit("dequantize", [v.name], None, imp.out_name(base, v.perm))
        return Tensor(views[v.name], v.perm)
    dtype = imp.info(v).dtype
    if dtype != "float32":
        raise Refused(f"{node.where()}: {what} is a {dtype} tensor (float operators take float32)")
    return v


def _const(imp: Importer, data: np.ndarray, base: str) -> str:
    return imp.constant(np.ascontiguousarray(data, np.float32), "float32", None, base)


def _bind_float(imp: Importer, node: OnnxNode, op: str, inputs: list[str], attrs: dict, perm) -> None:
    """Emit one float operator producing the node's (first) output, in layout ``perm``."""
    out = node.outputs[0]
    name = imp.emit(op, inputs, attrs, imp.out_name(out, perm), node_name=node.name)
    imp.bind(out, Tensor(name, tuple(perm)))


def _in_layout(imp: Importer, v: Tensor | np.ndarray, perm, base: str, rank: int | None = None) -> str:
    """The qnnref name of float value ``v`` in layout ``perm``; a lower-rank
    value first gets leading 1s (ONNX broadcasting), as does a constant."""
    rank = len(perm) if rank is None else rank
    if isinstance(v, np.ndarray):
        data = v.reshape((1,) * (rank - v.ndim) + v.shape)
        return _const(imp, np.transpose(data, perm), base)
    shape = imp.shape(v)
    if len(shape) < rank:
        src = imp.onnx_layout(v)
        full = (1,) * (rank - len(shape)) + tuple(shape)
        v = Tensor(imp.emit("reshape", [src], {"shape": list(full)}, imp.fresh(f"{src}_r{rank}")),
                   layout.identity(rank))
    return imp.materialize(v, tuple(perm))


def _aligned(imp: Importer, node: OnnxNode, vals) -> tuple[list[str], tuple[int, ...]]:
    """Float values in one layout: that of the first run-time value of the
    highest rank (ONNX broadcasting is right-aligned: others get leading 1s)."""
    rank = max(v.ndim if isinstance(v, np.ndarray) else len(imp.shape(v)) for v in vals)
    runtime = [v for v in vals if isinstance(v, Tensor) and len(imp.shape(v)) == rank]
    perm = runtime[0].perm if runtime else layout.identity(rank)
    return [_in_layout(imp, v, perm, f"{node.name}_in{k}") for k, v in enumerate(vals)], perm


# ---------------------------------------------------------------------------
# Routing: integer operator (qdq.py) or float operator
# ---------------------------------------------------------------------------

def _snapshot(imp: Importer):
    return (len(imp.b.nodes), set(imp.b.tensors), set(imp.skip), set(imp.node_names),
            dict(imp._transposed), dict(imp.__dict__.get("float_views", {})), len(imp.bound))


def _rollback(imp: Importer, snap) -> None:
    """Undo what a refused integer fusion emitted or absorbed."""
    n_nodes, tensors, skip, names, transposed, views, n_bound = snap
    del imp.b.nodes[n_nodes:]
    for t in set(imp.b.tensors) - tensors:
        del imp.b.tensors[t]
    imp.skip, imp.node_names, imp._transposed = set(skip), set(names), dict(transposed)
    imp.__dict__["float_views"] = dict(views)      # copies: one snapshot may be rolled back twice
    for name in imp.bound[n_bound:]:               # values a fusion bound (later nodes' outputs)
        imp.values.pop(name, None)
    del imp.bound[n_bound:]


def _reason(node: OnnxNode, e: Exception) -> str:
    """A refusal message without the node's name (already said)."""
    return str(e).removeprefix(f"{node.where()}: ")


def _route(op_type: str, float_handler, ort_fuses=None) -> None:
    """Import ``op_type`` with its integer handler (if any) or as float.

    Under ``ort-*`` profiles with an ``ort_fuses`` test, the node is float
    exactly when ONNX Runtime does not fuse it. Otherwise the integer handler
    is tried first; if it refuses, the float handler imports the node (if it
    refuses too, both reasons are reported)."""
    integer_handler = HANDLERS.get(("", op_type))

    def handler(imp: Importer, node: OnnxNode) -> None:
        if integer_handler is None:
            float_handler(imp, node)
            return
        if op_type in ("Conv", "Gemm") and ort_profile(imp):
            node = _ort_weight_bias_quantization(imp, node)
        if ort_fuses is not None and ort_profile(imp) and not ort_fuses(imp, node):
            float_handler(imp, node)
            return
        snap = _snapshot(imp)
        try:
            integer_handler(imp, node)
            return
        except (Refused, QnnError) as e:
            _rollback(imp, snap)
            for o in node.outputs:
                imp.values.pop(o, None)
            first = e
        try:
            float_handler(imp, node)
        except (Refused, QnnError) as e:
            _rollback(imp, snap)
            for o in node.outputs:
                imp.values.pop(o, None)
            raise Refused(f"{first}; as a float32 operator: {_reason(node, e)}") from None

    handler.__doc__ = f"{op_type}: integer operator where possible, else float32 ({float_handler.__name__})."
    HANDLERS[("", op_type)] = handler


# -- ONNX Runtime's graph rewrites --------------------------------------------------

def _path_to_quantize(imp: Importer, name: str) -> bool:
    """ONNX Runtime's IsNoBranchPathToQuantizeLinear: single consumers, any
    number of Relu / Clip, then a QuantizeLinear -- which QDQ propagation
    (run before it) may have copied in front of Reshape, Transpose, ..."""
    for _ in range(64):
        nxt = imp.single_consumer(name)
        if nxt is None or nxt.domain != "" or nxt.input(0) != name:
            return False
        if nxt.is_quantize:
            return True
        if nxt.op_type not in ("Relu", "Clip", *_PROPAGATE):
            return False
        name = nxt.outputs[0]
    return False


#: operators ONNX Runtime's QDQPropagationTransformer moves Q / DQ pairs across
#: (single consumer, per-tensor constant parameters): a DequantizeLinear before
#: them, or a QuantizeLinear after them, counts as adjacent
_PROPAGATE = ("MaxPool", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice")


def _produced_by_dequantize(imp: Importer, name: str) -> bool:
    """Whether ONNX value ``name`` is, for ONNX Runtime, the output of a
    per-tensor DequantizeLinear: directly, or through single-consumer
    operators QDQ propagation crosses (not Resize, DepthToSpace, ...)."""
    producers = imp.__dict__.setdefault("producers", {o: n for n in imp.onnx.nodes for o in n.outputs if o})
    for hops in range(64):
        p = producers.get(name)
        if p is None or p.domain not in ("", "com.microsoft"):
            return False
        if p.op_type == "DequantizeLinear":
            # propagation starts only from a DequantizeLinear with one consumer
            # and per-tensor parameters
            v = imp.values.get(name)
            return hops == 0 or (imp.single_consumer(name) is not None and isinstance(v, Tensor)
                                 and v.dequantized and imp.onnx_quant(v).axis is None)
        if p.op_type not in _PROPAGATE or p.domain != "":
            return False
        name = p.input(0)
    return False


def _ort_int8_weight_quant(w: np.ndarray):
    """ONNX Runtime's GetQuantizationParameter<int8_t> for a float weight
    initializer: the range [min(w, 0), max(w, 0)] onto [-128, 127] in float32,
    ``s = (max - min) / 255`` (1 when the range is empty) and
    ``zp = round_half_even(clamp(-128 - min / s))``."""
    f = np.float32
    lo, hi = min(f(w.min(initial=0)), f(0)), max(f(w.max(initial=0)), f(0))
    scale = f(1) if lo == hi else f(f(hi - lo) / f(255))
    zp = np.rint(np.clip(f(f(-128) - f(lo / scale)), -128, 127))
    return scale, np.int8(zp)


def _ort_weight_bias_quantization(imp: Importer, node: OnnxNode) -> OnnxNode:
    """ONNX Runtime's WeightBiasQuantization (level 1) for a Conv / Gemm whose
    input is a per-tensor DequantizeLinear and whose output reaches a
    QuantizeLinear through Relu / Clip (and propagation) only:

    * a float32 weight initializer becomes DequantizeLinear(int8), quantized
      per tensor with :func:`_ort_int8_weight_quant` and the profile's
      quantize recipe (ONNX Runtime folds that QuantizeLinear);
    * a float 1-D bias initializer becomes DequantizeLinear(int32):
      ``s_b = fl32(s_x * s_w)``, ``q = Cast(Round(fl32(B / s_b)))`` (ties to
      even), per output channel when the weight is.

    The group may then be fused (the integer operator reads the integers); if
    not, the float operator computes with their dequantized values, as ONNX
    Runtime does. Returns the node reading fresh values bound to the quantized
    constants, or the node unchanged."""
    from .qdq import quantize_const
    from .reader import OnnxQuant
    x, w = imp.value(node.input(0)), imp.value(node.input(1))
    b = imp.value(node.input(2)) if node.input(2) else None
    if not (isinstance(x, Tensor) and x.dequantized and _produced_by_dequantize(imp, node.input(0))):
        return node
    xq = imp.onnx_quant(x)
    if xq is None or xq.axis is not None or not _path_to_quantize(imp, node.outputs[0]):
        return node
    float_bias = isinstance(b, Const) and b.quant is None and b.dtype == "float32" and b.data.ndim == 1
    if node.input(2) and not float_bias and not (isinstance(b, Const) and b.quant is not None):
        return node                                      # a computed bias: ORT leaves the node alone
    inputs = list(node.inputs)
    if isinstance(w, Const) and w.quant is None:
        if w.dtype != "float32":
            return node
        scale, zp = _ort_int8_weight_quant(w.data)
        wq = OnnxQuant("int8", np.asarray(scale, np.float32), np.asarray(zp, np.int8), None, None)
        inputs[1] = imp.fresh(f"{node.input(1)}_int8")
        imp.bind(inputs[1], Const(quantize_const(imp, w.data, wq), "int8", wq))
    elif not (isinstance(w, Const) and w.quant is not None) or not float_bias:
        return node                                      # nothing to quantize (or a computed weight)
    else:
        wq = w.quant
        if wq.block_size is not None:
            return node
        if wq.axis is not None:
            expected = 0 if node.op_type == "Conv" else (0 if node.attr("transB", 0) else 1)
            if wq.axis != expected or wq.scale.size != b.data.size:
                return node
    if float_bias:
        f = np.float32
        with np.errstate(all="ignore"):
            s_b = (np.asarray(xq.scale, f) * np.asarray(wq.scale, f)).astype(f)
            s_b = s_b.reshape(-1) if wq.axis is not None else s_b.reshape(())
            q = np.rint((b.data.astype(f) / s_b).astype(f))
        if not np.all(np.isfinite(q)) or np.any(np.abs(q) >= 2.0**31):
            return node                                  # ORT's Cast would be undefined: leave it float
        inputs[2] = imp.fresh(f"{node.input(2)}_int32")
        imp.bind(inputs[2], Const(q.astype(np.int32), "int32",
                                  OnnxQuant("int32", s_b, None, 0 if wq.axis is not None else None, None)))
    return OnnxNode(node.index, node.name, node.op_type, node.domain, inputs, node.outputs, node.attrs)


# -- which groups ONNX Runtime fuses ------------------------------------------------

def _is_dq_input(imp: Importer, node: OnnxNode, i: int, int32: bool = False) -> bool:
    """Input ``i`` is a DequantizeLinear output (an int32 one for a bias)."""
    name = node.input(i)
    if not name:
        return False
    v = imp.value(name)
    if isinstance(v, Const):
        return v.quant is not None and (v.quant.dtype == "int32") == int32
    return v.dequantized and not int32 and _produced_by_dequantize(imp, name)


def _redundant_activation(imp: Importer, act: OnnxNode, q_node: OnnxNode) -> bool:
    """Whether ONNX Runtime removes a Relu / Clip right before a QuantizeLinear
    (ReluQuantFusion: the zero point is the type's minimum; ClipQuantFusion:
    the clip range covers [s * (qmin - zp), s * (qmax - zp)] within float32
    epsilon). Only per-tensor int8 / uint8 QuantizeLinear with constant parameters."""
    try:
        scale = imp.const(q_node, 1, "scale")
        zp = imp.const(q_node, 2, "zero point")
    except Refused:
        return False
    if scale is None or zp is None or np.asarray(scale).size != 1 or np.asarray(zp).size != 1:
        return False
    zp_dtype = imp.const_dtype(q_node, 2)
    if zp_dtype not in ("int8", "uint8"):
        return False
    qmin, qmax = (-128, 127) if zp_dtype == "int8" else (0, 255)
    z = int(np.asarray(zp).reshape(()))
    if act.op_type == "Relu":
        return z == qmin
    s = np.float32(np.asarray(scale).reshape(()))
    lower, upper = s * np.float32(qmin - z), s * np.float32(qmax - z)
    try:
        if imp.onnx.opset < 11:
            lo, hi = act.attr("min"), act.attr("max")
        else:
            lo, hi = imp.const(act, 1, "min"), imp.const(act, 2, "max")
    except Refused:
        return False
    lo = np.float32(-np.finfo(np.float32).max if lo is None else np.asarray(lo).reshape(()))
    hi = np.float32(np.finfo(np.float32).max if hi is None else np.asarray(hi).reshape(()))
    eps = np.finfo(np.float32).eps
    return not (eps < lo - lower or eps < upper - hi)


def _quantize_after(imp: Importer, name: str) -> OnnxNode | None:
    """The QuantizeLinear that ONNX Runtime finds right after value ``name``:
    its only consumer, or one reached through single-consumer operators that
    QDQ propagation crosses (it copies the QuantizeLinear before them)."""
    for _ in range(64):
        nxt = imp.single_consumer(name)
        if nxt is None or nxt.input(0) != name:
            return None
        if nxt.is_quantize:
            return nxt
        if nxt.domain != "" or nxt.op_type not in _PROPAGATE:
            return None
        name = nxt.outputs[0]
    return None


def _output_to_quantize(imp: Importer, node: OnnxNode) -> bool:
    """The node's output goes to exactly one QuantizeLinear, possibly through
    a Relu / Clip that ONNX Runtime removes (and operators QDQ propagation crosses)."""
    nxt = imp.single_consumer(node.outputs[0])
    if nxt is not None and nxt.domain == "" and nxt.op_type in ("Relu", "Clip") and nxt.input(0) == node.outputs[0]:
        q = imp.single_consumer(nxt.outputs[0])
        return q is not None and q.is_quantize and q.input(0) == nxt.outputs[0] and _redundant_activation(imp, nxt, q)
    return _quantize_after(imp, node.outputs[0]) is not None


def _dequantize_has_zero_point(imp: Importer, name: str) -> bool:
    """Whether the DequantizeLinear that ONNX value ``name`` comes from
    (directly, or through the operators QDQ propagation crosses) has an
    explicit zero point input. A value the importer quantized itself (as
    ONNX Runtime's WeightBiasQuantization) has one."""
    producers = imp.__dict__.setdefault("producers", {o: n for n in imp.onnx.nodes for o in n.outputs if o})
    for _ in range(64):
        p = producers.get(name)
        if p is None:
            return True
        if p.op_type == "DequantizeLinear":
            return bool(p.input(2))
        if p.op_type not in _PROPAGATE or not p.inputs:
            return True                      # not a DequantizeLinear's value: other checks decide
        name = p.input(0)
    return True


def _ort_fuses_conv_gemm(imp: Importer, node: OnnxNode) -> bool:
    bias_ok = not node.input(2) or _is_dq_input(imp, node, 2, int32=True)
    # ONNX Runtime 1.32 fuses a QDQ Gemm into QGemm only when the
    # DequantizeLinear of A and of B name their zero points (measured: without
    # one the Gemm stays float, with or without a bias, on every x86 CPU; the
    # bias's may lack one); Conv does not care
    weight_ok = node.op_type != "Gemm" or all(_dequantize_has_zero_point(imp, node.input(i)) for i in (0, 1))
    return (_is_dq_input(imp, node, 0) and _is_dq_input(imp, node, 1) and bias_ok and weight_ok
            and _output_to_quantize(imp, node) and not qdq.ort_s8_to_u8_splits_group(imp, node))


def _ort_fuses_binary(imp: Importer, node: OnnxNode) -> bool:
    return _is_dq_input(imp, node, 0) and _is_dq_input(imp, node, 1) and _output_to_quantize(imp, node)


def _ort_fuses_matmul(imp: Importer, node: OnnxNode) -> bool:
    return _ort_fuses_binary(imp, node) and not qdq.ort_s8_to_u8_splits_group(imp, node)


# ---------------------------------------------------------------------------
# Conv
# ---------------------------------------------------------------------------

def float_conv(imp: Importer, node: OnnxNode) -> None:
    x = float_value(imp, node, 0, "input X")
    w = float_value(imp, node, 1, "weight W")
    if isinstance(x, np.ndarray):
        raise Refused(f"{node.where()}: a constant convolution input is not supported")
    xshape = imp.shape(x)
    if len(xshape) != 4:
        raise Refused(f"{node.where()}: only 2-D convolutions (NCHW inputs) are supported, input rank "
                      f"{len(xshape)}")
    wshape = w.shape if isinstance(w, np.ndarray) else imp.shape(w)
    kernel = list(wshape[2:])
    ks = node.attr("kernel_shape")
    if ks is not None and list(ks) != kernel:
        raise Refused(f"{node.where()}: kernel_shape {list(ks)} differs from the weight's {kernel}")
    geo = layout.window_geometry(node, xshape, kernel=kernel)
    groups = node.attr("group", 1)
    NHWC = layout.nhwc(4)
    inputs = [imp.materialize(x, NHWC), _in_layout(imp, w, NHWC, f"{node.name}_w_ohwi")]
    if node.input(2):
        bias = float_value(imp, node, 2, "bias B")
        inputs.append(_const(imp, bias.reshape(-1), f"{node.name}_bias") if isinstance(bias, np.ndarray)
                      else imp.onnx_layout(bias))
    # ONNX Runtime: im2col + SGEMM per group, N = OH * OW output pixels, K = C/group * KH * KW
    # terms; its MLAS blocking (one thread) decides the K blocks.
    from ..ops.conv2d import output_size
    oh = output_size(xshape[2], kernel[0], geo["strides"][0], geo["dilations"][0], geo["pads"][0], geo["pads"][2])
    ow = output_size(xshape[3], kernel[1], geo["strides"][1], geo["dilations"][1], geo["pads"][1], geo["pads"][3])
    k = wshape[1] * kernel[0] * kernel[1]
    attrs = dict(geo, groups=groups, k_block=_k_block(imp, max(oh * ow, 1), k, packed=False))
    channel_block = _nchwc_channel_block(imp, node, groups, wshape[1], kernel)
    if channel_block:
        attrs.update(k_block=0, channel_block=channel_block)
    _bind_float(imp, node, "float_conv2d", inputs, attrs, NHWC)


#: MLAS's pointwise (1x1) NCHWc kernel sums the input channels in batches of this many
NCHWC_POINTWISE_CHANNELS = 128


def _nchwc_channel_block(imp: Importer, node: OnnxNode, groups: int, c_in: int, kernel: list) -> int:
    """The float_conv2d ``channel_block`` of a Conv that ONNX Runtime runs on
    MLAS's NCHWc kernels (its NchwcTransformer: a float initializer as the
    weights, ``group = 1``), given the target CPU's NCHWc block
    (``imp.mlas_nchwc_block``: 8 AVX2/FMA3, 16 AVX-512F); 0 otherwise."""
    block = imp.mlas_nchwc_block
    w = imp.value(node.input(1))
    if not ort_profile(imp) or not block or groups != 1 or not (isinstance(w, Const) and w.quant is None):
        return 0
    if c_in < block:
        return 1                                   # the NCHW-input kernel: one partial sum per channel
    if list(kernel) == [1, 1]:
        return NCHWC_POINTWISE_CHANNELS            # the pointwise kernel
    return block


# ---------------------------------------------------------------------------
# MatMul, Gemm
# ---------------------------------------------------------------------------

def _matmul_operand(imp: Importer, node: OnnxNode, v, what: str, transposed: bool) -> str:
    """A float MatMul / Gemm operand in ONNX layout (Gemm's transA / transB applied)."""
    if isinstance(v, np.ndarray):
        if v.ndim < 2:
            raise Refused(f"{node.where()}: 1-D {what} is not supported")
        data = np.swapaxes(v, -1, -2) if transposed else v
        return _const(imp, data, f"{node.name}_{what}")
    rank = len(imp.shape(v))
    if rank < 2:
        raise Refused(f"{node.where()}: 1-D {what} is not supported")
    if transposed:                             # Gemm (2-D): relabel the layout, as Transpose does
        v = Tensor(v.name, tuple(1 - a for a in v.perm))
    return imp.onnx_layout(v)


def float_matmul_node(imp: Importer, node: OnnxNode) -> None:
    is_gemm = node.op_type == "Gemm"
    a = float_value(imp, node, 0, "input A")
    b = float_value(imp, node, 1, "input B")
    if isinstance(a, np.ndarray):
        raise Refused(f"{node.where()}: a constant first input is not supported")
    if is_gemm:
        for attr in ("alpha", "beta"):
            if float(node.attr(attr, 1.0)) != 1.0:
                raise Refused(f"{node.where()}: {attr} = {node.attr(attr)} (only 1.0 is supported)")
        if len(imp.shape(a)) != 2 or (b.ndim if isinstance(b, np.ndarray) else len(imp.shape(b))) != 2:
            raise Refused(f"{node.where()}: Gemm operands must be 2-D")
    a_name = _matmul_operand(imp, node, a, "a", is_gemm and bool(node.attr("transA", 0)))
    b_name = _matmul_operand(imp, node, b, "b", is_gemm and bool(node.attr("transB", 0)))
    k, n = imp.info(b_name).shape[-2:]
    inputs = [a_name, b_name]
    if is_gemm and node.input(2):
        c = float_value(imp, node, 2, "input C")
        if not isinstance(c, np.ndarray):
            raise Refused(f"{node.where()}: a run-time bias C is not supported")
        if c.size not in (1, n) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
            raise Refused(f"{node.where()}: bias C of shape {list(c.shape)}: qnnref adds one value per "
                          f"output column (shape [{n}])")
        inputs.append(_const(imp, np.broadcast_to(c.reshape(-1), (n,)), f"{node.name}_bias"))
    # ONNX Runtime packs a float initializer B once (MatMul / Gemm PrePack);
    # a DequantizeLinear output is computed at run time and not packed
    bv = imp.value(node.input(1))
    packed = isinstance(bv, Const) and bv.quant is None
    attrs = {"k_block": _k_block(imp, n, k, packed), "bias_first": bool(is_gemm and len(inputs) == 3)}
    rank = len(imp.info(a_name).shape)
    rank = max(rank, len(imp.info(b_name).shape))
    _bind_float(imp, node, "float_matmul", inputs, attrs, layout.identity(rank))


# ---------------------------------------------------------------------------
# Elementwise
# ---------------------------------------------------------------------------

_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Min": "min", "Max": "max"}
_UNARY = {"Relu": "relu", "Neg": "neg", "Abs": "abs", "Sqrt": "sqrt", "Exp": "exp", "Sigmoid": "sigmoid",
          "Tanh": "tanh"}


def float_binary(imp: Importer, node: OnnxNode) -> None:
    if len([i for i in node.inputs if i]) != 2:
        raise Refused(f"{node.where()}: only two inputs are supported")
    a = float_value(imp, node, 0, "input A")
    b = float_value(imp, node, 1, "input B")
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        raise Refused(f"{node.where()}: both inputs are constants")
    names, perm = _aligned(imp, node, [a, b])
    _bind_float(imp, node, "float_elementwise", names, {"function": _BINARY[node.op_type]}, perm)


def float_unary(imp: Importer, node: OnnxNode) -> None:
    x = float_value(imp, node, 0, "input X")
    if isinstance(x, np.ndarray):
        raise Refused(f"{node.where()}: a constant input is not supported")
    attrs = {"function": _UNARY.get(node.op_type, "clip")}
    if node.op_type == "Clip":
        if imp.onnx.opset < 11:
            lo, hi = node.attr("min"), node.attr("max")
        else:
            lo, hi = imp.const(node, 1, "min"), imp.const(node, 2, "max")
        attrs["min"] = None if lo is None else float(np.float32(scalar(node.where(), lo, "min")))
        attrs["max"] = None if hi is None else float(np.float32(scalar(node.where(), hi, "max")))
    _bind_float(imp, node, "float_elementwise", [x.name], attrs, x.perm)


def batch_normalization(imp: Importer, node: OnnxNode) -> None:
    """Inference BatchNormalization as ONNX Runtime computes it: per channel
    ``a = scale * (1 / sqrt(var + eps))`` and ``b = B - mean * a`` in float32,
    then ``y = x * a + b``: one float32 multiplication and one addition."""
    if len([o for o in node.outputs if o]) > 1 or node.attr("training_mode", 0):
        raise Refused(f"{node.where()}: training mode (running statistics as outputs) is not supported")
    if node.attr("spatial", 1) != 1:
        raise Refused(f"{node.where()}: spatial = 0 is not supported")
    x = float_value(imp, node, 0, "input X")
    if isinstance(x, np.ndarray):
        raise Refused(f"{node.where()}: a constant input is not supported")
    params = []
    for i, what in enumerate(("scale", "B", "input_mean", "input_var"), start=1):
        p = float_value(imp, node, i, what)
        if not isinstance(p, np.ndarray):
            raise Refused(f"{node.where()}: {what} must be a constant")
        params.append(p.reshape(-1))
    scale, bias, mean, var = params
    shape = imp.shape(x)
    if len(shape) < 2 or any(p.size != shape[1] for p in params):
        raise Refused(f"{node.where()}: parameters must have one value per channel (axis 1 of {list(shape)})")
    f = np.float32
    eps = f(node.attr("epsilon", 1e-5))
    with np.errstate(all="ignore"):
        inv_std = f(1) / np.sqrt(var + eps)
        a = inv_std * scale
        b = bias - mean * a
    channel = [1] * len(shape)
    channel[1] = shape[1]
    a_name = _in_layout(imp, a.reshape(channel), x.perm, f"{node.name}_scale")
    b_name = _in_layout(imp, b.reshape(channel), x.perm, f"{node.name}_shift")
    scaled = imp.emit("float_elementwise", [x.name, a_name], {"function": "mul"},
                      imp.fresh(f"{node.outputs[0]}_scaled"), node_name=f"{node.name}_mul")
    name = imp.emit("float_elementwise", [scaled, b_name], {"function": "add"},
                    imp.out_name(node.outputs[0], x.perm), node_name=node.name)
    imp.bind(node.outputs[0], Tensor(name, x.perm))


def softmax(imp: Importer, node: OnnxNode) -> None:
    x = float_value(imp, node, 0, "input")
    if isinstance(x, np.ndarray):
        raise Refused(f"{node.where()}: a constant input is not supported")
    shape = imp.shape(x)
    rank = len(shape)
    old = imp.onnx.opset < 13
    axis = layout.normalize_axis(node.attr("axis", 1 if old else -1), rank, node.where())
    if not old or axis == rank - 1:
        _bind_float(imp, node, "float_softmax", [x.name], {"axis": x.perm.index(axis)}, x.perm)
        return
    # opset < 13: the softmax of each row of the input flattened to 2-D at axis
    rows, cols = int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))
    src = imp.onnx_layout(x)
    flat = imp.emit("reshape", [src], {"shape": [rows, cols]}, imp.fresh(f"{node.outputs[0]}_2d"))
    soft = imp.emit("float_softmax", [flat], {"axis": 1}, imp.fresh(f"{node.outputs[0]}_2d_softmax"),
                    node_name=node.name)
    out = imp.emit("reshape", [soft], {"shape": list(shape)}, imp.out_name(node.outputs[0], layout.identity(rank)))
    imp.bind(node.outputs[0], Tensor(out, layout.identity(rank)))


def float_average(imp: Importer, node: OnnxNode) -> None:
    """GlobalAveragePool / ReduceMean of float values as ``float_mean``, in
    the input's layout (the averaged axes renumbered in it)."""
    x = float_value(imp, node, 0, "input")
    if isinstance(x, np.ndarray):
        raise Refused(f"{node.where()}: a constant input is not supported")
    rank = len(imp.shape(x))
    if node.op_type == "GlobalAveragePool":
        axes, keepdims = list(range(2, rank)), True
    else:
        axes, keepdims = reduce_mean_axes(imp, node, rank), bool(node.attr("keepdims", 1))
    if not axes:
        raise Refused(f"{node.where()}: no axis to average over")
    mean_axes, perm = mean_layout(node, x.perm, axes, keepdims)
    _bind_float(imp, node, "float_mean", [x.name], {"axes": mean_axes, "keepdims": keepdims}, perm)


# ---------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------

_route("Conv", float_conv, _ort_fuses_conv_gemm)
_route("Gemm", float_matmul_node, _ort_fuses_conv_gemm)
_route("MatMul", float_matmul_node, _ort_fuses_matmul)
for _op in _BINARY:
    _route(_op, float_binary, _ort_fuses_binary if _op in ("Add", "Mul") else None)
for _op in (*_UNARY, "Clip"):
    _route(_op, float_unary)
_route("BatchNormalization", batch_normalization)
_route("Softmax", softmax)
_route("GlobalAveragePool", float_average)
_route("ReduceMean", float_average)


# ---------------------------------------------------------------------------
# com.microsoft MatMulNBits: float activations, 4-bit blocked weights
# ---------------------------------------------------------------------------

def _unpack_nibbles(packed: np.ndarray, count: int) -> np.ndarray:
    """The 4-bit values of each row of uint8 ``packed`` [R, bytes], the low
    nibble first (MatMulNBits' order): [R, count]."""
    low, high = packed & 0x0F, packed >> 4
    return np.stack([low, high], axis=-1).reshape(packed.shape[0], -1)[:, :count].astype(np.uint8)


@handles("MatMulNBits", domain=MS)
def matmul_nbits(imp: Importer, node: OnnxNode) -> None:
    """``Y = A @ dequantize(B)^T + bias`` with B [N, K] of uint4 codes in
    blocks of ``block_size`` along K, one float32 scale and one 4-bit zero
    point (default 8) per block: a uint4 constant [K, N] quantized blocked on
    axis 0, a ``dequantize`` node (``fl32(fl32(q - zp) * s)``) and
    ``float_matmul``. ONNX Runtime computes it in float32 with its own
    summation order: compared within a bound (spec/onnx-import.md,
    "MatMulNBits"), never bit for bit. ``accuracy_level`` 4 is refused: ONNX
    Runtime then quantizes A to int8 per block on the fly (MLAS CompInt8), an
    arithmetic qnnref does not emulate."""
    k, n = int(node.attr("K")), int(node.attr("N"))
    bits, block = int(node.attr("bits", 4)), int(node.attr("block_size"))
    level = int(node.attr("accuracy_level", 0))
    if bits != 4:
        raise Refused(f"{node.where()}: bits = {bits} (only 4-bit weights are supported)")
    if level == 4:
        raise Refused(f"{node.where()}: accuracy_level 4: ONNX Runtime quantizes A to int8 per block at run "
                      "time (MLAS CompInt8); qnnref does not emulate that arithmetic")
    if block < 16 or block & (block - 1):
        raise Refused(f"{node.where()}: block_size {block} (a power of two >= 16 expected)")
    if node.input(4) or node.input(6):
        raise Refused(f"{node.where()}: g_idx / prepacked inputs are not supported")
    a = float_value(imp, node, 0, "input A")
    if isinstance(a, np.ndarray):
        raise Refused(f"{node.where()}: a constant input A is not supported")
    if imp.shape(a)[-1] != k or len(imp.shape(a)) < 2:
        raise Refused(f"{node.where()}: input A of shape {list(imp.shape(a))} (rank >= 2, last dimension K = {k})")
    blocks = -(-k // block)
    b = imp.const(node, 1, "input B")
    scales = imp.const(node, 2, "scales")
    if imp.const_dtype(node, 1) != "uint8" or b.shape != (n, blocks, block // 2):
        raise Refused(f"{node.where()}: B must be uint8 [N, ceil(K / block_size), block_size / 2] = "
                      f"{[n, blocks, block // 2]}, got {imp.const_dtype(node, 1)} {list(b.shape)}")
    if scales.dtype != np.float32 or scales.size != n * blocks:
        raise Refused(f"{node.where()}: scales must be float32 with N * ceil(K / block_size) = {n * blocks} values")
    zp = imp.const(node, 3, "zero points")
    if zp is None:
        zps = np.full((n, blocks), 8, np.uint8)
    elif zp.dtype == np.uint8 and zp.size == n * -(-blocks // 2):
        zps = _unpack_nibbles(zp.reshape(n, -1), blocks)
    else:
        raise Refused(f"{node.where()}: zero points must be packed 4-bit uint8 [N * ceil(blocks / 2)] "
                      f"(float zero points are not supported)")
    codes = _unpack_nibbles(b.reshape(n, -1), k)                      # [N, K]
    q = OnnxQuant("uint4", np.ascontiguousarray(scales.reshape(n, blocks).T),
                  np.ascontiguousarray(zps.T), 0, block)              # blocked along K of [K, N]
    w = imp.constant(np.ascontiguousarray(codes.T), "uint4", q.to_quant(layout.identity(2)), f"{node.name}_B")
    wf = imp.emit("dequantize", [w], None, imp.fresh(f"{node.name}_B_float"))
    inputs = [imp.onnx_layout(a), wf]
    if node.input(5):
        bias = float_value(imp, node, 5, "bias")
        if not isinstance(bias, np.ndarray) or bias.shape != (n,):
            raise Refused(f"{node.where()}: bias must be a float32 constant [N]")
        inputs.append(_const(imp, bias, f"{node.name}_bias"))
    rank = len(imp.shape(a))
    # one FMA chain per dot product, the bias added after: ONNX Runtime 1.32
    # (MLAS, fp32 compute) gave these bits for every A with M > 1 tested
    attrs = {"k_block": 0, "bias_first": False}
    _bind_float(imp, node, "float_matmul", inputs, attrs, layout.identity(rank))
