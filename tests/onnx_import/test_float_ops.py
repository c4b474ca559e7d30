"""Float operators in imported ONNX graphs, against ONNX Runtime.

Bit for bit where the spec pages promise it (float Conv with DequantizeLinear
weights, MatMul / Gemm with float initializer weights or run-time B,
BatchNormalization, the single-operation elementwise functions), within the
documented bounds elsewhere (Exp, Sigmoid, Tanh, Softmax); which QDQ groups
stay float under the ONNX Runtime profile; ``qnnref inspect`` lists them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from onnx_helpers import TP, helper, init, make_model, node, ops_of, ort  # noqa: F401

import qnnref
from qnnref.cli import main
from qnnref.onnx import import_onnx
from qnnref.onnx.floatops import sgemm_k_block

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))
import ort_harness  # noqa: E402  (what ONNX Runtime does on the CPU of this run: probed)

F32, U8, S8 = np.float32, np.uint8, np.int8


def ort_profile() -> str:
    """The profile of ONNX Runtime on the CPU of this run (ort-cpu-x86 where
    it saturates u8 x s8 pairs, ort-cpu-x86-vnni where not; probed by the
    conformance worker). The QDQ groups that ORT fuses compute u8 x s8
    products, so the choice matters there."""
    return ort_harness.native_profile()


def ort_run(model, feeds, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def both(model, feeds, profile=None):
    q = import_onnx(model, profile=profile or ort_profile())
    return q, list(q.run(feeds).values())[0], ort_run(model, feeds)


def bits_equal(a, b):
    np.testing.assert_array_equal(np.asarray(a, F32).view(np.int32), np.asarray(b, F32).view(np.int32))


# ---------------------------------------------------------------------------
# Conv
# ---------------------------------------------------------------------------

def conv_model(x_shape, w_shape, bias=True, group=1, seed=0, **attrs):
    """x (float) -> Conv(DequantizeLinear(int8 weights per channel), float bias) -> y."""
    rng = np.random.default_rng(seed)
    wq = rng.integers(-127, 128, w_shape).astype(S8)
    ws = rng.uniform(0.001, 0.02, w_shape[0]).astype(F32)
    nodes = [node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0)]
    inits = [init("wq", wq), init("ws", ws), init("wz", np.zeros(w_shape[0], S8))]
    ins = ["x", "w"]
    if bias:
        inits.append(init("b", rng.standard_normal(w_shape[0]).astype(F32)))
        ins.append("b")
    nodes.append(node("Conv", ins, ["y"], group=group, **attrs))
    return make_model(nodes, {"x": (F32, x_shape)}, {"y": (F32, None)}, inits, check=False)


@pytest.mark.parametrize("x_shape,w_shape,group,attrs", [
    ((1, 3, 9, 9), (8, 3, 5, 5), 1, {"pads": [2, 2, 2, 2]}),                      # K = 75: one block
    ((1, 64, 8, 8), (16, 64, 3, 3), 1, {"pads": [1, 1, 1, 1]}),                   # 64 pixels: blocks of 256
    ((1, 64, 5, 5), (8, 64, 3, 3), 1, {"pads": [1, 1, 1, 1]}),                    # 25 pixels: 512
    ((1, 48, 4, 4), (4, 48, 3, 3), 1, {"pads": [0, 1, 1, 0]}),                    # 6 pixels: 1024
    ((1, 64, 12, 12), (8, 64, 3, 3), 1, {"pads": [1, 1, 1, 1]}),                  # 144 pixels: 128
    ((2, 16, 9, 7), (12, 8, 3, 3), 2, {"strides": [2, 1], "dilations": [1, 2], "pads": [1, 0, 2, 1]}),
    ((1, 300, 6, 6), (16, 300, 1, 1), 1, {}),                                      # 1x1: MLAS's direct GEMM
])
def test_float_conv_equals_onnx_runtime(x_shape, w_shape, group, attrs):
    m = conv_model(x_shape, w_shape, group=group, **attrs)
    x = {"x": np.random.default_rng(1).standard_normal(x_shape).astype(F32)}
    q, got, want = both(m, x)
    assert ops_of(q).count("float_conv2d") == 1
    bits_equal(got, want)


def test_sgemm_blocking_rule():
    assert [sgemm_k_block(n, 576) for n in (16384, 65, 64, 33, 32, 17, 16, 1)] == [128, 128, 256, 256, 512, 512,
                                                                                   0, 0]
    assert sgemm_k_block(10, 1500) == 1024 and sgemm_k_block(300, 128) == 0 and sgemm_k_block(4, 75) == 0


# Constant (float initializer) weights: MLAS's NCHWc convolution, whose order
# depends on the MLAS kernel family (its NCHWc block, probed by the worker)

NCHWC_CASES = [((1, 32, 11, 11), (16, 32, 3, 3), {"pads": [1, 0, 2, 1], "strides": [2, 1]}),
               ((1, 32, 11, 11), (16, 32, 3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
               ((2, 48, 6, 6), (20, 48, 3, 3), {"pads": [1, 1, 1, 1]}),          # C_in not a multiple of 16
               ((1, 12, 6, 6), (16, 12, 3, 3), {"pads": [1, 1, 1, 1]}),          # C_in < 16, >= 8
               ((1, 3, 12, 12), (16, 3, 3, 3), {"pads": [1, 1, 1, 1]}),          # C_in < 8: per channel
               ((1, 40, 6, 6), (24, 40, 5, 5), {"pads": [2, 2, 2, 2]}),
               ((1, 300, 4, 4), (8, 300, 3, 3), {"pads": [1, 1, 1, 1]}),         # C_out < the block
               ((1, 200, 5, 5), (16, 200, 1, 1), {}),                             # pointwise: batches of 128
               ((1, 32, 9, 9), (24, 32, 1, 1), {"strides": [2, 2]}),
               ((1, 4, 5, 5), (8, 4, 1, 1), {})]


def const_conv_case(x_shape, w_shape, attrs, seed=5):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal(w_shape) * 0.1).astype(F32)
    b = rng.standard_normal(w_shape[0]).astype(F32)
    model = make_model([node("Conv", ["x", "w", "b"], ["y"], **attrs)], {"x": (F32, x_shape)}, {"y": (F32, None)},
                       [init("w", w), init("b", b)], check=False)
    return model, {"x": rng.standard_normal(x_shape).astype(F32)}


@pytest.mark.parametrize("cpu", ["native", "avx2"])
def test_float_conv_with_constant_weights_equals_onnx_runtime(cpu):
    """Bit for bit with the MLAS kernel family ONNX Runtime selects: on the
    CPU of this run, and with AVX-512 hidden (AVX2/FMA3, NCHWc block 8). The
    block comes from the worker's probe, never from the CPU's name."""
    if cpu == "avx2" and ort_harness.avx2_unavailable():
        pytest.skip(f"ONNX Runtime as on an AVX2 CPU: {ort_harness.avx2_unavailable()}")
    block = ort_harness.vendor_probe(cpu)["mlas_nchwc_block"]
    if not block:
        pytest.xfail("this ONNX Runtime does not rewrite float Conv to NCHWc (no MLAS NCHWc block): "
                     "its order there is not modelled")
    cases = [const_conv_case(*c) for c in NCHWC_CASES]
    outs = ort_harness.run_cases([(m.SerializeToString(), f) for m, f in cases], cpu, threads=1)
    for (model, feeds), (want,) in zip(cases, outs):
        q = import_onnx(model, profile=ort_profile(), mlas_nchwc_block=block)
        (conv,) = [n for n in q.graph.nodes if n.op == "float_conv2d"]
        assert conv.attrs["channel_block"] in (1, 128, block) and conv.attrs["k_block"] == 0
        bits_equal(q.run(feeds)["y"], want)


def test_the_nchwc_blocks_of_the_mlas_kernel_families():
    """The worker's probe: MLAS's AVX2/FMA3 kernels use NCHWc blocks of 8 (so
    does ONNX Runtime with AVX-512 hidden, on any CPU that has it); the
    importer refuses a block MLAS does not have."""
    if ort_harness.avx2_unavailable():
        pytest.skip(f"ONNX Runtime as on an AVX2 CPU: {ort_harness.avx2_unavailable()}")
    assert ort_harness.vendor_probe("avx2")["mlas_nchwc_block"] == 8
    assert ort_harness.vendor_probe("native")["mlas_nchwc_block"] in (0, 8, 16)
    from qnnref import ValidationError
    model, _ = const_conv_case(*NCHWC_CASES[0])
    with pytest.raises(ValidationError, match="mlas_nchwc_block must be 0, 8 or 16"):
        import_onnx(model, profile=ort_profile(), mlas_nchwc_block=4)
    q = import_onnx(model, profile=ort_profile())          # not told: the im2col order
    assert [n.attrs.get("channel_block", 0) for n in q.graph.nodes if n.op == "float_conv2d"] == [0]


# ---------------------------------------------------------------------------
# MatMul, Gemm
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("m_k_n", [(4, 300, 200), (3, 600, 20), (5, 1500, 10), (8, 100, 64)])
@pytest.mark.parametrize("kind", ["matmul_const", "matmul_runtime", "gemm_const"])
def test_float_matmul_gemm_equal_onnx_runtime(m_k_n, kind):
    m_, k, n = m_k_n
    rng = np.random.default_rng(k)
    a, b = rng.standard_normal((m_, k)).astype(F32), rng.standard_normal((k, n)).astype(F32)
    feeds = {"a": a}
    if kind == "matmul_const":
        model = make_model([node("MatMul", ["a", "b"], ["y"])], {"a": (F32, a.shape)}, {"y": (F32, None)},
                           [init("b", b)], check=False)
    elif kind == "matmul_runtime":
        model = make_model([node("MatMul", ["a", "b"], ["y"])], {"a": (F32, a.shape), "b": (F32, b.shape)},
                           {"y": (F32, None)}, check=False)
        feeds["b"] = b
    else:
        model = make_model([node("Gemm", ["a", "bt", "c"], ["y"], transB=1)], {"a": (F32, a.shape)},
                           {"y": (F32, None)}, [init("bt", b.T.copy()), init("c", rng.standard_normal(n).astype(F32))],
                           check=False)
    q, got, want = both(model, feeds)
    assert ops_of(q) == ["float_matmul"]
    bits_equal(got, want)


@pytest.mark.parametrize("cpu", ["native", "avx2"])
def test_sgemm_is_the_same_with_both_mlas_kernel_families(cpu):
    """MatMul, Gemm and im2col convolutions (DequantizeLinear weights) equal
    ONNX Runtime bit for bit on the CPU of this run and with AVX-512 hidden
    (MLAS's AVX2/FMA3 SGEMM kernels): one model serves both families."""
    if cpu == "avx2" and ort_harness.avx2_unavailable():
        pytest.skip(f"ONNX Runtime as on an AVX2 CPU: {ort_harness.avx2_unavailable()}")
    rng = np.random.default_rng(17)
    cases = []
    for m_, k, n in [(4, 300, 200), (3, 600, 20), (5, 1500, 10), (16, 513, 33), (2, 4096, 3)]:
        a, b = rng.standard_normal((m_, k)).astype(F32), rng.standard_normal((k, n)).astype(F32)
        cases.append((make_model([node("MatMul", ["a", "b"], ["y"])], {"a": (F32, a.shape)}, {"y": (F32, None)},
                                 [init("b", b)], check=False), {"a": a}))
        cases.append((make_model([node("MatMul", ["a", "b"], ["y"])], {"a": (F32, a.shape), "b": (F32, b.shape)},
                                 {"y": (F32, None)}, check=False), {"a": a, "b": b}))
        cases.append((make_model([node("Gemm", ["a", "b", "c"], ["y"])], {"a": (F32, a.shape)}, {"y": (F32, None)},
                                 [init("b", b), init("c", rng.standard_normal(n).astype(F32))], check=False), {"a": a}))
    for x_shape, w_shape in [((1, 64, 8, 8), (16, 64, 3, 3)), ((1, 48, 4, 4), (4, 48, 3, 3)),
                             ((1, 64, 12, 12), (8, 64, 3, 3))]:
        cases.append((conv_model(x_shape, w_shape, pads=[1, 1, 1, 1]),
                      {"x": rng.standard_normal(x_shape).astype(F32)}))
    outs = ort_harness.run_cases([(m.SerializeToString(), f) for m, f in cases], cpu, threads=1)
    for (model, feeds), (want,) in zip(cases, outs):
        bits_equal(list(import_onnx(model, profile=ort_profile()).run(feeds).values())[0], want)


# ---------------------------------------------------------------------------
# BatchNormalization, elementwise
# ---------------------------------------------------------------------------

def test_batch_normalization_equals_onnx_runtime():
    rng = np.random.default_rng(3)
    c = 512
    params = [rng.normal(1, 0.5, c), rng.normal(0, 1, c), rng.normal(0, 1, c), rng.uniform(1e-4, 4, c)]
    inits = [init(n, p.astype(F32)) for n, p in zip(("s", "b", "m", "v"), params)]
    model = make_model([node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-5)],
                       {"x": (F32, (2, c, 3, 3))}, {"y": (F32, None)}, inits, check=False)
    q, got, want = both(model, {"x": rng.normal(0, 3, (2, c, 3, 3)).astype(F32)})
    assert ops_of(q) == ["float_elementwise", "float_elementwise"]
    bits_equal(got, want)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Min", "Max"])
