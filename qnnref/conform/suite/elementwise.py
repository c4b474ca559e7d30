"""Generators: QLinearAdd/Mul, the average pools, QLinearConcat, the table operators."""
from __future__ import annotations

import numpy as np

from ..onnxgraph import MS_DOMAIN, OnnxGraph
from .data import (
    QRANGE,
    SHORT,
    activations,
    log_uniform,
    np_dtype,
    pads_for,
    scale,
    zero_point,
)
from .linear import _cycle, _regime

_BROADCASTS = (
    ((2, 3, 4, 5), (2, 3, 4, 5)), ((1, 8, 7, 7), (1, 8, 1, 1)), ((1, 3, 5, 17), (17,)),
    ((4, 1, 6), (1, 5, 6)), ((33,), (33,)), ((2, 16), (1,)), ((1, 1, 1, 1), (1, 3, 4, 5)),
    ((3, 1, 7, 1), (1, 4, 1, 9)), ((1, 64), (1, 64)), ((5, 5), (5, 5)),
)


def _binary(rng, i, op):
    regime = _regime(i)
    dt = _cycle(i, ("uint8", "int8"))
    sa, sb = _BROADCASTS[int(rng.integers(len(_BROADCASTS)))]
    if rng.random() < 0.5:
        sa, sb = sb, sa
    pow2 = regime == "ties"
    za, zb, zy = zero_point(rng, dt), zero_point(rng, dt), zero_point(rng, dt)
    a = activations(rng, dt, sa, za, regime)
    b = activations(rng, dt, sb, zb, "random" if regime == "zero" else regime)
    s_a = scale(rng, 2**-8, 2**-1, pow2)
    s_b = s_a if rng.random() < 0.3 else scale(rng, 2**-8, 2**-1, pow2)
    if op == "QLinearAdd":
        s_y = np.float32(max(s_a, s_b) * (2.0 ** int(rng.integers(-1, 3)) if pow2 else log_uniform(rng, 0.5, 4)))
    else:
        s_y = np.float32(s_a * s_b * 2**int(rng.integers(3, 9)) if pow2 else s_a * s_b * log_uniform(rng, 8, 300))
    out_shape = np.broadcast_shapes(sa, sb)
    g = OnnxGraph()
    g.input("a", dt, sa)
    inputs = {"a": a}
    if rng.random() < 0.3:
        g.const("b", b, dt)
    else:
        g.input("b", dt, sb)
        inputs["b"] = b
    g.qparams("a", s_a, za, dt)
    g.qparams("b", s_b, zb, dt)
    g.qparams("y", s_y, zy, dt)
    g.node(op, ["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale",
                "y_zero_point"], "y", name=op.lower(), domain=MS_DOMAIN)
    g.output("y", dt, out_shape)
    tags = [SHORT[dt], regime, f"{list(sa)}x{list(sb)}"]
    return dict(model=g.model_bytes(), inputs=inputs, tags=tags)


def gen_qlinearadd(rng, i):
    return _binary(rng, i, "QLinearAdd")


def gen_qlinearmul(rng, i):
    return _binary(rng, i, "QLinearMul")


def _unary_setup(rng, i, shape=None):
    regime = _regime(i)
    dt = _cycle(i, ("uint8", "int8"))
    xz = zero_point(rng, dt)
    return regime, dt, xz


