"""dequantize: the worked example, every value of every dtype against the
correctly rounded float32 of the exact real, int32's two roundings,
per-axis and blocked parameters, ERROR_IF."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from conftest import all_values
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import dequantize_value, to_float32

import qnnref
from qnnref import GraphBuilder, Quant
from qnnref.ops.dequantize import dequantize

RANGES = {"int4": (-8, 7), "uint4": (0, 15), "int8": (-128, 127), "uint8": (0, 255),
          "int16": (-(2**15), 2**15 - 1)}
NP = {"int4": np.int8, "uint4": np.uint8, "int8": np.int8, "uint8": np.uint8, "int16": np.int16,
      "int32": np.int32}


def exact_dequantize_vec(q: np.ndarray, s: float, zp: int) -> np.ndarray:
    """dequantize_value (tests/oracles.py), vectorized: (q - zp) has at most 17 bits and s 24, so their
    product is exact in float64 (41 bits); casting it to float32 is then the
    one IEEE rounding (nearest even; subnormals and overflow included)."""
    exact = (q.astype(np.int64) - zp).astype(np.float64) * np.float64(np.float32(s))
    with np.errstate(over="ignore"):
        return exact.astype(np.float32)


def build(dtype, shape, scale, zero_point, axis=None, name="dq"):
    b = GraphBuilder()
    x = b.input("x", dtype, shape, scale=scale, zero_point=zero_point, axis=axis)
    y = b.node("dequantize", [x], name=name)
    b.output(y)
    return b.build(), y


def test_worked_example():
    model, y = build("int8", (5,), 0.1, -3)
    out = model.run(np.array([-3, 0, 7, 127, -128], np.int8))[y]
    assert out.dtype == np.float32
    assert out.tolist() == [0.0, float(np.float32(0.3)), 1.0, 13.0, -12.5]
    # the exact reals are 0, 0.3000000044703484, 1.0000000149011612, 13.000000193715096,
    # -12.500000186264515; each output is their nearest float32
    for q, got in zip([-3, 0, 7, 127, -128], out.tolist()):
        assert got == dequantize_value(q, 0.1, -3)


@pytest.mark.parametrize("dtype", sorted(RANGES))
@pytest.mark.parametrize("scale", [0.1, 1 / 3, 2.0**-10, 7.3, 1e-3, 3e-40, 1e37])
def test_every_value_is_the_correctly_rounded_real(dtype, scale):
    lo, hi = RANGES[dtype]
    q = all_values(dtype)
    for zp in (lo, (lo + hi) // 2, hi):
        model, y = build(dtype, q.shape, scale, zp)
        got = model.run(q)[y]
        assert np.array_equal(got, exact_dequantize_vec(q, scale, zp)), zp
    # the vectorized oracle is the Fraction oracle
    if dtype in ("int4", "int8"):
        assert exact_dequantize_vec(q, scale, lo).tolist() == [dequantize_value(int(v), scale, lo) for v in q]


@settings(max_examples=150, deadline=None)
@given(dtype=st.sampled_from(sorted(RANGES)), s=st.floats(min_value=float(np.float32(1e-44)),
                                                           max_value=float(np.finfo(np.float32).max), width=32),
       data=st.data())
def test_matches_exact_oracle(dtype, s, data):
    lo, hi = RANGES[dtype]
    zp = data.draw(st.integers(lo, hi))
    qs = data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=10))
    with np.errstate(over="ignore"):
        got = dequantize(np.array(qs, NP[dtype]), np.float32(s), np.int32(zp))
    assert got.dtype == np.float32
    assert got.tolist() == [dequantize_value(q, s, zp) for q in qs]


def test_int32_rounds_twice_beyond_2_to_24():
    # int32 (e.g. a bias or an accumulator): float32(q) rounds first when |q| > 2^24
    q = np.array([2**24 + 3, -(2**24) - 3, 2**24, 12345, INT32_MAX := 2**31 - 1, -(2**31)], np.int32)
    model, y = build("int32", q.shape, 1.5, None)
    got = model.run(q)[y].tolist()
    assert got == [to_float32(Fraction(float(to_float32(Fraction(int(v))))) * Fraction(1.5)) for v in q]
    # 2^24 + 3 -> 16777220 (tie to even) -> 25165830, not 25165828 (nearest to the exact 25165828.5)
    assert got[0] == 25165830.0
    assert dequantize_value(2**24 + 3, 1.5, 0) == 25165828.0
    assert INT32_MAX == 2**31 - 1


def test_per_axis(rng):
    s = np.array([0.1, 0.02, 3.0], np.float32)
    zp = np.array([-5, 0, 100], np.int8)
    x = rng.integers(-128, 128, size=(4, 3)).astype(np.int8)
    model, y = build("int8", (4, 3), s, zp, axis=1)
    got = model.run(x)[y]
    for i in range(4):
        for j in range(3):
            assert got[i, j] == dequantize_value(int(x[i, j]), s[j], int(zp[j]))


@pytest.mark.parametrize("scale_dtype", [np.float32, np.float16])
def test_blocked(rng, scale_dtype):
    s = rng.uniform(0.01, 0.5, size=(3, 2)).astype(scale_dtype)
    zp = rng.integers(0, 16, size=(3, 2)).astype(np.uint8)
    model, y = build("uint4", (7, 2), 0.1, 0)
    g = model.graph.copy()                     # a loaded model is read-only: edit a copy
    g.tensors["x"].quant = Quant(s, zp, axis=0, block_size=3)          # blocks of 3 rows: 3 + 3 + 1
    model = qnnref.Model(g)
    x = rng.integers(0, 16, size=(7, 2)).astype(np.uint8)
    got = model.run(x)[y]
    for i in range(7):
        for j in range(2):
            assert got[i, j] == dequantize_value(int(x[i, j]), float(s[i // 3, j]), int(zp[i // 3, j]))


# ---------------------------------------------------------------------------
# ERROR_IF
# ---------------------------------------------------------------------------

def test_error_unquantized_input():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,))
    with pytest.raises(qnnref.ValidationError, match="'bad'.*must be quantized"):
        b.node("dequantize", [x], name="bad")


@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_error_input_dtype(dtype):
    b = GraphBuilder()
    x = b.input("x", dtype, (2,))
    with pytest.raises(qnnref.ValidationError, match="'bad'.*input x"):
        b.node("dequantize", [x], name="bad")


def test_error_int32_zero_point():
    b = GraphBuilder()
    x = b.input("x", "int32", (2,), scale=0.1, zero_point=5)
    with pytest.raises(qnnref.ValidationError, match="'bad'.*zero point must be 0"):
        b.node("dequantize", [x], name="bad")


def test_error_quantized_output():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="'bad_out'.*float.*cannot be quantized"):
        b.node("dequantize", [x], scale=0.1, name="bad")
