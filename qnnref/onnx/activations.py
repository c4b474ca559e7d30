"""Relu and Clip on quantized values (those right after a fused operator
are absorbed there as its activation range, see :mod:`.qdq`)."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..arith import dequantize_values
from .context import Importer, Tensor
from .movement import emit_moved
from .qdq import activation_range, quantize_linear
from .quantparams import qdq_quant
from .reader import OnnxNode, Refused
from .registry import handles


@handles("Relu", "Clip")
def relu_clip(imp: Importer, node: OnnxNode) -> None:
    """On a dequantized view: ``Relu(DQ(x)) = DQ(max(x, zp))`` exactly (DQ is
    monotone and DQ(zp) = 0), and Clip likewise when its bounds are exactly
    quantized values. On integers (QOperator): ONNX's integer Relu / Clip.
    Relu / Clip right after a fused operator were absorbed there."""
    v = imp.value(node.input(0))
    if not isinstance(v, Tensor):
        raise Refused(f"{node.where()}: a constant input is not supported")
    info = imp.info(v)
    if node.op_type == "Relu":
        lo, hi = 0, None
    elif imp.onnx.opset < 11:
        lo, hi = node.attr("min"), node.attr("max")
    else:
        lo, hi = imp.const(node, 1, "min"), imp.const(node, 2, "max")
    if v.dequantized:
        q = info.quant
        if q is None or q.axis is not None:
            raise Refused(f"{node.where()}: needs a per-tensor quantized input")
        try:
            lo, hi = (_exact_code(node, q, info.dtype, b) for b in (lo, hi))
        except Refused:
            if _clip_then_quantize(imp, node, v):
                return
            raise
    elif not info.dt.is_int:
        if _clip_then_quantize(imp, node, v):       # Relu / Clip of a float input right before a QuantizeLinear
            return
        raise Refused(f"{node.where()}: float {node.op_type} not followed by a QuantizeLinear")
    elif v.cast:
        lo, hi = _view_bound(node, v, info, lo, True), _view_bound(node, v, info, hi, False)
    else:
        lo, hi = (None if b is None else _integer_bound(node, b) for b in (lo, hi))
    dt = info.dt
    lo = None if lo is None or lo <= dt.min else lo
    hi = None if hi is None or hi >= dt.max else hi
    if lo is None and hi is None:
        imp.bind(node.outputs[0], v)
        return
    emit_moved(imp, node, v, "clamp", [v.name], {"min": lo, "max": hi}, v.perm, info.quant)


def _view_bound(node: OnnxNode, v: Tensor, info, bound, lower: bool) -> int | None:
    """A Clip bound on a cast view (integers + offset, converted exactly), in
    the integers' units. A bound inside the range must be an integer: else
    the clipped value would be the bound, which no integer is."""
    if bound is None:
        return None
    b = float(np.asarray(bound).reshape(()))
    lo, hi = info.dt.min + v.offset, info.dt.max + v.offset
    if (lower and b <= lo) or (not lower and b >= hi):
        return None
    if not b.is_integer():
        raise Refused(f"{node.where()}: bound {b} on integers cast to {v.cast}: not an integer")
    return min(max(int(b), lo), hi) - v.offset


def _integer_bound(node: OnnxNode, bound) -> int:
    """A Clip bound on an integer tensor: one integer."""
    b = np.asarray(bound)
    if b.size != 1 or b.dtype.kind not in "iu":
        raise Refused(f"{node.where()}: a bound on integers must be one integer, got {b.dtype} of shape "
                      f"{list(b.shape)}")
    return int(b.reshape(()))


def _exact_code(node: OnnxNode, q, dtype: str, bound) -> int | None:
    """The integer code whose dequantized value is exactly the float ``bound``
    (None: no bound); saturating bounds beyond the range give the range's end."""
    if bound is None:
        return None
    if np.asarray(bound).size != 1 or np.asarray(bound).dtype.kind not in "fiu":
        raise Refused(f"{node.where()}: a bound must be one number, got shape {list(np.shape(bound))}")
    b = np.float32(np.asarray(bound).reshape(()))
    dt = dtypes.get(dtype)
    s, zp = float(q.scale), int(q.zero_point_or_zeros())
    code = float(np.rint(np.float64(b) / s)) + zp
    if code <= dt.min or code >= dt.max:
        lo_real = dequantize_values(dt.min, q.scale, zp)
        hi_real = dequantize_values(dt.max, q.scale, zp)
        if code <= dt.min and b <= lo_real:
            return dt.min
        if code >= dt.max and b >= hi_real:
            return dt.max
    code = int(code)
    if dequantize_values(code, q.scale, zp) != b:
        raise Refused(f"{node.where()}: the bound {float(b)} is not exactly a quantized value, so the result is "
                      "not a dequantized integer; put a QuantizeLinear right after it")
    return code


def _clip_then_quantize(imp: Importer, node: OnnxNode, v: Tensor) -> bool:
    """Relu / Clip of ``r`` (a float input, or DQ(x) with bounds that are not
    codes of x) -> QuantizeLinear(q): ``Q(clip(r, a, b)) = clip(Q(r), Q(a), Q(b))``
    because Q is monotone, so the QuantizeLinear is applied first and the
    clamp happens in its integers."""
    nxt = imp.single_consumer(node.outputs[0])
    if nxt is None or not nxt.is_quantize or nxt.input(0) != node.outputs[0]:
        return False
    q = qdq_quant(imp, nxt, None, None)
    lo, hi = activation_range(imp, node, q)
    # quantize the unclipped value (under a temporary ONNX name)...
    tmp = imp.fresh(f"{nxt.outputs[0]}_unclipped")
    imp.bind(node.outputs[0], v)
    quantize_linear(imp, OnnxNode(nxt.index, nxt.name, nxt.op_type, nxt.domain, nxt.inputs, [tmp], nxt.attrs))
    imp.values.pop(node.outputs[0])              # the clipped float value itself is never computed
    imp.skip.add(nxt.index)
    t = imp.values.pop(tmp)
    if lo is None and hi is None:
        imp.bind(nxt.outputs[0], t)
        return True
    # ...then clamp its integers: the result is the QuantizeLinear's output
    name = imp.out_name(nxt.outputs[0], t.perm)
    imp.emit("clamp", [t.name], {"min": lo, "max": hi}, name, imp.info(t).quant, node_name=node.name)
    imp.bind(nxt.outputs[0], Tensor(name, t.perm))
    return True