def gen_qlinearaveragepool(rng, i):
    regime, dt, xz = _unary_setup(rng, i)
    channels_last = rng.random() < 0.3
    n, c = int(rng.choice([1, 1, 2])), int(rng.choice([1, 3, 8, 16, 17]))
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    ph, pw = (pads_for(rng, kh), pads_for(rng, kw)) if rng.random() < 0.6 else ((0, 0), (0, 0))
    h = int(rng.integers(max(1, kh - ph[0] - ph[1]), kh + 10))
    w = int(rng.integers(max(1, kw - pw[0] - pw[1]), kw + 10))
    count_include_pad = int(rng.random() < 0.5)
    ceil_mode = int(rng.random() < 0.2)
    x = activations(rng, dt, (n, c, h, w), xz, regime)
    pow2 = regime == "ties"
    xs = scale(rng, 2**-8, 2**-1, pow2)
    yz = zero_point(rng, dt)
    # output scales: free; or s_x times a small ratio, or equal quantization,
    # with s_x not a power of two: the real averages then land on or near
    # exact halves, where the float32 steps of ONNX Runtime's average decide
    quant = "pow2" if pow2 else str(rng.choice(["free", "free", "ratio", "same"]))
    if quant == "pow2":
        ys = np.float32(xs * 2.0 ** int(rng.integers(-1, 2)))
    elif quant == "same":
        ys, yz = xs, xz
    elif quant == "ratio":
        ys = np.float32(xs * float(rng.choice([0.5, 1.5, 2.0, 3.0, 1 / 3])))
    else:
        ys = np.float32(xs * log_uniform(rng, 0.5, 2))

    def out(size, k, s, pa, pb):
        span = size + pa + pb - k
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= size + pa:   # the last window must start inside
            o -= 1
        return o
    oh, ow = out(h, kh, sh, *ph), out(w, kw, sw, *pw)
    g = OnnxGraph()
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    g.input("x", dt, x.shape)
    g.qparams("x", xs, xz, dt)
    g.qparams("y", ys, yz, dt)
    g.node("QLinearAveragePool", ["x", "x_scale", "x_zero_point", "y_scale", "y_zero_point"], "y",
           name="pool", domain=MS_DOMAIN, kernel_shape=[kh, kw], strides=[sh, sw],
           pads=[ph[0], pw[0], ph[1], pw[1]], count_include_pad=count_include_pad,
           ceil_mode=ceil_mode, channels_last=int(channels_last))
    g.output("y", dt, (n, oh, ow, c) if channels_last else (n, c, oh, ow))
    tags = [SHORT[dt], regime, f"k{kh}x{kw}s{sh}x{sw}", "channels_last" if channels_last else "NCHW"]
    tags += [t for t, on in (("count_include_pad", count_include_pad), ("ceil_mode", ceil_mode),
                             ("same-quant", quant == "same"), ("ratio-scale", quant == "ratio")) if on]
    return dict(model=g.model_bytes(), inputs={"x": x}, tags=tags)


def gen_qlinearglobalaveragepool(rng, i):
    regime, dt, xz = _unary_setup(rng, i)
    channels_last = rng.random() < 0.4
    n, c = int(rng.choice([1, 2])), int(rng.choice([1, 3, 8, 16, 33]))
    h, w = int(rng.choice([1, 2, 3, 7, 14, 32])), int(rng.choice([1, 2, 3, 7, 14, 32]))
    x = activations(rng, dt, (n, c, h, w), xz, regime)
    pow2 = regime == "ties"
    xs = scale(rng, 2**-8, 2**-1, pow2)
    ys = np.float32(xs * (2.0 ** int(rng.integers(-2, 2)) if pow2 else log_uniform(rng, 0.25, 2)))
    yz = zero_point(rng, dt)
    g = OnnxGraph()
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    g.input("x", dt, x.shape)
    g.qparams("x", xs, xz, dt)
    g.qparams("y", ys, yz, dt)
    g.node("QLinearGlobalAveragePool", ["x", "x_scale", "x_zero_point", "y_scale", "y_zero_point"],
           "y", name="gap", domain=MS_DOMAIN, channels_last=int(channels_last))
    g.output("y", dt, (n, 1, 1, c) if channels_last else (n, c, 1, 1))
    tags = [SHORT[dt], regime, f"{h}x{w}", "channels_last" if channels_last else "NCHW"]
    return dict(model=g.model_bytes(), inputs={"x": x}, tags=tags)


