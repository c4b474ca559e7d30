"""com.microsoft MatMulNBits (float activations, 4-bit blocked weights):
imported as a blocked uint4 ``dequantize`` of the constant weights and
``float_matmul``. ONNX Runtime computes in float32 with its own summation
order, so the outputs are compared within the bound of spec/onnx-import.md
("MatMulNBits"): ``|qnnref - ORT| <= (2K + 4) 2^-24 (|A| @ |W| + |bias|)``
(two float32 sums of the same products, in different orders, each within
``K u`` of the exact one, plus the rounding of the dequantized weights).
They are float results, never counted as bit-exact. accuracy_level 4 (A
quantized to int8 on the fly) is refused.
"""
from __future__ import annotations

import numpy as np
import pytest

from onnx_helpers import MS, init, make_model, node, ort_run

from qnnref import ValidationError
from qnnref.onnx import import_onnx

PROFILE = "ort-cpu-x86-vnni"


def _pack(values: np.ndarray) -> np.ndarray:
    """Rows of 4-bit values packed two per byte, the low nibble first."""
    if values.shape[-1] % 2:
        values = np.concatenate([values, np.zeros(values.shape[:-1] + (1,), np.uint8)], axis=-1)
    return (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)


def nbits_model(rng, k, n, block, zero_points=True, bias=False, level=0, a_shape=None):
    """A one-node MatMulNBits model and its weights as float64 [K, N] (exact)."""
    blocks = -(-k // block)
    q = rng.integers(0, 16, (n, blocks * block)).astype(np.uint8)
    scales = rng.uniform(0.005, 0.1, (n, blocks)).astype(np.float32)
    zps = rng.integers(0, 16, (n, blocks)).astype(np.uint8) if zero_points else np.full((n, blocks), 8, np.uint8)
    b = rng.normal(0, 1, n).astype(np.float32)
    ins = ["A", "B", "scales", "zp" if zero_points else "", "", "bias" if bias else ""]
    inits = [init("B", _pack(q).reshape(n, blocks, block // 2)), init("scales", scales.reshape(-1))]
    inits += [init("zp", _pack(zps).reshape(-1))] if zero_points else []
    inits += [init("bias", b)] if bias else []
    a_shape = a_shape or (3, k)
    m = make_model([node("MatMulNBits", ins, ["Y"], domain=MS, K=k, N=n, bits=4, block_size=block,
                         accuracy_level=level)],
                   {"A": (np.float32, a_shape)}, {"Y": (np.float32, (*a_shape[:-1], n))}, inits)
    w = (q[:, :k].astype(np.float64) - np.repeat(zps, block, 1)[:, :k]) * np.repeat(scales, block, 1)[:, :k]
    return m, w.T, (b.astype(np.float64) if bias else 0.0)


def assert_within_bound(got, want, a, w, bias):
    k = a.shape[-1]
    scale = np.abs(a.astype(np.float64)) @ np.abs(w) + np.abs(bias)
    bound = (2 * k + 4) * 2.0**-24 * scale
    diff = np.abs(got.astype(np.float64) - want)
    assert np.all(diff <= bound), float(np.max(diff / bound))


@pytest.mark.parametrize("k,n,block,zero_points,bias,m", [
    (64, 8, 32, True, False, 3), (100, 7, 16, False, True, 2), (48, 5, 32, True, True, 1),
    (256, 33, 128, True, True, 4), (1024, 20, 64, False, False, 1), (512, 40, 32, True, True, 5)])
@pytest.mark.parametrize("level", [0, 1])
def test_matmulnbits_within_the_float_bound(k, n, block, zero_points, bias, m, level):
    rng = np.random.default_rng(k * n + m)
    model, w, b = nbits_model(rng, k, n, block, zero_points, bias, level, a_shape=(m, k))
    a = rng.normal(0, 1, (m, k)).astype(np.float32)
    want = ort_run(model, {"A": a})["Y"]
    q = import_onnx(model, profile=PROFILE)
    assert [nd.op for nd in q.graph.nodes] == ["dequantize", "float_matmul"]
    got = q.run({"A": a})["Y"]
    assert got.dtype == np.float32 and got.shape == want.shape
    assert_within_bound(got, want, a, w, b)


def test_batched_activations():
    rng = np.random.default_rng(5)
    model, w, b = nbits_model(rng, 64, 6, 16, True, True, a_shape=(2, 3, 64))
    a = rng.normal(0, 1, (2, 3, 64)).astype(np.float32)
    assert_within_bound(import_onnx(model, profile=PROFILE).run({"A": a})["Y"], ort_run(model, {"A": a})["Y"],
                        a, w, b)


def test_accuracy_level_4_is_refused_with_the_reason():
    model, _, _ = nbits_model(np.random.default_rng(1), 64, 8, 32, level=4)
    with pytest.raises(ValidationError, match="accuracy_level 4.*int8"):
        import_onnx(model, profile=PROFILE)


def test_onnxruntime_quantizer_output(tmp_path):
    """A float MLP quantized by ONNX Runtime's own MatMulNBitsQuantizer."""
    quantizer = pytest.importorskip("onnxruntime.quantization.matmul_nbits_quantizer")
    rng = np.random.default_rng(9)
    w1, w2 = rng.normal(0, 0.2, (64, 96)).astype(np.float32), rng.normal(0, 0.2, (96, 10)).astype(np.float32)
    f = make_model([node("MatMul", ["x", "w1"], ["h"]), node("Relu", ["h"], ["r"]), node("MatMul", ["r", "w2"], ["y"])],
                   {"x": (np.float32, (4, 64))}, {"y": (np.float32, (4, 10))}, [init("w1", w1), init("w2", w2)])
    for symmetric in (False, True):
        qz = quantizer.MatMulNBitsQuantizer(f, block_size=32, is_symmetric=symmetric)
        qz.process()
        qm = qz.model.model
        assert [nd.op_type for nd in qm.graph.node] == ["MatMulNBits", "Relu", "MatMulNBits"]
        x = rng.normal(0, 1, (4, 64)).astype(np.float32)
        want = ort_run(qm, {"x": x})["y"]
        got = import_onnx(qm, profile=PROFILE).run({"x": x})["y"]
        # the bound of the second layer applies to the float hidden values each side computed;
        # a loose end-to-end check: both sides agree to float32 relative precision
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(np.abs(want).max()))
