"""qnnref under ``ort-cpu-x86`` / ``ort-cpu-x86-vnni`` equals ONNX Runtime bit for bit.

Each case is one ONNX node (built with onnx.helper, NCHW / OIHW where ONNX
wants them) and the equivalent qnnref model (built with GraphBuilder, NHWC /
OHWI, the data transposed). ORT runs every case of a CPU in one subprocess
(ort_harness.py):

* ``native``: this machine; the expected profile is ``ort-cpu-x86`` when ORT
  saturates u8 x s8 pairs here (AVX2 or AVX-512 without VNNI), else
  ``ort-cpu-x86-vnni``;
* ``avx2``: ORT with AVX-512, VNNI and AMX hidden from CPUID (qnnref/conform/cpuidmask.c),
  i.e. MLAS's AVX2 kernels: always ``ort-cpu-x86``.

The "discriminates" tests check that the cases can tell the recipes apart:
each rule of the profile is needed (e.g. without pairwise saturation, or
with QLinearAdd's real-number formula, qnnref would disagree with ORT).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

import ort_harness
from qnnref import GraphBuilder, Recipe
from qnnref.arith import combine_scales, prepare_requant
from qnnref.ops.matmul import pairwise_int16_accumulator

pytestmark = pytest.mark.skipif(not ort_harness.HAVE_ORT, reason="onnx and onnxruntime are not installed")

if ort_harness.HAVE_ORT:
    from onnx import helper, numpy_helper

F32 = np.float32
ONNX_TYPES = {"uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "float32": 1}


# ---------------------------------------------------------------------------
# Building ONNX models
# ---------------------------------------------------------------------------

def onnx_model(nodes, inputs: dict, outputs: dict, inits: dict, opset: int = 21) -> bytes:
    """A model from nodes, {name: array} graph inputs (shape and type from the
    array), {name: dtype} outputs and {name: array} initializers."""
    g = helper.make_graph(
        nodes, "case",
        [helper.make_tensor_value_info(k, ONNX_TYPES[v.dtype.name], list(v.shape)) for k, v in inputs.items()],
        [helper.make_tensor_value_info(k, ONNX_TYPES[t], None) for k, t in outputs.items()],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 10
    return m.SerializeToString()


@dataclass
class Case:
    family: str
    label: str
    onnx: bytes
    feeds: dict                                   # ORT inputs
    build: Callable[[str], object]                # profile -> qnnref.Model
    qfeeds: dict                                  # qnnref inputs
    to_ort_layout: Callable = staticmethod(lambda y: y)
    meta: dict = field(default_factory=dict)


def q_out(model, feeds):
    return next(iter(model.run(feeds).values()))


# ---------------------------------------------------------------------------
# Case generators (seeded)
# ---------------------------------------------------------------------------

def values(rng, dtype: str, shape, kind: str) -> np.ndarray:
    info = np.iinfo(dtype)
    if kind == "extreme":   # the saturating corner: 255 activations, +-127/-128 weights
        pool = [info.min, info.min + 1, info.max - 1, info.max] if info.min < 0 else [0, 254, 255]
        return rng.choice(pool, shape).astype(dtype)
    return rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)


def matmul_case(rng, i: int) -> Case:
    a_dt, b_dt = [("uint8", "int8"), ("uint8", "int8"), ("uint8", "uint8"), ("int8", "int8")][i % 4]
    m, k, n = int(rng.choice([1, 3, 8])), int(rng.choice([1, 2, 3, 7, 16, 33, 64, 255])), int(rng.choice([1, 5, 16]))
    batch = (2,) if i % 5 == 0 else ()
    kind = "extreme" if i % 2 else "random"
    a = values(rng, a_dt, batch + (m, k), kind)
    b = values(rng, b_dt, (k, n), kind)
    za = np.array(rng.integers(np.iinfo(a_dt).min, np.iinfo(a_dt).max + 1), a_dt)
    per_col = i % 3 == 0
    zb = np.zeros(n if per_col else (), b_dt) if b_dt == "int8" and i % 6 < 3 else \
        np.full(n if per_col else (), rng.integers(np.iinfo(b_dt).min, np.iinfo(b_dt).max + 1), b_dt)
    sa = F32(np.exp(rng.uniform(-6, -2)))
    sb = np.exp(rng.uniform(-6, -2, n)).astype(F32) if per_col else F32(np.exp(rng.uniform(-6, -2)))
    acc = pairwise_int16_accumulator(a, za, b, zb) if (a_dt, b_dt) == ("uint8", "int8") else \
        (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)
    spread = float(np.abs(acc).max()) * float(np.max(sa * sb)) + 1e-30
    sy = F32(spread / rng.uniform(40, 300))
    y_dt = a_dt
    zy = np.array(rng.integers(np.iinfo(y_dt).min, np.iinfo(y_dt).max + 1), y_dt)
    node = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
    model = onnx_model([node], {"a": a}, {"y": y_dt},
                       {"sa": sa, "za": za, "b": b, "sb": sb, "zb": zb, "sy": sy, "zy": zy})

    def build(profile):
        g = GraphBuilder(profile=profile)
        x = g.input("a", a_dt, a.shape, scale=sa, zero_point=int(za))
        w = g.constant("b", b, scale=sb, zero_point=zb, axis=1 if per_col else None)
        g.output(g.node("matmul", [x, w], scale=sy, zero_point=int(zy)))
        return g.build(backend="reference")
    return Case("QLinearMatMul", f"{a_dt}x{b_dt} {a.shape}x{b.shape} {kind}", model, {"a": a}, build, {"a": a})


def conv_case(rng, i: int, dw_only: bool = False) -> Case:
    x_dt, w_dt = [("uint8", "int8"), ("uint8", "int8"), ("uint8", "uint8"), ("int8", "int8")][i % 4]
    n = int(rng.choice([1, 2]))
    shape_kind = i % 4 if not dw_only else 2
    if shape_kind == 0:                      # ordinary
        c_in, groups, c_out = int(rng.choice([1, 3, 5, 8, 17])), 1, int(rng.choice([1, 4, 8]))
    elif shape_kind == 1:                    # grouped
        groups = int(rng.choice([2, 3])); c_in = groups * int(rng.choice([1, 3])); c_out = groups * int(rng.choice([1, 2]))
    else:                                    # depthwise, channel multiplier 1 or 2
        c_in = int(rng.choice([1, 4, 7, 16])); groups = c_in; c_out = c_in * int(rng.choice([1, 1, 2]))
    kh, kw = [(3, 3), (1, 1), (2, 3), (5, 5), (3, 1)][i % 5]
    h, wd = int(rng.integers(kh + 2, kh + 7)), int(rng.integers(kw + 2, kw + 7))
    strides = [int(rng.integers(1, 3)), int(rng.integers(1, 3))]
    dil = [1, 1] if i % 3 else [2, 1]
    if dil[0] * (kh - 1) + 1 > h:
        dil = [1, 1]
    pads = [int(rng.integers(0, 3)) for _ in range(4)]          # top, left, bottom, right
    kind = "extreme" if i % 2 else "random"
    x = values(rng, x_dt, (n, h, wd, c_in), kind)               # NHWC
    w = values(rng, w_dt, (c_out, kh, kw, c_in // groups), kind)  # OHWI
    zx = np.array(rng.integers(np.iinfo(x_dt).min, np.iinfo(x_dt).max + 1), x_dt)
    per_ch = i % 3 != 2
    zw_val = 0 if (w_dt == "int8" and i % 5 < 3) else int(rng.integers(np.iinfo(w_dt).min, np.iinfo(w_dt).max + 1))
    zw = np.full(c_out if per_ch else (), zw_val, w_dt)           # ORT: one weight zero point for all channels
    sx = F32(np.exp(rng.uniform(-6, -2)))
    sw = np.exp(rng.uniform(-6, -2, c_out)).astype(F32) if per_ch else F32(np.exp(rng.uniform(-6, -2)))
    bias = rng.integers(-(2**14), 2**14, c_out).astype(np.int32) if i % 2 == 0 else None
    if i % 7 == 3 and bias is not None:                          # accumulators beyond 2^24: float32 rounds them
        bias = (rng.choice([-1, 1], c_out) * rng.integers(2**24, 2**28, c_out)).astype(np.int32)
    sy = F32(float(np.max(sx * sw)) * float(2**16 if bias is not None and np.abs(bias).max() > 2**24 else
                                              (kh * kw * c_in // groups) * 255 * 127 / 8) / rng.uniform(20, 200))
    zy = np.array(rng.integers(np.iinfo(x_dt).min, np.iinfo(x_dt).max + 1), x_dt)
    ins = ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy"] + (["bias"] if bias is not None else [])
    node = helper.make_node("QLinearConv", ins, ["y"], strides=strides, dilations=dil, group=groups,
                            pads=[pads[0], pads[1], pads[2], pads[3]], kernel_shape=[kh, kw])
    inits = {"sx": sx, "zx": zx, "w": w.transpose(0, 3, 1, 2).copy(), "sw": sw, "zw": zw, "sy": sy, "zy": zy}
    if bias is not None:
        inits["bias"] = bias
    x_nchw = x.transpose(0, 3, 1, 2).copy()
    model = onnx_model([node], {"x": x_nchw}, {"y": x_dt}, inits)

    def build(profile):
        g = GraphBuilder(profile=profile)
        xi = g.input("x", x_dt, x.shape, scale=sx, zero_point=int(zx))
        wi = g.constant("w", w, scale=sw, zero_point=zw, axis=0 if per_ch else None)
        args = [xi, wi] + ([g.constant("bias", bias)] if bias is not None else [])
        attrs = {"strides": strides, "dilations": dil, "pads": pads, "groups": groups}
        g.output(g.node("conv2d", args, attrs, scale=sy, zero_point=int(zy)))
        return g.build(backend="reference")
    label = f"{x_dt}x{w_dt} x{list(x.shape)} w{list(w.shape)} g{groups} s{strides} d{dil} p{pads} {kind}"
    return Case("QLinearConv", label, model, {"x": x_nchw}, build, {"x": x},
                to_ort_layout=lambda y: y.transpose(0, 3, 1, 2))


def binary_case(rng, op: str, i: int, grid: bool = False) -> Case:
    dt = ["uint8", "int8"][i % 2]
    info = np.iinfo(dt)
    if grid:   # every pair of codes
        a, b = (v.astype(dt) for v in np.meshgrid(np.arange(info.min, info.max + 1),
                                                   np.arange(info.min, info.max + 1), indexing="ij"))
    else:
        sa_, sb_ = [((7,), (7,)), ((1,), (33,)), ((3, 1, 5), (1, 4, 5)), ((2, 17), (17,)), ((), (19,)),
                    ((19,), ())][i % 6]
        a, b = values(rng, dt, sa_, "random"), values(rng, dt, sb_, "random")
    s_a, s_b = F32(np.exp(rng.uniform(-5, 0))), F32(np.exp(rng.uniform(-5, 0)))
    if i % 4 == 1:
        s_b = s_a
    ties = i % 8 == 3 or (grid and i % 3 == 1)
    if ties:   # powers of two: many exact ties; an odd output zero point tells the rounding order
        s_a, s_b = F32(2.0 ** -int(rng.integers(1, 5))), F32(2.0 ** -int(rng.integers(1, 5)))
    if op == "add":
        s_y = F32((s_a + s_b) * rng.uniform(0.5, 3)) if not ties else F32(2.0 ** -int(rng.integers(0, 3)))
    else:
        s_y = F32(s_a * s_b * 255 * 255 / rng.uniform(100, 800)) if not ties else F32(2.0 ** int(rng.integers(2, 6)))
    za, zb, zy = (np.array(rng.integers(info.min, info.max + 1), dt) for _ in range(3))
    if ties:
        zy = np.array(int(zy) | 1, dt)
    ort_op = {"add": "QLinearAdd", "mul": "QLinearMul"}[op]
    node = helper.make_node(ort_op, ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"], domain="com.microsoft")
    model = onnx_model([node], {"a": a, "b": b}, {"y": dt},
                       {"sa": s_a, "za": za, "sb": s_b, "zb": zb, "sy": s_y, "zy": zy})

    def build(profile):
        g = GraphBuilder(profile=profile)
        ai = g.input("a", dt, a.shape, scale=s_a, zero_point=int(za))
        bi = g.input("b", dt, b.shape, scale=s_b, zero_point=int(zb))
        g.output(g.node(op, [ai, bi], scale=s_y, zero_point=int(zy)))
        return g.build(backend="reference")
    return Case(ort_op, f"{dt} {a.shape}+{b.shape}{' grid' if grid else ''}", model, {"a": a, "b": b}, build,
                {"a": a, "b": b})


def quantize_case(rng, i: int) -> Case:
    dt = ["uint8", "int8", "int16", "uint8"][i % 4]
    per_axis = i % 4 == 3
    info = np.iinfo(dt)
    shape = (3, 4000)
    s = np.exp(rng.uniform(-8, 2, 3)).astype(F32) if per_axis else F32(np.exp(rng.uniform(-8, 2)))
    zp = (rng.integers(info.min, info.max + 1, 3) if per_axis else rng.integers(info.min, info.max + 1)).astype(dt)
    s_b = s[:, None] if per_axis else s
    k = rng.integers(-300, 300, shape)
    ties = ((k + 0.5).astype(F32) * s_b).astype(F32)                 # near x / s = k + 1/2
    x = np.concatenate([ties, np.nextafter(ties, F32(np.inf)), rng.standard_normal(shape).astype(F32) * s_b * 300,
                        np.array([[np.inf, -np.inf, 3e38, -3e38, 0.0, -0.0] + [0.0] * 3994] * 3, F32)], axis=1)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=0)
    model = onnx_model([node], {"x": x}, {"y": dt}, {"s": s, "z": zp})

    def build(profile):
        g = GraphBuilder(profile=profile)
        xi = g.input("x", "float32", x.shape)
        g.output(g.node("quantize", [xi], {"dtype": dt}, scale=s, zero_point=zp, axis=0 if per_axis else None))
        return g.build(backend="reference")
    return Case("QuantizeLinear", f"{dt}{' per-axis' if per_axis else ''}", model, {"x": x}, build, {"x": x})


def dequantize_case(rng, i: int) -> Case:
    dt = ["uint8", "int8", "int16"][i % 3]
    info = np.iinfo(dt)
    q = rng.integers(info.min, info.max + 1, (3, 257)).astype(dt)
    s = np.exp(rng.uniform(-20, 10, 3)).astype(F32)
    zp = rng.integers(info.min, info.max + 1, 3).astype(dt)
    node = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=0)
    model = onnx_model([node], {"q": q}, {"y": "float32"}, {"s": s, "z": zp})

    def build(profile):
        g = GraphBuilder(profile=profile)
        qi = g.input("q", dt, q.shape, scale=s, zero_point=zp, axis=0)
        g.output(g.node("dequantize", [qi]))
        return g.build(backend="reference")
    return Case("DequantizeLinear", dt, model, {"q": q}, build, {"q": q})


def pool_case(rng, i: int) -> Case:
    """QLinearAveragePool (NCHW) where ONNX Runtime's float32 average decides
    the rounding: equal quantizations, output scales s_x times a small ratio
    (real averages on exact halves) with s_x not a power of two, odd zero
    points; count_include_pad with pads. Every 8th case is a pool whose one
    window is the whole unpadded input: ORT then runs QLinearGlobalAveragePool
    (an integer sum, requantized), which qnnref's mean computes."""
    dt = ["uint8", "int8"][i % 2]
    info = np.iinfo(dt)
    whole = i % 8 == 7
    n, c = int(rng.choice([1, 2])), int(rng.choice([1, 5, 16]))
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    if whole:
        h, w, strides, pads, include = kh, kw, [1, 1], [0, 0, 0, 0], int(rng.integers(0, 2))
    else:
        h, w = int(rng.integers(kh, kh + 6)), int(rng.integers(kw, kw + 6))
        strides = [int(rng.integers(1, 3)), int(rng.integers(1, 3))]
        pads = [int(rng.integers(0, k)) for k in (kh, kw, kh, kw)]                   # top, left, bottom, right
        include = i % 3 != 0
    x = values(rng, dt, (n, c, h, w), "extreme" if i % 5 == 4 else "random")          # NCHW
    zx = int(rng.integers(info.min, info.max + 1))
    sx = F32(np.exp(rng.uniform(-6, -1)))
    style = ["same", "ratio", "free"][i % 3]
    if style == "same":
        sy, zy = sx, zx
    else:
        sy = F32(sx * (float(rng.choice([0.5, 1.5, 2.0, 3.0, 1 / 3])) if style == "ratio" else rng.uniform(0.4, 3)))
        zy = int(rng.integers(info.min, info.max + 1)) | 1
    node = helper.make_node("QLinearAveragePool", ["x", "sx", "zx", "sy", "zy"], ["y"], domain="com.microsoft",
                            kernel_shape=[kh, kw], strides=strides, pads=pads, count_include_pad=include)
    model = onnx_model([node], {"x": x}, {"y": dt},
                       {"sx": sx, "zx": np.array(zx, dt), "sy": sy, "zy": np.array(zy, dt)})
    x_nhwc = x.transpose(0, 2, 3, 1).copy()

    def build(profile):
        g = GraphBuilder(profile=profile)
        xi = g.input("x", dt, x_nhwc.shape, scale=sx, zero_point=zx)
        if whole:
            y = g.node("mean", [xi], {"axes": [1, 2]}, scale=sy, zero_point=zy)
        else:
            attrs = {"kernel": [kh, kw], "strides": strides, "pads": pads, "count_include_pad": bool(include)}
            if style == "same":
                attrs["rounding"] = "half_to_even"
            y = g.node("avg_pool2d", [xi], attrs, scale=sy, zero_point=zy)
        g.output(y)
        return g.build(backend="reference")
    label = f"{dt} x{list(x.shape)} k{kh}x{kw} s{strides} p{pads} include={include} {style}"
    label += " whole" if whole else ""
    return Case("QLinearAveragePool", label, model, {"x": x}, build, {"x": x_nhwc},
                to_ort_layout=lambda y: y.transpose(0, 3, 1, 2))


