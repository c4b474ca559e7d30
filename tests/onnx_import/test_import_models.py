"""Real models: a trained CNN quantized by ONNX Runtime's own quantizer
(``quantize_static``: QDQ and QOperator; u8s8, s8s8, u8u8; per-tensor and
per-channel) imports, runs, and agrees with ONNX Runtime; dynamic
quantization is refused with the reason. (QONNX's Brevitas models:
test_espcn.py.)"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import qnnref
from onnx_helpers import (PROFILE, digits_float_model, digits_images, needs_profile, ops_of, ort, ort_quantize,
                          zoo_float_model)
from qnnref.onnx import import_onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))
import ort_harness  # noqa: E402  (the profile of this machine's CPU)

CONFIGS = [(fmt, act, wt, pc) for fmt in ("qdq", "qop") for act, wt in (("u8", "s8"), ("s8", "s8"), ("u8", "u8"))
           for pc in (False, True)]
N_IMAGES = 40


def out_scale(model) -> float:
    """The scale of the DequantizeLinear producing the logits."""
    g = model.graph
    dq = next(n for n in g.node if n.output[0] == "logits")
    s = next(t for t in g.initializer if t.name == dq.input[1])
    return float(np.frombuffer(s.raw_data, np.float32)[0]) if s.raw_data else float(s.float_data[0])


def vendor_import(qmodel):
    """``qmodel`` imported under the profile of ONNX Runtime on the CPU of
    this run (probed: ort_harness.native_profile), the one to compare with
    ORT. Under the ``qnnref`` profile (exact u8 x s8 sums) the logits are as
    close only where ORT does not saturate u8 x s8 pairs: on VNNI CPUs."""
    return import_onnx(qmodel, profile=ort_harness.native_profile())


def compare(qmodel, imported, images):
    sess = ort.InferenceSession(qmodel.SerializeToString(), providers=["CPUExecutionProvider"])
    scale = out_scale(qmodel)
    worst, agree = 0, 0
    for i in range(N_IMAGES):
        x = images[i:i + 1]
        r = sess.run(None, {"image": x})[0]
        q = imported.run({"image": x})["logits"]
        worst = max(worst, int(np.rint(np.max(np.abs(r - q)) / scale)))
        agree += int(np.argmax(r) == np.argmax(q))
    return worst, agree


@pytest.mark.parametrize("fmt,act,wt,per_channel", CONFIGS)
def test_quantize_static_digits(tmp_path, fmt, act, wt, per_channel):
    images, labels = digits_images()
    qm = ort_quantize(tmp_path, digits_float_model(), images, fmt, act, wt, per_channel)
    m = import_onnx(qm, profile=PROFILE)
    assert m.metadata["source"]["format"] == "onnx" and m.metadata["profile"] == PROFILE
    assert ops_of(m).count("conv2d") == 3 and ops_of(m).count("transpose") == 1    # NCHW -> NHWC once
    worst, agree = compare(qm, vendor_import(qm), images)
    assert worst <= 3, f"logits differ from ONNX Runtime by {worst} steps"
    assert agree >= N_IMAGES - 1


@pytest.mark.parametrize("fmt", ["qdq", "qop"])
def test_quantize_static_with_maxpool_and_residual_add(tmp_path, fmt):
    images, _ = digits_images()
    qm = ort_quantize(tmp_path, digits_float_model(extra_ops=True), images, fmt, "u8", "s8", True)
    m = import_onnx(qm, profile=PROFILE)
    assert {"max_pool2d", "add"} <= set(ops_of(m))
    worst, agree = compare(qm, vendor_import(qm), images)
    assert worst <= 4 and agree >= N_IMAGES - 1


ZOO = [("qdq", "u8", "s8", False), ("qdq", "s8", "s8", True), ("qop", "u8", "s8", True), ("qop", "u8", "u8", False)]


@pytest.mark.parametrize("fmt,act,wt,per_channel", ZOO)
def test_quantize_static_operator_zoo(tmp_path, fmt, act, wt, per_channel):
    """Depthwise conv, ReLU6, SiLU, residual Add, MaxPool, Resize, Concat,
    GlobalAveragePool, MatMul + Add, as ORT's quantizer writes them: one
    transpose into NHWC, none out (the pooled [N, C, 1, 1] reshapes as is)."""
    images = np.random.default_rng(1).uniform(0, 1, (64, 3, 16, 16)).astype(np.float32)
    qm = ort_quantize(tmp_path, zoo_float_model(), images, fmt, act, wt, per_channel)
    m = import_onnx(qm, profile=PROFILE)
    ops = ops_of(m)
    assert ops.count("transpose") == 1 and ops.count("conv2d") == 4
    assert {"table", "mul", "add", "max_pool2d", "gather", "concat", "mean", "matmul"} <= set(ops)
    worst, agree = compare(qm, vendor_import(qm), images)
    assert worst <= 2 and agree >= N_IMAGES - 1


def test_quantize_static_int4_weights(tmp_path):
    """ORT writes int4 weights with com.microsoft QuantizeLinear / DequantizeLinear."""
    images, _ = digits_images()
    qm = ort_quantize(tmp_path, digits_float_model(), images, "qdq", "u8", "s4", True)
    assert any(n.domain == "com.microsoft" for n in qm.graph.node)
    m = import_onnx(qm, profile=PROFILE)
    assert sum(t.dtype == "int4" for t in m.graph.tensors.values()) == 4
    worst, agree = compare(qm, m, images)
    assert worst <= 3 and agree >= N_IMAGES - 1


def test_quantize_static_int16_activations_run_in_float(tmp_path):
    """qnnref's conv2d / matmul take 8-bit activations: with int16 ones the
    Convs and the Gemm stay float32 operators, as ONNX Runtime runs them too."""
    images, _ = digits_images()
    qm = ort_quantize(tmp_path, digits_float_model(), images, "qdq", "s16", "s8", True)
    m = import_onnx(qm, profile=PROFILE)
    assert ops_of(m).count("float_conv2d") == 3 and ops_of(m).count("float_matmul") == 1
    worst, agree = compare(qm, m, images)
    assert worst <= 1 and agree >= N_IMAGES - 1


def test_imported_model_saves_and_loads(tmp_path):
    images, _ = digits_images()
    qm = ort_quantize(tmp_path, digits_float_model(), images, "qdq", "u8", "s8", True)
    path = tmp_path / "q.onnx"
    import onnx
    onnx.save(qm, str(path))
    out = tmp_path / "digits.qnn"
    qnnref.onnx.convert(str(path), str(out), profile=PROFILE)
    loaded = qnnref.load(str(out))
    direct = import_onnx(str(path), profile=PROFILE)
    x = images[:1]
    np.testing.assert_array_equal(loaded.run({"image": x})["logits"], direct.run({"image": x})["logits"])
    assert loaded.metadata["source"]["opset"] >= 13


@needs_profile("ort-cpu-x86")
@pytest.mark.parametrize("fmt,act,wt,per_channel", [c for c in CONFIGS if c[1:3] != ("u8", "u8")])
def test_quantize_static_digits_bit_exact_under_ort_profile(tmp_path, fmt, act, wt, per_channel):
    images, _ = digits_images()
    qm = ort_quantize(tmp_path, digits_float_model(), images, fmt, act, wt, per_channel)
    worst, _ = compare(qm, import_onnx(qm, profile=ort_harness.native_profile()), images)
    assert worst == 0


@pytest.mark.parametrize("wt,per_channel", [("s8", False), ("s8", True), ("u8", False)])
def test_quantize_dynamic_cnn_with_a_float_global_average_pool(tmp_path, wt, per_channel):
    """The digits CNN after ORT's quantize_dynamic: ConvInteger layers, then
    a GlobalAveragePool the quantizer leaves in float (qnnref's float_mean),
    then a dynamically quantized Gemm. Everything but the float average is
    bit-exact; the average sums in float32 in ORT's order and in float64 in
    qnnref's, so the float logits agree within a few float32 ulps (measured:
    relative 2e-7, most images identical) -- spec/ops/float_mean.md."""
    images, _ = digits_images()
    qm = ort_quantize(tmp_path, digits_float_model(), images, "qop", "u8", wt, per_channel, dynamic=True)
    m = import_onnx(qm, profile=ort_harness.native_profile())
    assert ops_of(m).count("float_mean") == 1 and ops_of(m).count("conv2d") == 3
    sess = ort.InferenceSession(qm.SerializeToString(), providers=["CPUExecutionProvider"])
    identical = 0
    for i in range(N_IMAGES):
        x = images[i:i + 1]
        r = sess.run(None, {"image": x})[0]
        q = m.run({"image": x})["logits"]
        identical += int(np.array_equal(r, q))
        assert np.max(np.abs(r - q)) <= 1e-6 * np.max(np.abs(r)), (i, r, q)
        assert np.argmax(r) == np.argmax(q)
    assert identical >= N_IMAGES // 2


# QONNX / Brevitas models (ESPCN): tests/onnx_import/test_espcn.py
