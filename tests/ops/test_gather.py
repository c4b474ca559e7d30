"""gather: worked example, numpy oracle, negative indices, out-of-range errors, per-axis shift."""
from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import assert_spec_shows_the_source, run1
from hypothesis import given, settings
from hypothesis import strategies as st

import qnnref
from qnnref import dtypes
from qnnref.ops.gather import gather

SAME = object()

TABLE = np.array([[10, 11], [20, 21], [30, 31], [40, 41]], np.int8)


def build(data_shape, idx, attrs=None, dtype="int8", scale=0.05, zp=0, axis=None, out_scale=SAME,
          out_zp=SAME, out_axis=SAME, name="g", idx_dtype="int32", idx_const=False):
    b = qnnref.GraphBuilder()
    d = b.input("data", dtype, data_shape, scale=scale, zero_point=zp, axis=axis)
    if idx_const:
        i = b.constant("indices", np.asarray(idx, dtype=idx_dtype))
    else:
        i = b.input("indices", idx_dtype, idx)
    y = b.node("gather", [d, i], attrs or {}, name=name, scale=scale if out_scale is SAME else out_scale,
               zero_point=zp if out_zp is SAME else out_zp, axis=axis if out_axis is SAME else out_axis)
    b.output(y)
    return b.build()


def test_spec_pseudocode_is_the_source():
    assert_spec_shows_the_source("gather", ["gather"])


def test_worked_example():
    m = build((4, 2), (2, 2))
    idx = np.array([[0, -1], [2, 2]], np.int32)
    y = run1(m, TABLE, idx)
    assert y.shape == (2, 2, 2) and y.dtype == np.int8
    assert y.tolist() == [[[10, 11], [40, 41]], [[30, 31], [30, 31]]]
    q = m.outputs[0].quant
    assert float(q.scale) == pytest.approx(0.05) and int(q.zero_point) == 0
    bad = np.array([[0, 1], [4, 2]], np.int32)
    with pytest.raises(qnnref.RuntimeCheckError) as e:
        m.run({"data": TABLE, "indices": bad})
    msg = str(e.value)
    assert "node 'g'" in msg and "index 4" in msg and "position [1, 0]" in msg and "[-4, 4)" in msg


@pytest.mark.parametrize("bad, pos", [(-5, [0, 1]), (2**31 - 1, [0, 1]), (-(2**31), [0, 1])])
def test_out_of_range_runtime_error_names_value_and_position(bad, pos):
    m = build((4, 2), (2, 2), name="emb")
    idx = np.array([[3, bad], [9, 0]], np.int32)     # first bad in row-major order is at [0, 1]
    with pytest.raises(qnnref.RuntimeCheckError, match=rf"node 'emb'.*index {bad} at position \[0, 1\]"):
        m.run({"data": TABLE, "indices": idx})


def test_int64_indices_beyond_int32():
    m = build((4, 2), (1,), idx_dtype="int64")
    with pytest.raises(qnnref.RuntimeCheckError, match=f"index {2**40}"):
        m.run({"data": TABLE, "indices": np.array([2**40], np.int64)})
    y = run1(m, TABLE, np.array([-4], np.int64))
    assert y.tolist() == [[10, 11]]


def test_constant_indices_checked_at_load():
    with pytest.raises(qnnref.ValidationError, match=r"node 'gc'.*index -5 at position \[1\]"):
        build((4, 2), [0, -5, 7], idx_const=True, name="gc")
    m = build((4, 2), [3, -4], idx_const=True)
    assert run1(m, TABLE).tolist() == [[40, 41], [10, 11]]


def test_scalar_index_removes_the_axis():
    m = build((4, 2), (), attrs={"axis": 0})
    y = run1(m, TABLE, np.array(-2, np.int32))
    assert y.shape == (2,) and y.tolist() == [30, 31]
    with pytest.raises(qnnref.RuntimeCheckError, match=r"index 4 at position \[\]"):
        m.run({"data": TABLE, "indices": np.array(4, np.int32)})


def test_empty_indices():
    m = build((4, 2), (0, 3))
    y = run1(m, TABLE, np.zeros((0, 3), np.int32))
    assert y.shape == (0, 3, 2)


@settings(max_examples=100, deadline=None)
@given(data_shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       idx_shape=st.lists(st.integers(0, 3), min_size=0, max_size=2), data=st.data(),
       dtype=st.sampled_from(["int4", "uint4", "int8", "uint8", "int16", "int32", "float32"]),
       idx_dtype=st.sampled_from(["int32", "int64"]), seed=st.integers(0, 2**32 - 1))
