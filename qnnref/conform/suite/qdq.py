"""Generators: QuantizeLinear, DequantizeLinear, the QDQ groups and dynamic quantization."""
from __future__ import annotations

import numpy as np

from ..onnxgraph import OnnxGraph
from .data import (
    QRANGE,
    SHORT,
    acc_magnitude,
    activations,
    channel_scales,
    conv_out,
    float_inputs,
    log_uniform,
    output_scale,
    scale,
    weights,
    zero_point,
)
from .elementwise import _BROADCASTS
from .linear import _conv_geometry, _cycle, _matmul_shapes, _pair, _regime

Q_TYPES = ("uint8", "int8", "uint8", "int8", "uint16", "int16", "int4", "uint4")


def gen_quantizelinear(rng, i):
    regime = _regime(i)
    dt = _cycle(i, Q_TYPES)
    rank = int(rng.integers(1, 5))
    shape = tuple(int(v) for v in rng.integers(1, 8, size=rank))
    style = rng.choice(["per-tensor", "per-tensor", "per-axis", "blocked"])
    pow2 = regime == "ties" or rng.random() < 0.2
    g = OnnxGraph()
    attrs = {}
    if style == "per-tensor":
        sv, zv = scale(rng, 2**-10, 2**2, pow2), zero_point(rng, dt)
        s_full, z_full = sv, zv
    else:
        axis = int(rng.integers(0, rank))
        attrs["axis"] = axis
        if style == "per-axis":
            block = 1
        else:
            block = int(rng.integers(1, 4))
            attrs["block_size"] = block
            length = block * int(rng.integers(1, 4)) + int(rng.integers(0, block))
            shape = shape[:axis] + (length,) + shape[axis + 1:]
        sshape = [1] * rank if style == "per-axis" else list(shape)
        sshape[axis] = -(-shape[axis] // block)
        count = int(np.prod(sshape))
        sv = channel_scales(rng, count, 2**-10, 2**2, pow2).reshape(sshape)
        zv = np.array([zero_point(rng, dt) for _ in range(count)]).reshape(sshape)
        # each element's own scale and zero point, to choose its input value
        s_full = np.repeat(sv, block, axis=axis).take(range(shape[axis]), axis=axis)
        z_full = np.repeat(zv, block, axis=axis).take(range(shape[axis]), axis=axis)
        if style == "per-axis":
            sv, zv = sv.reshape(-1), zv.reshape(-1)
    x = float_inputs(rng, shape, s_full, z_full, dt, regime)
    g.input("x", "float32", shape)
    g.const("y_scale", sv, "float32")
    ins = ["x", "y_scale"]
    with_zp = dt not in ("uint8",) or rng.random() < 0.8
    if with_zp:
        g.const("y_zero_point", zv, dt)
        ins.append("y_zero_point")
    elif np.any(np.asarray(zv) != 0):
        zv = np.zeros_like(np.asarray(zv))
    g.node("QuantizeLinear", ins, "q", name="quantize", **attrs)
    tags = [SHORT[dt], style, regime]
    case = {}
    if dt in ("int4", "uint4"):
        # ONNX Runtime cannot hand 4-bit tensors to Python: dequantize them back
        g.node("DequantizeLinear", ["q", "y_scale"] + (["y_zero_point"] if with_zp else []), "y",
               name="dequantize", **attrs)
        g.output("y", "float32", shape)
        tags.append("via-DQ")
        case["float_reason"] = "4-bit QuantizeLinear read back through DequantizeLinear (float output)"
    else:
        g.output("q", dt, shape)
    case.update(model=g.model_bytes(), inputs={"x": x}, tags=tags)
    return case


DQ_TYPES = ("uint8", "int8", "int16", "uint16", "int32", "int4", "uint4", "int8")


def gen_dequantizelinear(rng, i):
    regime = _regime(i)
    dt = _cycle(i, DQ_TYPES)
    rank = int(rng.integers(1, 5))
    shape = tuple(int(v) for v in rng.integers(1, 8, size=rank))
    style = "per-tensor" if dt == "int32" else rng.choice(["per-tensor", "per-axis", "per-axis", "blocked"])
    g = OnnxGraph()
    attrs = {}
    pow2 = regime == "ties"
    if style == "per-tensor":
        sv = scale(rng, 2**-12, 2**2, pow2)
        zv = 0 if dt == "int32" else zero_point(rng, dt)
    else:
        axis = int(rng.integers(0, rank))
        attrs["axis"] = axis
        if style == "per-axis":
            n = shape[axis]
            sv = channel_scales(rng, n, 2**-12, 2**2, pow2)
            zv = np.array([zero_point(rng, dt) for _ in range(n)])
        else:
            block = int(rng.integers(1, 4))
            shape = shape[:axis] + (block * int(rng.integers(1, 4)),) + shape[axis + 1:]
            attrs["block_size"] = block
            sshape = list(shape)
            sshape[axis] = shape[axis] // block
            sv = np.array([scale(rng, 2**-12, 2**2, pow2) for _ in range(int(np.prod(sshape)))],
                          np.float32).reshape(sshape)
            zv = rng.integers(QRANGE[dt][0], QRANGE[dt][1] + 1, size=sshape)
    if dt == "int32":
        x = rng.integers(-2**31, 2**31, size=shape, dtype=np.int64).astype(np.int32) \
            if regime == "random" else rng.integers(-2**24, 2**24, size=shape).astype(np.int32)
    else:
        x = activations(rng, dt, shape, int(np.min(zv)), "random" if regime in ("ties", "large_acc") else regime)
    inputs = {}
    if dt in ("int4", "uint4"):
        g.const("x", x, dt)                   # 4-bit: only as a constant (ORT's Python API)
    else:
        g.input("x", dt, shape)
        inputs["x"] = x
    g.const("x_scale", sv, "float32")
    ins = ["x", "x_scale"]
    if dt == "int32" and rng.random() < 0.5:
        pass                                  # no zero point
    else:
        g.const("x_zero_point", zv, dt)
        ins.append("x_zero_point")
    g.node("DequantizeLinear", ins, "y", name="dequantize", **attrs)
    g.output("y", "float32", shape)
    if not inputs:                            # a graph needs an input: add an unused one
        g.input("unused", "float32", (1,))
        inputs["unused"] = np.zeros(1, np.float32)
    tags = [SHORT[dt], style, regime]
    return dict(model=g.model_bytes(), inputs=inputs, tags=tags,
                float_reason="DequantizeLinear has a float output")


# -- QDQ patterns ------------------------------------------------------------

QDQ_PAIRS = (("uint8", "int8"), ("uint8", "uint8"), ("uint8", "int8"), ("int8", "int8"),
             ("uint8", "int4"), ("int8", "uint8"))


def gen_qdq_conv(rng, i):
    regime = _regime(i)
    xt, wt = _pair(i, QDQ_PAIRS)
    if regime == "large_acc" and wt == "int8" and xt == "uint8":
        wt = "uint8"
    n, cin, cout, group, h, w, k, stride, dil, pads = _conv_geometry(rng, regime)
    pow2 = regime == "ties"
    per_channel = rng.random() < 0.5
    xz = 0 if regime == "large_acc" else zero_point(rng, xt)
    wz = 0 if wt in ("int8", "int4") or regime == "large_acc" else zero_point(rng, wt)
    x = activations(rng, xt, (n, cin, h, w), xz, regime)
    wv = weights(rng, wt, (cout, cin // group, k, k), regime)
    xs = scale(rng, 2**-10, 2**-2, pow2)
    ws = channel_scales(rng, cout, 2**-10, 2**-4, pow2) if per_channel else scale(rng, 2**-10, 2**-4, pow2)
    mag = acc_magnitude(x.astype(np.int64) - xz, wv.astype(np.int64) - wz, cin // group * k * k)
    ys = output_scale(rng, float(xs) * float(np.mean(ws)), mag, xt, pow2)
    yz = zero_point(rng, xt)
    relu = rng.random() < 0.3
    g = OnnxGraph()
    g.input("x", xt, x.shape)
    g.qparams("x", xs, xz, xt)
    g.const("w", wv, wt)
    g.const("w_scale", ws, "float32")
    g.const("w_zero_point", np.full(cout, wz) if per_channel else wz, wt)
    g.qparams("y", ys, yz, xt)
    axis = {"axis": 0} if per_channel else {}
    g.node("DequantizeLinear", ["x", "x_scale", "x_zero_point"], "x_dq", name="dq_x")
    g.node("DequantizeLinear", ["w", "w_scale", "w_zero_point"], "w_dq", name="dq_w", **axis)
    conv_in = ["x_dq", "w_dq"]
    bias = rng.random() < 0.6
    if bias:
        bs = (np.float32(xs) * np.asarray(ws, np.float32)).astype(np.float32)
        g.const("bias", rng.integers(-int(2 * mag) - 1, int(2 * mag) + 2, size=cout), "int32")
        g.const("bias_scale", bs if per_channel else np.float32(bs), "float32")
        g.const("bias_zero_point", np.zeros(cout) if per_channel else 0, "int32")
        g.node("DequantizeLinear", ["bias", "bias_scale", "bias_zero_point"], "bias_dq",
               name="dq_bias", **axis)
        conv_in.append("bias_dq")
    g.node("Conv", conv_in, "conv_out", name="conv", kernel_shape=[k, k], strides=[stride, stride],
           dilations=[dil, dil], pads=list(pads), group=group)
    last = "conv_out"
    if relu:
        g.node("Relu", [last], "relu_out", name="relu")
        last = "relu_out"
    g.node("QuantizeLinear", [last, "y_scale", "y_zero_point"], "y", name="q_y")
    oh = conv_out(h, k, stride, dil, pads[0], pads[2])
    ow = conv_out(w, k, stride, dil, pads[1], pads[3])
    g.output("y", xt, (n, cout, oh, ow))
    tags = [SHORT[xt] + SHORT[wt], "per-channel" if per_channel else "per-tensor", regime,
            f"k{k}s{stride}d{dil}g{group}"] + [t for t, on in (("bias", bias), ("relu", relu)) if on]
    return dict(model=g.model_bytes(), inputs={"x": x}, tags=tags)


def gen_qdq_matmul(rng, i):
    regime = _regime(i)
    at, bt = _pair(i, QDQ_PAIRS)
    if regime == "large_acc" and bt == "int8" and at == "uint8":
        bt = "uint8"
    batch, m, k, n = _matmul_shapes(rng, regime)
    gemm = rng.random() < 0.3
    if gemm:
        batch = ()
    pow2 = regime == "ties"
    per_col = rng.random() < 0.4
    az = 0 if regime == "large_acc" else zero_point(rng, at)
    bz = 0 if bt in ("int8", "int4") or regime == "large_acc" else zero_point(rng, bt)
    a = activations(rng, at, batch + (m, k), az, regime)
    b = weights(rng, bt, (k, n), regime)
    a_s = scale(rng, 2**-10, 2**-2, pow2)
    b_s = channel_scales(rng, n, 2**-10, 2**-4, pow2) if per_col else scale(rng, 2**-10, 2**-4, pow2)
    mag = acc_magnitude(a.astype(np.int64) - az, b.astype(np.int64) - bz, k)
    ys = output_scale(rng, float(a_s) * float(np.mean(b_s)), mag, at, pow2)
    yz = zero_point(rng, at)
    trans_b = gemm and rng.random() < 0.5
    g = OnnxGraph()
    g.input("a", at, a.shape)
    g.qparams("a", a_s, az, at)
    g.const("b", b.T if trans_b else b, bt)
    g.const("b_scale", b_s, "float32")
    g.const("b_zero_point", np.full(n, bz) if per_col else bz, bt)
    g.qparams("y", ys, yz, at)
    g.node("DequantizeLinear", ["a", "a_scale", "a_zero_point"], "a_dq", name="dq_a")
    axis = {"axis": 0 if trans_b else 1} if per_col else {}
    g.node("DequantizeLinear", ["b", "b_scale", "b_zero_point"], "b_dq", name="dq_b", **axis)
    if gemm:
        ins = ["a_dq", "b_dq"]
        if rng.random() < 0.6:
            bsc = (np.float32(a_s) * np.asarray(b_s, np.float32)).astype(np.float32)
            g.const("c", rng.integers(-int(2 * mag) - 1, int(2 * mag) + 2, size=n), "int32")
            g.const("c_scale", bsc if per_col else np.float32(bsc), "float32")
            g.const("c_zero_point", np.zeros(n) if per_col else 0, "int32")
            g.node("DequantizeLinear", ["c", "c_scale", "c_zero_point"], "c_dq", name="dq_c",
                   **({"axis": 0} if per_col else {}))
            ins.append("c_dq")
        g.node("Gemm", ins, "mm_out", name="gemm", transB=int(trans_b))
    else:
        g.node("MatMul", ["a_dq", "b_dq"], "mm_out", name="matmul")
    g.node("QuantizeLinear", ["mm_out", "y_scale", "y_zero_point"], "y", name="q_y")
    g.output("y", at, batch + (m, n))
    tags = [SHORT[at] + SHORT[bt], "per-column" if per_col else "per-tensor", regime,
            "Gemm" if gemm else "MatMul", f"m{m}k{k}n{n}"]
    return dict(model=g.model_bytes(), inputs={"a": a}, tags=tags)


def gen_qdq_s8_input(rng, i):
    """QDQ s8s8 as ORT's quantize_static writes it: a float input through
    QuantizeLinear -> DequantizeLinear (int8) into Conv, MatMul or Gemm with
    int8 weights, then QuantizeLinear -> DequantizeLinear. On x86 ONNX Runtime
    rewrites both pairs to uint8 (+128) and runs u8 x s8 kernels, which
    saturate int16 pairs without VNNI (``s8_activations_as_u8``)."""
    regime = _regime(i // 3)
    kind = ("Conv", "MatMul", "Gemm")[i % 3]
    xz = zero_point(rng, "int8")
    xs = scale(rng, 2**-8, 2**-3, regime == "ties")
    g = OnnxGraph()
    if kind == "Conv":
        n, cin, cout, group, h, w, k, stride, dil, pads = _conv_geometry(rng, regime)
        xshape, wshape, kdim = (n, cin, h, w), (cout, cin // group, k, k), cin // group * k * k
    else:
        _, m, kdim, cout = _matmul_shapes(rng, regime)
        xshape, wshape = (m, kdim), (kdim, cout)
    codes = activations(rng, "int8", xshape, xz, regime)
    x = ((codes.astype(np.float32) - np.float32(xz)) * xs).astype(np.float32)
    wv = weights(rng, "int8", wshape, regime)
    ws = scale(rng, 2**-10, 2**-4, regime == "ties")
    mag = acc_magnitude(codes.astype(np.int64) - xz, wv.astype(np.int64), kdim)
    ys = output_scale(rng, float(xs) * float(ws), mag, "int8", regime == "ties")
    g.input("x", "float32", x.shape)
    g.qparams("x", xs, xz, "int8")
    g.const("w", wv, "int8")
    g.qparams("w", ws, 0, "int8")
    g.qparams("y", ys, zero_point(rng, "int8"), "int8")
    g.node("QuantizeLinear", ["x", "x_scale", "x_zero_point"], "x_q", name="q_x")
    g.node("DequantizeLinear", ["x_q", "x_scale", "x_zero_point"], "x_dq", name="dq_x")
    g.node("DequantizeLinear", ["w", "w_scale", "w_zero_point"], "w_dq", name="dq_w")
    if kind == "Conv":
        g.node("Conv", ["x_dq", "w_dq"], "out", name="conv", kernel_shape=[k, k], strides=[stride, stride],
               dilations=[dil, dil], pads=list(pads), group=group)
        yshape = (n, cout, conv_out(h, k, stride, dil, pads[0], pads[2]), conv_out(w, k, stride, dil, pads[1], pads[3]))
        geo = f"k{k}s{stride}d{dil}g{group}"
    else:
        g.node(kind, ["x_dq", "w_dq"], "out", name=kind.lower())
        yshape, geo = (m, cout), f"m{m}k{kdim}n{cout}"
    # the output pair too (ONNX Runtime fuses only int8 -> int8 rewritten to
    # uint8 -> uint8; with an int8 graph output it computes in float)
    g.node("QuantizeLinear", ["out", "y_scale", "y_zero_point"], "y_q", name="q_y")
    g.node("DequantizeLinear", ["y_q", "y_scale", "y_zero_point"], "y", name="dq_y")
    g.output("y", "float32", yshape)
    return dict(model=g.model_bytes(), inputs={"x": x}, tags=["s8s8", kind, regime, "float-input", geo])


def gen_qdq_add(rng, i):
    regime = _regime(i)
    dt = _cycle(i, ("uint8", "int8"))
    op = "Add" if rng.random() < 0.7 else "Mul"
    sa, sb = _BROADCASTS[int(rng.integers(len(_BROADCASTS)))]
    pow2 = regime == "ties"
    za, zb, zy = zero_point(rng, dt), zero_point(rng, dt), zero_point(rng, dt)
    a = activations(rng, dt, sa, za, regime)
    b = activations(rng, dt, sb, zb, "random" if regime == "zero" else regime)
    s_a, s_b = scale(rng, 2**-8, 2**-1, pow2), scale(rng, 2**-8, 2**-1, pow2)
    s_y = np.float32(max(s_a, s_b) * (2.0 ** int(rng.integers(-1, 3)) if pow2 else log_uniform(rng, 0.5, 4))) \
        if op == "Add" else np.float32(s_a * s_b * (2 ** int(rng.integers(3, 9)) if pow2 else log_uniform(rng, 8, 300)))
    g = OnnxGraph()
    g.input("a", dt, sa)
    g.input("b", dt, sb)
    for nm, s, z in (("a", s_a, za), ("b", s_b, zb), ("y", s_y, zy)):
        g.qparams(f"{nm}", s, z, dt)
    g.node("DequantizeLinear", ["a", "a_scale", "a_zero_point"], "a_dq", name="dq_a")
    g.node("DequantizeLinear", ["b", "b_scale", "b_zero_point"], "b_dq", name="dq_b")
    g.node(op, ["a_dq", "b_dq"], "sum", name=op.lower())
    g.node("QuantizeLinear", ["sum", "y_scale", "y_zero_point"], "y", name="q_y")
    g.output("y", dt, np.broadcast_shapes(sa, sb))
    tags = [SHORT[dt], regime, op, f"{list(sa)}x{list(sb)}"]
    return dict(model=g.model_bytes(), inputs={"a": a, "b": b}, tags=tags)


# -- small graphs ------------------------------------------------------------

def _dynamic_float_input(rng, shape, regime: str) -> np.ndarray:
    """Float activations of a dynamic-quantization case: DynamicQuantizeLinear
    maps their own range onto [0, 255] (``saturate`` / ``large_acc``: all equal
    and positive, so every code is 255 with zero point 0)."""
    shape = tuple(int(v) for v in shape)
    if regime in ("saturate", "large_acc"):
        return np.full(shape, np.float32(rng.uniform(0.5, 4)), np.float32)
    if regime == "zero":
        return np.zeros(shape, np.float32)
    if regime == "extremes":
        return rng.choice([np.float32(-rng.uniform(0, 3)), np.float32(rng.uniform(0.5, 3))], size=shape).astype(np.float32)
    if regime == "narrow":
        return np.abs(rng.normal(0, 1, shape)).astype(np.float32)         # zero point 0
    return rng.normal(rng.uniform(-1, 1), rng.uniform(0.1, 3), shape).astype(np.float32)


def gen_dynamic(rng, i):
    """ONNX Runtime's dynamic quantization: DynamicQuantizeLinear of a float
    input, its uint8 output and run-time zero point into MatMulInteger (even
    i) or ConvInteger (odd i) with constant s8 / u8 weights; the output is
    the int32 accumulator (integer semantics: exact)."""
    regime = _regime(i)
    wt = _cycle(i // 2, ("int8", "uint8"))
    g = OnnxGraph()
    if i % 2 == 0:
        batch, m, k, n = _matmul_shapes(rng, regime)
        x = _dynamic_float_input(rng, batch + (m, k), regime)
        w = weights(rng, wt, (k, n), regime)
        wz_style = rng.choice(["none", "scalar", "per-column"])
        wz = None if wz_style == "none" else (np.array([zero_point(rng, wt) for _ in range(n)])
                                              if wz_style == "per-column" else zero_point(rng, wt))
        op, out_shape, attrs, tags = "MatMulInteger", batch + (m, n), {}, [f"m{m}k{k}n{n}", f"zp:{wz_style}"]
    else:
        nb, cin, cout, group, h, wd, k, stride, dil, pads = _conv_geometry(rng, regime)
        x = _dynamic_float_input(rng, (nb, cin, h, wd), regime)
        w = weights(rng, wt, (cout, cin // group, k, k), regime)
        wz = zero_point(rng, wt) if rng.random() < 0.7 else None
        out_shape = (nb, cout, conv_out(h, k, stride, dil, pads[0], pads[2]), conv_out(wd, k, stride, dil, pads[1], pads[3]))
        op, attrs = "ConvInteger", dict(kernel_shape=[k, k], strides=[stride, stride], dilations=[dil, dil],
                                        pads=list(pads), group=group)
        tags = [f"k{k}s{stride}d{dil}g{group}"]
    g.input("x", "float32", x.shape)
    g.node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"], name="quantize")
    g.const("w", w, wt)
    ins = ["xq", "w", "xz"]
    if wz is not None:
        g.const("w_zero_point", wz, wt)
        ins.append("w_zero_point")
    g.node(op, ins, "y", name=op.lower(), **attrs)
    g.output("y", "int32", out_shape)
    return dict(model=g.model_bytes(), inputs={"x": x}, tags=[op, "u8" + SHORT[wt], regime, "dynamic", *tags])
