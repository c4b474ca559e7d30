"""dynamic_quantize: the worked example of spec/ops/dynamic_quantize.md, the
parameters against an independent exact-arithmetic oracle, properties of y,
the edge cases (all zero, one sign, overflowing range), REQUIRE and ERROR_IF.
(ONNX Runtime itself: tests/onnx_import/test_import_gaps.py.)"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnref import GraphBuilder, RuntimeCheckError, ValidationError
from qnnref.ops.dynamic_quantize import dynamic_quantize_params

F32 = np.float32


def run(x, profile="onnx", attrs=None):
    g = GraphBuilder(profile=profile)
    xi = g.input("x", "float32", x.shape)
    y, s, z = g.node("dynamic_quantize", [xi], attrs or {}, name="dq")
    g.output(y, s, z)
    out = g.build().run({"x": x})
    return out[y], out[s], out[z]


def f32(q: Fraction) -> F32:
    """The float32 nearest the exact rational ``q`` (ties to even), through
    float64 only where that is exact: float64(q) is correctly rounded, and
    float32 of it double-rounds only when float64(q) is a float32 midpoint;
    then the exact value decides."""
    d = float(q)
    r = F32(d)
    if Fraction(d) != q and Fraction(float(r)) != Fraction(d):
        lo, hi = sorted([r, np.nextafter(r, F32(np.inf) if Fraction(float(r)) < q else F32(-np.inf))])
        mid = (Fraction(float(lo)) + Fraction(float(hi))) / 2
        if mid == Fraction(d):                       # float64 landed exactly on the float32 midpoint
            r = hi if q > mid else lo
    return r


def oracle_params(x: np.ndarray):
    """s and zp with each float32 operation done in exact rationals, rounded once."""
    lo = min(Fraction(float(x.min(initial=0))), Fraction(0))
    hi = max(Fraction(float(x.max(initial=0))), Fraction(0))
    if hi == lo:
        s = F32(1)
    else:
        s = f32(Fraction(float(f32(hi - lo))) / 255)
    initial = f32(-Fraction(float(f32(lo / Fraction(float(s))))))
    c = min(max(Fraction(float(initial)), Fraction(0)), Fraction(255))
    zp = round(c)                                    # Python's round: half to even
    return s, zp


def test_worked_example_from_the_spec():
    x = np.array([0, 2, -3, -2.5, 1.34, 0.5], F32)
    y, s, z = run(x)
    assert s.shape == () and s.dtype == F32 and float(s) == float(F32(5) / F32(255))
    assert z.shape == () and z.dtype == np.uint8 and int(z) == 153
    np.testing.assert_array_equal(y, [153, 255, 0, 26, 221, 179])


@pytest.mark.parametrize("x,scale,zp", [
    (np.zeros((2, 3), F32), 1.0, 0),                                 # empty range: s = 1 (ONNX Runtime)
    (np.zeros((0,), F32), 1.0, 0),                                   # no elements
    (np.array([1.0, 2.0, 4.0], F32), float(F32(4) / F32(255)), 0),   # all >= 0: zp = 0
    (np.array([-1.0, -4.0], F32), float(F32(4) / F32(255)), 255),    # all <= 0: zp = 255
])
def test_edge_ranges(x, scale, zp):
    y, s, z = run(x)
    assert float(s) == scale and int(z) == zp and y.shape == x.shape


def test_range_beyond_float32_gives_an_infinite_scale():
    y, s, z = run(np.array([3e38, -3e38, 1.0], F32))
    assert np.isinf(s) and int(z) == 0
    np.testing.assert_array_equal(y, [0, 0, 0])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.floats(-2.0**100, 2.0**100, width=32, allow_subnormal=True), min_size=1, max_size=20))
def test_parameters_match_the_exact_oracle(values):
    x = np.array(values, F32)
    s, zp = dynamic_quantize_params(x)
    s_o, zp_o = oracle_params(x)
    assert F32(s).view(np.uint32) == F32(s_o).view(np.uint32) and zp == zp_o


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.floats(-2.0**20, 2.0**20, width=32), min_size=1, max_size=30))
def test_y_is_quantize_with_the_computed_parameters(values):
    """y is exactly the quantize operator with (s, zp), and reconstructs x to
    within a step (plus the rounding of s itself)."""
    x = np.array(values, F32)
    y, s, z = run(x)
    g = GraphBuilder(profile="onnx")
    q = g.node("quantize", [g.input("x", "float32", x.shape)], {"dtype": "uint8"}, scale=float(s),
               zero_point=int(z))
    g.output(q)
    np.testing.assert_array_equal(y, g.build().run({"x": x})[q])
    err = np.abs((y.astype(np.float64) - int(z)) * float(s) - x.astype(np.float64))
    assert np.all(err <= float(s) * 1.0001 + 1e-30)


def test_quantize_recipe_attribute_rounds_the_last_step():
    x = np.array([255, 0.5, 1.5, 2.5], F32)                 # s = 255 / 255 = 1, zp = 0: x / s are ties
    recipe = {"method": "divide", "rounding": "half_away_from_zero", "float_dtype": "float32"}
    y_even, s, z = run(x)
    y_away, _, _ = run(x, attrs={"quantize_recipe": recipe})
    assert float(s) == 1.0 and int(z) == 0
    np.testing.assert_array_equal(y_even, [255, 0, 2, 2])
    np.testing.assert_array_equal(y_away, [255, 1, 2, 3])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_a_runtime_error(bad):
    with pytest.raises(RuntimeCheckError, match=r"node 'dq'.*finite"):
        run(np.array([1.0, bad], F32))


def test_invalid_models_are_rejected():
    g = GraphBuilder()
    with pytest.raises(ValidationError, match=r"node 'dq' \(dynamic_quantize\).*input x 'x' has dtype float16"):
        g.node("dynamic_quantize", [g.input("x", "float16", (3,))], name="dq")
    g = GraphBuilder()
    xi = g.input("x", "float32", (3,))
    with pytest.raises(ValidationError, match=r"has 3 output\(s\), got 1"):
        g.node("dynamic_quantize", [xi], name="dq", output="y")
