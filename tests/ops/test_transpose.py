"""transpose: worked example, numpy oracle, per-axis quantization follows the axes."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from conftest import assert_spec_shows_the_source, run1, unary_model
from hypothesis import given, settings
from hypothesis import strategies as st

import qnnref
from qnnref import dtypes

_model = partial(unary_model, "transpose", scale=0.1, zp=3, name="tr")


def build(x_shape, perm, **kw):
    """One transpose node by ``perm`` (unary_model's keywords)."""
    return _model(x_shape, {"perm": perm}, **kw)


def test_spec_pseudocode_is_the_source():
    assert_spec_shows_the_source("transpose", ["transpose"])


def test_worked_example():
    s, z = np.array([0.1, 0.2, 0.3]), np.array([0, 1, 2])
    m = build((2, 3), [1, 0], scale=s, zp=z, axis=1, out_axis=0)
    y = run1(m, np.array([[1, 2, 3], [4, 5, 6]], np.int8))
    assert y.tolist() == [[1, 4], [2, 5], [3, 6]]
    q = m.outputs[0].quant
    assert q.axis == 0 and np.array_equal(q.scale, s.astype(np.float32)) and q.zero_point.tolist() == [0, 1, 2]
    with pytest.raises(qnnref.ValidationError, match="node 't0'.*on axis 0 .*perm.index\\(1\\)"):
        build((3, 3), [1, 0], scale=s, zp=z, axis=1, out_axis=1, name="t0")


@st.composite
def shape_perm(draw):
    rank = draw(st.integers(0, 5))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    perm = draw(st.permutations(list(range(rank))))
    return shape, list(perm)


@settings(max_examples=80, deadline=None)
@given(sp=shape_perm(), dtype=st.sampled_from(["int4", "uint8", "int16", "int32", "float32"]),
       seed=st.integers(0, 2**32 - 1))
def test_matches_numpy(sp, dtype, seed):
    shape, perm = sp
    rng = np.random.default_rng(seed)
    dt = dtypes.get(dtype)
    if dt.is_int:
        x = rng.integers(dt.min, dt.max, shape, endpoint=True).astype(dt.numpy)
    else:
        x = rng.standard_normal(shape).astype(dt.numpy)
    quantized = dtype in dtypes.QUANT_DTYPES
    m = build(shape, perm, dtype=dtype, scale=0.1 if quantized else None, zp=None)
    y = run1(m, x)
    assert y.dtype == dt.numpy
    assert np.array_equal(y, np.transpose(x, perm))
    # definition: y[i] = x[j] with j[perm[k]] = i[k]
    for i in np.ndindex(*y.shape):
        j = [0] * len(perm)
        for k, p in enumerate(perm):
            j[p] = i[k]
        assert y[i] == x[tuple(j)]


@settings(max_examples=40, deadline=None)
@given(sp=shape_perm(), data=st.data())
def test_per_axis_follows_the_permutation(sp, data):
    shape, perm = sp
    if not shape:
        return
    a = data.draw(st.integers(0, len(shape) - 1))
    s = np.linspace(0.1, 0.9, shape[a])
    z = np.arange(shape[a]) - 1
    out_axis = perm.index(a)
    m = build(shape, perm, scale=s, zp=z, axis=a, out_axis=out_axis)
    x = np.random.default_rng(0).integers(-128, 128, shape).astype(np.int8)
    y = run1(m, x)
    assert np.array_equal(y, np.transpose(x, perm))
    # every element keeps its channel's parameters: dequantized values are equal
    sx, zx = m.inputs[0].quant.expanded(x.shape)
    sy, zy = m.outputs[0].quant.expanded(y.shape)
    assert np.array_equal(np.transpose((x.astype(np.int32) - zx) * sx, perm), (y.astype(np.int32) - zy) * sy)
    wrong = [i for i in range(len(shape)) if i != out_axis and shape[perm[i]] == shape[a]]
    for w in wrong:
        with pytest.raises(qnnref.ValidationError, match="node 'tw'"):
            build(shape, perm, scale=s, zp=z, axis=a, out_axis=w, name="tw")


@pytest.mark.parametrize("perm", [[0, 1], [0, 1, 1], [0, 1, 3], [-1, 0, 1], [2, 0, 1, 3]])
def test_invalid_permutations(perm):
    with pytest.raises(qnnref.ValidationError, match="node 't1'.*not a permutation"):
        build((2, 3, 4), perm, name="t1")


def test_invalid_quantization():
    with pytest.raises(qnnref.ValidationError, match="node 't2'.*quantization"):
        build((2, 3), [1, 0], out_scale=0.2, name="t2")
    with pytest.raises(qnnref.ValidationError, match="node 't3'.*quantization"):
        build((2, 3), [1, 0], out_zp=0, name="t3")
    with pytest.raises(qnnref.ValidationError, match="node 't4'.*quantization"):
        build((3, 3), [1, 0], scale=np.array([0.1, 0.2, 0.3]), zp=None, axis=1, out_scale=0.1,
              out_axis=None, name="t4")
    with pytest.raises(qnnref.ValidationError, match="node 't5'"):
        build((3, 3), [1, 0], scale=np.array([0.1, 0.2, 0.3]), zp=None, axis=1,
              out_scale=np.array([0.3, 0.2, 0.1]), out_axis=0, name="t5")
    with pytest.raises(qnnref.ValidationError, match="node 't6'.*perm"):
        build((2, 3), None, name="t6")