def cancelling_pairs_case(rng, i: int) -> Case:
    """u8 x s8 rows whose saturated pairs cancel: both the exact sum and the
    saturated one fit the int8 output at scale 1, so the saturation shows as
    a plain difference (QLinearMatMul, m = 1)."""
    k = 4 * int(rng.integers(1, 4))
    a = np.full((4, k), 255, np.uint8)
    a[1, : k // 2] = 0
    b = np.zeros((k, 3), np.int8)
    b[0::4, 0], b[1::4, 0], b[2::4, 0], b[3::4, 0] = 127, 127, -127, -128        # pairs +64770, -65025
    b[0::4, 1], b[1::4, 1], b[2::4, 1], b[3::4, 1] = 100, 100, -127, 26           # +51000, -25755
    b[:, 2] = rng.integers(-128, 128, k)
    sy = F32(2.0 ** int(rng.integers(9, 11)))
    node = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
    model = onnx_model([node], {"a": a}, {"y": "uint8"},
                       {"sa": F32(1), "za": np.uint8(0), "b": b, "sb": F32(1), "zb": np.int8(0), "sy": sy,
                        "zy": np.uint8(128)})

    def build(profile):
        g = GraphBuilder(profile=profile)
        x = g.input("a", "uint8", a.shape, scale=1.0, zero_point=0)
        w = g.constant("b", b, scale=1.0, zero_point=0)
        g.output(g.node("matmul", [x, w], scale=sy, zero_point=128))
        return g.build(backend="reference")
    return Case("QLinearMatMul", f"cancelling pairs k={k}", model, {"a": a}, build, {"a": a})


def all_cases() -> list[Case]:
    rng = np.random.default_rng(20261126)
    cases = [matmul_case(rng, i) for i in range(48)]
    cases += [cancelling_pairs_case(rng, i) for i in range(3)]
    cases += [conv_case(rng, i) for i in range(56)]
    cases += [conv_case(rng, i, dw_only=True) for i in range(12)]
    cases += [binary_case(rng, "add", i) for i in range(24)] + [binary_case(rng, "add", i, grid=True) for i in range(6)]
    cases += [binary_case(rng, "mul", i) for i in range(24)] + [binary_case(rng, "mul", i, grid=True) for i in range(6)]
    cases += [quantize_case(rng, i) for i in range(8)]
    cases += [dequantize_case(rng, i) for i in range(6)]
    cases += [pool_case(rng, i) for i in range(48)]
    return cases


FAMILIES = ["QLinearMatMul", "QLinearConv", "QLinearAdd", "QLinearMul", "QuantizeLinear", "DequantizeLinear",
            "QLinearAveragePool"]
CPUS = ["native", "avx2"]


@pytest.fixture(scope="module")
def cases():
    return all_cases()


@pytest.fixture(scope="module")
def ort_outputs(cases):
    memo = {}

    def get(cpu):
        if cpu not in memo:
            if cpu == "avx2" and ort_harness.avx2_unavailable():
                pytest.skip(f"cannot present ORT with an AVX2-only CPU here: {ort_harness.avx2_unavailable()}")
            memo[cpu] = ort_harness.run_cases([(c.onnx, c.feeds) for c in cases], cpu)
        return memo[cpu]
    return get


def expected_profile(cpu: str) -> str:
    return ort_harness.native_profile() if cpu == "native" else "ort-cpu-x86"


def compare(cases, outs, family: str, profile: str):
    """(number of cases, list of mismatch descriptions) for one family under one profile."""
    n, bad = 0, []
    for c, o in zip(cases, outs):
        if c.family != family:
            continue
        assert not isinstance(o, str), f"ORT refused {c.family} {c.label}: {o}"
        got = c.to_ort_layout(q_out(c.build(profile), c.qfeeds))
        want = o[0]
        n += 1
        same = np.array_equal(got, want) if got.dtype.kind != "f" else np.array_equal(got.view(np.uint32), want.view(np.uint32))
        if not same or got.dtype != want.dtype:
            diff = np.argwhere(got != want)
            bad.append(f"{c.label}: {len(diff)} of {got.size} differ, first at {diff[0].tolist() if len(diff) else '-'}")
    return n, bad


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("family", FAMILIES)
def test_qnnref_equals_onnxruntime(cases, ort_outputs, cpu, family):
    profile = expected_profile(cpu)
    n, bad = compare(cases, ort_outputs(cpu), family, profile)
    assert n > 0
    assert not bad, f"{family} under {profile} ({cpu}): {len(bad)} of {n} cases differ:\n" + "\n".join(bad[:10])


def test_the_cases_discriminate_the_saturation(cases, ort_outputs):
    """Under the AVX2 CPU, the exact (VNNI) profile would get many matmul and
    conv cases wrong: the pairwise saturation rule is needed."""
    outs = ort_outputs("avx2")
    for family in ("QLinearMatMul", "QLinearConv"):
        n, bad = compare(cases, outs, family, "ort-cpu-x86-vnni")
        assert len(bad) >= n // 5, (family, len(bad), n)


def test_the_grids_discriminate_add_and_mul_forms(cases, ort_outputs):
    """Every code pair, a few scale sets: QLinearAdd's real-number formula and
    QLinearMul with the zero point added after rounding both disagree with ORT."""
    outs = ort_outputs("native")
    grid = [(c, o) for c, o in zip(cases, outs) if "grid" in c.label]
    wrong = {"QLinearAdd": 0, "QLinearMul": 0}
    for c, o in grid:
        other = "float32-half-to-even"   # real_sum add; mul with the zero point added after rounding
        if not np.array_equal(q_out(c.build(other), c.qfeeds), o[0]):
            wrong[c.family] += 1
    assert wrong["QLinearAdd"] >= 1 and wrong["QLinearMul"] >= 1, wrong


def test_the_pools_discriminate_the_average_form(cases, ort_outputs):
    """QLinearAveragePool: the exact integer sum, requantized (or the codes'
    exact average), disagrees with ORT on many cases; ORT's float32 average
    (average_form float_average) is needed, with the zero point added in float."""
    outs = ort_outputs("native")
    pools = [(c, o) for c, o in zip(cases, outs) if c.family == "QLinearAveragePool" and "whole" not in c.label]
    wrong = {"integer_sum": 0, "zero point after rounding": 0}
    for c, o in pools:
        if not np.array_equal(c.to_ort_layout(q_out(c.build("float32-half-to-even"), c.qfeeds)), o[0]):
            wrong["integer_sum"] += 1
        if not np.array_equal(c.to_ort_layout(q_out(c.build("ort-pool-zp-after"), c.qfeeds)), o[0]):
            wrong["zero point after rounding"] += 1
    assert wrong["integer_sum"] >= len(pools) // 4 and wrong["zero point after rounding"] >= 1, (wrong, len(pools))


@pytest.fixture(autouse=True, scope="module")
def _ort_pool_zp_after():
    """A profile like ort-cpu-x86-vnni whose pools add the zero point after rounding."""
    import dataclasses

    from qnnref.profiles import PROFILES
    base = PROFILES["ort-cpu-x86-vnni"]
    recipe = dataclasses.replace(base.op_recipes["avg_pool2d"], zero_point_in_float=False)
    PROFILES["ort-pool-zp-after"] = dataclasses.replace(base, name="ort-pool-zp-after",
                                                        op_recipes={**base.op_recipes, "avg_pool2d": recipe})
    yield
    del PROFILES["ort-pool-zp-after"]


def test_qdq_int8_activations_are_summed_as_uint8():
    """A QDQ convolution of int8 activations that a QuantizeLinear produces:
    ORT rewrites the Q/DQ pair to uint8 (x + 128, zero point + 128) and runs
    a u8 x s8 QLinearConv, so without VNNI the pairs (x + 128) w saturate.
    x = [127, 127], w = [127, 127], s_y = 256: exactly 32258 -> 126 (32256);
    on AVX2 sat16(255 * 127 * 2) - 128 * 254 = 255 -> 1 (256). qnnref's
    importer keeps such activations int8 (a gap, spec/profiles/ort-cpu-x86.md)."""
    f = F32
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv"),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    x = np.full((1, 2, 1, 1), 127, f)
    model = onnx_model(nodes, {"x": x}, {"y": "float32"},
                       {"s": f(1), "z": np.int8(0), "w": np.full((1, 2, 1, 1), 127, np.int8),
                        "ws": np.array([1], f), "wz": np.array([0], np.int8), "ys": f(256), "yz": np.int8(0)})
    if not ort_harness.avx2_unavailable():
        (o,) = ort_harness.run_cases([(model, {"x": x})], "avx2")
        assert o[0].ravel().tolist() == [256.0]
    (o,) = ort_harness.run_cases([(model, {"x": x})])
    assert o[0].ravel().tolist() == ([256.0] if ort_harness.native_profile() == "ort-cpu-x86" else [32256.0])


# ---------------------------------------------------------------------------
# MatMulInteger and ConvInteger: the int32 accumulators themselves
# ---------------------------------------------------------------------------

def integer_cases(rng):
    out = []
    for i in range(24):
        a_dt, b_dt = [("uint8", "int8"), ("uint8", "int8"), ("uint8", "uint8"), ("int8", "int8")][i % 4]
        m, k, n = int(rng.choice([1, 4])), int(rng.choice([1, 2, 3, 17, 64, 129])), int(rng.choice([1, 3, 8]))
        kind = "extreme" if i % 2 else "random"
        a, b = values(rng, a_dt, (m, k), kind), values(rng, b_dt, (k, n), kind)
        za = np.array(rng.integers(np.iinfo(a_dt).min, np.iinfo(a_dt).max + 1), a_dt)
        zb = np.array(rng.integers(np.iinfo(b_dt).min, np.iinfo(b_dt).max + 1, n if i % 3 == 0 else ()), b_dt)
        node = helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])
        out.append(("MatMulInteger", (a, za, b, zb),
                    onnx_model([node], {"a": a}, {"y": "int32"}, {"b": b, "za": za, "zb": zb}, opset=13), {"a": a}))
    for i in range(12):
        x = values(rng, "uint8", (1, int(rng.choice([3, 5])), 6, 6), "extreme" if i % 2 else "random")   # NCHW
        w = values(rng, "int8", (4, x.shape[1], 3, 3), "extreme" if i % 2 else "random")                  # OIHW
        zx, zw = np.uint8(rng.integers(0, 256)), np.int8(rng.integers(-128, 128) if i % 3 else 0)
        node = helper.make_node("ConvInteger", ["x", "w", "zx", "zw"], ["y"], pads=[1, 1, 1, 1])
        out.append(("ConvInteger", (x, zx, w, zw),
                    onnx_model([node], {"x": x}, {"y": "int32"}, {"w": w, "zx": zx, "zw": zw}, opset=13), {"x": x}))
    return out