def gen_qlinearconcat(rng, i):
    regime, dt, _ = _unary_setup(rng, i)
    rank = int(rng.choice([2, 3, 4, 4]))
    base = [int(rng.integers(1, 6)) for _ in range(rank)]
    axis = int(rng.integers(0, rank))
    count = int(rng.integers(1, 5))
    pow2 = regime == "ties"
    same = rng.random() < 0.2
    ys = scale(rng, 2**-8, 2**-1, pow2)
    yz = zero_point(rng, dt)
    g = OnnxGraph()
    g.qparams("y", ys, yz, dt)
    ins = ["y_scale", "y_zero_point"]
    inputs = {}
    total = 0
    for j in range(count):
        shape = list(base)
        shape[axis] = int(rng.integers(1, 5))
        total += shape[axis]
        s = ys if same else scale(rng, 2**-8, 2**-1, pow2)
        z = yz if same else zero_point(rng, dt)
        xj = activations(rng, dt, shape, z, regime)
        name = f"x{j}"
        if j > 0 and rng.random() < 0.2:      # input 0 is always a graph input
            g.const(name, xj, dt)
        else:
            g.input(name, dt, shape)
            inputs[name] = xj
        g.qparams(f"{name}", s, z, dt)
        ins += [name, f"{name}_scale", f"{name}_zero_point"]
    out = list(base)
    out[axis] = total
    neg = rng.random() < 0.3
    g.node("QLinearConcat", ins, "y", name="concat", domain=MS_DOMAIN,
           axis=axis - rank if neg else axis)
    g.output("y", dt, out)
    tags = [SHORT[dt], regime, f"{count} inputs", f"axis {axis}", "same-quant" if same else "requant"]
    return dict(model=g.model_bytes(), inputs=inputs, tags=tags)


def _lut_op(rng, i, op):
    regime, dt, xz = _unary_setup(rng, i)
    lo, hi = QRANGE[dt]
    if rng.random() < 0.6:                  # every input value once: exhaustive
        x = np.arange(lo, hi + 1).reshape(1, 256)
        x = rng.permutation(x, axis=1).astype(np_dtype(dt))
        tag = "all-256-values"
    else:
        shape = tuple(int(v) for v in rng.integers(1, 9, size=int(rng.integers(1, 5))))
        x = activations(rng, dt, shape, xz, regime)
        tag = regime
    pow2 = regime == "ties"
    xs = scale(rng, 2**-7, 2**-2, pow2)
    attrs = {}
    if op == "QLinearSigmoid":
        ys = np.float32(1 / 256) if rng.random() < 0.6 else scale(rng, 2**-9, 2**-6, pow2)
        yz = lo if rng.random() < 0.6 else zero_point(rng, dt)
    else:
        alpha = float(np.float32(rng.choice([0.01, 0.1, 0.2, 0.3, 0.5, 0.75, 1.5, -0.5, 0.0])
                                 if rng.random() < 0.7 else rng.uniform(-1, 2)))
        attrs["alpha"] = alpha
        ys = np.float32(xs * (2.0 ** int(rng.integers(-1, 2)) if pow2 else log_uniform(rng, 0.5, 2)))
        yz = zero_point(rng, dt)
    g = OnnxGraph()
    g.input("x", dt, x.shape)
    g.qparams("x", xs, xz, dt)
    g.qparams("y", ys, yz, dt)
    g.node(op, ["x", "x_scale", "x_zero_point", "y_scale", "y_zero_point"], "y",
           name=op.lower(), domain=MS_DOMAIN, **attrs)
    g.output("y", dt, x.shape)
    tags = [SHORT[dt], tag] + ([f"alpha {attrs['alpha']:.3g}"] if attrs else [])
    case = dict(model=g.model_bytes(), inputs={"x": x}, tags=tags)
    if op == "QLinearSigmoid":
        case["float_reason"] = ("ONNX Runtime builds the QLinearSigmoid table with its own "
                                "vectorized float32 logistic")
        case["float_compute"] = True
    return case


def gen_qlinearsigmoid(rng, i):
    return _lut_op(rng, i, "QLinearSigmoid")


def gen_qlinearleakyrelu(rng, i):
    return _lut_op(rng, i, "QLinearLeakyRelu")


#: output dtypes of the QuantizeLinear cases that ONNX Runtime can return (4-bit: via DQ)
