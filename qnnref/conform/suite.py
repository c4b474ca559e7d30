"""The built-in conformance suite: seeded, generated ONNX cases.

Each :class:`Case` is one small ONNX model (a single operator, a QDQ
pattern, or a small graph) plus its input arrays. Case ``i`` of operator
group ``op`` is generated from its own random generator, seeded by
``(seed, crc32(op), i)``: the same seed always gives the same bytes, and a
smaller suite (``--cases``, ``--ops``) is a subset of the full one.

What the generators vary (spec/conformance.md lists it per operator):

* dtypes: u8/s8 activations, s8/u8 weights (u8s8, u8u8, s8s8 and, for the
  integer-output operators, s8u8), 16-bit and 4-bit types where ONNX
  Runtime takes them (QuantizeLinear / DequantizeLinear, DQ of int4 weights);
* shapes and geometry: sizes not multiples of any vector width, 1x1 and
  odd kernels, strides, dilations, pads, groups and depthwise, batches,
  broadcasting;
* zero points (random, at the ends of the range, middle, zero), scales
  (random, powers of two), per-tensor and per-channel weights, bias;
* value regimes (:data:`REGIMES`): random, narrow, ``saturate`` (all-255
  activations against +-127 weights: the u8 x s8 int16 pair overflow),
  ``extremes``, ``ties`` (power-of-two scales: exact .5 requantization
  ties), ``large_acc`` (accumulators above 2^24, where float32 is no longer
  exact), ``zero``.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from .onnxgraph import MS_DOMAIN, OnnxGraph

# ---------------------------------------------------------------------------
# The case
# ---------------------------------------------------------------------------


@dataclass
class Case:
    """One conformance case: an ONNX model and its inputs."""

    id: str                                   # "QLinearConv/0007" (unique in a run)
    op: str                                   # the report row (operator or pattern)
    model: bytes                              # a serialized onnx.ModelProto
    inputs: dict[str, np.ndarray]             # graph input name -> array
    tags: tuple[str, ...] = ()
    #: ONNX Runtime session config entries (SessionOptions.add_session_config_entry)
    session_config: dict[str, str] = field(default_factory=dict)
    #: how this vendor configuration changes every profile's fields for this
    #: case, e.g. {"pairwise_int16_saturation": False} under session.x64quantprecision
    profile_overrides: dict = field(default_factory=dict)
    #: why the outputs are compared within a bound rather than exactly
    #: (None: integer semantics, exact). The worker may add a reason of its own.
    float_reason: str | None = None
    #: whether ONNX Runtime computes it with its own float math (then one step
    #: of difference is allowed); False for a float output that is exact arithmetic
    float_compute: bool = False
    #: tests only: "crash", "hang" or "exit", done by the worker instead of running
    hook: str | None = None
    seed: tuple = ()                          # the generator's seed (for the JSON report)

    def describe(self) -> str:
        return f"{self.id} [{', '.join(self.tags)}]" if self.tags else self.id


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------

QRANGE = {"uint8": (0, 255), "int8": (-128, 127), "uint16": (0, 65535), "int16": (-32768, 32767),
          "int32": (-2**31, 2**31 - 1), "uint4": (0, 15), "int4": (-8, 7)}

SHORT = {"uint8": "u8", "int8": "s8", "uint16": "u16", "int16": "s16", "int32": "s32",
         "uint4": "u4", "int4": "s4", "float32": "f32"}

#: The value regimes of compute cases, in the order they cycle through
#: (case i uses REGIMES[i % len(REGIMES)]): so any 12 consecutive cases of
#: an operator cover every regime, and random ones are the most common.
REGIMES = ("random", "saturate", "ties", "random", "narrow", "large_acc",
           "random", "extremes", "ties", "random", "zero", "saturate")


def np_dtype(dtype: str):
    """numpy dtype holding ``dtype`` (4-bit types are held unpacked)."""
    return {"int4": np.int8, "uint4": np.uint8}.get(dtype, np.dtype(dtype))


def zero_point(rng, dtype: str, style: str | None = None) -> int:
    lo, hi = QRANGE[dtype]
    style = style or rng.choice(["random", "random", "random", "extreme", "middle", "zero"])
    if style == "extreme":
        return int(rng.choice([lo, hi]))
    if style == "middle":
        return (lo + hi + 1) // 2
    if style == "zero":
        return 0 if lo <= 0 else lo
    return int(rng.integers(lo, hi + 1))


def activations(rng, dtype: str, shape, zp: int, regime: str) -> np.ndarray:
    """Quantized activations for a value regime."""
    lo, hi = QRANGE[dtype]
    shape = tuple(int(s) for s in shape)
    if regime in ("saturate", "large_acc"):
        a = np.full(shape, hi)
    elif regime == "extremes":
        a = rng.choice([lo, hi], size=shape)
    elif regime == "zero":
        a = np.full(shape, zp)
    elif regime == "narrow":
        a = rng.integers(max(lo, zp - 16), min(hi, zp + 16) + 1, size=shape)
    else:
        a = rng.integers(lo, hi + 1, size=shape)
    return a.astype(np_dtype(dtype))


def weights(rng, dtype: str, shape, regime: str) -> np.ndarray:
    """Quantized weights for a value regime. s8 weights are in [-127, 127]
    (what quantizers write) except in ``extremes``, which also uses -128."""
    lo, hi = QRANGE[dtype]
    shape = tuple(int(s) for s in shape)
    if lo < 0:
        lo = max(lo, -hi)                          # symmetric: -127 for int8
    if regime in ("saturate", "large_acc"):
        # +-127 with runs of one sign: pairs u8*s8 then overflow int16
        sign = rng.choice([-1, 1], size=shape[:1] + (1,) * (len(shape) - 1))
        a = np.where(sign > 0, hi, lo) if regime == "large_acc" or rng.random() < 0.5 \
            else rng.choice([lo, hi], size=shape)
        a = np.broadcast_to(a, shape)
    elif regime == "extremes":
        a = rng.choice([QRANGE[dtype][0], hi], size=shape)
    elif regime == "narrow":
        mid = (lo + hi) // 2
        a = rng.integers(mid - 64, mid + 64, size=shape)
    else:
        a = rng.integers(lo, hi + 1, size=shape)
    return np.ascontiguousarray(a).astype(np_dtype(dtype))


def log_uniform(rng, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(math.log(lo), math.log(hi))))


def scale(rng, lo: float, hi: float, pow2: bool = False) -> np.float32:
    """A float32 scale in [lo, hi]; a power of two when ``pow2``."""
    s = log_uniform(rng, lo, hi)
    return np.float32(2.0 ** round(math.log2(s)) if pow2 else s)


def channel_scales(rng, n: int, lo: float, hi: float, pow2: bool) -> np.ndarray:
    return np.array([scale(rng, lo, hi, pow2) for _ in range(n)], np.float32)


def acc_magnitude(xc: np.ndarray, wc: np.ndarray, k: int) -> float:
    """A rough size of the accumulator sum_k xc*wc: enough to choose an
    output scale that neither saturates nor rounds everything to zero."""
    rx = float(np.sqrt(np.mean(np.square(xc, dtype=np.float64)))) if xc.size else 0.0
    rw = float(np.sqrt(np.mean(np.square(wc, dtype=np.float64)))) if wc.size else 0.0
    mx = float(np.mean(xc)) if xc.size else 0.0
    mw = float(np.mean(wc)) if wc.size else 0.0
    return max(1.0, math.sqrt(max(k, 1)) * rx * rw, abs(k * mx * mw))


def output_scale(rng, in_scale: float, magnitude: float, out_dtype: str, pow2: bool) -> np.float32:
    """y_scale such that magnitude * in_scale / y_scale spans about half the
    output range (times a random factor in [1/4, 4])."""
    lo, hi = QRANGE[out_dtype]
    target = in_scale * magnitude / ((hi - lo) / 4) * log_uniform(rng, 0.25, 4.0)
    target = min(max(target, 1e-12), 1e12)
    return np.float32(2.0 ** round(math.log2(target)) if pow2 else target)


def float_inputs(rng, shape, s, zp, dtype: str, regime: str) -> np.ndarray:
    """Float inputs for QuantizeLinear-like cases: values around the
    representable range of (s, zp, dtype) -- ``s`` and ``zp`` may be arrays
    broadcastable to ``shape`` -- with exact ties, saturation and signed
    zeros depending on the regime."""
    lo, hi = QRANGE[dtype]
    shape = tuple(int(v) for v in shape)
    s64 = np.broadcast_to(np.asarray(s, np.float64), shape)
    zp = np.broadcast_to(np.asarray(zp, np.int64), shape)
    if regime == "ties":        # exactly halfway between two quantized values
        k = rng.integers(lo - zp - 2, hi - zp + 2, size=shape)
        x = (k + 0.5) * s64
    elif regime in ("saturate", "extremes", "large_acc"):
        x = rng.choice([-1, 1], size=shape) * rng.uniform(1, 4, size=shape) * (hi - lo) * s64
    elif regime == "zero":
        x = rng.choice([0.0, -0.0], size=shape) * np.ones(shape)
    elif regime == "narrow":
        x = rng.normal(0, 4, size=shape) * s64
    else:
        x = ((lo - zp - 4) + rng.uniform(0, 1, size=shape) * (hi - lo + 8)) * s64
    return x.astype(np.float32)


def pads_for(rng, k: int) -> tuple[int, int]:
    return int(rng.integers(0, k)), int(rng.integers(0, k))


def conv_out(size: int, k: int, stride: int, dilation: int, pad_a: int, pad_b: int) -> int:
    return (size + pad_a + pad_b - (dilation * (k - 1) + 1)) // stride + 1


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


def gen_graph(rng, i):
    """Small QOperator graphs (conv -> pool -> matmul, residual, concat, MLP)
    and QDQ graphs with float inputs and a float island (Softmax)."""
    templates = ("cnn", "residual", "concat", "mlp", "qdq_cnn", "cnn", "residual", "qdq_softmax")
    template = templates[i % len(templates)]
    regime = ("random", "saturate", "ties", "random", "narrow")[(i // len(templates)) % 5]
    xt, wt = (("uint8", "int8"), ("uint8", "uint8"), ("uint8", "int8"), ("int8", "int8"))[(i // 40) % 4]
    if template.startswith("qdq"):
        return _qdq_graph(rng, template, regime, xt, wt)
    g = OnnxGraph(name=template)
    b = _QOpBuilder(rng, g, regime, xt, wt)
    n, c = 1, int(rng.choice([1, 3, 4, 8]))
    h = w = int(rng.choice([6, 8, 10, 12]))
    xs, xz = scale(rng, 2**-8, 2**-3, b.pow2), zero_point(rng, xt)
    x = activations(rng, xt, (n, c, h, w), xz, regime)
    g.input("x", xt, x.shape)
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
    g.output(t, xt, b.q[t][2])
    tags = [template, SHORT[xt] + SHORT[wt], regime, f"{len(g.nodes)} nodes"]
    return dict(model=g.model_bytes(), inputs={"x": x}, tags=tags)


def _qdq_graph(rng, template, regime, xt, wt):
    """QDQ graphs as ORT's quantize_static writes them, with a float input."""
    g = OnnxGraph(name=template)
    pow2 = regime == "ties"
    n, c, h, w = 1, int(rng.choice([1, 3, 4])), 8, 8
    xs = scale(rng, 2**-7, 2**-3, pow2)
    xz = zero_point(rng, xt, "middle" if xt == "uint8" else "zero")
    x = rng.uniform(-1, 1, size=(n, c, h, w)).astype(np.float32) * float(xs) * 120
    g.input("x", "float32", x.shape)

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
        g.output("y", xt, (1, 10))
    else:                                 # qdq_softmax: Flatten -> Softmax between DQ and Q
        g.node("Flatten", [t], "flat_out", name="flatten", axis=1)
        g.node("Softmax", ["flat_out"], "sm_out", name="softmax", axis=-1)
        g.qparams("y", np.float32(1 / 256), QRANGE[xt][0], xt)
        g.node("QuantizeLinear", ["sm_out", "y_scale", "y_zero_point"], "y", name="q_y")
        g.output("y", xt, (1, c * h * w))
        case["float_reason"] = "Softmax runs in float32 between DequantizeLinear and QuantizeLinear"
        case["float_compute"] = True
        tags.append("float-island")
    case.update(model=g.model_bytes(), inputs={"x": x}, tags=tags)
    return case


