"""max_pool2d: worked example, pure-Python oracle, padding never wins, validation."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from conftest import assert_spec_shows_the_source, run1, unary_model
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from oracles import pool_geometry_ok, pool_out_shape, pool_windows

import qnnref
from qnnref import dtypes
from qnnref.ops.max_pool2d import max_pool2d

build = partial(unary_model, "max_pool2d", scale=0.1, zp=0, name="pool")


# ---------------------------------------------------------------------------
# oracle (the windows: pool_windows of tests/oracles.py)
# ---------------------------------------------------------------------------

def oracle(x, kernel, strides, dilations, pads, act_min=None, act_max=None):
    """Element by element, Python ints, taps inside the input only."""
    y = np.zeros(pool_out_shape(x.shape, kernel, strides, dilations, pads), dtype=x.dtype)
    for n, oh, ow, c, vals in pool_windows(x, kernel, strides, dilations, pads):
        best = max(vals)
        if act_min is not None:
            best = max(best, act_min)
        if act_max is not None:
            best = min(best, act_max)
        y[n, oh, ow, c] = best
    return y


# ---------------------------------------------------------------------------
# spec page
# ---------------------------------------------------------------------------

def test_spec_pseudocode_is_the_source():
    assert_spec_shows_the_source("max_pool2d", ["max_pool2d", "window_taps"])


# ---------------------------------------------------------------------------
# worked example and hand-computed cases
# ---------------------------------------------------------------------------

WORKED_X = np.array([[1, -7, -100], [4, 0, -128], [-2, 9, 5]], np.int8).reshape(1, 3, 3, 1)


def test_worked_example():
    m = build((1, 3, 3, 1), {"kernel": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1]}, zp=-5)
    y = run1(m, WORKED_X)
    assert y.dtype == np.int8
    assert y[0, :, :, 0].tolist() == [[4, -100], [9, 5]]


def test_padding_never_wins_over_all_minimum_values():
    # every input value is the dtype minimum; padding as 0 or as the zero point would win
    for dtype, zp in (("int8", 0), ("int8", 100), ("uint8", 128), ("int16", 0)):
        dt = dtypes.get(dtype)
        x = np.full((1, 2, 2, 3), dt.min, dt.numpy)
        y = max_pool2d(x, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), None, None)
        assert y.shape == (1, 2, 2, 3)
        assert (y == dt.min).all()


def test_all_maximum_values():
    x = np.full((2, 3, 3, 2), 127, np.int8)
    y = max_pool2d(x, (2, 2), (1, 1), (1, 1), (1, 0, 0, 1), None, None)
    assert (y == 127).all()


def test_one_by_one_kernel_is_identity_or_subsample():
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (1, 5, 4, 3)).astype(np.int8)
    assert np.array_equal(max_pool2d(x, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), None, None), x)
    assert np.array_equal(max_pool2d(x, (1, 1), (2, 3), (1, 1), (0, 0, 0, 0), None, None), x[:, ::2, ::3])


def test_kernel_larger_than_input_with_padding():
    # 2x2 input, 4x4 kernel, pads 1 on every side: one window covering all of x
    x = np.array([[3, -9], [7, 2]], np.int8).reshape(1, 2, 2, 1)
    y = max_pool2d(x, (4, 4), (1, 1), (1, 1), (1, 1, 1, 1), None, None)
    assert y.shape == (1, 1, 1, 1) and y.item() == 7


def test_asymmetric_padding_border_windows():
    x = np.arange(12, dtype=np.int8).reshape(1, 3, 4, 1) - 20      # all negative
    # OH = (3 + 2 - 2) // 2 + 1 = 2, OW = (4 + 2 - 3) // 2 + 1 = 2; the top row of
    # windows is half padding, the right column of windows a third padding
    y = max_pool2d(x, (2, 3), (2, 2), (1, 1), (1, 0, 1, 2), None, None)
    assert y[0, :, :, 0].tolist() == [[-18, -17], [-10, -9]]
    assert np.array_equal(y, oracle(x, (2, 3), (2, 2), (1, 1), (1, 0, 1, 2)))


def test_fused_activation_range():
    x = np.array([[-50, 3], [90, 10]], np.int8).reshape(1, 2, 2, 1)
    y = max_pool2d(x, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), -5, 40)
    assert y[0, :, :, 0].tolist() == [[-5, 3], [40, 10]]
    m = build((1, 2, 2, 1), {"kernel": [1, 1], "act_min": -5, "act_max": 40})
    assert np.array_equal(run1(m, x), y)


def test_per_axis_on_channels():
    m = build((1, 2, 2, 3), {"kernel": [2, 2]}, scale=np.array([0.1, 0.2, 0.3]), zp=np.array([0, -3, 5]),
              axis=3)
    x = np.random.default_rng(2).integers(-128, 128, (1, 2, 2, 3)).astype(np.int8)
    assert np.array_equal(run1(m, x), x.max(axis=(1, 2), keepdims=True))


# ---------------------------------------------------------------------------
# property test against the oracle
# ---------------------------------------------------------------------------

@settings(max_examples=80, deadline=None)
@given(
    dtype=st.sampled_from(["int4", "uint4", "int8", "uint8", "int16"]),
    N=st.integers(1, 2), H=st.integers(1, 6), W=st.integers(1, 6), C=st.integers(1, 3),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilations=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    pads=st.tuples(*[st.integers(0, 3)] * 4),
    act=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_oracle(dtype, N, H, W, C, kernel, strides, dilations, pads, act, seed):
    assume(pool_geometry_ok(H, W, kernel, strides, dilations, pads))
    dt = dtypes.get(dtype)
    rng = np.random.default_rng(seed)
    x = rng.integers(dt.min, dt.max, (N, H, W, C), endpoint=True).astype(dt.numpy)
    lo = hi = None
    if act:
        lo, hi = sorted(int(v) for v in rng.integers(dt.min, dt.max, 2, endpoint=True))
    y = max_pool2d(x, kernel, strides, dilations, pads, lo, hi)
    assert y.dtype == dt.numpy
    assert np.array_equal(y, oracle(x, kernel, strides, dilations, pads, lo, hi))


def test_through_the_model_matches_the_function():
    rng = np.random.default_rng(3)
    attrs = {"kernel": [3, 2], "strides": [2, 1], "dilations": [1, 2], "pads": [1, 2, 0, 1]}
    m = build((2, 5, 6, 3), attrs, dtype="uint8", zp=128)
    x = rng.integers(0, 256, (2, 5, 6, 3)).astype(np.uint8)
    assert np.array_equal(run1(m, x), oracle(x, (3, 2), (2, 1), (1, 2), (1, 2, 0, 1)))


# ---------------------------------------------------------------------------
# invalid models
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("attrs, msg", [
    ({}, "'kernel' is required"),
    ({"kernel": [2]}, "kernel"),
    ({"kernel": [0, 2]}, "kernel"),
    ({"kernel": [2, 2], "strides": [0, 1]}, "strides"),
    ({"kernel": [2, 2], "dilations": [1]}, "dilations"),
    ({"kernel": [2, 2], "pads": [0, 0, -1, 0]}, "pads"),
    ({"kernel": [2, 2], "pads": [0, 0, 0]}, "pads"),
    ({"kernel": [5, 1]}, "does not fit"),
    ({"kernel": [1, 1], "pads": [0, 1, 0, 0]}, "only of padding"),
    ({"kernel": [2, 2], "act_min": 5, "act_max": 4}, "act_min"),
    ({"kernel": [2, 2], "act_max": 200}, "act_max"),
    ({"kernel": [2, 2], "ceil_mode": True}, "unknown attribute"),
])
def test_invalid_attributes(attrs, msg):
    with pytest.raises(qnnref.ValidationError, match=msg) as e:
        build((1, 4, 4, 1), attrs, name="mp1")
    assert "node 'mp1'" in str(e.value)


def test_window_of_padding_only_with_dilation():
    # H = 1, kh = 2, dh = 3, pads top/bottom 2: row windows {-2, 1} and {-1, 2} miss row 0
    with pytest.raises(qnnref.ValidationError, match="node 'mp2'.*only of padding"):
        build((1, 1, 3, 1), {"kernel": [2, 1], "dilations": [3, 1], "pads": [2, 0, 2, 0]}, name="mp2")


def test_asymmetric_padding_that_leaves_a_window_empty():
    with pytest.raises(qnnref.ValidationError, match="output row 0"):
        build((1, 3, 4, 1), {"kernel": [2, 3], "strides": [2, 2], "pads": [2, 0, 1, 3]})


def test_invalid_quantization():
    with pytest.raises(qnnref.ValidationError, match="node 'mp3'.*quantization of input x"):
        build((1, 2, 2, 1), {"kernel": [2, 2]}, out_scale=0.2, name="mp3")
    with pytest.raises(qnnref.ValidationError, match="node 'mp4'.*quantization of input x"):
        build((1, 2, 2, 1), {"kernel": [2, 2]}, zp=3, out_zp=4, name="mp4")
    with pytest.raises(qnnref.ValidationError, match="node 'mp5'.*axis 3"):
        build((1, 2, 2, 1), {"kernel": [1, 1]}, scale=np.array([0.1, 0.2]), zp=None, axis=1, name="mp5")
    b = qnnref.GraphBuilder()
    x = b.input("x", "int8", (1, 2, 2, 1))
    with pytest.raises(qnnref.ValidationError, match="node 'mp6'.*must be quantized"):
        b.node("max_pool2d", [x], {"kernel": [1, 1]}, name="mp6")


def test_invalid_rank_and_dtype():
    b = qnnref.GraphBuilder()
    x = b.input("x", "int8", (2, 2, 1), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="node 'mp7'.*rank 4"):
        b.node("max_pool2d", [x], {"kernel": [1, 1]}, name="mp7", scale=0.1)
    f = b.input("f", "float32", (1, 2, 2, 1))
    with pytest.raises(qnnref.ValidationError, match="node 'mp8'.*dtype float32"):
        b.node("max_pool2d", [f], {"kernel": [1, 1]}, name="mp8")
