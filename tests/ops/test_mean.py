"""mean (and global average pool): exact sum, one requantization, oracles in Python ints."""
from __future__ import annotations

import itertools
from fractions import Fraction
from functools import partial

import numpy as np
import pytest
from conftest import assert_spec_shows_the_source, run1, unary_model
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import requantize_value

import qnnref
from qnnref import dtypes
from qnnref.arith import Recipe, prepare_requant
from qnnref.ops.mean import mean, mean_multiplier
from qnnref.profiles import PROFILES

build = partial(unary_model, "mean", scale=0.5, zp=0, out_scale=0.5, out_zp=0, name="mean")


def oracle(x, axes, keepdims, zx, sx, sy, zy, recipe, dtype):
    """Loop over the kept indices; sum (x - zx) in Python ints over the reduced ones."""
    dt = dtypes.get(dtype)
    rank = x.ndim
    axes = sorted(a % rank for a in axes)
    kept = [a for a in range(rank) if a not in axes]
    N = int(np.prod([x.shape[a] for a in axes]))
    real = mean_multiplier(sx, sy, N, recipe.scale_dtype)
    out = {}
    for kidx in itertools.product(*[range(x.shape[a]) for a in kept]):
        acc = 0
        for ridx in itertools.product(*[range(x.shape[a]) for a in axes]):
            full = [0] * rank
            for a, i in zip(kept, kidx):
                full[a] = i
            for a, i in zip(axes, ridx):
                full[a] = i
            acc += int(x[tuple(full)]) - zx
        out[kidx] = requantize_value(acc, real, recipe, zy, dtype)
    shape = [x.shape[a] for a in kept]
    y = np.zeros(shape, dt.numpy)
    for kidx, v in out.items():
        y[kidx] = v
    if keepdims:
        y = y.reshape([1 if a in axes else x.shape[a] for a in range(rank)])
    return y


def test_spec_pseudocode_is_the_source():
    assert_spec_shows_the_source("mean", ["mean_multiplier", "mean"])


# ---------------------------------------------------------------------------
# worked example: global average pooling
# ---------------------------------------------------------------------------

WX = np.stack([np.array([[-3, 5], [8, 2]]), np.array([[1, 0], [-1, 5]]),
               np.array([[-6, -1], [-2, -2]])], axis=-1)[None].astype(np.int8)


@pytest.mark.parametrize("profile, want", [
    ("qnnref", [18, 15, 7]),
    ("float32-half-to-even", [18, 14, 6]),
    ("fixed-point-double-round", [18, 15, 7]),
])
def test_worked_example_global_average_pool(profile, want):
    m = build((1, 2, 2, 3), {"axes": [1, 2]}, scale=0.5, zp=-1, out_scale=0.25, out_zp=10, profile=profile)
    y = run1(m, WX)
    assert y.shape == (1, 1, 1, 3) and y.dtype == np.int8
    assert y.ravel().tolist() == want


def test_global_average_pool_is_mean_over_h_w():
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, (2, 5, 7, 4)).astype(np.int8)
    recipe = PROFILES["qnnref"].requant
    for keepdims, shape in ((True, (2, 1, 1, 4)), (False, (2, 4))):
        m = build(x.shape, {"axes": [1, 2], "keepdims": keepdims}, scale=0.02, zp=-7, out_scale=0.015,
                  out_zp=3)
        y = run1(m, x)
        assert y.shape == shape
        # per (n, c): the mean of the 35 values, as a Python-int oracle
        for n in range(2):
            for c in range(4):
                acc = sum(int(v) + 7 for v in x[n, :, :, c].ravel())
                real = mean_multiplier(0.02, 0.015, 35, "float64")
                want = requantize_value(acc, real, recipe, 3, "int8")
                assert y[(n, 0, 0, c) if keepdims else (n, c)] == want
        assert np.array_equal(y, oracle(x, [1, 2], keepdims, -7, 0.02, 0.015, 3, recipe, "int8"))


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

@st.composite
def shapes_and_axes(draw):
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    axes = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
    axes = [a - rank if draw(st.booleans()) else a for a in axes]     # some negative
    return shape, axes


@settings(max_examples=80, deadline=None)
@given(sa=shapes_and_axes(), keepdims=st.booleans(),
       dtype=st.sampled_from(["int4", "uint4", "int8", "uint8", "int16"]),
       profile=st.sampled_from(["qnnref", "float32-half-to-even"]),
       sx=st.floats(0.001, 10.0), ratio=st.floats(0.05, 20.0), seed=st.integers(0, 2**32 - 1))
def test_matches_oracle(sa, keepdims, dtype, profile, sx, ratio, seed):
    shape, axes = sa
    dt = dtypes.get(dtype)
    rng = np.random.default_rng(seed)
    x = rng.integers(dt.min, dt.max, shape, endpoint=True).astype(dt.numpy)
    zx, zy = (int(v) for v in rng.integers(dt.min, dt.max, 2, endpoint=True))
    sx = float(np.float32(sx))
    sy = float(np.float32(sx * ratio))
    m = build(shape, {"axes": axes, "keepdims": keepdims}, dtype=dtype, scale=sx, zp=zx, out_scale=sy,
              out_zp=zy, profile=profile)
    want = oracle(x, axes, keepdims, zx, sx, sy, zy, PROFILES[profile].requant, dtype)
    y = run1(m, x)
    assert y.shape == want.shape and y.dtype == dt.numpy
    assert np.array_equal(y, want)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_single_element_mean_with_equal_quantization_is_identity(profile):
    for dtype in ("int8", "uint8", "int16"):
        dt = dtypes.get(dtype)
        x = np.arange(dt.min, dt.max + 1).astype(dt.numpy).reshape(-1, 1)
        for zp in (dt.min, 0 if dt.min < 0 else 1, dt.max):
            m = build(x.shape, {"axes": [1]}, dtype=dtype, scale=0.37, zp=zp, out_scale=0.37, out_zp=zp,
                      profile=profile)
            assert np.array_equal(run1(m, x), x)