def conv2d_int16(x_nhwc, zx, w_ohwi, zw, profile, pairwise=None):
    """qnnref conv2d with scale 1 and an int16 output: the accumulator itself
    while it fits int16 (the cancelling case below is built to)."""
    g = GraphBuilder(profile=profile)
    xi = g.input("x", x_nhwc.dtype.name, x_nhwc.shape, scale=1.0, zero_point=int(zx))
    wi = g.constant("w", w_ohwi, scale=1.0, zero_point=int(zw))
    attrs = {"dtype": "int16"}
    if pairwise is not None:
        attrs["pairwise_int16_saturation"] = pairwise
    g.output(g.node("conv2d", [xi, wi], attrs, scale=1.0, zero_point=0))
    return q_out(g.build(backend="reference"), {"x": x_nhwc})


@pytest.mark.parametrize("cpu", CPUS)
def test_matmulinteger_and_convinteger_accumulators(ort_outputs, cpu):
    """MatMulInteger u8 x s8 saturates pairs like QLinearMatMul (when ORT
    does); ConvInteger never does: ORT computes it as weights x activations,
    an s8 x u8 product that MLAS sums exactly. So an importer maps
    ConvInteger to conv2d with ``pairwise_int16_saturation: false``."""
    if cpu == "avx2" and ort_harness.avx2_unavailable():
        pytest.skip(ort_harness.avx2_unavailable())
    saturating = expected_profile(cpu) == "ort-cpu-x86"
    rng = np.random.default_rng(7)
    cases = integer_cases(rng)
    outs = ort_harness.run_cases([(c[2], c[3]) for c in cases], cpu)
    for (op, args, _, _), o in zip(cases, outs):
        assert not isinstance(o, str), o
        if op == "MatMulInteger":
            a, za, b, zb = args
            if saturating and (a.dtype, b.dtype) == (np.uint8, np.int8):
                want = pairwise_int16_accumulator(a, za, b, zb)
            else:
                want = (a.astype(np.int64) - za.astype(np.int64)) @ (b.astype(np.int64) - zb.astype(np.int64))
            np.testing.assert_array_equal(o[0], want)
        else:
            x, zx, w, zw = args
            x_nhwc, w_ohwi = x.transpose(0, 2, 3, 1), w.transpose(0, 2, 3, 1)
            # the exact accumulator, by a direct sum over the taps
            xp = np.pad(x_nhwc.astype(np.int64), ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=int(zx))
            exact = np.zeros(o[0].shape, np.int64)
            for p in range(3):
                for q in range(3):
                    exact += np.einsum("nhwc,oc->nohw", xp[:, p:p + 6, q:q + 6, :] - int(zx),
                                       w_ohwi[:, p, q, :].astype(np.int64) - int(zw))
            np.testing.assert_array_equal(o[0], exact)


