"""Generators: QLinearConv, QLinearMatMul, MatMulInteger, ConvInteger, QGemm."""
from __future__ import annotations

import numpy as np

from ..onnxgraph import MS_DOMAIN, OnnxGraph
from .data import (
    REGIMES,
    SHORT,
    acc_magnitude,
    activations,
    channel_scales,
    conv_out,
    output_scale,
    pads_for,
    scale,
    weights,
    zero_point,
)

# ---------------------------------------------------------------------------
# Generators: one per report row. Each takes (rng, i) and returns a dict of
# Case fields (model, inputs, tags, and optionally session_config,
# profile_overrides, float_reason).
# ---------------------------------------------------------------------------

#: activation/weight dtype pairs of the GEMM-like quantized operators, in
#: cycling order: u8s8 (the x86 default, and the one that saturates) twice
MM_PAIRS = (("uint8", "int8"), ("uint8", "uint8"), ("uint8", "int8"), ("int8", "int8"))
#: the integer-output operators take every pair
INT_PAIRS = (("uint8", "int8"), ("uint8", "uint8"), ("int8", "int8"), ("int8", "uint8"))


def _regime(i: int) -> str:
    return REGIMES[i % len(REGIMES)]


def _cycle(i: int, options):
    """Option of case i: consecutive cases take consecutive options, and each
    round of len(REGIMES) cases shifts by one, so every (regime, option)
    pair comes up, and a short run still sees every option."""
    return options[(i + i // len(REGIMES)) % len(options)]


_pair = _cycle


def _weight_zero_point(rng, wdtype: str) -> int:
    """Weight zero points: 0 for s8 (symmetric, as quantizers write them and
    as ONNX Runtime's fast paths need), anything for u8."""
    return 0 if wdtype == "int8" else zero_point(rng, wdtype)


def _conv_geometry(rng, regime: str):
    """(N, Cin, Cout, group, H, W, k, stride, dilation, pads)."""
    if regime == "large_acc":
        cin = int(rng.choice([64, 96, 128]))
        return 1, cin, int(rng.choice([1, 3, 8])), 1, int(rng.integers(3, 6)), \
            int(rng.integers(3, 6)), 3, 1, 1, (1, 1, 1, 1)
    kind = rng.choice(["dense", "dense", "dense", "depthwise", "grouped", "pointwise"])
    n = int(rng.choice([1, 1, 1, 2]))
    if kind == "depthwise":
        cin = int(rng.choice([1, 3, 8, 16, 17]))
        group = cin
        cout = cin * int(rng.choice([1, 1, 2]))
    elif kind == "grouped":
        group = int(rng.choice([2, 3]))
        cin = group * int(rng.integers(1, 5))
        cout = group * int(rng.integers(1, 5))
    else:
        group = 1
        cin = int(rng.choice([1, 2, 3, 4, 7, 8, 16, 33]))
        cout = int(rng.choice([1, 2, 5, 8, 16]))
    k = 1 if kind == "pointwise" else int(rng.choice([1, 2, 3, 3, 3, 5]))
    stride = int(rng.choice([1, 1, 2, 3]))
    dilation = int(rng.choice([1, 1, 1, 2]))
    ph, pw = pads_for(rng, k), pads_for(rng, k)
    span = dilation * (k - 1) + 1
    h = int(rng.integers(max(1, span - ph[0] - ph[1]), span + 9))
    w = int(rng.integers(max(1, span - pw[0] - pw[1]), span + 9))
    return n, cin, cout, group, h, w, k, stride, dilation, (ph[0], pw[0], ph[1], pw[1])


def gen_qlinearconv(rng, i):
    regime = _regime(i)
    xt, wt = _pair(i, MM_PAIRS)
    if regime == "large_acc" and (xt, wt) == ("uint8", "int8"):
        xt, wt = ("uint8", "uint8")           # u8s8 would saturate first
    n, cin, cout, group, h, w, k, stride, dil, pads = _conv_geometry(rng, regime)
    pow2 = regime == "ties"
    per_channel = rng.random() < 0.5
    xz = 0 if regime == "large_acc" else zero_point(rng, xt)
    wz = 0 if regime == "large_acc" else _weight_zero_point(rng, wt)
    x = activations(rng, xt, (n, cin, h, w), xz, regime)
    wv = weights(rng, wt, (cout, cin // group, k, k), regime)
    xs = scale(rng, 2**-10, 2**-2, pow2)
    ws = channel_scales(rng, cout, 2**-10, 2**-4, pow2) if per_channel else scale(rng, 2**-10, 2**-4, pow2)
    kk = cin // group * k * k
    mag = acc_magnitude(x.astype(np.int64) - xz, wv.astype(np.int64) - wz, kk)
    yt = xt
    ys = output_scale(rng, float(xs) * float(np.mean(ws)), mag, yt, pow2)
    yz = zero_point(rng, yt)
    oh = conv_out(h, k, stride, dil, pads[0], pads[2])
    ow = conv_out(w, k, stride, dil, pads[1], pads[3])
    g = OnnxGraph()
    g.input("x", xt, x.shape)
    dyn_w = rng.random() < 0.1 and not per_channel
    inputs = {"x": x}
    if dyn_w:
        g.input("w", wt, wv.shape)
        inputs["w"] = wv
    else:
        g.const("w", wv, wt)
    g.qparams("x", xs, xz, xt)
    g.const("w_scale", ws, "float32")
    g.const("w_zero_point", np.full(cout, wz) if per_channel and rng.random() < 0.5 else wz, wt)
    g.qparams("y", ys, yz, yt)
    ins = ["x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point", "y_scale", "y_zero_point"]
    bias = rng.random() < 0.6
    if bias:
        b = rng.integers(-int(2 * mag) - 1, int(2 * mag) + 2, size=cout) if rng.random() < 0.8 \
            else rng.choice([-2**20, 2**20], size=cout)
        g.const("bias", b, "int32")
        ins.append("bias")
    g.node("QLinearConv", ins, "y", name="conv", kernel_shape=[k, k], strides=[stride, stride],
           dilations=[dil, dil], pads=list(pads), group=group)
    g.output("y", yt, (n, cout, oh, ow))
    tags = [SHORT[xt] + SHORT[wt], "per-channel" if per_channel else "per-tensor", regime,
            f"k{k}s{stride}d{dil}g{group}"]
    case = dict(model=g.model_bytes(), inputs=inputs, tags=tags)
    if bias:
        tags.append("bias")
    if dyn_w:
        tags.append("dynamic-weights")
    if (xt, wt) == ("uint8", "int8") and not dyn_w and rng.random() < 0.15:
        # documented ORT switch: u8s8 with constant weights computed without saturation
        case["session_config"] = {"session.x64quantprecision": "1"}
        case["profile_overrides"] = {"pairwise_int16_saturation": False}
        tags.append("x64quantprecision")
    return case


def _matmul_shapes(rng, regime):
    if regime == "large_acc":
        return (), int(rng.integers(1, 4)), int(rng.choice([600, 1024, 1500])), int(rng.integers(1, 5))
    batch = () if rng.random() < 0.75 else (int(rng.integers(1, 4)),)
    m = int(rng.choice([1, 1, 2, 3, 4, 7, 16]))
    k = int(rng.choice([1, 2, 3, 8, 15, 16, 17, 31, 64, 100, 256]))
    n = int(rng.choice([1, 2, 3, 8, 15, 16, 17, 32, 33]))
    return batch, m, k, n


def gen_qlinearmatmul(rng, i):
    regime = _regime(i)
    at, bt = _pair(i, MM_PAIRS)
    if regime == "large_acc" and (at, bt) == ("uint8", "int8"):
        at, bt = "uint8", "uint8"
    batch, m, k, n = _matmul_shapes(rng, regime)
    pow2 = regime == "ties"
    az = 0 if regime == "large_acc" else zero_point(rng, at)
    bz = 0 if regime == "large_acc" else _weight_zero_point(rng, bt)
    a = activations(rng, at, batch + (m, k), az, regime)
    b = weights(rng, bt, (k, n), regime)
    const_b = rng.random() < 0.75
    per_col = const_b and rng.random() < 0.4
    a_s = scale(rng, 2**-10, 2**-2, pow2)
    b_s = channel_scales(rng, n, 2**-10, 2**-4, pow2) if per_col else scale(rng, 2**-10, 2**-4, pow2)
    mag = acc_magnitude(a.astype(np.int64) - az, b.astype(np.int64) - bz, k)
    yt = at
    ys = output_scale(rng, float(a_s) * float(np.mean(b_s)), mag, yt, pow2)
    yz = zero_point(rng, yt)
    g = OnnxGraph()
    g.input("a", at, a.shape)
    inputs = {"a": a}
    if const_b:
        g.const("b", b, bt)
    else:
        g.input("b", bt, b.shape)
        inputs["b"] = b
    g.qparams("a", a_s, az, at)
    g.const("b_scale", b_s, "float32")
    g.const("b_zero_point", np.full(n, bz) if per_col else bz, bt)
    g.qparams("y", ys, yz, yt)
    g.node("QLinearMatMul", ["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point",
                             "y_scale", "y_zero_point"], "y", name="matmul")
    g.output("y", yt, batch + (m, n))
    tags = [SHORT[at] + SHORT[bt], "per-column" if per_col else "per-tensor", regime,
            "const-b" if const_b else "dynamic-b", f"m{m}k{k}n{n}"]
    return dict(model=g.model_bytes(), inputs=inputs, tags=tags)


def gen_matmulinteger(rng, i):
    regime = _regime(i)
    at, bt = _pair(i, INT_PAIRS)
    batch, m, k, n = _matmul_shapes(rng, regime)
    az = 0 if regime == "large_acc" else zero_point(rng, at)
    bz = 0 if regime == "large_acc" else zero_point(rng, bt)
    a = activations(rng, at, batch + (m, k), az, regime)
    b = weights(rng, bt, (k, n), regime)
    const_b = rng.random() < 0.7
    g = OnnxGraph()
    g.input("a", at, a.shape)
    inputs = {"a": a}
    if const_b:
        g.const("b", b, bt)
    else:
        g.input("b", bt, b.shape)
        inputs["b"] = b
    ins = ["a", "b"]
    zp_style = rng.choice(["none", "a", "both", "both", "per-column"])
    if zp_style != "none":
        g.const("a_zero_point", az, at)
        ins.append("a_zero_point")
    if zp_style in ("both", "per-column"):
        bzv = np.array([zero_point(rng, bt) for _ in range(n)]) if zp_style == "per-column" else bz
        g.const("b_zero_point", bzv, bt)
        ins.append("b_zero_point")
    g.node("MatMulInteger", ins, "y", name="matmul")
    g.output("y", "int32", batch + (m, n))
    tags = [SHORT[at] + SHORT[bt], regime, f"zp:{zp_style}", "const-b" if const_b else "dynamic-b",
            f"m{m}k{k}n{n}"]
    case = dict(model=g.model_bytes(), inputs=inputs, tags=tags)
    if (at, bt) == ("uint8", "int8") and const_b and rng.random() < 0.15:
        case["session_config"] = {"session.x64quantprecision": "1"}
        case["profile_overrides"] = {"pairwise_int16_saturation": False}
        tags.append("x64quantprecision")
    return case


def gen_convinteger(rng, i):
    regime = _regime(i)
    xt, wt = _pair(i, INT_PAIRS)
    n, cin, cout, group, h, w, k, stride, dil, pads = _conv_geometry(rng, regime)
    xz = 0 if regime == "large_acc" else zero_point(rng, xt)
    wz = 0 if regime == "large_acc" else zero_point(rng, wt)
    x = activations(rng, xt, (n, cin, h, w), xz, regime)
    wv = weights(rng, wt, (cout, cin // group, k, k), regime)
    g = OnnxGraph()
    g.input("x", xt, x.shape)
    g.const("w", wv, wt)
    ins = ["x", "w"]
    with_zp = rng.random() < 0.8
    if with_zp:
        g.const("x_zero_point", xz, xt)
        g.const("w_zero_point", wz, wt)
        ins += ["x_zero_point", "w_zero_point"]
    g.node("ConvInteger", ins, "y", name="conv", kernel_shape=[k, k], strides=[stride, stride],
           dilations=[dil, dil], pads=list(pads), group=group)
    oh = conv_out(h, k, stride, dil, pads[0], pads[2])
    ow = conv_out(w, k, stride, dil, pads[1], pads[3])
    g.output("y", "int32", (n, cout, oh, ow))
    tags = [SHORT[xt] + SHORT[wt], regime, f"k{k}s{stride}d{dil}g{group}",
            "zero-points" if with_zp else "no-zero-points"]
    return dict(model=g.model_bytes(), inputs={"x": x}, tags=tags)


def gen_qgemm(rng, i):
    regime = _regime(i)
    at, bt = _pair(i, MM_PAIRS)
    if regime == "large_acc" and (at, bt) == ("uint8", "int8"):
        at, bt = "uint8", "uint8"
    _, m, k, n = _matmul_shapes(rng, regime)
    pow2 = regime == "ties"
    az = 0 if regime == "large_acc" else zero_point(rng, at)
    bz = 0 if regime == "large_acc" else _weight_zero_point(rng, bt)
    a = activations(rng, at, (m, k), az, regime)
    b = weights(rng, bt, (k, n), regime)
    trans_a = rng.random() < 0.15
    trans_b = rng.random() < 0.5
    per_col = rng.random() < 0.4
    a_s = scale(rng, 2**-10, 2**-2, pow2)
    b_s = channel_scales(rng, n, 2**-10, 2**-4, pow2) if per_col else scale(rng, 2**-10, 2**-4, pow2)
    alpha = 1.0 if rng.random() < 0.7 else float(np.float32(2.0 ** rng.integers(-2, 2) if pow2
                                                             else rng.uniform(0.25, 2.0)))
    mag = acc_magnitude(a.astype(np.int64) - az, b.astype(np.int64) - bz, k)
    yt = at
    ys = output_scale(rng, float(a_s) * float(np.mean(b_s)) * alpha, mag, yt, pow2)
    yz = zero_point(rng, yt)
    g = OnnxGraph()
    a_in = np.ascontiguousarray(a.T) if trans_a else a
    g.input("a", at, a_in.shape)
    g.qparams("a", a_s, az, at)
    g.const("b", b.T if trans_b else b, bt)
    g.const("b_scale", b_s, "float32")
    g.const("b_zero_point", np.full(n, bz) if per_col else bz, bt)
    ins = ["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point"]
    bias = rng.random() < 0.6
    float_out = rng.random() < 0.15
    if bias:
        g.const("c", rng.integers(-int(2 * mag) - 1, int(2 * mag) + 2, size=n), "int32")
        ins.append("c")
    if not float_out:
        if not bias:
            ins.append("")
        g.qparams("y", ys, yz, yt)
        ins += ["y_scale", "y_zero_point"]
    g.node("QGemm", ins, "y", name="gemm", domain=MS_DOMAIN, transA=int(trans_a),
           transB=int(trans_b), alpha=alpha)
    g.output("y", "float32" if float_out else yt, (m, n))
    tags = [SHORT[at] + SHORT[bt], "per-column" if per_col else "per-tensor", regime, f"m{m}k{k}n{n}"]
    tags += [t for t, on in (("transA", trans_a), ("transB", trans_b), ("bias", bias),
                             ("float-output", float_out), ("alpha", alpha != 1.0)) if on]
    return dict(model=g.model_bytes(), inputs={"a": a_in}, tags=tags)
