"""ONNX import keeps a symbolic batch (spec/onnx-import.md, "Symbolic batch").

A small float CNN with input dimension 'N', quantized by ONNX Runtime's own
quantize_static (QDQ and QOperator), imports with its symbolic batch, runs at
batches 1 and 3 with identical per-item outputs, and is bit-exact with ONNX
Runtime at both batch sizes under the profile the probe says for this CPU
(tests/profiles/ort_harness.native_profile, never a hard-coded one) -- and,
where the CPUID mask works, with ONNX Runtime seeing an AVX2-only CPU.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest

from onnx_helpers import make_model, node, init, ort  # noqa: F401  (skips without onnx / onnxruntime)

import onnx  # noqa: E402
from onnx import TensorProto as TP, helper, numpy_helper  # noqa: E402

import qnnref  # noqa: E402
from qnnref.onnx import import_onnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))
import ort_harness  # noqa: E402


def float_cnn(flatten: str = "Flatten") -> onnx.ModelProto:
    """Conv -> Relu -> MaxPool -> Conv -> GlobalAveragePool / Flatten -> MatMul -> Add, input [N, 3, 8, 8]."""
    rng = np.random.default_rng(7)
    f = lambda *s: rng.normal(0, 0.3, s).astype(np.float32)  # noqa: E731
    inits = [numpy_helper.from_array(f(8, 3, 3, 3), "w1"), numpy_helper.from_array(f(8), "b1"),
             numpy_helper.from_array(f(6, 8, 3, 3), "w2"), numpy_helper.from_array(f(6), "b2"),
             numpy_helper.from_array(f(6 * 4 * 4, 10), "w3"), numpy_helper.from_array(f(10), "b3")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"])]
    if flatten == "Flatten":
        nodes.append(helper.make_node("Flatten", ["r2"], ["f"]))
    else:                                   # Reshape to [-1, 96] (a shape initializer)
        inits.append(numpy_helper.from_array(np.array([-1, 96], np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["r2", "shape"], ["f"]))
    nodes += [helper.make_node("MatMul", ["f", "w3"], ["m"]), helper.make_node("Add", ["m", "b3"], ["y"])]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TP.FLOAT, ["N", 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, ["N", 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@functools.cache
def quantized(fmt: str, flatten: str = "Flatten") -> bytes:
    import tempfile
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(3)
            self.it = iter([{"x": rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "f.onnx", Path(d) / "q.onnx"
        onnx.save(float_cnn(flatten), src)
        quantize_static(str(src), str(dst), Reader(), quant_format=getattr(QuantFormat, fmt),
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        return dst.read_bytes()


def images(n: int) -> np.ndarray:
    return np.random.default_rng(11).normal(0, 1, (n, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("flatten", ["Flatten", "Reshape"])
@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_the_symbolic_batch_is_kept_and_runs_at_any_batch(fmt, flatten):
    q = quantized(fmt, flatten)
    m = import_onnx(q, profile=ort_harness.native_profile())
    assert m.batch_symbol == "N"
    assert m.inputs[0].shape == ("N", 3, 8, 8) and m.outputs[0].shape == ("N", 10)
    x = images(4)
    whole = m.run(x[:3])["y"]
    alone = np.concatenate([m.run(x[i:i + 1])["y"] for i in range(3)])
    assert np.array_equal(whole, alone)                          # same bits per item
    assert m.run(x)["y"].shape == (4, 10)


@pytest.mark.parametrize("cpu", ["native", "avx2"])
@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_bit_exact_with_onnxruntime_at_batches_1_and_3(fmt, cpu):
    if cpu == "avx2" and ort_harness.avx2_unavailable():
        pytest.skip(f"ONNX Runtime on an AVX2-only CPU: {ort_harness.avx2_unavailable()}")
    q = quantized(fmt)
    profile = ort_harness.native_profile() if cpu == "native" else "ort-cpu-x86"
    m = import_onnx(q, profile=profile)
    x = images(3)
    feeds = [{"x": x[:1]}, {"x": x}]
    want = [r[0] for r in ort_harness.run_cases([(q, f) for f in feeds], cpu)]
    for f, w in zip(feeds, want):
        got = m.run(f["x"])["y"]
        assert got.dtype == w.dtype and got.shape == w.shape
        np.testing.assert_array_equal(got, w)                    # bit-exact, float output included


def test_symbolic_model_round_trips_through_a_qnn_file(tmp_path):
    m = import_onnx(quantized("QDQ"), profile="qnnref")
    qnnref.save(m, tmp_path / "m.qnn")
    loaded = qnnref.load(tmp_path / "m.qnn")
    assert loaded.batch_symbol == "N"
    x = images(3)
    assert np.array_equal(loaded.run(x)["y"], m.run(x)["y"])


def test_input_shapes_still_fix_the_batch():
    m = import_onnx(quantized("QDQ"), profile="qnnref", input_shapes={"x": (2, 3, 8, 8)})
    assert m.batch_symbol is None and m.inputs[0].shape == (2, 3, 8, 8)


def test_a_dim_param_name_is_kept_and_a_batch_that_cannot_stay_open_is_refused():
    # the dim_param becomes the symbol
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["y"])]
    m = make_model(nodes, {"x": (np.float32, ("batch", 4))}, {"y": (np.uint8, ("batch", 4))},
                   [init("s", 0.1, np.float32), init("z", 3, np.uint8)])
    q = import_onnx(m, profile="qnnref")
    assert q.inputs[0].shape == ("batch", 4)
    # a dynamic quantization computes one scale over the whole batch: the batch cannot stay open
    m = make_model([node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
                    node("MatMulInteger", ["xq", "b", "xz"], ["y"])],
                   {"x": (np.float32, ("N", 16))}, {"y": (np.int32, ("N", 4))},
                   [init("b", np.ones((16, 4), np.int8))])
    with pytest.raises(qnnref.ValidationError, match="symbolic batch 'N' cannot be kept.*input_shapes"):
        import_onnx(m, profile="qnnref")
    assert import_onnx(m, profile="qnnref", input_shapes={"x": (3, 16)}).inputs[0].shape == (3, 16)


def test_export_writes_a_fixed_batch(tmp_path):
    m = import_onnx(quantized("QDQ"), profile="qnnref")
    with pytest.raises(qnnref.ValidationError, match="concrete_graph"):
        qnnref.export_onnx(m, tmp_path / "m.onnx")
    qnnref.export_onnx(m.concrete_graph(3), tmp_path / "m.onnx")
    out = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": images(3)})[0]
    assert out.shape == (3, 10)


def test_a_hard_coded_batch_1_reshape_says_to_fix_the_batch():
    """Exporters often write Reshape(x, [1, -1]): at batch 2 that is not a
    flatten any more, so the batch cannot stay open; the error says how to fix it."""
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["q"]), node("Reshape", ["q", "shape"], ["r"]),
             node("DequantizeLinear", ["r", "s", "z"], ["y"])]
    m = make_model(nodes, {"x": (np.float32, ("N", 2, 3))}, {"y": (np.float32, None)},
                   [init("s", 0.1, np.float32), init("z", 3, np.uint8), init("shape", np.array([1, 6], np.int64))])
    with pytest.raises(qnnref.ValidationError, match=r"(?s)cannot be kept.*input_shapes=\{'x': \(1, 2, 3\)\}"):
        import_onnx(m, profile="qnnref")
    assert import_onnx(m, profile="qnnref", input_shapes={"x": (1, 2, 3)}).outputs[0].shape == (1, 6)