def test_convinteger_is_conv2d_without_saturation(ort_outputs):
    """The cancelling case: two taps of two channels, pairs of +64770 and
    -65025 that saturate to +32767 and -32768: -1 where the exact sum is -255,
    both within int16. ORT's ConvInteger gives -255 even on the AVX2 CPU, as
    qnnref's conv2d with ``pairwise_int16_saturation: false``; conv2d under
    ort-cpu-x86 (as QLinearConv there) gives -1."""
    cpu = "native" if ort_harness.native_profile() == "ort-cpu-x86" else "avx2"
    if cpu == "avx2" and ort_harness.avx2_unavailable():
        pytest.skip(ort_harness.avx2_unavailable())
    x = np.full((1, 1, 2, 2), 255, np.uint8)                 # NHWC: one row of two pixels, two channels
    w = np.array([[[[127, 127], [-127, -128]]]], np.int8)    # OHWI: a 1 x 2 kernel
    node = helper.make_node("ConvInteger", ["x", "w", "zx", "zw"], ["y"])
    model = onnx_model([node], {"x": x.transpose(0, 3, 1, 2).copy()}, {"y": "int32"},
                       {"w": w.transpose(0, 3, 1, 2).copy(), "zx": np.uint8(0), "zw": np.int8(0)}, opset=13)
    (o,) = ort_harness.run_cases([(model, {"x": x.transpose(0, 3, 1, 2).copy()})], cpu)
    assert o[0].ravel().tolist() == [-255]
    assert conv2d_int16(x, 0, w, 0, "ort-cpu-x86", pairwise=False).ravel().tolist() == [-255]
    assert conv2d_int16(x, 0, w, 0, "ort-cpu-x86").ravel().tolist() == [-1]


