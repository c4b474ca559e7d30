"""The clamp kernel against the reference, on every ISA and thread count:
every value of the small dtypes against every kind of bound, int16 and
int32 extremes, odd sizes."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_all_backends_agree, needs_kernels

from qnnref import GraphBuilder, dtypes

pytestmark = needs_kernels


def build(dtype, shape, lo, hi):
    g = GraphBuilder()
    x = g.input("x", dtype, shape, scale=0.1, zero_point=0)
    attrs = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    y = g.node("clamp", [x], attrs, scale=0.1, zero_point=0, name="c")
    g.output(y)
    return g.build()


@pytest.mark.parametrize("dtype", ["int4", "uint4", "int8", "uint8"])
def test_every_value_every_bound_kind(dtype):
    dt = dtypes.get(dtype)
    x = np.resize(np.arange(dt.min, dt.max + 1), 70001).astype(dt.numpy)   # several threads, a remainder
    mid = (dt.min + dt.max + 1) // 2
    for lo, hi in [(dt.min, dt.max), (None, mid), (mid, None), (mid, mid), (dt.min + 1, dt.max - 1),
                   (dt.max, None), (None, dt.min)]:
        assert_all_backends_agree(build(dtype, x.shape, lo, hi), x)


@pytest.mark.parametrize("dtype", ["int16", "int32"])
def test_wide(dtype, rng):
    dt = dtypes.get(dtype)
    x = np.concatenate([[dt.min, dt.max, 0, -1, 1], rng.integers(dt.min, dt.max, 5000, endpoint=True)])
    x = x.astype(dt.numpy)
    for lo, hi in [(dt.min, dt.max), (-1000, 1000), (0, None), (None, -5), (dt.max, dt.max)]:
        assert_all_backends_agree(build(dtype, x.shape, lo, hi), x)


@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (8,), (31,), (33,), (3, 0, 2)])
def test_sizes(shape, rng):
    assert_all_backends_agree(build("int8", shape, -3, 7), rng.integers(-128, 128, shape).astype(np.int8))
