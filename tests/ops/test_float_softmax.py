"""float_softmax: the worked example, rows against a high-precision oracle
(the float32 nearest to the exact softmax), axes, extreme inputs, empty
tensors, ERROR_IF. (Against ONNX Runtime: tests/onnx_import/test_float_ops.py.)"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from float_oracle import round_f32

import qnnref
from qnnref import GraphBuilder
from qnnref.ops.float_softmax import float_softmax

F32 = np.float32


def build(shape, axis=-1):
    g = GraphBuilder()
    x = g.input("x", "float32", shape)
    y = g.node("float_softmax", [x], {"axis": axis}, name="sm")
    g.output(y)
    return g.build(), y


def test_worked_example():
    y = float_softmax(np.array([1, 2, 3], F32), 0)
    np.testing.assert_array_equal(y, np.array([0.09003057, 0.24472848, 0.66524094], F32))


def test_rows_against_exact_softmax():
    mp = pytest.importorskip("mpmath")
    mp.mp.prec = 150
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 33):
        x = (rng.standard_normal((6, n)) * 5).astype(F32)
        got = float_softmax(x, 1)
        for row, g in zip(x, got):
            e = [mp.exp(mp.mpf(float(v))) for v in row]
            s = mp.fsum(e)
            for ei, gi in zip(e, g):
                p = ei / s
                m, ex = mp.frexp(p)
                want = round_f32(Fraction(int(mp.ldexp(m, 200)), 2**200) * Fraction(2) ** int(ex))
                assert gi == want, (row, gi, want)


def test_axes_and_model():
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(F32)
    for axis in (0, 1, 2, -1, -3):
        model, y = build(x.shape, axis)
        got = model.run(x)[y]
        want = float_softmax(x, axis % 3)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got.sum(axis=axis), 1, rtol=1e-6)


def test_extremes():
    x = np.array([[-3e38, 3e38, 0], [88, 89, -1e30], [5, 5, 5]], F32)
    y = float_softmax(x, 1)
    np.testing.assert_array_equal(y[0], [0, 1, 0])
    assert y[1, 1] > y[1, 0] > 0 and y[1, 2] == 0
    np.testing.assert_array_equal(y[2], np.full(3, F32(1 / 3)))
    model, out = build((1, 2))
    assert np.isnan(model.run(np.array([[np.inf, 0]], F32))[out]).any()


def test_empty():
    model, y = build((0, 3))
    assert model.run(np.zeros((0, 3), F32))[y].shape == (0, 3)


@pytest.mark.parametrize("shape,axis,dtype,pattern", [
    ((2, 3), 2, "float32", "out of range"),
    ((2, 3), -3, "float32", "out of range"),
    ((), 0, "float32", "out of range"),
    ((2, 3), 1, "int8", "dtype int8"),
])
def test_errors(shape, axis, dtype, pattern):
    g = GraphBuilder()
    x = g.input("x", dtype, shape, **({"scale": 0.1} if dtype == "int8" else {}))
    with pytest.raises(qnnref.ValidationError, match=pattern):
        g.node("float_softmax", [x], {"axis": axis}, name="bad")
