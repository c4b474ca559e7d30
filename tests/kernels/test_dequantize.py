"""The dequantize kernel against the reference, on every ISA and thread
count: every value of every input dtype up to 16 bits with extreme zero
points, int32 (rounding to float32 above 2^24), scales that overflow to inf
or give subnormals, per-axis and blocked parameters."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_all_backends_agree, needs_kernels

from qnnref import GraphBuilder, dtypes

pytestmark = needs_kernels


def build(x_dtype, shape, scale, zp, axis=None, block_size=None):
    g = GraphBuilder()
    x = g.input("x", x_dtype, shape, scale=scale, zero_point=zp, axis=axis, block_size=block_size)
    y = g.node("dequantize", [x], {}, name="dq")
    g.output(y)
    return g.build()


@pytest.mark.parametrize("x_dtype", ["int4", "uint4", "int8", "uint8", "int16"])
def test_every_value(x_dtype):
    dt = dtypes.get(x_dtype)
    x = np.arange(dt.min, dt.max + 1).astype(dt.numpy)
    if x.size < 9000:
        x = np.resize(x, 9001)                 # several threads and a remainder
    for scale in (0.1, 2.0**-20, 3.0e38, 1e-40, 1.0 / 3):
        for zp in (dt.min, dt.max, (dt.min + dt.max + 1) // 2):
            assert_all_backends_agree(build(x_dtype, x.shape, scale, zp), x, threads=(1, 3))


def test_int32_rounds_to_float32(rng):
    x = np.concatenate([[-(2**31), 2**31 - 1, 2**24 + 1, -(2**24) - 1, 0],
                        rng.integers(-(2**31), 2**31, 3000)]).astype(np.int32)
    for scale in (1.0, 0.001, 2.0**-31, 1e30):
        assert_all_backends_agree(build("int32", x.shape, scale, 0), x)


@pytest.mark.parametrize("shape,axis", [((5, 7, 9), 0), ((5, 7, 9), 1), ((5, 7, 9), 2), ((300, 3), 1),
                                        ((3, 300), 1), ((6,), 0)])
def test_per_axis(shape, axis, rng):
    n = shape[axis]
    model = build("int8", shape, rng.uniform(0.001, 0.5, n).astype(np.float32), rng.integers(-128, 128, n), axis)
    assert_all_backends_agree(model, rng.integers(-128, 128, shape).astype(np.int8))


@pytest.mark.parametrize("shape,axis,block", [((8, 6), 0, 3), ((5, 12), 1, 5), ((4, 40, 3), 1, 16)])
def test_blocked(shape, axis, block, rng):
    nb = -(-shape[axis] // block)
    pshape = tuple(nb if i == axis else d for i, d in enumerate(shape))
    model = build("int4", shape, rng.uniform(0.01, 0.5, pshape).astype(np.float32),
                  rng.integers(-8, 8, pshape).astype(np.int8), axis, block)
    assert_all_backends_agree(model, rng.integers(-8, 8, shape).astype(np.int8))


@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (8,), (15,), (17,), (33,), (3, 0, 2)])
def test_sizes(shape, rng):
    assert_all_backends_agree(build("uint8", shape, 0.02, 128), rng.integers(0, 256, shape).astype(np.uint8))
