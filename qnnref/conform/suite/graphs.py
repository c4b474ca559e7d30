"""Generators: small multi-node graphs (QOperator and QDQ)."""
from __future__ import annotations

import numpy as np

from ..onnxgraph import MS_DOMAIN, OnnxGraph
from .data import (
    QRANGE,
    SHORT,
    acc_magnitude,
    activations,
    channel_scales,
    conv_out,
    log_uniform,
    output_scale,
    scale,
    weights,
    zero_point,
)


class _QOpBuilder:
    """QOperator graph building with quantization bookkeeping (NCHW)."""

    def __init__(self, rng, g: OnnxGraph, regime: str, xt: str, wt: str):
        self.rng, self.g, self.regime, self.xt, self.wt = rng, g, regime, xt, wt
        self.pow2 = regime == "ties"
        self.q: dict[str, tuple] = {}     # tensor -> (scale, zp, shape)
        self.k = 0

    def qparams(self, name, s, z):
        self.g.const(f"{name}_scale", s, "float32")
        self.g.const(f"{name}_zero_point", z, self.xt)

    def new(self, base):
        self.k += 1
        return f"{base}_{self.k}"

    def conv(self, x, cout, k=3, stride=1, pad=None, group=1, relu=False):
        rng, g = self.rng, self.g
        s, z, (n, cin, h, w) = self.q[x]
        pad = k // 2 if pad is None else pad
        name = self.new("conv")
        wv = weights(rng, self.wt, (cout, cin // group, k, k), self.regime)
        wz = 0 if self.wt == "int8" else zero_point(rng, self.wt)
        ws = channel_scales(rng, cout, 2**-9, 2**-5, self.pow2)
        g.const(f"{name}_w", wv, self.wt)
        g.const(f"{name}_w_scale", ws, "float32")
        g.const(f"{name}_w_zero_point", wz, self.wt)
        mag = acc_magnitude(np.full(4, 40.0 if self.regime != "saturate" else 200.0),
                            wv.astype(np.int64) - wz, cin // group * k * k)
        ys = output_scale(rng, float(s) * float(np.mean(ws)), mag, self.xt, self.pow2)
        yz = QRANGE[self.xt][0] if relu else zero_point(rng, self.xt)  # "relu" fused the quantizer's way
        out = f"{name}_out"
        self.qparams(out, ys, yz)
        b = rng.integers(-int(mag), int(mag) + 1, size=cout)
        g.const(f"{name}_bias", b, "int32")
        g.node("QLinearConv", [x, f"{x}_scale", f"{x}_zero_point", f"{name}_w", f"{name}_w_scale",
                               f"{name}_w_zero_point", f"{out}_scale", f"{out}_zero_point", f"{name}_bias"],
               out, name=name, kernel_shape=[k, k], pads=[pad] * 4, strides=[stride, stride], group=group)
        oh, ow = conv_out(h, k, stride, 1, pad, pad), conv_out(w, k, stride, 1, pad, pad)
        self.q[out] = (ys, yz, (n, cout, oh, ow))
        return out

    def maxpool(self, x):
        s, z, (n, c, h, w) = self.q[x]
        out = self.new("maxpool") + "_out"
        self.g.node("MaxPool", [x], out, name=out[:-4], kernel_shape=[2, 2], strides=[2, 2])
        self.qparams(out, s, z)
        self.q[out] = (s, z, (n, c, h // 2, w // 2))
        return out

    def avgpool(self, x, global_=False):
        rng = self.rng
        s, z, (n, c, h, w) = self.q[x]
        name = self.new("gap" if global_ else "avgpool")
        out = f"{name}_out"
        ys = np.float32(s * (1 if self.pow2 else log_uniform(rng, 0.7, 1.5)))
        yz = zero_point(rng, self.xt, "random")
        self.qparams(out, ys, yz)
        ins = [x, f"{x}_scale", f"{x}_zero_point", f"{out}_scale", f"{out}_zero_point"]
        if global_:
            self.g.node("QLinearGlobalAveragePool", ins, out, name=name, domain=MS_DOMAIN, channels_last=0)
            self.q[out] = (ys, yz, (n, c, 1, 1))
        else:
            self.g.node("QLinearAveragePool", ins, out, name=name, domain=MS_DOMAIN,
                        kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=0)
            self.q[out] = (ys, yz, (n, c, h, w))
        return out

    def add(self, a, b):
        rng = self.rng
        sa, za, shape = self.q[a]
        sb, zb, _ = self.q[b]
        name = self.new("add")
        out = f"{name}_out"
        ys = np.float32(max(sa, sb) * (2 if self.pow2 else log_uniform(rng, 1, 2)))
        yz = zero_point(rng, self.xt)
        self.qparams(out, ys, yz)
        self.g.node("QLinearAdd", [a, f"{a}_scale", f"{a}_zero_point", b, f"{b}_scale", f"{b}_zero_point",
                                   f"{out}_scale", f"{out}_zero_point"], out, name=name, domain=MS_DOMAIN)
        self.q[out] = (ys, yz, shape)
        return out

    def concat(self, xs):
        rng = self.rng
        name = self.new("concat")
        out = f"{name}_out"
        ys = np.float32(max(self.q[x][0] for x in xs) * (1 if self.pow2 else log_uniform(rng, 1, 1.5)))
        yz = zero_point(rng, self.xt)
        self.qparams(out, ys, yz)
        ins = [f"{out}_scale", f"{out}_zero_point"]
        for x in xs:
            ins += [x, f"{x}_scale", f"{x}_zero_point"]
        self.g.node("QLinearConcat", ins, out, name=name, domain=MS_DOMAIN, axis=1)
        n, _, h, w = self.q[xs[0]][2]
        self.q[out] = (ys, yz, (n, sum(self.q[x][2][1] for x in xs), h, w))
        return out

    def leaky(self, x):
        rng = self.rng
        s, z, shape = self.q[x]
        name = self.new("leakyrelu")
        out = f"{name}_out"
        ys = np.float32(s * (1 if self.pow2 else log_uniform(rng, 0.7, 1.5)))
        yz = zero_point(rng, self.xt)
        self.qparams(out, ys, yz)
        self.g.node("QLinearLeakyRelu", [x, f"{x}_scale", f"{x}_zero_point", f"{out}_scale",
                                         f"{out}_zero_point"], out, name=name, domain=MS_DOMAIN, alpha=0.1)
        self.q[out] = (ys, yz, shape)
        return out

    def flatten(self, x):
        s, z, shape = self.q[x]
        out = self.new("flatten") + "_out"
        self.g.node("Flatten", [x], out, name=out[:-4], axis=1)
        self.qparams(out, s, z)
        self.q[out] = (s, z, (shape[0], int(np.prod(shape[1:]))))
        return out

    def matmul(self, x, n_out):
        rng, g = self.rng, self.g
        s, z, (m, k) = self.q[x]
        name = self.new("matmul")
        wv = weights(rng, self.wt, (k, n_out), self.regime)
        wz = 0 if self.wt == "int8" else zero_point(rng, self.wt)
        ws = scale(rng, 2**-9, 2**-5, self.pow2)
        g.const(f"{name}_w", wv, self.wt)
        g.const(f"{name}_w_scale", ws, "float32")
        g.const(f"{name}_w_zero_point", wz, self.wt)
        mag = acc_magnitude(np.full(4, 40.0), wv.astype(np.int64) - wz, k)
        out = f"{name}_out"
        ys = output_scale(rng, float(s) * float(ws), mag, self.xt, self.pow2)
        yz = zero_point(rng, self.xt)
        self.qparams(out, ys, yz)
        g.node("QLinearMatMul", [x, f"{x}_scale", f"{x}_zero_point", f"{name}_w", f"{name}_w_scale",
                                 f"{name}_w_zero_point", f"{out}_scale", f"{out}_zero_point"], out, name=name)
        self.q[out] = (ys, yz, (m, n_out))
        return out


TEMPLATES = ("cnn", "residual", "concat", "mlp", "qdq_cnn", "cnn", "residual", "qdq_softmax")

#: the symbol of the built-in graphs with a symbolic batch
BATCH_SYMBOL = "N"


def gen_graph(rng, i):
    """Small QOperator graphs (conv -> pool -> matmul, residual, concat, MLP)
    and QDQ graphs with float inputs and a float island (Softmax)."""
    return _graph(rng, i, None)


def gen_batch_graph(rng, i):
    """The graphs of :func:`gen_graph` with a symbolic batch: input
    ``x: ['N', C, H, W]``, run at batch 2, 3 or 4. qnnref imports the model
    with the batch kept and also runs each item at batch 1 (the same bits)."""
    batch = 2 + i % 3
    case = _graph(rng, i, batch)
    case.update(input_shapes={"x": case["inputs"]["x"].shape}, batch=batch, batch_symbol=BATCH_SYMBOL,
                batch_inputs=("x",))
    case["tags"] = [*case["tags"], f"batch {BATCH_SYMBOL}={batch}"]
    return case


def _dims(shape, batch):
    """An ONNX shape: the batch symbolic when ``batch`` is set."""
    return (BATCH_SYMBOL, *shape[1:]) if batch is not None else shape


def _graph(rng, i, batch):
    templates = TEMPLATES
    template = templates[i % len(templates)]
    regime = ("random", "saturate", "ties", "random", "narrow")[(i // len(templates)) % 5]
    xt, wt = (("uint8", "int8"), ("uint8", "uint8"), ("uint8", "int8"), ("int8", "int8"))[(i // 40) % 4]
    if template.startswith("qdq"):
        return _qdq_graph(rng, template, regime, xt, wt, batch)
    g = OnnxGraph(name=template)
    b = _QOpBuilder(rng, g, regime, xt, wt)
    n, c = batch or 1, int(rng.choice([1, 3, 4, 8]))
    h = w = int(rng.choice([6, 8, 10, 12]))
    xs, xz = scale(rng, 2**-8, 2**-3, b.pow2), zero_point(rng, xt)
    x = activations(rng, xt, (n, c, h, w), xz, regime)
    g.input("x", xt, _dims(x.shape, batch))
    b.qparams("x", xs, xz)
    b.q["x"] = (xs, xz, x.shape)
    if template == "cnn":                 # conv -> relu (fused) -> maxpool -> conv -> gap -> matmul
        t = b.conv("x", int(rng.choice([4, 8, 16])), relu=True)
        t = b.maxpool(t)
        t = b.conv(t, int(rng.choice([8, 16])), relu=rng.random() < 0.5)
        t = b.avgpool(t, global_=True)
        t = b.flatten(t)
        t = b.matmul(t, int(rng.choice([3, 10])))
    elif template == "residual":          # conv -> conv -> add(skip) -> avgpool
        t1 = b.conv("x", 8, relu=True)
        t2 = b.conv(t1, 8)
        t = b.add(t1, t2)
        t = b.avgpool(t)
    elif template == "concat":            # two branches -> concat -> conv -> leaky relu
        t1 = b.conv("x", 4, k=1, pad=0)
        t2 = b.conv("x", 4, k=3)
        t = b.concat([t1, t2])
        t = b.conv(t, 6, k=3)
        t = b.leaky(t)
    else:                                 # mlp: flatten -> matmul -> leaky -> matmul
        t = b.flatten("x")
        t = b.matmul(t, int(rng.choice([16, 32])))
        t = b.leaky(t)
        t = b.matmul(t, 10)
    g.output(t, xt, _dims(b.q[t][2], batch))
    tags = [template, SHORT[xt] + SHORT[wt], regime, f"{len(g.nodes)} nodes"]
    return dict(model=g.model_bytes(), inputs={"x": x}, tags=tags)


def _qdq_graph(rng, template, regime, xt, wt, batch=None):
    """QDQ graphs as ORT's quantize_static writes them, with a float input."""
    g = OnnxGraph(name=template)
    pow2 = regime == "ties"
    n, c, h, w = batch or 1, int(rng.choice([1, 3, 4])), 8, 8
    xs = scale(rng, 2**-7, 2**-3, pow2)
    xz = zero_point(rng, xt, "middle" if xt == "uint8" else "zero")
    x = rng.uniform(-1, 1, size=(n, c, h, w)).astype(np.float32) * float(xs) * 120
    g.input("x", "float32", _dims(x.shape, batch))

    def qdq(t, s, z, name):
        g.qparams(f"{name}", s, z, xt)
        g.node("QuantizeLinear", [t, f"{name}_scale", f"{name}_zero_point"], f"{name}_q", name=f"q_{name}")
        g.node("DequantizeLinear", [f"{name}_q", f"{name}_scale", f"{name}_zero_point"], f"{name}_dq",
               name=f"dq_{name}")
        return f"{name}_dq"

    t = qdq("x", xs, xz, "input")
    tags = [template, SHORT[xt] + SHORT[wt], regime, "float-input"]
    case = {}
    if template == "qdq_cnn":             # Conv -> Relu -> MaxPool -> Flatten -> Gemm
        cout = 8
        wv = weights(rng, wt, (cout, c, 3, 3), regime)
        ws = channel_scales(rng, cout, 2**-9, 2**-5, pow2)
        g.const("conv_w", wv, wt)
        g.const("conv_w_scale", ws, "float32")
        g.const("conv_w_zero_point", np.zeros(cout), wt)
        g.node("DequantizeLinear", ["conv_w", "conv_w_scale", "conv_w_zero_point"], "conv_w_dq",
               name="dq_conv_w", axis=0)
        g.node("Conv", [t, "conv_w_dq"], "conv_out", name="conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3])
        g.node("Relu", ["conv_out"], "relu_out", name="relu")
        mag = acc_magnitude(np.full(4, 60.0), wv.astype(np.int64), c * 9)
        s1 = output_scale(rng, float(xs) * float(np.mean(ws)), mag, xt, pow2)
        t = qdq("relu_out", s1, QRANGE[xt][0], "conv")
        g.node("MaxPool", [t], "pool_out", name="maxpool", kernel_shape=[2, 2], strides=[2, 2])
        t = qdq("pool_out", s1, QRANGE[xt][0], "pool")
        g.node("Flatten", [t], "flat_out", name="flatten", axis=1)
        k = cout * 16
        wv2 = weights(rng, wt, (k, 10), regime)
        ws2 = scale(rng, 2**-9, 2**-5, pow2)
        g.const("fc_w", wv2, wt)
        g.qparams("fc_w", ws2, 0, wt)
        g.node("DequantizeLinear", ["fc_w", "fc_w_scale", "fc_w_zero_point"], "fc_w_dq", name="dq_fc_w")
        g.node("MatMul", ["flat_out", "fc_w_dq"], "fc_out", name="fc")
        s2 = output_scale(rng, float(s1) * float(ws2), acc_magnitude(np.full(4, 60.0), wv2.astype(np.int64), k),
                          xt, pow2)
        z2 = zero_point(rng, xt)
        g.qparams("y", s2, z2, xt)
        g.node("QuantizeLinear", ["fc_out", "y_scale", "y_zero_point"], "y", name="q_y")
        g.output("y", xt, _dims((n, 10), batch))
    else:                                 # qdq_softmax: Flatten -> Softmax between DQ and Q
        g.node("Flatten", [t], "flat_out", name="flatten", axis=1)
        g.node("Softmax", ["flat_out"], "sm_out", name="softmax", axis=-1)
        g.qparams("y", np.float32(1 / 256), QRANGE[xt][0], xt)
        g.node("QuantizeLinear", ["sm_out", "y_scale", "y_zero_point"], "y", name="q_y")
        g.output("y", xt, _dims((n, c * h * w), batch))
        case["float_reason"] = "Softmax runs in float32 between DequantizeLinear and QuantizeLinear"
        case["float_compute"] = True
        tags.append("float-island")
    case.update(model=g.model_bytes(), inputs={"x": x}, tags=tags)
    return case