def test_binary_equal_onnx_runtime(op):
    rng = np.random.default_rng(4)
    model = make_model([node(op, ["a", "c"], ["t"]), node(op, ["t", "b"], ["y"])],
                       {"a": (F32, (2, 3, 4)), "b": (F32, (4,))}, {"y": (F32, None)},
                       [init("c", rng.standard_normal((3, 1)).astype(F32))], check=False)
    feeds = {"a": rng.standard_normal((2, 3, 4)).astype(F32) * 100, "b": rng.standard_normal(4).astype(F32)}
    q, got, want = both(model, feeds, profile="qnnref")
    assert ops_of(q).count("float_elementwise") == 2
    bits_equal(got, want)


@pytest.mark.parametrize("op,bound", [("Relu", 0), ("Neg", 0), ("Abs", 0), ("Sqrt", 0), ("Exp", 1.2e-7),
                                      ("Sigmoid", 1.8e-7), ("Tanh", 3e-7)])
def test_unary_within_documented_bound(op, bound):
    """0: bit for bit; else the relative (Exp) or absolute bound of spec/ops/float_elementwise.md."""
    x = np.random.default_rng(5).uniform(-20, 20, 20000).astype(F32)
    if op == "Sqrt":
        x = np.abs(x)
    model = make_model([node(op, ["x"], ["y"])], {"x": (F32, x.shape)}, {"y": (F32, None)})
    _, got, want = both(model, {"x": x})
    if bound == 0:
        bits_equal(got, want)
    elif op == "Exp":
        assert np.max(np.abs(got.astype(np.float64) - want) / want) <= bound
    else:
        assert np.max(np.abs(got.astype(np.float64) - want)) <= bound