def test_matches_numpy_take(data_shape, idx_shape, data, dtype, idx_dtype, seed):
    rng = np.random.default_rng(seed)
    rank = len(data_shape)
    axis = data.draw(st.integers(-rank, rank - 1))
    D = data_shape[axis]
    dt = dtypes.get(dtype)
    if dt.is_int:
        x = rng.integers(dt.min, dt.max, data_shape, endpoint=True).astype(dt.numpy)
    else:
        x = rng.standard_normal(data_shape).astype(np.float32)
    idx = rng.integers(-D, D, idx_shape).astype(idx_dtype)      # in [-D, D)
    quantized = dtype in dtypes.QUANT_DTYPES
    m = build(tuple(data_shape), tuple(idx_shape), {"axis": axis}, dtype=dtype,
              scale=0.1 if quantized else None, zp=None, idx_dtype=idx_dtype)
    y = run1(m, x, idx)
    want = np.take(x, np.where(idx < 0, idx + D, idx), axis=axis)
    assert y.dtype == dt.numpy and np.array_equal(y, want)
    assert np.array_equal(gather(x, idx, axis % rank), want)
    # out of range by one on either side
    if idx.size:
        for badv in (D, -D - 1):
            bad = idx.copy()
            flat = bad.reshape(-1)
            k = int(rng.integers(0, flat.size))
            flat[k] = badv
            pos = [int(p) for p in np.unravel_index(k, bad.shape)]
            with pytest.raises(qnnref.RuntimeCheckError, match=re.escape(f"index {badv} at position {pos}")):
                m.run({"data": x, "indices": bad})


def test_per_axis_quantization_shifts_with_the_indices_rank():
    s, z = np.array([0.1, 0.2, 0.3]), np.array([1, 2, 3])
    # data [5, 3, 2] per-axis on axis 1; gather axis 0 with indices of rank 2 -> y axis 1 + 2 - 1 = 2
    m = build((5, 3, 2), (2, 4), dtype="int8", scale=s, zp=z, axis=1, out_axis=2)
    x = np.random.default_rng(0).integers(-128, 128, (5, 3, 2)).astype(np.int8)
    idx = np.array([[0, 1, 2, 3], [4, -1, -2, 0]], np.int32)
    y = run1(m, x, idx)
    assert y.shape == (2, 4, 3, 2) and np.array_equal(y, np.take(x, idx % 5, axis=0))
    # quant axis before the gathered one stays
    m = build((3, 5), (2,), {"axis": 1}, scale=s, zp=z, axis=0, out_axis=0)
    # the wrong output axis is invalid
    with pytest.raises(qnnref.ValidationError, match="node 'gq'.*output axis 2"):
        build((5, 3, 3), (2, 3), scale=s, zp=z, axis=1, out_axis=1, name="gq")
    # per-axis on the gathered axis is invalid
    with pytest.raises(qnnref.ValidationError, match="node 'gq2'.*gathered axis 1"):
        build((2, 3), (3,), {"axis": -1}, scale=s, zp=z, axis=1, out_axis=1, name="gq2")


def test_invalid_models():
    with pytest.raises(qnnref.ValidationError, match="node 'g1'.*axis 2 is out of range"):
        build((4, 2), (2,), {"axis": 2}, name="g1")
    with pytest.raises(qnnref.ValidationError, match="node 'g2'.*axis -3 is out of range"):
        build((4, 2), (2,), {"axis": -3}, name="g2")
    with pytest.raises(qnnref.ValidationError, match="node 'g3'.*input indices.*dtype int16"):
        build((4, 2), (2,), idx_dtype="int16", name="g3")
    with pytest.raises(qnnref.ValidationError, match="node 'g4'.*quantization"):
        build((4, 2), (2,), out_scale=0.1, name="g4")
    with pytest.raises(qnnref.ValidationError, match="node 'g5'.*quantization"):
        build((4, 2), (2,), out_scale=None, out_zp=None, name="g5")
    b = qnnref.GraphBuilder()
    d = b.input("d", "int8", (), scale=0.1)
    i = b.input("i", "int32", (1,))
    with pytest.raises(qnnref.ValidationError, match="node 'g6'.*rank >= 1"):
        b.node("gather", [d, i], {}, name="g6", scale=0.1)
    d2 = b.input("d2", "int64", (3,))
    with pytest.raises(qnnref.ValidationError, match="node 'g7'.*dtype int64"):
        b.node("gather", [d2, i], {}, name="g7")
    iq = b.input("iq", "int32", (1,), scale=1.0)
    d3 = b.input("d3", "int8", (3,), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="node 'g8'.*must not be quantized"):
        b.node("gather", [d3, iq], {}, name="g8", scale=0.1)
    d4 = b.input("d4", "int32", (3,), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="node 'g10'.*quantized input data.*int32"):
        b.node("gather", [d4, i], {}, name="g10", scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="node 'g9'.*required input"):
        b.node("gather", [d3, None], {}, name="g9", scale=0.1)