# ---------------------------------------------------------------------------
# The registry of report rows and the suite
# ---------------------------------------------------------------------------

#: report row -> (generator, number of cases in the full built-in suite)
GENERATORS: dict[str, tuple] = {
    "QLinearConv": (gen_qlinearconv, 260),
    "QLinearMatMul": (gen_qlinearmatmul, 200),
    "MatMulInteger": (gen_matmulinteger, 140),
    "ConvInteger": (gen_convinteger, 100),
    "QGemm": (gen_qgemm, 140),
    "QLinearAdd": (gen_qlinearadd, 120),
    "QLinearMul": (gen_qlinearmul, 100),
    "QLinearAveragePool": (gen_qlinearaveragepool, 110),
    "QLinearGlobalAveragePool": (gen_qlinearglobalaveragepool, 60),
    "QLinearConcat": (gen_qlinearconcat, 80),
    "QLinearSigmoid": (gen_qlinearsigmoid, 50),
    "QLinearLeakyRelu": (gen_qlinearleakyrelu, 60),
    "QuantizeLinear": (gen_quantizelinear, 130),
    "DequantizeLinear": (gen_dequantizelinear, 90),
    "QDQ Conv": (gen_qdq_conv, 140),
    "QDQ MatMul": (gen_qdq_matmul, 120),
    "QDQ Add": (gen_qdq_add, 80),
    "graph": (gen_graph, 120),
}