def test_clip_float_equals_onnx_runtime():
    x = np.random.default_rng(6).uniform(-10, 10, 1000).astype(F32)
    model = make_model([node("Clip", ["x", "lo", "hi"], ["y"])], {"x": (F32, x.shape)}, {"y": (F32, None)},
                       [init("lo", -1.5, F32), init("hi", 6.0, F32)])
    q, got, want = both(model, {"x": x})
    assert ops_of(q) == ["float_elementwise"]
    bits_equal(got, want)


@pytest.mark.parametrize("shape,axis,opset", [((16, 10), -1, 13), ((4, 1000), 1, 13), ((3, 4, 5), 1, 13),
                                              ((3, 4, 5), 1, 11)])
def test_softmax_within_documented_bound(shape, axis, opset):
    """Relative difference below 2e-6 (opset 11: softmax of the rows flattened at axis)."""
    x = (np.random.default_rng(7).standard_normal(shape) * 4).astype(F32)
    model = make_model([node("Softmax", ["x"], ["y"], axis=axis)], {"x": (F32, shape)}, {"y": (F32, None)},
                       opset=opset)
    q, got, want = both(model, {"x": x})
    assert "float_softmax" in ops_of(q)
    assert np.max(np.abs(got.astype(np.float64) - want) / want) < 2e-6