def test_multiplier_formed_in_scale_dtype():
    # float64: s_y * N is exact, so the multiplier is the correctly rounded quotient
    sx, sy = np.float32(0.1), np.float32(0.3)
    want64 = Fraction(float(sx)) / (Fraction(float(sy)) * 7)
    got64 = mean_multiplier(sx, sy, 7, "float64")
    assert got64.dtype == np.float64 and abs(Fraction(float(got64)) - want64) <= abs(want64) * 2**-53
    got32 = mean_multiplier(sx, sy, 7, "float32")
    assert got32.dtype == np.float32 and got32 == sx / (sy * np.float32(7))


def test_extreme_values():
    for dtype in ("int8", "uint8", "int16"):
        dt = dtypes.get(dtype)
        for v in (dt.min, dt.max):
            for zp in (dt.min, dt.max):
                x = np.full((1, 3, 3, 2), v, dt.numpy)
                m = build(x.shape, {"axes": [1, 2]}, dtype=dtype, scale=0.5, zp=zp, out_scale=0.5, out_zp=zp)
                assert (run1(m, x) == v).all()        # average of equal values, equal quantization


def test_custom_recipe_attribute():
    x = np.array([[1, 2]], np.int8)               # acc = 3, N = 2, m = 1/2 -> 1.5
    for rounding, want in (("half_up", 2), ("half_down", 1), ("floor", 1), ("half_to_even", 2)):
        r = Recipe(kind="fixed_point", rounding=rounding).to_dict()
        m = build((1, 2), {"axes": [-1], "recipe": r}, scale=1.0, out_scale=1.0)
        assert run1(m, x).tolist() == [[want]]


def test_accumulator_overflow_is_a_runtime_error():
    x = np.full((1, 32769), 32767, np.int16)
    m = build(x.shape, {"axes": [1]}, dtype="int16", scale=1.0, zp=-32768, out_scale=1.0, out_zp=0,
              name="big")
    with pytest.raises(qnnref.RuntimeCheckError, match="node 'big'.*overflows int32"):
        m.run(x)
    x = np.full((1, 32769), -32768, np.int16)        # but values near zp are fine
    assert run1(m, x).item() == 0
    # the reference function itself raises too
    params = prepare_requant(mean_multiplier(1.0, 1.0, 32769, "float64"), PROFILES["qnnref"].requant)
    with pytest.raises(qnnref.RuntimeCheckError):
        mean(np.full((1, 32769), 32767, np.int16), (1,), True, -32768, params, 0, "int16")


# ---------------------------------------------------------------------------
# invalid models
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape, attrs, kw, msg", [
    ((1, 2, 2, 1), {}, {}, "'axes' is required"),
    ((1, 2, 2, 1), {"axes": []}, {}, "at least one axis"),
    ((1, 2, 2, 1), {"axes": [4]}, {}, "out of range"),
    ((1, 2, 2, 1), {"axes": [-5]}, {}, "out of range"),
    ((1, 2, 2, 1), {"axes": [1, -3]}, {}, "twice"),
    ((1, 0, 2, 1), {"axes": [1]}, {}, "no element"),
    ((1, 2, 2, 1), {"axes": [1], "keepdims": 1}, {}, "keepdims"),
    ((1, 2, 2, 1), {"axes": [1, 2]}, {"out_scale": 1e-12}, "multiplier"),
])
def test_invalid_models(shape, attrs, kw, msg):
    with pytest.raises(qnnref.ValidationError, match=msg) as e:
        build(shape, attrs, name="m1", **kw)
    assert "node 'm1'" in str(e.value)


def test_invalid_quantization():
    b = qnnref.GraphBuilder()
    x = b.input("x", "int8", (1, 2, 2, 1))
    with pytest.raises(qnnref.ValidationError, match="node 'm2'.*must be quantized"):
        b.node("mean", [x], {"axes": [1, 2]}, name="m2", scale=0.1)
    xq = b.input("xq", "int8", (1, 2, 2, 1), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="node 'm3'.*must be quantized"):
        b.node("mean", [xq], {"axes": [1, 2]}, name="m3")
    xa = b.input("xa", "int8", (1, 2, 2, 2), scale=np.array([0.1, 0.2]), axis=3)
    with pytest.raises(qnnref.ValidationError, match="node 'm4'.*per-axis"):
        b.node("mean", [xa], {"axes": [1, 2]}, name="m4", scale=0.1)
    f = b.input("f", "float32", (1, 2))
    with pytest.raises(qnnref.ValidationError, match="node 'm5'.*dtype float32"):
        b.node("mean", [f], {"axes": [1]}, name="m5")
