"""reshape: worked example, numpy oracle, -1 resolution, 0 not special, validation."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from conftest import assert_spec_shows_the_source, run1, unary_model
from hypothesis import given, settings
from hypothesis import strategies as st

import qnnref
from qnnref.ops.reshape import reshape

_model = partial(unary_model, "reshape", scale=0.1, zp=3, out_axis=None, name="rs")


def build(x_shape, shape, **kw):
    """One reshape node to ``shape`` (unary_model's keywords; the output is per-tensor)."""
    return _model(x_shape, {"shape": shape}, **kw)


def test_spec_pseudocode_is_the_source():
    assert_spec_shows_the_source("reshape", ["reshape"])


def test_worked_example():
    x = np.array([[1, 2, 3], [4, 5, 6]], np.int8)
    y = run1(build((2, 3), [3, -1]), x)
    assert y.tolist() == [[1, 2], [3, 4], [5, 6]] and y.dtype == np.int8
    assert run1(build((2, 3), [-1]), x).tolist() == [1, 2, 3, 4, 5, 6]
    with pytest.raises(qnnref.ValidationError, match="node 'r0'.*ambiguous"):
        build((2, 3), [0, -1], name="r0")
    with pytest.raises(qnnref.ValidationError, match="node 'r1'.*cannot reshape"):
        build((2, 3), [0, 3], name="r1")


def test_zero_is_a_length_not_a_copy():
    m = build((0, 3), [0, 7])
    y = run1(m, np.zeros((0, 3), np.int8))
    assert y.shape == (0, 7)
    m = build((0, 3), [3, 0, 5])
    assert run1(m, np.zeros((0, 3), np.int8)).shape == (3, 0, 5)


def test_output_is_a_new_array_and_quant_is_kept():
    m = build((2, 2), [4], dtype="uint8", scale=0.5, zp=128)
    x = np.array([[1, 2], [3, 4]], np.uint8)
    y = run1(m, x)
    y[0] = 99
    assert x[0, 0] == 1
    out = m.outputs[0]
    assert float(out.scale) == 0.5 and int(out.zero_point) == 128


def test_unquantized_and_float_inputs():
    for dtype in ("int32", "float32", "int64"):
        b = qnnref.GraphBuilder()
        x = b.input("x", dtype, (2, 3, 4))
        y = b.node("reshape", [x], {"shape": [4, -1, 2]})
        b.output(y)
        xv = np.arange(24).astype(dtype).reshape(2, 3, 4)
        assert np.array_equal(run1(b.build(), xv), xv.reshape(4, 3, 2))


@st.composite
def shape_pairs(draw):
    dims = draw(st.lists(st.integers(1, 4), min_size=0, max_size=4))
    size = int(np.prod(dims, dtype=np.int64))
    # factor `size` into a random new shape
    new, rest = [], size
    for _ in range(draw(st.integers(0, 3))):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = draw(st.sampled_from(divisors))
        new.append(d)
        rest //= d
    new.append(rest)
    new = draw(st.permutations(new))
    if draw(st.booleans()):
        new = list(new)
        new[draw(st.integers(0, len(new) - 1))] = -1
    return tuple(dims), list(new)


@settings(max_examples=80, deadline=None)
@given(pair=shape_pairs(), dtype=st.sampled_from(["int4", "uint4", "int8", "uint8", "int16"]),
       seed=st.integers(0, 2**32 - 1))
def test_matches_numpy(pair, dtype, seed):
    in_shape, shape = pair
    from qnnref import dtypes
    dt = dtypes.get(dtype)
    x = np.random.default_rng(seed).integers(dt.min, dt.max, in_shape, endpoint=True).astype(dt.numpy)
    m = build(in_shape, shape, dtype=dtype, zp=None)
    y = run1(m, x)
    assert np.array_equal(y, np.reshape(x, shape))      # numpy resolves -1 the same way
    assert np.array_equal(y.ravel(), x.ravel())         # row-major order kept
    assert np.array_equal(reshape(x, tuple(y.shape)), y)


@pytest.mark.parametrize("shape, msg", [
    ([2, -1, -1], "at most one -1"),
    ([2, -2, 3], ">= 0"),
    ([5, -1], "cannot reshape"),
    ([7], "cannot reshape"),
    ([2, 3, 0, -1], "ambiguous"),
])
def test_invalid_shapes(shape, msg):
    with pytest.raises(qnnref.ValidationError, match=msg) as e:
        build((2, 3, 2), shape, name="r2")
    assert "node 'r2'" in str(e.value)


def test_invalid_attribute_kind():
    with pytest.raises(qnnref.ValidationError, match="node 'r3'.*'shape'"):
        build((2, 3), [2.0, 3], name="r3")
    with pytest.raises(qnnref.ValidationError, match="node 'r4'.*'shape' is required"):
        b = qnnref.GraphBuilder()
        x = b.input("x", "int8", (2, 3), scale=0.1)
        b.node("reshape", [x], {}, name="r4")


def test_invalid_quantization():
    with pytest.raises(qnnref.ValidationError, match="node 'r5'.*quantization of input x"):
        build((2, 3), [6], out_scale=0.2, name="r5")
    with pytest.raises(qnnref.ValidationError, match="node 'r6'.*quantization of input x"):
        build((2, 3), [6], out_zp=4, name="r6")
    with pytest.raises(qnnref.ValidationError, match="node 'r7'.*quantization of input x"):
        build((2, 3), [6], out_scale=None, out_zp=None, name="r7")
    with pytest.raises(qnnref.ValidationError, match="node 'r8'.*per-axis"):
        build((2, 3), [6], scale=np.array([0.1, 0.2, 0.3]), zp=None, axis=1, out_scale=0.1, name="r8")
