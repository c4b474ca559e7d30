"""Shared test helpers: seeded random generators and edge-value sets."""
from __future__ import annotations

import numpy as np
import pytest

from qnnref import dtypes

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def edge_values_int32() -> np.ndarray:
    """gemmlowp's edge values: 2^i + {-2..2} and their negatives for every i,
    INT32_MIN/MAX +- k, clipped to int32 and deduplicated."""
    vals = {0, 1, -1, 2, -2, INT32_MIN, INT32_MAX}
    for i in range(32):
        for d in (-2, -1, 0, 1, 2):
            vals.add(2**i + d)
            vals.add(-(2**i) + d)
    for k in range(8):
        vals.add(INT32_MIN + k)
        vals.add(INT32_MAX - k)
    return np.array(sorted(v for v in vals if INT32_MIN <= v <= INT32_MAX), dtype=np.int64)


def all_values(dtype_name: str) -> np.ndarray:
    """Every value of a small integer dtype, in its in-memory numpy dtype."""
    dt = dtypes.get(dtype_name)
    return np.arange(dt.min, dt.max + 1).astype(dt.numpy)


def random_ints(rng: np.random.Generator, dtype_name: str, shape, lo=None, hi=None) -> np.ndarray:
    dt = dtypes.get(dtype_name)
    lo = dt.min if lo is None else lo
    hi = dt.max if hi is None else hi
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dt.numpy)


@pytest.fixture
def rng():
    """A seeded generator, so failures reproduce."""
    return np.random.default_rng(20261126)
