"""pad: worked example, np.pad oracle for each mode, default value = zero point, validation."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from conftest import assert_spec_shows_the_source, run1, unary_model
from hypothesis import given, settings
from hypothesis import strategies as st

import qnnref
from qnnref import dtypes
from qnnref.ops.pad import pad

build = partial(unary_model, "pad", scale=0.1, zp=-128, name="pad")


def test_spec_pseudocode_is_the_source():
    assert_spec_shows_the_source("pad", ["pad"])


X = np.array([[1, 2, 3], [4, 5, 6]], np.int8)


def test_worked_example():
    pads = [1, 2, 0, 1]
    assert run1(build((2, 3), {"pads": pads}), X).tolist() == [
        [-128, -128, -128, -128, -128, -128],
        [-128, -128, 1, 2, 3, -128],
        [-128, -128, 4, 5, 6, -128]]
    assert run1(build((2, 3), {"pads": pads, "mode": "edge"}), X).tolist() == [
        [1, 1, 1, 2, 3, 3], [1, 1, 1, 2, 3, 3], [4, 4, 4, 5, 6, 6]]
    assert run1(build((2, 3), {"pads": pads, "mode": "reflect"}), X).tolist() == [
        [6, 5, 4, 5, 6, 5], [3, 2, 1, 2, 3, 2], [6, 5, 4, 5, 6, 5]]
    y = run1(build((2, 3), {"pads": pads, "value": 0}), X)
    assert y[0, 0] == 0 and float(np.float32(0.1) * (0 - (-128))) == pytest.approx(12.8)


def test_one_dimensional_table():
    x = np.array([10, 20, 30, 40], np.int8)       # a b c d
    assert pad(x, (2, 2), "constant", 7).tolist() == [7, 7, 10, 20, 30, 40, 7, 7]
    assert pad(x, (2, 2), "edge", 0).tolist() == [10, 10, 10, 20, 30, 40, 40, 40]
    assert pad(x, (2, 2), "reflect", 0).tolist() == [30, 20, 10, 20, 30, 40, 30, 20]


def test_default_value_is_the_zero_point():
    for dtype, zp in (("uint8", 128), ("int8", -7), ("int16", 300), ("int4", 3)):
        m = build((2,), {"pads": [1, 1]}, dtype=dtype, zp=zp)
        y = run1(m, np.array([1, 2], dtypes.get(dtype).numpy))
        assert y.tolist() == [zp, 1, 2, zp]
    # symmetric quantization and unquantized: 0
    assert run1(build((1,), {"pads": [1, 0]}, zp=None), np.array([5], np.int8)).tolist() == [0, 5]
    b = qnnref.GraphBuilder()
    x = b.input("x", "int32", (1,))
    y = b.node("pad", [x], {"pads": [0, 2]})
    b.output(y)
    assert run1(b.build(), np.array([9], np.int32)).tolist() == [9, 0, 0]


def test_explicit_value_extremes():
    for v in (-128, 127):
        assert run1(build((1,), {"pads": [1, 1], "value": v}), np.array([0], np.int8)).tolist() == [v, 0, v]


@st.composite
def cases(draw):
    rank = draw(st.integers(1, 4))
    mode = draw(st.sampled_from(["constant", "edge", "reflect"]))
    shape = tuple(draw(st.integers(1 if mode != "constant" else 0, 4)) for _ in range(rank))
    pads = []
    for side in range(2):
        for i in range(rank):
            hi = shape[i] - 1 if mode == "reflect" else 3
            pads.append(draw(st.integers(0, max(hi, 0))))
    return shape, pads, mode


@settings(max_examples=100, deadline=None)
@given(case=cases(), dtype=st.sampled_from(["int4", "uint4", "int8", "uint8", "int16", "int32"]),
       seed=st.integers(0, 2**32 - 1))
def test_matches_numpy_pad(case, dtype, seed):
    shape, pads, mode = case
    dt = dtypes.get(dtype)
    rng = np.random.default_rng(seed)
    x = rng.integers(dt.min, dt.max, shape, endpoint=True).astype(dt.numpy)
    rank = len(shape)
    widths = [(pads[i], pads[rank + i]) for i in range(rank)]
    value = int(rng.integers(dt.min, dt.max, endpoint=True))
    y = pad(x, tuple(pads), mode, value)
    if mode == "constant":
        want = np.pad(x, widths, mode="constant", constant_values=value)
    else:
        want = np.pad(x, widths, mode=mode)
    assert y.dtype == dt.numpy and np.array_equal(y, want)


@pytest.mark.parametrize("shape, attrs, msg", [
    ((2, 3), {}, "'pads' is required"),
    ((2, 3), {"pads": [1, 1]}, "2 \\* rank = 4"),
    ((2, 3), {"pads": [0, -1, 0, 0]}, ">= 0"),
    ((2, 3), {"pads": [0, 0, 0, 0], "mode": "wrap"}, "mode"),
    ((2, 3), {"pads": [0, 0, 0, 0], "mode": "edge", "value": 0}, "only to mode 'constant'"),
    ((2, 3), {"pads": [0, 0, 0, 0], "value": 128}, "outside the int8 range"),
    ((2, 3), {"pads": [2, 0, 0, 0], "mode": "reflect"}, "reflect"),
    ((2, 3), {"pads": [0, 0, 0, 3], "mode": "reflect"}, "reflect"),
    ((1, 3), {"pads": [1, 0, 0, 0], "mode": "reflect"}, "reflect"),
    ((0, 3), {"pads": [1, 0, 0, 0], "mode": "edge"}, "length 0"),
    ((2, 3), {"pads": [0, 0, 0, 0], "value": 1.5}, "'value'"),
])
def test_invalid_models(shape, attrs, msg):
    with pytest.raises(qnnref.ValidationError, match=msg) as e:
        build(shape, attrs, name="p1")
    assert "node 'p1'" in str(e.value)


def test_invalid_quantization_and_dtype():
    with pytest.raises(qnnref.ValidationError, match="node 'p2'.*quantization of input x"):
        build((2,), {"pads": [1, 1]}, out_zp=0, name="p2")
    with pytest.raises(qnnref.ValidationError, match="node 'p3'.*per-axis"):
        build((2, 2), {"pads": [1, 0, 0, 0]}, scale=np.array([0.1, 0.2]), zp=None, axis=1, name="p3")
    b = qnnref.GraphBuilder()
    f = b.input("f", "float32", (2,))
    with pytest.raises(qnnref.ValidationError, match="node 'p4'.*dtype float32"):
        b.node("pad", [f], {"pads": [1, 1]}, name="p4")
    s = b.input("s", "int8", (), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="node 'p5'.*rank >= 1"):
        b.node("pad", [s], {"pads": []}, name="p5", scale=0.1)
