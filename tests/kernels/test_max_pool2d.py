"""max_pool2d kernels (scalar, AVX2; 1-3 threads) against the reference, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_all_backends_agree, needs_kernels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import pool_geometry_ok

from qnnref import GraphBuilder, dtypes

pytestmark = needs_kernels

DTYPES = ("int8", "uint8", "int16", "int4", "uint4")


def pool_graph(shape, kernel, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), dtype="int8",
               act=(None, None), zp=0, axis=None):
    b = GraphBuilder()
    scale = 0.1 if axis is None else np.linspace(0.05, 0.2, shape[3]).astype(np.float32)
    if axis is not None:
        zp = np.full(shape[3], zp)
    x = b.input("x", dtype, shape, scale=scale, zero_point=zp, axis=axis)
    attrs = {"kernel": list(kernel), "strides": list(strides), "dilations": list(dilations), "pads": list(pads)}
    if act[0] is not None:
        attrs["act_min"] = act[0]
    if act[1] is not None:
        attrs["act_max"] = act[1]
    y = b.node("max_pool2d", [x], attrs, name="pool", scale=scale, zero_point=zp, axis=axis)
    b.output(y)
    return b.graph()


def values(rng, dtype, shape, kind="random"):
    dt = dtypes.get(dtype)
    if kind == "extremes":
        return rng.choice([dt.min, dt.max], size=shape).astype(dt.numpy)
    if kind == "minimum":
        return np.full(shape, dt.min, dt.numpy)
    return rng.integers(dt.min, dt.max, size=shape, endpoint=True).astype(dt.numpy)


GEOMETRIES = [  # kernel, strides, dilations, pads
    ((3, 3), (2, 2), (1, 1), (1, 1, 1, 1)),
    ((2, 2), (2, 2), (1, 1), (0, 0, 0, 0)),
    ((3, 3), (1, 1), (2, 2), (2, 0, 1, 2)),
    ((1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),
    ((5, 2), (3, 1), (1, 3), (4, 1, 0, 3)),
    ((7, 7), (1, 1), (1, 1), (3, 3, 3, 3)),   # the window covers the whole input plus padding
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 3, 17, 33])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_geometries_dtypes_channels(rng, dtype, channels, geometry):
    kernel, strides, dilations, pads = geometry
    shape = (2, 5, 6, channels)
    g = pool_graph(shape, kernel, strides, dilations, pads, dtype)
    assert_all_backends_agree(g, values(rng, dtype, shape))


@pytest.mark.parametrize("dtype", ("int8", "uint8", "int16"))
@pytest.mark.parametrize("kind", ["extremes", "minimum"])
def test_extreme_values_padding_never_wins(rng, dtype, kind):
    shape = (1, 4, 4, 65)
    g = pool_graph(shape, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), dtype, zp=dtypes.get(dtype).max)
    assert_all_backends_agree(g, values(rng, dtype, shape, kind))


@pytest.mark.parametrize("dtype", ("int8", "uint8", "int16", "int4"))
def test_fused_activation_range(rng, dtype):
    dt = dtypes.get(dtype)
    lo, hi = dt.min + (dt.max - dt.min) // 3, dt.max - (dt.max - dt.min) // 4
    shape = (1, 6, 5, 40)
    for act in ((lo, hi), (lo, None), (None, hi), (hi, hi)):
        g = pool_graph(shape, (2, 3), (1, 2), (1, 1), (0, 1, 1, 0), dtype, act=act)
        assert_all_backends_agree(g, values(rng, dtype, shape))


def test_per_axis_quantization(rng):
    shape = (1, 5, 5, 19)
    g = pool_graph(shape, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), "int8", zp=-3, axis=3)
    assert_all_backends_agree(g, values(rng, "int8", shape))


def test_non_contiguous_input_and_empty_batch(rng):
    b = GraphBuilder()
    x = b.input("x", "int8", (1, 6, 4, 3), scale=0.1, zero_point=0)
    t = b.node("transpose", [x], {"perm": [0, 2, 1, 3]}, scale=0.1, zero_point=0)
    y = b.node("max_pool2d", [t], {"kernel": [2, 2]}, name="pool", scale=0.1, zero_point=0)
    b.output(y)
    assert_all_backends_agree(b.graph(), values(rng, "int8", (1, 6, 4, 3)), expect_kernel="max_pool2d")
    g = pool_graph((0, 4, 4, 3), (2, 2))
    assert_all_backends_agree(g, np.zeros((0, 4, 4, 3), np.int8))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(H=st.integers(1, 7), W=st.integers(1, 7), C=st.sampled_from([1, 2, 7, 31, 32, 33, 64, 65]),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
       dh=st.integers(1, 3), dw=st.integers(1, 3), pads=st.tuples(*[st.integers(0, 3)] * 4),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_random_geometry(H, W, C, kh, kw, sh, sw, dh, dw, pads, dtype, seed):
    if not pool_geometry_ok(H, W, (kh, kw), (sh, sw), (dh, dw), pads):
        return
    shape = (1, H, W, C)
    g = pool_graph(shape, (kh, kw), (sh, sw), (dh, dw), pads, dtype)
    assert_all_backends_agree(g, values(np.random.default_rng(seed), dtype, shape), threads=(1, 3))