# ---------------------------------------------------------------------------
# Which QDQ groups are float
# ---------------------------------------------------------------------------

def qdq_case(case: str):
    """x -> Q -> DQ (uint8, zero point 128) -> the group of ``case`` -> Q (uint8)."""
    rng = np.random.default_rng(8)
    xzp = [] if "noxzp" in case else ["xz"]       # the activation's Q / DQ without a zero point
    nodes = [node("QuantizeLinear", ["x", "xs", *xzp], ["xq"]), node("DequantizeLinear", ["xq", "xs", *xzp], ["xf"]),
             node("DequantizeLinear", ["wq", "ws", "wz"] if "wzp" in case else ["wq", "ws"], ["w"])]
    inits = [init("xs", 0.05, F32), init("xz", 128, U8), init("ws", 0.01, F32), init("ys", 0.03, F32),
             init("b", rng.standard_normal(8).astype(F32)), init("shape", np.array([1, -1], np.int64))]
    if "wzp" in case:                      # the weights' DequantizeLinear names its zero point
        inits.append(init("wz", 0, S8))
    conv_w = init("wq", rng.integers(-127, 128, (8, 8, 3, 3)).astype(S8))
    gemm_w = init("wq", rng.integers(-127, 128, (16, 8)).astype(S8))
    x_shape, zp = (1, 8, 6, 6), 100
    bias = ["b"] if "bias" in case else []
    if case.startswith("float_w"):         # a float weight initializer instead of DequantizeLinear
        nodes.pop()
        conv_w = init("w", (rng.standard_normal((8, 8, 3, 3)) * 0.1).astype(F32))
        gemm_w = init("w", (rng.standard_normal((16, 8)) * 0.1).astype(F32))
    if "gemm" in case:
        nodes.append(node("Gemm", ["xf", "w", *bias], ["c"]))
        inits.append(gemm_w)
        x_shape = (4, 16)
    else:
        src = "xf"
        if case.startswith("transposed"):
            nodes.append(node("Transpose", ["xf"], ["xt"], perm=[0, 1, 3, 2]))
            src = "xt"
        nodes.append(node("Conv", [src, "w", *bias], ["c"], pads=[1, 1, 1, 1]))
        inits.append(conv_w)
    last = "c"
    for op in case.split("-")[1:]:
        if op == "relu0":
            op, zp = "relu", 0
        extra = {"depthtospace": dict(blocksize=2)}.get(op, {})
        inputs = [last, "shape"] if op == "reshape" else [last]
        name = {"relu": "Relu", "reshape": "Reshape", "depthtospace": "DepthToSpace"}[op]
        nodes.append(node(name, inputs, [f"{last}_{op}"], **extra))
        last = f"{last}_{op}"
    nodes.append(node("QuantizeLinear", [last, "ys", "yz"], ["y"]))
    inits.append(init("yz", zp, U8))
    return make_model(nodes, {"x": (F32, x_shape)}, {"y": (U8, None)}, inits, check=False), x_shape


