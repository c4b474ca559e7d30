"""The lookup tables of QLinearSigmoid / QLinearLeakyRelu: exact FMA, the
emulation of MLAS's logistic kernel, bit-exact against ONNX Runtime."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from onnx_helpers import MS, init, make_model, needs_profile, node, ort_run
from qnnref.arith import QuantizeRecipe, dequantize_values
from qnnref.onnx import import_onnx
from qnnref.onnx.reader import OnnxQuant
from qnnref.onnx.tables import _sigmoid_float32, fma32, mlas_logistic_fma3, table_values

ONNX_QUANTIZE = QuantizeRecipe("divide", "half_to_even", "float32")


def _round_to_float32(r: Fraction) -> np.float32:
    """The float32 nearest to the rational r, ties to even (by bisection on neighbours)."""
    f = np.float32(float(r))
    for g in (np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf))):
        df, dg = abs(Fraction(float(f)) - r), abs(Fraction(float(g)) - r)
        if dg < df or (dg == df and int(np.float32(g).view(np.int32)) % 2 == 0):
            f = g
    return f


def test_fma32_is_correctly_rounded():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(2000).astype(np.float32) * np.float32(3)
    b = rng.standard_normal(2000).astype(np.float32)
    c = -(a * b) * (1 + rng.standard_normal(2000).astype(np.float32) * np.float32(1e-6))   # cancellation
    got = fma32(a, b, c)
    for i in range(0, 2000, 7):
        exact = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        assert got[i] == _round_to_float32(exact), i


def _ort_sigmoid(codes, xs, xz, ys, yz):
    inits = [init("xs", xs, np.float32), init("xz", xz, np.uint8), init("ys", ys, np.float32),
             init("yz", yz, np.uint8)]
    n = node("QLinearSigmoid", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS)
    m = make_model([n], {"x": (np.uint8, (len(codes),))}, {"y": (np.uint8, (len(codes),))}, inits)
    return ort_run(m, {"x": np.asarray(codes, np.uint8)})["y"]


def test_mlas_logistic_emulation_matches_onnxruntime():
    """Output scales placed between MLAS's value and the correctly rounded
    sigmoid: ONNX Runtime follows the emulation every time."""
    xs, xz = np.float32(0.03), 128
    real = dequantize_values(np.arange(256), xs, xz)
    mlas, ideal = mlas_logistic_fma3(real), _sigmoid_float32(real)
    differ = np.nonzero(mlas != ideal)[0]
    assert differ.size > 10
    checked = 0
    for i in differ[:60]:
        lo, hi = sorted([float(mlas[i]), float(ideal[i])])
        ys = np.float32((lo + hi) / 2 / 100.5)          # a rounding boundary between the two
        if np.rint(np.float32(lo) / ys) == np.rint(np.float32(hi) / ys):
            continue
        xq, yq = OnnxQuant("uint8", np.array(xs), np.array(np.uint8(xz))), OnnxQuant("uint8", np.array(ys), None)
        want = _ort_sigmoid([i], xs, xz, ys, 0)[0]
        assert table_values("sigmoid", xq, yq, ONNX_QUANTIZE, mlas=True)[i] == want
        assert table_values("sigmoid", xq, yq, ONNX_QUANTIZE, mlas=False)[i] != want
        checked += 1
    assert checked >= 10


@needs_profile("ort-cpu-x86")
def test_qlinear_sigmoid_bit_exact_under_ort_profile():
    rng = np.random.default_rng(1)
    for _ in range(20):
        xs, ys = np.float32(10 ** rng.uniform(-3, 0)), np.float32(10 ** rng.uniform(-3.5, -2))
        xz, yz = int(rng.integers(0, 256)), int(rng.integers(0, 64))
        inits = [init("xs", xs), init("xz", xz, np.uint8), init("ys", ys), init("yz", yz, np.uint8)]
        m = make_model([node("QLinearSigmoid", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS)],
                       {"x": (np.uint8, (256,))}, {"y": (np.uint8, (256,))}, inits)
        x = np.arange(256, dtype=np.uint8)
        np.testing.assert_array_equal(import_onnx(m, profile="ort-cpu-x86").run({"x": x})["y"],
                                      ort_run(m, {"x": x})["y"])


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_table_order_is_qnnref_table_order(dtype):
    """Entry k is the output for the code dtype_min + k (qnnref's ``table``)."""
    q = OnnxQuant(dtype, np.array(np.float32(0.125)), None)       # exact float32 arithmetic
    t = table_values("leaky_relu", q, q, ONNX_QUANTIZE, mlas=False, alpha=0.5)
    lo = -128 if dtype == "int8" else 0
    codes = np.arange(lo, lo + 256)
    expected = np.where(codes >= 0, codes, np.rint(codes * np.float32(0.5)))
    np.testing.assert_array_equal(t.astype(np.int64), np.clip(expected, lo, lo + 255))