# ---------------------------------------------------------------------------
# Requantization details, one rule at a time
# ---------------------------------------------------------------------------

def test_multiplier_is_formed_in_float32_left_to_right(ort_outputs):
    """QLinearMatMul u8 x u8 with accumulators chosen where the candidate
    multipliers fl32(fl32(s_a s_b) / s_y), fl32(s_a fl32(s_b / s_y)), the
    float64 one, and a float64 product disagree: ORT agrees with the first,
    with a float32 product (the ort-cpu-x86 recipe), on every row."""
    rng = np.random.default_rng(11)
    accs = np.arange(1, 2**20, dtype=np.int64)
    q = 2**20 // (255 * 255) + 2
    b = np.array([255] * q + [1], np.uint8).reshape(-1, 1)
    cases, metas = [], []
    for _ in range(12):
        sa, sb = F32(np.exp(rng.uniform(-6, 0))), F32(np.exp(rng.uniform(-6, 0)))
        sy = F32(sa * sb / (255 / 2**20 * rng.uniform(0.3, 1)))
        cands = {"ort": np.rint(accs.astype(F32) * ((sa * sb) / sy)),
                 "a*(b/y)": np.rint(accs.astype(F32) * (sa * (sb / sy))),
                 "f64 m": np.rint(accs.astype(F32) * F32((np.float64(sa) * sb) / sy)),
                 "f64 product": np.rint(accs * np.float64((sa * sb) / sy))}
        differ = np.zeros(accs.shape, bool)
        for k in cands:
            differ |= cands[k] != cands["ort"]
        rows = np.concatenate([accs[differ][:40], accs[:: 2**14]])
        a = np.zeros((len(rows), q + 1), np.uint8)
        for r, t in enumerate(rows):          # a row of codes whose dot product with b is t
            s, rem = divmod(int(t), 255)
            for j in range(q):
                a[r, j] = min(255, s)
                s -= int(a[r, j])
            a[r, q] = rem
        node = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
        cases.append((onnx_model([node], {"a": a}, {"y": "uint8"}, {"sa": sa, "za": np.uint8(0), "b": b, "sb": sb,
                                                                      "zb": np.uint8(0), "sy": sy, "zy": np.uint8(0)}),
                      {"a": a}))
        metas.append((a, b, sa, sb, sy, rows))
    outs = ort_harness.run_cases(cases)
    n_rows, wrong = 0, {}
    for (a, b, sa, sb, sy, rows), o in zip(metas, outs):
        g = GraphBuilder(profile="ort-cpu-x86-vnni")
        x = g.input("a", "uint8", a.shape, scale=sa, zero_point=0)
        w = g.constant("b", b, scale=sb, zero_point=0)
        g.output(g.node("matmul", [x, w], scale=sy, zero_point=0))
        np.testing.assert_array_equal(q_out(g.build(backend="reference"), {"a": a}), o[0])
        n_rows += len(rows)
        # the other candidates, on the same rows
        others = {"a*(b/y)": rows.astype(F32) * (sa * (sb / sy)),
                  "f64 m": rows.astype(F32) * F32(combine_scales([sa, sb], sy, "float64")),
                  "f64 product": rows * np.float64((sa * sb) / sy)}
        for k, v in others.items():
            wrong[k] = wrong.get(k, 0) + int((np.clip(np.rint(v), 0, 255) != o[0].ravel()).sum())
    assert n_rows > 400
    assert min(wrong.values()) > 0, wrong


