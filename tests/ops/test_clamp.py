"""clamp: the worked example, every value of every dtype, one-sided bounds,
ERROR_IF."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import all_values

import qnnref
from qnnref import GraphBuilder
from qnnref.ops.clamp import clamp

RANGES = {"int4": (-8, 7), "uint4": (0, 15), "int8": (-128, 127), "uint8": (0, 255),
          "int16": (-(2**15), 2**15 - 1)}


def build(dtype, shape, attrs, scale=0.1, zero_point=None, y_scale="same", y_zero_point="same", name="clamp1"):
    b = GraphBuilder()
    x = b.input("x", dtype, shape, scale=scale, zero_point=zero_point)
    y = b.node("clamp", [x], attrs, scale=scale if y_scale == "same" else y_scale,
               zero_point=zero_point if y_zero_point == "same" else y_zero_point, name=name)
    b.output(y)
    return b.build(), y


def test_worked_example():
    # ReLU6 on int8 with s = 0.05, zp = -128: 0 -> -128, 6 -> -8
    model, y = build("int8", (6,), {"min": -128, "max": -8}, scale=0.05, zero_point=-128)
    out = model.run(np.array([-128, -100, -8, -7, 0, 127], np.int8))[y]
    assert out.dtype == np.int8
    assert out.tolist() == [-128, -100, -8, -8, -8, -8]


@pytest.mark.parametrize("dtype", sorted(RANGES))
def test_every_value(dtype):
    lo, hi = RANGES[dtype]
    x = all_values(dtype)
    for a, b in [(lo, hi), (lo + 1, hi - 1), (0 if lo < 0 else 3, 5), (hi, hi), (lo, lo)]:
        model, y = build(dtype, x.shape, {"min": a, "max": b})
        got = model.run(x)[y]
        assert got.dtype == x.dtype
        assert got.tolist() == [min(max(int(v), a), b) for v in x]


@pytest.mark.parametrize("attrs,want", [({"min": -3}, [-3, -3, 0, 5, 127]),
                                        ({"max": 2}, [-128, -4, 0, 2, 2]),
                                        ({"min": -3, "max": None}, [-3, -3, 0, 5, 127])])
def test_one_bound(attrs, want):
    model, y = build("int8", (5,), attrs)
    assert model.run(np.array([-128, -4, 0, 5, 127], np.int8))[y].tolist() == want


def test_int32_and_unquantized():
    x = np.array([-(2**31), -5, 0, 7, 2**31 - 1], np.int32)
    model, y = build("int32", (5,), {"min": -5, "max": 2**31 - 1}, scale=None)
    assert model.run(x)[y].tolist() == [-5, -5, 0, 7, 2**31 - 1]


def test_reference_function_keeps_dtype():
    x = np.array([0, 7, 15], np.uint8)
    y = clamp(x, 2, 9)
    assert y.dtype == np.uint8 and y.tolist() == [2, 7, 9]


@pytest.mark.parametrize("attrs,pattern", [
    ({}, "at least one"),
    ({"min": None, "max": None}, "at least one"),
    ({"min": 5, "max": 4}, "min 5 > max 4"),
    ({"min": -129}, "outside the int8 range"),
    ({"max": 128}, "outside the int8 range"),
    ({"min": 1.5}, "kind int"),
])
def test_errors_attributes(attrs, pattern):
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match=f"'bad'.*{pattern}"):
        b.node("clamp", [x], attrs, scale=0.1, name="bad")


@pytest.mark.parametrize("y_scale,y_zp", [(0.2, None), (0.1, 3), (None, None)])
def test_error_output_quantization_differs(y_scale, y_zp):
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="'bad'.*quantization of input"):
        b.node("clamp", [x], {"min": 0}, scale=y_scale, zero_point=y_zp, name="bad")


def test_error_float_input():
    b = GraphBuilder()
    x = b.input("x", "float32", (2,))
    with pytest.raises(qnnref.ValidationError, match="'bad'.*float32"):
        b.node("clamp", [x], {"min": 0}, name="bad")