FULL_SUITE_SIZE = sum(n for _, n in GENERATORS.values())


def case_rng(seed: int, op: str, index: int) -> np.random.Generator:
    """The generator of case ``index`` of ``op``: independent of every other case."""
    return np.random.default_rng([seed, zlib.crc32(op.encode()), index])


def make_case(op: str, index: int, seed: int = 0) -> Case:
    gen, _ = GENERATORS[op]
    fields = gen(case_rng(seed, op, index), index)
    fields["tags"] = tuple(fields.get("tags", ()))
    return Case(id=f"{op}/{index:04d}", op=op, seed=(seed, op, index), **fields)


def counts(total: int | None = None, ops=None) -> dict[str, int]:
    """Cases per row: the full suite, or ``total`` shared in proportion
    (at least one per row asked for)."""
    rows = {op: n for op, (_, n) in GENERATORS.items() if ops is None or op in ops}
    if total is None:
        return rows
    full = sum(rows.values())
    out = {op: max(1, int(total * n // full)) for op, n in rows.items()}
    # give what rounding left over to the largest rows first
    for op in sorted(rows, key=lambda o: -rows[o]):
        if sum(out.values()) >= total:
            break
        out[op] += 1
    return out


def builtin_suite(seed: int = 0, total: int | None = None, ops=None):
    """Yield the built-in suite's cases, row by row (cases of a row in index order)."""
    if ops is not None:
        unknown = [o for o in ops if o not in GENERATORS]
        if unknown:
            raise ValueError(f"unknown operator(s) {unknown}; the suite has: {', '.join(GENERATORS)}")
    for op, n in counts(total, ops).items():
        for index in range(n):
            yield make_case(op, index, seed)
