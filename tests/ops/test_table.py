"""table: the worked example, every input value against direct indexing,
make_table against a scalar oracle for every named function, ERROR_IF."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from conftest import all_values
from oracles import round_fraction

import qnnref
from qnnref import GraphBuilder
from qnnref.arith import ROUNDING_MODES
from qnnref.ops.table import TABLE_FUNCTIONS, make_table, table

RANGES = {"int8": (-128, 127), "uint8": (0, 255)}
NP = {"int8": np.int8, "uint8": np.uint8}

SCALAR_FUNCTIONS = {
    "sigmoid": lambda v: 1.0 / (1.0 + math.exp(-v)) if v > -700 else 0.0,
    "tanh": math.tanh,
    "hard_swish": lambda v: v * min(max(v + 3.0, 0.0), 6.0) / 6.0,
    "gelu": lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))),
    "exp": lambda v: math.exp(v) if v < 709 else math.inf,
}


def py_entry(fn, q, s_in, zp_in, s_out, zp_out, out_dtype, mode):
    """One table entry by the formula of make_table, and the distance of
    f / s_out from a rounding boundary (libm's last bit may matter there)."""
    lo, hi = RANGES[out_dtype]
    s_in, s_out = float(np.float32(s_in)), float(np.float32(s_out))
    f = fn(s_in * (q - zp_in))
    if math.isinf(f):
        return (hi if f > 0 else lo), math.inf
    v = f / s_out
    frac = v - math.floor(v)
    boundary = min(frac, 1 - frac) if mode in ("floor", "ceil", "truncate") else abs(frac - 0.5)
    return max(lo, min(hi, round_fraction(Fraction(v), mode) + zp_out)), boundary


def build(x_dtype, lut, y_scale=None, y_zp=None, table_as_input=False, table_scale=None, name="lut1"):
    b = GraphBuilder()
    x = b.input("x", x_dtype, (2, 3), scale=0.1)
    if table_as_input:
        t = b.input("t", str(lut.dtype), lut.shape)
    else:
        t = b.constant("t", lut, scale=table_scale)
    y = b.node("table", [x, t], scale=y_scale, zero_point=y_zp, name=name)
    b.output(y)
    return b.build(), y


def test_worked_example():
    lut = make_table("sigmoid", "int8", 1 / 16, 0, "int8", 1 / 256, -128, "half_away_from_zero")
    assert lut[[0, 127, 128, 129, 255]].tolist() == [-128, -4, 0, 4, 127]
    b = GraphBuilder()
    x = b.input("x", "int8", (5,), scale=1 / 16, zero_point=0)
    t = b.constant("sigmoid_table", lut)
    y = b.node("table", [x, t], scale=1 / 256, zero_point=-128)
    b.output(y)
    out = b.build().run(np.array([-128, -1, 0, 1, 127], np.int8))[y]
    assert out.dtype == np.int8
    assert out.tolist() == [-128, -4, 0, 4, 127]


@pytest.mark.parametrize("x_dtype", ["int8", "uint8"])
@pytest.mark.parametrize("t_dtype", ["int8", "uint8"])
def test_every_input_value(x_dtype, t_dtype, rng):
    lo, hi = RANGES[t_dtype]
    lut = rng.integers(lo, hi, size=256, endpoint=True).astype(NP[t_dtype])
    x = all_values(x_dtype)
    got = table(x, x_dtype, lut)
    assert got.dtype == NP[t_dtype]
    assert got.tolist() == [int(lut[int(v) - RANGES[x_dtype][0]]) for v in x]
    b = GraphBuilder()
    xi = b.input("x", x_dtype, (16, 16), scale=0.1)
    y = b.node("table", [xi, b.constant("t", lut)], scale=0.3, zero_point=3)
    b.output(y)
    assert np.array_equal(b.build().run(x.reshape(16, 16))[y].ravel(), got)


@pytest.mark.parametrize("fn", sorted(TABLE_FUNCTIONS))
@pytest.mark.parametrize("in_dtype,s_in,zp_in", [("int8", 1 / 16, 0), ("int8", 0.05, -20), ("uint8", 0.031, 128)])
@pytest.mark.parametrize("out_dtype,s_out,zp_out", [("int8", 1 / 256, -128), ("uint8", 0.0123, 7), ("int8", 0.05, 3)])
def test_make_table_matches_scalar_oracle(fn, in_dtype, s_in, zp_in, out_dtype, s_out, zp_out):
    mode = "half_away_from_zero"
    lut = make_table(fn, in_dtype, s_in, zp_in, out_dtype, s_out, zp_out, mode)
    assert lut.dtype == NP[out_dtype] and lut.shape == (256,)
    for i, q in enumerate(range(RANGES[in_dtype][0], RANGES[in_dtype][1] + 1)):
        want, boundary = py_entry(SCALAR_FUNCTIONS[fn], q, s_in, zp_in, s_out, zp_out, out_dtype, mode)
        # an entry may differ only where numpy's and math's libm could disagree in the last bit
        assert lut[i] == want or boundary < 1e-9, (fn, q)


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_make_table_rounding_modes(mode):
    # identity on a grid where f / s_out = (q - zp_in) / 2: every odd value is a tie
    lut = make_table(lambda v: v, "int8", 0.5, 0, "int8", 1.0, 0, mode)
    for i, q in enumerate(range(-128, 128)):
        assert lut[i] == max(-128, min(127, round_fraction(Fraction(q, 2), mode))), (mode, q)


def test_make_table_callable_and_saturation():
    lut = make_table(lambda v: v * v, "uint8", 0.1, 0, "uint8", 0.5, 0)
    s_in = float(np.float32(0.1))
    # (s_in * q)^2 in float64, then / 0.5 (exact), rounded half away from zero, saturated
    want = [min(255, round_fraction(Fraction((s_in * q) ** 2) / Fraction(1, 2), "half_away_from_zero"))
            for q in range(256)]
    assert lut.tolist() == want
    # +inf saturates (exp of large inputs)
    assert make_table("exp", "uint8", 10.0, 0, "uint8", 1.0, 0)[-1] == 255


@pytest.mark.parametrize("kwargs,pattern", [
    ({"fn": "softplus"}, "unknown function"),
    ({"fn": 3}, "callable"),
    ({"fn": lambda v: v * np.nan}, "NaN"),
    ({"fn": lambda v: v[:10]}, "shape"),
    ({"in_dtype": "int16"}, "in_dtype"),
    ({"out_dtype": "int16"}, "out_dtype"),
    ({"rounding": "nearest"}, "rounding"),
    ({"out_scale": 0.0}, "scales"),
])
def test_make_table_errors(kwargs, pattern):
    args = {"fn": "tanh", "in_dtype": "int8", "in_scale": 0.1, "in_zero_point": 0, "out_dtype": "int8",
            "out_scale": 1 / 128, "out_zero_point": 0, "rounding": "half_away_from_zero"}
    args.update(kwargs)
    with pytest.raises(qnnref.ValidationError, match=pattern):
        make_table(**args)


# ---------------------------------------------------------------------------
# ERROR_IF
# ---------------------------------------------------------------------------

def test_error_table_not_constant():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=0.1)
    t = b.input("t", "int8", (256,))
    with pytest.raises(qnnref.ValidationError, match="'bad'.*must be a constant"):
        b.node("table", [x, t], name="bad")


@pytest.mark.parametrize("lut,x_dtype,pattern", [
    (np.zeros(255, np.int8), "int8", r"shape \[256\]"),
    (np.zeros((2, 128), np.int8), "int8", r"shape \[256\]"),
    (np.zeros(256, np.int16), "int8", "table.*int16"),
    (np.zeros(256, np.int8), "int16", "input x.*int16"),
    (np.zeros(256, np.int8), "int4", "input x.*int4"),
])
def test_error_shapes_and_dtypes(lut, x_dtype, pattern):
    b = GraphBuilder()
    x = b.input("x", x_dtype, (2,), scale=0.1)
    t = b.constant("t", lut)
    with pytest.raises(qnnref.ValidationError, match=f"'bad'.*{pattern}"):
        b.node("table", [x, t], name="bad")


def test_error_table_quantization_disagrees_with_output():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=0.1)
    t = b.constant("t", np.zeros(256, np.int8), scale=1 / 256, zero_point=-128)
    with pytest.raises(qnnref.ValidationError, match="'bad'.*quantized.*differently"):
        b.node("table", [x, t], scale=1 / 128, zero_point=0, name="bad")
    # the same quantization is fine
    b.node("table", [x, t], scale=1 / 256, zero_point=-128, name="ok")
