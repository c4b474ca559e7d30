"""float_elementwise: the worked example, the single-operation functions
against the correctly rounded result (Fraction oracle), exp / sigmoid / tanh
against a high-precision oracle, broadcasting, IEEE specials, ERROR_IF.
(Against ONNX Runtime: tests/onnx_import/test_float_ops.py.)"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from float_oracle import fr, round_f32

import qnnref
from qnnref import GraphBuilder
from qnnref.ops.float_elementwise import float_elementwise

F32 = np.float32
INF = F32(np.inf)


def fe(function, a, b=None, lo=-INF, hi=INF):
    with np.errstate(all="ignore"):
        return float_elementwise(function, np.asarray(a, F32), None if b is None else np.asarray(b, F32), lo, hi)


def test_worked_example():
    assert fe("add", 1.0, 2**-24) == 1.0
    assert fe("add", 1.0, 3 * 2**-24) == 1 + 2**-22
    assert fe("mul", F32(0.1), 3.0) == F32(0.3)
    r = fe("relu", -0.0)
    assert r == 0 and not np.signbit(r)
    assert fe("clip", 7.5, lo=F32(0), hi=F32(6)) == 6.0
    assert fe("sigmoid", 0.0) == 0.5
    assert fe("exp", 1.0) == F32(2.7182817)


def values(rng, n=400):
    """Random float32 values over many binades, with zeros, subnormals and signs."""
    v = rng.standard_normal(n) * 2.0 ** rng.integers(-130, 60, n)
    v[:8] = [0.0, -0.0, 1.0, -1.0, 2**-149, -(2**-149), 3e38, -3e38]
    return v.astype(F32)


ORACLES = {"add": lambda a, b: fr(a) + fr(b), "sub": lambda a, b: fr(a) - fr(b),
           "mul": lambda a, b: fr(a) * fr(b), "div": lambda a, b: fr(a) / fr(b)}


@pytest.mark.parametrize("function", sorted(ORACLES))
def test_binary_is_correctly_rounded(function):
    rng = np.random.default_rng(len(function))
    a, b = values(rng), values(rng)[::-1].copy()
    got = fe(function, a, b)
    for x, y, g in zip(a, b, got):
        if function == "div" and y == 0:
            continue
        want = round_f32(ORACLES[function](x, y))
        if want == 0:
            assert g == 0
        else:
            assert g == want, (function, x, y, g, want)


def test_sqrt_min_max_neg_abs():
    rng = np.random.default_rng(9)
    a, b = values(rng), values(rng)[::-1].copy()
    np.testing.assert_array_equal(fe("min", a, b), np.where(a < b, a, b))
    np.testing.assert_array_equal(fe("max", a, b), np.where(a > b, a, b))
    np.testing.assert_array_equal(fe("neg", a), -a)
    np.testing.assert_array_equal(fe("abs", a), np.abs(a))
    pos = np.abs(a)
    for x, g in zip(pos, fe("sqrt", pos)):
        # the correctly rounded root r: (r - ulp/2)^2 <= x <= (r + ulp/2)^2
        lo, hi = np.nextafter(g, F32(0)), np.nextafter(g, INF)
        assert ((fr(g) + fr(lo)) / 2) ** 2 <= fr(x) <= ((fr(g) + fr(hi)) / 2) ** 2
    assert np.isnan(fe("sqrt", -1.0))


def test_nan_and_clip_bounds():
    nan = F32(np.nan)
    assert np.isnan(fe("relu", nan)) and np.isnan(fe("max", nan, 1.0)) and np.isnan(fe("clip", nan, lo=F32(0)))
    np.testing.assert_array_equal(fe("clip", [-5, -1, 0, 2, 9], lo=F32(-1), hi=F32(2)), [-1, -1, 0, 2, 2])
    np.testing.assert_array_equal(fe("clip", [-5, 9], lo=F32(-1)), [-1, 9])


@pytest.mark.parametrize("function", ["exp", "sigmoid", "tanh"])
def test_transcendental_correctly_rounded(function):
    mp = pytest.importorskip("mpmath")
    mp.mp.prec = 120
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-20, 20, 300), rng.standard_normal(300) * 1e-3]).astype(F32)
    got = fe(function, x)
    f = {"exp": mp.exp, "sigmoid": lambda v: 1 / (1 + mp.exp(-v)), "tanh": mp.tanh}[function]
    for v, g in zip(x, got):
        exact = f(mp.mpf(float(v)))
        m, e = mp.frexp(exact)
        want = round_f32(Fraction(int(mp.ldexp(m, 200)), 2**200) * Fraction(2) ** int(e))
        assert g == want, (function, v, g, want)


def test_broadcasting_and_model():
    a = np.arange(6, dtype=F32).reshape(2, 3)
    b = np.array([10, 20, 30], F32)
    g = GraphBuilder()
    ai, bi = g.input("a", "float32", a.shape), g.constant("b", b)
    y = g.node("float_elementwise", [ai, bi], {"function": "sub"})
    r = g.node("float_elementwise", [y], {"function": "clip", "min": -25.0, "max": 0.0})
    g.output(r)
    np.testing.assert_array_equal(g.build().run({"a": a})[r], np.clip(a - b, -25, 0))
    # a 0-d tensor keeps its shape
    g = GraphBuilder()
    s = g.input("s", "float32", ())
    t = g.node("float_elementwise", [s], {"function": "neg"})
    g.output(t)
    assert g.build().run({"s": np.array(2.0, F32)})[t].shape == ()


@pytest.mark.parametrize("function,n_inputs,attrs,pattern", [
    ("pow", 2, {}, "must be one of"),
    ("add", 1, {}, "takes two inputs"),
    ("relu", 2, {}, "takes one input"),
    ("relu", 1, {"min": 0.0}, "belong to function 'clip'"),
    ("clip", 1, {"min": 0.1}, "not a float32 value"),
    ("clip", 1, {"min": 2.0, "max": 1.0}, "min 2.0 > max 1.0"),
])
def test_errors(function, n_inputs, attrs, pattern):
    g = GraphBuilder()
    ins = [g.input("a", "float32", (2,)), g.input("b", "float32", (2,))][:n_inputs]
    with pytest.raises(qnnref.ValidationError, match=pattern):
        g.node("float_elementwise", ins, {"function": function, **attrs}, name="bad")


def test_error_shapes_and_dtypes():
    g = GraphBuilder()
    a, b = g.input("a", "float32", (2, 3)), g.input("b", "float32", (4,))
    with pytest.raises(qnnref.ValidationError, match="do not broadcast"):
        g.node("float_elementwise", [a, b], {"function": "add"}, name="bad")
    q = g.input("q", "int8", (2, 3), scale=0.5)
    with pytest.raises(qnnref.ValidationError, match="dtype int8"):
        g.node("float_elementwise", [q], {"function": "relu"}, name="bad")
