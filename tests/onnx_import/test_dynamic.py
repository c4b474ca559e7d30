"""ONNX Runtime's dynamic quantization (``quantize_dynamic``, QOperator form):
DynamicQuantizeLinear -> MatMulInteger / ConvInteger with the activation
zero point computed at run time -> Cast -> Mul(scales) -> Add(bias). The
importer maps the zero point onto the run-time ``a_zero_point`` /
``x_zero_point`` input of matmul / conv2d, the Cast onto a ``dequantize`` of
the plain int32 accumulator, and the rest onto float32 operators. ONNX
Runtime fuses the MatMul group into com.microsoft DynamicQuantizeMatMul
(MLAS: float(acc) * (s_a * s_b) + bias, no FMA): the same float32 operations,
so the float outputs are bit-identical too, and so they are compared exactly.

Models: a trained-ish CNN (the bundled digits convolutions, a least-squares
fitted classifier on their features) and an MLP, quantized by ONNX Runtime
with u8 activations and s8 / u8 weights, per tensor and per channel. Under
``ort-cpu-x86`` the u8 x s8 products are summed in int16-saturated pairs; that
is checked against ONNX Runtime on a CPU without VNNI (CPUID masking).
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest

from onnx_helpers import (digits_float_model, digits_images, init, make_model, node, ort, ort_quantize,  # noqa: F401
                          ort_run, rand)

from qnnref.onnx import import_onnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))
import ort_harness  # noqa: E402

IMAGES = list(range(0, 360, 9))          # 40 test images, one inference each (batch 1)


def _ort_features(model, images) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"image": images[i:i + 1]})[0].reshape(1, -1)
                           for i in range(len(images))])


def _fit(features: np.ndarray, labels: np.ndarray):
    """A ridge-regression classifier on one-hot labels (float32 W, b)."""
    y = np.eye(10)[labels]
    w = np.linalg.solve(features.T @ features + np.eye(features.shape[1]), features.T @ (y - y.mean(0)))
    return w.astype(np.float32), y.mean(0).astype(np.float32)


@functools.cache
def cnn_float_model():
    """The digits CNN's three Conv + Relu, Flatten, and a Gemm fitted on their
    features (global average pooling in float is not a qnnref operator)."""
    g = digits_float_model().graph
    nodes = [n for n in g.node if n.name not in ("gap", "flatten", "fc")]
    inits = [i for i in g.initializer if not i.name.startswith("fc")]
    images, labels = digits_images()
    feats = make_model(nodes, {"image": (np.float32, (1, 1, 8, 8))}, {"relu3.out": (np.float32, None)}, inits,
                       check=False)
    w, b = _fit(_ort_features(feats, images), labels)
    nodes += [node("Flatten", ["relu3.out"], ["flat"]), node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc")]
    return make_model(nodes, {"image": (np.float32, (1, 1, 8, 8))}, {"logits": (np.float32, (1, 10))},
                      inits + [init("fc.w", w), init("fc.b", b)])


@functools.cache
def mlp_float_model():
    """Flatten -> MatMul [64, 48] + Add -> Relu -> MatMul [48, 10] + Add; the
    first layer random, the second fitted."""
    rng = np.random.default_rng(3)
    w1 = rng.normal(0, 0.15, (64, 48)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 48).astype(np.float32)
    images, labels = digits_images()
    hidden = np.maximum(images.reshape(len(images), -1) @ w1 + b1, 0)
    w2, b2 = _fit(hidden, labels)
    nodes = [node("Flatten", ["image"], ["flat"]), node("MatMul", ["flat", "w1"], ["mm1"]),
             node("Add", ["mm1", "b1"], ["h1"]), node("Relu", ["h1"], ["r1"]),
             node("MatMul", ["r1", "w2"], ["mm2"]), node("Add", ["mm2", "b2"], ["logits"])]
    return make_model(nodes, {"image": (np.float32, (1, 1, 8, 8))}, {"logits": (np.float32, (1, 10))},
                      [init("w1", w1), init("b1", b1), init("w2", w2), init("b2", b2)])


MODELS = {"cnn": cnn_float_model, "mlp": mlp_float_model}


@functools.cache
def quantized(kind: str, weight: str, per_channel: bool):
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        return ort_quantize(Path(d), MODELS[kind](), None, "qop", "u8", weight, per_channel, dynamic=True)


def _compare(q, profile: str, cpu: str = "native"):
    images, _ = digits_images()
    feeds = [{"image": images[i:i + 1]} for i in IMAGES]
    if cpu == "native":
        sess = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"])
        ref = [sess.run(None, f)[0] for f in feeds]
    else:
        ref = [r[0] for r in ort_harness.run_cases([(q.SerializeToString(), f) for f in feeds], cpu)]
    m = import_onnx(q, profile=profile)
    for f, r in zip(feeds, ref):
        got = m.run(f)["logits"]
        assert got.dtype == r.dtype == np.float32
        np.testing.assert_array_equal(got, r)          # bit-exact, float outputs included
    return m


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("weight", ["s8", "u8"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_dynamic_models_equal_onnxruntime(kind, weight, per_channel):
    q = quantized(kind, weight, per_channel)
    ops = {n.op_type for n in q.graph.node}
    assert "DynamicQuantizeLinear" in ops and ("ConvInteger" in ops or kind == "mlp")
    m = _compare(q, ort_harness.native_profile())
    runtime_zp = [n for n in m.graph.nodes if n.op in ("matmul", "conv2d") and len(n.inputs) > 3 and n.inputs[3]]
    assert runtime_zp, "the activation zero points are run-time inputs"


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_pairwise_saturation_on_a_cpu_without_vnni(kind):
    """u8 x s8 under ``ort-cpu-x86``: ONNX Runtime on AVX2 without VNNI
    (ConvInteger is exact there, MatMulInteger / DynamicQuantizeMatMul saturate)."""
    why = ort_harness.avx2_unavailable()
    if why:
        pytest.skip(why)
    _compare(quantized(kind, "s8", True), "ort-cpu-x86", cpu="avx2")


def _handmade(b: np.ndarray):
    """x (float32) -> DynamicQuantizeLinear -> MatMulInteger(b) -> int32 output."""
    return make_model([node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
                       node("MatMulInteger", ["xq", "b", "xz"], ["y"])],
                      {"x": (np.float32, (3, 16))}, {"y": (np.int32, (3, 4))}, [init("b", b)])


@pytest.mark.parametrize("cpu,profile", [("native", None), ("avx2", "ort-cpu-x86")])
def test_int32_output_is_bit_exact_at_saturating_values(cpu, profile):
    """Activations quantized to 255 (and a zero point > 0) against +-127
    weights: every pair saturates without VNNI; the int32 output is exact."""
    if cpu == "avx2" and ort_harness.avx2_unavailable():
        pytest.skip(ort_harness.avx2_unavailable())
    rng = np.random.default_rng(0)
    b = rand(rng, np.int8, (16, 4))
    b[:, 0], b[:, 1] = 127, -127
    x = rng.normal(0, 1, (3, 16)).astype(np.float32)
    x[0] = x.max()                                       # a row of 255s
    x[1, ::2] = x.min()                                  # a row of 0s and codes
    q = _handmade(b)
    r = ort_harness.run_cases([(q.SerializeToString(), {"x": x})], cpu)[0][0]
    got = import_onnx(q, profile=profile or ort_harness.native_profile()).run({"x": x})["y"]
    assert got.dtype == np.int32 and np.array_equal(got, r)


def test_run_time_weight_zero_point_is_refused():
    m = make_model([node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
                    node("MatMulInteger", ["b", "xq", "", "xz"], ["y"])],
                   {"x": (np.float32, (4, 3))}, {"y": (np.int32, (2, 3))}, [init("b", np.ones((2, 4), np.uint8))])
    with pytest.raises(Exception, match="only for the activations"):
        import_onnx(m, profile="onnx")


# ---------------------------------------------------------------------------
# Models as ONNX Runtime optimized them: com.microsoft DynamicQuantizeMatMul
# and MatMulIntegerToFloat nodes
# ---------------------------------------------------------------------------

def _ort_optimized(q):
    import tempfile
    import onnx
    with tempfile.TemporaryDirectory() as d:
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(Path(d) / "opt.onnx")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        ort.InferenceSession(q.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return onnx.load(so.optimized_model_filepath)


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("weight,per_channel", [("s8", True), ("u8", False)])
def test_ort_optimized_models_with_dynamic_quantize_matmul(kind, weight, per_channel):
    o = _ort_optimized(quantized(kind, weight, per_channel))
    assert "DynamicQuantizeMatMul" in {n.op_type for n in o.graph.node}
    _compare(o, ort_harness.native_profile())


def test_matmul_integer_to_float():
    """One DynamicQuantizeLinear feeding two MatMulInteger groups: ONNX
    Runtime fuses each group into MatMulIntegerToFloat."""
    rng = np.random.default_rng(4)
    b1, b2 = rand(rng, np.int8, (16, 5)), rand(rng, np.uint8, (16, 3))
    s1, s2 = rng.uniform(0.01, 0.02, 5).astype(np.float32), np.float32(0.013)
    z2 = np.uint8(131)
    nodes = [node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"])]
    inits = [init("b1", b1), init("b2", b2), init("s1", s1), init("s2", s2), init("z2", z2),
             init("bias1", rng.normal(0, 1, 5).astype(np.float32))]
    for i, zp in ((1, ""), (2, "z2")):
        nodes += [node("MatMulInteger", ["xq", f"b{i}", "xz", zp], [f"acc{i}"]),
                  node("Cast", [f"acc{i}"], [f"f{i}"], to=1), node("Mul", ["xs", f"s{i}"], [f"scale{i}"]),
                  node("Mul", [f"f{i}", f"scale{i}"], [f"y{i}" if i == 2 else "m1"])]
    nodes.append(node("Add", ["m1", "bias1"], ["y1"]))
    m = make_model(nodes, {"x": (np.float32, (4, 16))}, {"y1": (np.float32, (4, 5)), "y2": (np.float32, (4, 3))},
                   inits)
    o = _ort_optimized(m)
    assert [n.op_type for n in o.graph.node].count("MatMulIntegerToFloat") == 2
    x = rng.normal(0, 1, (4, 16)).astype(np.float32)
    for model in (m, o):
        want = ort_run(model, {"x": x})
        got = import_onnx(model, profile=ort_harness.native_profile()).run({"x": x})
        for k in ("y1", "y2"):
            np.testing.assert_array_equal(got[k], want[k])


def test_export_refuses_a_run_time_zero_point_clearly(tmp_path):
    from qnnref import GraphBuilder, ValidationError
    from qnnref.onnx import export_onnx
    g = GraphBuilder(profile="onnx")
    x, z = g.input("x", "uint8", (2, 4)), g.input("zp", "uint8", ())
    w = g.constant("w", np.ones((4, 3), np.int8), dtype="int8", scale=1.0, zero_point=0)
    g.output(g.node("matmul", [x, w, "", z], {"dtype": "int32"}, name="mm"))
    with pytest.raises(ValidationError, match="run-time zero point"):
        export_onnx(g.build(), str(tmp_path / "m.onnx"))


def test_saved_and_loaded_model_runs_the_same(tmp_path):
    import qnnref
    m = import_onnx(quantized("cnn", "u8", True), profile="onnx")
    qnnref.save(m, str(tmp_path / "m.qnn"))
    m2 = qnnref.load(str(tmp_path / "m.qnn"))
    images, _ = digits_images()
    for i in (0, 100):
        f = {"image": images[i:i + 1]}
        np.testing.assert_array_equal(m.run(f)["logits"], m2.run(f)["logits"])