def test_qlinearconv_bias_and_float32_accumulator_ties(ort_outputs):
    """x equals its zero point, so acc = bias exactly; bias = (2j + 1) 2^(e-1)
    + d with e >= 20 puts acc * 2^-e at or beside a tie, above 2^24 where
    float32(acc) rounds: ORT follows fl32(acc), then half to even."""
    rng = np.random.default_rng(3)
    cases, metas = [], []
    for e in (20, 22, 24):
        co = 64
        j = rng.integers(-(2**30) // 2**e, 2**30 // 2**e, co)
        bias = ((2 * j + 1) * 2 ** (e - 1) + rng.integers(-3, 4, co)).astype(np.int32)
        x = np.full((1, 3, 2, 2), 77, np.uint8)
        w = rng.integers(-127, 128, (co, 3, 1, 1)).astype(np.int8)
        node = helper.make_node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "bias"], ["y"])
        cases.append((onnx_model([node], {"x": x}, {"y": "uint8"},
                                 {"sx": F32(1), "zx": np.uint8(77), "w": w, "sw": np.ones(co, F32),
                                  "zw": np.zeros(co, np.int8), "sy": F32(2.0**e), "zy": np.uint8(128), "bias": bias}),
                      {"x": x}))
        metas.append((x, w, bias, e))
    for (x, w, bias, e), o in zip(metas, ort_harness.run_cases(cases)):
        for profile in ("ort-cpu-x86", "ort-cpu-x86-vnni"):
            g = GraphBuilder(profile=profile)
            xi = g.input("x", "uint8", (1, 2, 2, 3), scale=1.0, zero_point=77)
            wi = g.constant("w", w.transpose(0, 2, 3, 1).copy(), scale=np.ones(len(bias), F32),
                            zero_point=np.zeros(len(bias), np.int8), axis=0)
            g.output(g.node("conv2d", [xi, wi, g.constant("bias", bias)], scale=2.0**e, zero_point=128))
            y = q_out(g.build(backend="reference"), {"x": x.transpose(0, 2, 3, 1).copy()})
            np.testing.assert_array_equal(y.transpose(0, 3, 1, 2), o[0])
        exact = np.clip(np.rint(bias.astype(np.float64) / 2.0**e) + 128, 0, 255)
        if e >= 22:   # above 2^24 the float32 conversion is what decides some ties
            assert not np.array_equal(exact, o[0][0, :, 0, 0])


def test_mul_rounds_after_the_zero_point_and_add_uses_fma():
    """The two ORT forms as qnnref recipes, on a hand-checked tie."""
    # QLinearMul: acc * m = -45.5, zp 211: ORT rounds -45.5 + 211 = 165.5 -> 166 (even);
    # rounding first gives -46 + 211 = 165.
    rec = Recipe(kind="float", rounding="half_to_even", float_dtype="float32", scale_dtype="float32",
                 zero_point_in_float=True)
    from qnnref.arith import requantize_output
    p = prepare_requant(np.float32(0.25), rec)
    assert requantize_output(np.array([-182]), p, 211, "uint8")[0] == 166
    p0 = prepare_requant(np.float32(0.25), Recipe(kind="float", rounding="half_to_even", float_dtype="float32",
                                                  scale_dtype="float32"))
    assert requantize_output(np.array([-182]), p0, 211, "uint8")[0] == 165