#: case -> integer under the ONNX Runtime profile (ORT fuses the group)
QDQ_CASES = {
    "conv": True,
    "conv_bias": True,                      # ORT quantizes the float bias to int32 (WeightBiasQuantization)
    "conv_bias-relu": False,                # the Relu is not redundant (zero point 100): float, with that int32 bias
    "conv_bias-relu0": True,                # zero point 0: ORT removes the Relu
    "conv_bias-reshape": True,              # QDQ propagation copies the QuantizeLinear before the Reshape
    "conv-depthtospace": False,             # ... but not before DepthToSpace (ESPCN's last layer)
    "transposed_conv": True,                # and a DequantizeLinear after a Transpose
    "gemm_bias": False,                     # ORT fuses a Gemm only if the weights' DequantizeLinear has a zero point
    "gemm_wzp_bias": True,                  # ... as here
    "gemm_wzp": True,
    "gemm_wzp_noxzp": False,                # ... and A's too
    "conv_noxzp": True,                     # Conv does not care
    "gemm-relu": False,
    "float_w_conv_bias": True,              # ORT quantizes float weights too (int8, asymmetric, per tensor)
    "float_w_conv_bias-relu": False,        # ... and then computes in float with them
    "float_w_gemm_bias": True,
}


@pytest.mark.parametrize("case", sorted(QDQ_CASES))
def test_qdq_groups_as_onnx_runtime_computes_them(case):
    """Integer exactly where ONNX Runtime fuses the group, float elsewhere:
    either way the codes equal ONNX Runtime's. Other profiles fuse every
    group the importer can (an int32 bias, no float bias)."""
    m, x_shape = qdq_case(case)
    x = {"x": np.random.default_rng(9).uniform(-6, 6, x_shape).astype(F32)}
    q, got, want = both(m, x)
    integer = {"conv2d", "matmul"} & set(ops_of(q))
    floats = {"float_conv2d", "float_matmul"} & set(ops_of(q))
    assert bool(integer) == QDQ_CASES[case] and bool(floats) != QDQ_CASES[case], ops_of(q)
    np.testing.assert_array_equal(got, want)
    if "bias" not in case and "float_w" not in case:
        assert {"conv2d", "matmul"} & set(ops_of(import_onnx(m, profile="qnnref")))


def test_add_without_quantize_is_float():
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["xq"]), node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             node("Add", ["xf", "xf"], ["y"])]
    m = make_model(nodes, {"x": (F32, (2, 5))}, {"y": (F32, None)}, [init("s", 0.1, F32), init("z", 7, U8)])
    x = {"x": np.linspace(-2, 20, 10, dtype=F32).reshape(2, 5)}
    q, got, want = both(m, x)
    assert ops_of(q) == ["quantize", "dequantize", "float_elementwise"]
    bits_equal(got, want)


