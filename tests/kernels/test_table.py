"""table kernels (scalar, AVX2 VPSHUFB lookup; 1-3 threads) against the reference,
exhaustive over the 256 inputs for every pair of 8-bit dtypes."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_all_backends_agree, needs_kernels
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnref import GraphBuilder, dtypes
from qnnref.ops.table import TABLE_FUNCTIONS, make_table

pytestmark = needs_kernels

PAIRS = [(a, b) for a in ("int8", "uint8") for b in ("int8", "uint8")]


def table_graph(shape, x_dtype, lut, lut_dtype, quantized=True):
    b = GraphBuilder()
    q = {"scale": 1 / 16, "zero_point": 3} if quantized else {}
    x = b.input("x", x_dtype, shape, **q)
    t = b.constant("lut", lut, dtype=lut_dtype)
    y = b.node("table", [x, t], {}, name="table", **({"scale": 1 / 256, "zero_point": 0} if quantized else {}))
    b.output(y)
    return b.graph()


def every_value(dtype, repeats=1, rng=None):
    dt = dtypes.get(dtype)
    v = np.tile(np.arange(dt.min, dt.max + 1), repeats)
    if rng is not None:
        v = rng.permutation(v)
    return v.astype(dt.numpy)


def random_lut(rng, dtype):
    dt = dtypes.get(dtype)
    return rng.integers(dt.min, dt.max, size=256, endpoint=True).astype(dt.numpy)


@pytest.mark.parametrize("x_dtype,lut_dtype", PAIRS)
def test_exhaustive_every_input_random_tables(rng, x_dtype, lut_dtype):
    for _ in range(8):
        lut = random_lut(rng, lut_dtype)
        # in order (each 32-byte vector sees 32 consecutive indices), shuffled, and 2-D
        assert_all_backends_agree(table_graph((256,), x_dtype, lut, lut_dtype), every_value(x_dtype))
        assert_all_backends_agree(table_graph((8, 97), x_dtype, lut, lut_dtype, quantized=False),
                                  every_value(x_dtype, 4, rng)[:8 * 97].reshape(8, 97))


@pytest.mark.parametrize("x_dtype,lut_dtype", PAIRS)
def test_identity_and_extreme_tables(x_dtype, lut_dtype):
    dt = dtypes.get(lut_dtype)
    tables = [np.arange(dt.min, dt.max + 1), np.arange(dt.max, dt.min - 1, -1),
              np.full(256, dt.min), np.full(256, dt.max),
              np.where(np.arange(256) % 2, dt.max, dt.min)]
    for lut in tables:
        lut = lut.astype(dt.numpy)
        x = every_value(x_dtype, 3).reshape(3, 256)
        assert_all_backends_agree(table_graph((3, 256), x_dtype, lut, lut_dtype), x)


@pytest.mark.parametrize("fn", sorted(TABLE_FUNCTIONS))
def test_make_table_functions(fn):
    lut = make_table(fn, "int8", 1 / 16, 0, "int8", 1 / 256, -128)
    assert_all_backends_agree(table_graph((256,), "int8", lut, "int8"), every_value("int8"))
    lut = make_table(fn, "uint8", 0.05, 128, "uint8", 1 / 64, 7)
    assert_all_backends_agree(table_graph((256,), "uint8", lut, "uint8"), every_value("uint8"))


@pytest.mark.parametrize("n", [1, 7, 31, 32, 33, 63, 65, 1000, 2**16 + 1, 3 * 2**16 + 45])
def test_sizes_and_thread_splits(rng, n):
    for x_dtype, lut_dtype in PAIRS:
        lut = random_lut(rng, lut_dtype)
        dt = dtypes.get(x_dtype)
        x = rng.integers(dt.min, dt.max, size=n, endpoint=True).astype(dt.numpy)
        assert_all_backends_agree(table_graph((n,), x_dtype, lut, lut_dtype), x)


def test_scalar_empty_and_non_contiguous(rng):
    lut = random_lut(rng, "int8")
    assert_all_backends_agree(table_graph((), "int8", lut, "int8"), np.array(-128, np.int8))
    assert_all_backends_agree(table_graph((0, 5), "uint8", lut, "int8"), np.zeros((0, 5), np.uint8))
    b = GraphBuilder()
    x = b.input("x", "int8", (40, 9))
    t = b.node("transpose", [x], {"perm": [1, 0]})
    y = b.node("table", [t, b.constant("lut", lut)], {}, name="table")
    b.output(y)
    assert_all_backends_agree(b.graph(), every_value("int8", 2)[:360].reshape(40, 9), expect_kernel="table")


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(0, 40), min_size=1, max_size=3), pair=st.sampled_from(PAIRS),
       seed=st.integers(0, 2**32 - 1))
def test_random(shape, pair, seed):
    rng = np.random.default_rng(seed)
    x_dtype, lut_dtype = pair
    dt = dtypes.get(x_dtype)
    x = rng.integers(dt.min, dt.max, size=shape, endpoint=True).astype(dt.numpy)
    assert_all_backends_agree(table_graph(tuple(shape), x_dtype, random_lut(rng, lut_dtype), lut_dtype), x)
