"""float_mean: the worked example, means against an exact Fraction oracle
rounded to float32, keepdims, negative axes, IEEE specials, ERROR_IF.
(Against ONNX Runtime: tests/onnx_import/test_dynamic.py, a quantize_dynamic CNN
with a float GlobalAveragePool.)"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from float_oracle import round_f32

import qnnref
from qnnref import GraphBuilder
from qnnref.ops.float_mean import float_mean

F32 = np.float32


def build(shape, axes, keepdims=True):
    g = GraphBuilder()
    x = g.input("x", "float32", shape)
    y = g.node("float_mean", [x], {"axes": axes, "keepdims": keepdims}, name="m")
    g.output(y)
    return g.build(), y


def test_worked_example():
    x = np.array([[1, 2], [3, 5]], F32)
    np.testing.assert_array_equal(float_mean(x, (1,), False), np.array([1.5, 4], F32))
    np.testing.assert_array_equal(float_mean(x, (0, 1), True), np.array([[2.75]], F32))


@pytest.mark.parametrize("shape,axes", [((2, 3, 4, 5), (1, 2)), ((1, 7, 7, 16), (1, 2)), ((3, 33), (1,)),
                                        ((4, 2, 3), (0, 2)), ((5,), (0,))])
def test_against_the_exact_mean(shape, axes):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(F32)
    got = float_mean(x, axes, True)
    count = int(np.prod([shape[a] for a in axes]))
    moved = np.moveaxis(x, axes, range(len(shape) - len(axes), len(shape)))
    rows = moved.reshape(-1, count)
    want = [round_f32(sum((Fraction(float(v)) for v in row), Fraction(0)) / count) for row in rows]
    np.testing.assert_array_equal(got.reshape(-1), np.array(want, F32))


def test_model_keepdims_and_negative_axes():
    m, y = build((2, 3, 4, 5), [-3, -2], keepdims=False)
    x = np.arange(120, dtype=F32).reshape(2, 3, 4, 5)
    out = m.run(x)[y]
    assert out.shape == (2, 5) and out.dtype == F32
    np.testing.assert_array_equal(out, x.mean(axis=(1, 2), dtype=np.float64).astype(F32))
    m, y = build((2, 3, 4, 5), [1, 2])
    assert m.run(x)[y].shape == (2, 1, 1, 5)


def test_ieee_specials():
    x = np.array([[np.inf, 1], [np.inf, -np.inf], [np.nan, 0]], F32)
    with np.errstate(invalid="ignore"):          # inf + (-inf): NaN, as the operator's run() allows
        y = float_mean(x, (1,), False)
    assert y[0] == np.inf and np.isnan(y[1]) and np.isnan(y[2])


@pytest.mark.parametrize("shape,axes,msg", [((2, 3), [], "at least one"), ((2, 3), [2], "out of range"),
                                            ((2, 3), [1, -1], "twice"), ((2, 0), [1], "empty axis")])
def test_invalid_models(shape, axes, msg):
    with pytest.raises(qnnref.ValidationError, match=msg):
        build(shape, axes)


def test_quantized_input_is_invalid():
    g = GraphBuilder()
    x = g.input("x", "int8", (2, 3), scale=0.5, zero_point=0)
    with pytest.raises(qnnref.ValidationError):
        g.node("float_mean", [x], {"axes": [1]})