def test_refusal_reports_both_reasons():
    """A node that is neither an integer group nor a supported float operator."""
    nodes = [node("DequantizeLinear", ["wq", "ws"], ["w"]), node("Conv", ["x", "w"], ["y"])]
    m = make_model(nodes, {"x": (F32, (1, 2, 5))}, {"y": (F32, None)},
                   [init("wq", np.ones((1, 2, 3), S8)), init("ws", 0.5, F32)], check=False)
    with pytest.raises(qnnref.ValidationError) as e:
        import_onnx(m, profile="qnnref")
    text = str(e.value)
    assert "as a float32 operator" in text and "2-D" in text


# ---------------------------------------------------------------------------
# qnnref inspect
# ---------------------------------------------------------------------------

def test_inspect_lists_float_nodes(tmp_path, capsys):
    m = conv_model((1, 3, 6, 6), (4, 3, 3, 3), pads=[1, 1, 1, 1])
    path = tmp_path / "float.qnn"
    qnnref.save(import_onnx(m, profile=ort_profile()), str(path))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "float nodes: 1 compute in float32" in out
    assert main(["inspect", "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["float_nodes"]) == 1
    loaded = qnnref.load(str(path))
    x = np.random.default_rng(0).standard_normal((1, 3, 6, 6)).astype(F32)
    bits_equal(loaded.run({"x": x})["y"], ort_run(m, {"x": x}))


def test_data_movement_on_float_tensors():
    """Reshape, Transpose, Slice, Gather, Concat, nearest Resize and
    DepthToSpace move float32 values exactly (between float operators)."""
    rng = np.random.default_rng(10)
    nodes = [node("Relu", ["x"], ["r"]),
             node("DepthToSpace", ["r"], ["d"], blocksize=2),
             node("Resize", ["d", "", "scales"], ["z"], mode="nearest"),
             node("Slice", ["z", "starts", "ends", "axes"], ["s"]),
             node("Transpose", ["s"], ["t"], perm=[0, 2, 3, 1]),
             node("Reshape", ["t", "shape"], ["h"]),
             node("Gather", ["h", "idx"], ["g"], axis=1),
             node("Concat", ["g", "g"], ["c"], axis=0),
             node("Sigmoid", ["c"], ["y"])]
    inits = [init("scales", np.array([1, 1, 2, 2], F32)), init("starts", np.array([1], np.int64)),
             init("ends", np.array([7], np.int64)), init("axes", np.array([2], np.int64)),
             init("shape", np.array([1, -1], np.int64)), init("idx", np.array([0, 5, 9], np.int64))]
    m = make_model(nodes, {"x": (F32, (1, 8, 2, 3))}, {"y": (F32, None)}, inits, check=False)
    x = {"x": rng.standard_normal((1, 8, 2, 3)).astype(F32)}
    q = import_onnx(m, profile="qnnref")
    assert ops_of(q).count("float_elementwise") == 2 and "gather" in ops_of(q)
    got = q.run(x)["y"]
    # the moved values equal ONNX Runtime's; the final sigmoid is float64, rounded once
    moved = ort_run(make_model(nodes[:-1], {"x": (F32, (1, 8, 2, 3))}, {"c": (F32, None)}, inits, check=False), x)
    bits_equal(got, (1 / (1 + np.exp(-moved.astype(np.float64)))).astype(F32))


def test_qdq_softmax_codes_equal_onnx_runtime_qlinearsoftmax():
    """DQ -> Softmax -> Q is ONNX Runtime's QLinearSoftmax (a table of float
    exponentials); qnnref computes float_softmax and quantizes. Not proven
    equal, but measured so (spec/onnx-import.md): here on 6,000 outputs."""
    nodes = [node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]), node("DequantizeLinear", ["xq", "xs", "xz"], ["xf"]),
             node("Softmax", ["xf"], ["s"], axis=-1), node("QuantizeLinear", ["s", "ys", "yz"], ["y"])]
    for n, xs in ((10, 0.1), (100, 0.05)):
        m = make_model(nodes, {"x": (F32, (60 // (n // 10), n))}, {"y": (U8, None)},
                       [init("xs", xs, F32), init("xz", 128, U8), init("ys", 1 / 256, F32), init("yz", 0, U8)])
        x = {"x": np.random.default_rng(n).uniform(-30, 30, (60 // (n // 10), n)).astype(F32)}
        q, got, want = both(m, x)
        assert "float_softmax" in ops_of(q)
        np.testing.assert_array_equal(got, want)
