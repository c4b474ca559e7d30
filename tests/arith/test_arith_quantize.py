"""qnnref.arith, part 3: quantize_values and dequantize_values.

The oracle (quantize_value, tests/oracles.py) emulates IEEE arithmetic with
Fractions: the exact quotient x / s rounded once to float32 (or float64),
then the recipe's rounding of that float, then the zero point and saturation.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnref import arith, dtypes
from qnnref.errors import RuntimeCheckError

from oracles import MODES, dequantize_value, quantize_value, round_fraction
from conftest import all_values, edge_values_int32

SETTINGS = settings(max_examples=60, derandomize=True, deadline=None)
QDTYPES = ("int4", "uint4", "int8", "uint8", "int16", "int32")


def _recipes():
    for method in ("divide", "reciprocal"):
        for fd in ("float32", "float64"):
            for mode in MODES:
                yield arith.QuantizeRecipe(method=method, rounding=mode, float_dtype=fd)


RECIPES = list(_recipes())


def _rid(r):
    return f"{r.method}-{r.rounding}-{r.float_dtype}"


def _check(x, scale, zp, dtype_name, recipe):
    x = np.asarray(x)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float32), x.shape)
    zp = np.broadcast_to(np.asarray(zp, dtype=np.int64), x.shape)
    got = arith.quantize_values(x, scale, zp, dtype_name, recipe)
    assert got.dtype == dtypes.get(dtype_name).numpy and got.shape == x.shape
    want = [quantize_value(a, s, int(z), dtype_name, recipe)
            for a, s, z in zip(x.ravel().tolist(), scale.ravel().tolist(), zp.ravel().tolist())]
    assert got.ravel().tolist() == want


def _values(rng, n=160) -> np.ndarray:
    """float32 values over many magnitudes, exact ties k + 1/2 times a
    power-of-two scale, and their float32 neighbours."""
    mag = np.exp(rng.uniform(np.log(1e-6), np.log(1e6), size=n)) * rng.choice([-1, 1], size=n)
    ties = (rng.integers(-200, 200, size=n // 4) + 0.5) * 2.0 ** rng.integers(-10, 4, size=n // 4)
    ties = ties.astype(np.float32)
    near = np.concatenate([np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))])
    return np.concatenate([mag.astype(np.float32), ties, near,
                           np.array([0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997],
                                    dtype=np.float32)])


@pytest.mark.parametrize("recipe", RECIPES, ids=_rid)
def test_quantize_values_against_the_ieee_oracle(recipe, rng):
    x = _values(rng)
    # power-of-two scales keep the ties exact; the others exercise the quotient rounding
    for scale in (1.0, 2.0**-7, 0.1, 3.7, 1e-3):
        _check(x, scale, 0, "int32", recipe)
    _check(x, 2.0**-3, rng.integers(-128, 128, size=x.size), "int8", recipe)
    _check(x, 0.05, rng.integers(0, 256, size=x.size), "uint8", recipe)
    _check(x, 2.0**-7, 0, "int16", recipe)
    _check(x, 0.5, 3, "int4", recipe)
    _check(x, 0.5, 8, "uint4", recipe)


@SETTINGS
@given(data=st.lists(st.tuples(st.floats(width=32, allow_nan=False),
                               st.floats(2.0**-20, 2.0**10, width=32),
                               st.integers(-128, 127)), min_size=1, max_size=10))
def test_quantize_values_hypothesis(data):
    x = np.array([d[0] for d in data], dtype=np.float32)
    s = np.array([d[1] for d in data], dtype=np.float32)
    zp = np.array([d[2] for d in data])
    for recipe in RECIPES:
        _check(x, s, zp, "int8", recipe)
        _check(x, s, 0, "int32", recipe)


@pytest.mark.parametrize("mode", MODES)
def test_quantize_ties_follow_the_rounding_mode(mode):
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], dtype=np.float32)
    r = arith.QuantizeRecipe(rounding=mode)
    got = arith.quantize_values(x * np.float32(0.125), 0.125, 0, "int8", r).tolist()
    assert got == [round_fraction(Fraction(float(v)), mode) for v in x]


def test_quantize_rounds_the_float32_quotient_not_the_real_quotient():
    """6.94867f / 0.15271802f is 45.4999993 exactly but 45.5 in float32, so
    the division in float32 (ONNX QuantizeLinear) gives 46 where rounding
    the exact quotient would give 45. The spec defines the float32 result."""
    x, s = np.float32(6.94867), np.float32(0.15271802)
    exact = Fraction(float(x)) / Fraction(float(s))
    assert round_fraction(exact, "half_to_even") == 45 and x / s == np.float32(45.5)
    assert arith.quantize_values(x, s, 0, "int8", arith.QuantizeRecipe()) == 46
    r64 = arith.QuantizeRecipe(float_dtype="float64")
    assert arith.quantize_values(x, s, 0, "int8", r64) == 45


def test_quantize_divide_and_reciprocal_differ():
    """x / s and x * (1 / s) round differently: 1.0306507f / 0.15856165f is
    6.5 (-> 6, half to even) but x * (1/s) is 6.5000005 (-> 7)."""
    x, s = np.float32(1.0306507), np.float32(0.15856165)
    div = arith.QuantizeRecipe(method="divide")
    rec = arith.QuantizeRecipe(method="reciprocal")
    assert arith.quantize_values(x, s, 0, "int8", div) == 6
    assert arith.quantize_values(x, s, 0, "int8", rec) == 7


@pytest.mark.parametrize("name", QDTYPES)
def test_quantize_saturates(name):
    dt = dtypes.get(name)
    r = arith.QuantizeRecipe()
    x = np.array([np.inf, -np.inf, 1e30, -1e30, 3.4e38, -3.4e38, float(dt.max) + 1, float(dt.min) - 1,
                  float(dt.max), float(dt.min)], dtype=np.float32)
    got = arith.quantize_values(x, 1.0, 0, name, r).tolist()
    assert got[:8] == [dt.max, dt.min] * 4
    # a finite x whose quotient overflows float32 saturates too
    assert arith.quantize_values(np.float32(3e38), np.float32(1e-3), 0, name, r) == dt.max
    # saturation after the zero point is added
    assert arith.quantize_values(np.float32(dt.max), 1.0, 1, name, r) == dt.max


def test_quantize_nan_raises():
    for recipe in (arith.QuantizeRecipe(), arith.QuantizeRecipe(method="reciprocal", float_dtype="float64")):
        with pytest.raises(RuntimeCheckError, match="NaN"):
            arith.quantize_values(np.array([1.0, np.nan], dtype=np.float32), 1.0, 0, "int8", recipe)


def test_quantize_float64_input_is_rounded_to_float32_first():
    """With float_dtype float32, a float64 input is first rounded to float32."""
    x = 0.5 + 2.0**-30                        # float32(x) == 0.5 exactly
    r = arith.QuantizeRecipe(rounding="half_down")
    assert arith.quantize_values(np.float64(x), 1.0, 0, "int8", r) == 0
    assert arith.quantize_values(np.float64(x), 1.0, 0, "int8", arith.QuantizeRecipe("divide", "half_down", "float64")) == 1


def test_quantize_per_axis_broadcast():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    scale = np.array([1.0, 0.5, 0.25, 2.0], dtype=np.float32)
    zp = np.array([0, 1, -1, 3])
    got = arith.quantize_values(x, scale, zp, "int8", arith.QuantizeRecipe())
    assert got.tolist() == [[round_fraction(Fraction(float(x[i, j])) / Fraction(float(scale[j])), "half_to_even")
                             + int(zp[j]) for j in range(4)] for i in range(3)]


# ---------------------------------------------------------------------------
# dequantize_values
# ---------------------------------------------------------------------------

def _bits(a):
    return np.asarray(a, dtype=np.float32).view(np.uint32)


SCALES = (1.0, 0.1, 2.0**-7, 3.3e-5, 1234.5, 1e-30, 3e38)


@pytest.mark.parametrize("name", ("int8", "uint8", "int4", "uint4"))
def test_dequantize_every_value(name, rng):
    dt = dtypes.get(name)
    q = all_values(name)
    for scale in SCALES:
        for zp in sorted({dt.min, dt.max, 0 if dt.min < 0 else 8, int(rng.integers(dt.min, dt.max + 1))}):
            with np.errstate(over="ignore"):          # 3e38 * 255 is inf, as IEEE says
                got = arith.dequantize_values(q, scale, zp)
            assert got.dtype == np.float32
            want = [dequantize_value(v, scale, zp) for v in q.tolist()]
            with np.errstate(over="ignore"):
                assert np.array_equal(_bits(got), _bits(want)), (scale, zp)


def test_dequantize_int16():
    """Edge values with Fractions, and the whole int16 range with float64
    (|q - zp| < 2^17 times a 24-bit scale is exact in float64, so converting
    that product to float32 is the one IEEE rounding)."""
    edge = np.array([v for v in edge_values_int32().tolist() if -(2**15) <= v < 2**15], dtype=np.int16)
    q = all_values("int16")
    for scale in SCALES[:5]:
        for zp in (0, -(2**15), 2**15 - 1, 1234):
            got = arith.dequantize_values(edge, scale, zp)
            assert np.array_equal(_bits(got), _bits([dequantize_value(v, scale, zp) for v in edge.tolist()]))
            got = arith.dequantize_values(q, scale, zp)
            want = ((q.astype(np.float64) - zp) * float(np.float32(scale))).astype(np.float32)
            assert np.array_equal(_bits(got), _bits(want))


def test_dequantize_per_axis():
    q = np.array([[-128, 0, 127]], dtype=np.int8)
    got = arith.dequantize_values(q, np.array([0.5, 0.25, 2.0], dtype=np.float32), np.array([0, 4, -1]))
    assert got.tolist() == [[-64.0, -1.0, 256.0]]


def test_quantize_dequantize_round_trip():
    """Every int8 value survives dequantize then quantize (any nearest mode):
    (q - zp) * s is within far less than s / 2 of the exact value."""
    q = all_values("int8")
    for scale in (0.1, 2.0**-7, 3.3e-5):
        for zp in (-128, 0, 5, 127):
            x = arith.dequantize_values(q, scale, zp)
            for mode in ("half_to_even", "half_away_from_zero", "half_up", "half_down"):
                assert np.array_equal(arith.quantize_values(x, scale, zp, "int8", arith.QuantizeRecipe(rounding=mode)), q)
