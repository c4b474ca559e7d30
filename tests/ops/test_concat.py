"""concat: worked example, multiplier 1.0 is the identity under every recipe, oracles."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_spec_shows_the_source, run1
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import real_multiplier, requantize_value

import qnnref
from qnnref import dtypes
from qnnref.arith import ROUNDING_MODES, Recipe, apply_requant, combine_scales, prepare_requant, requantize_output
from qnnref.ops.concat import concat
from qnnref.profiles import PROFILES

#: every profile's recipe, plus recipes no profile uses, for the identity proof
ALL_RECIPES = [p.requant for p in PROFILES.values()] + [
    Recipe(kind="fixed_point", rounding=r, double_round="none", multiplier_rounding=mr, scale_dtype=sd)
    for r in ROUNDING_MODES for mr in ("half_away_from_zero", "floor") for sd in ("float32", "float64")
] + [
    Recipe(kind="fixed_point", rounding="half_up", double_round="tosa"),
    Recipe(kind="fixed_point", rounding="half_to_even", double_round="gemmlowp"),
] + [Recipe(kind="float", rounding=r, float_dtype=fd, scale_dtype=sd)
     for r in ROUNDING_MODES for fd in ("float32", "float64") for sd in ("float32", "float64")]


def build(specs, out, axis=0, profile="qnnref", name="cat", attrs=None):
    """specs: list of (dtype, shape, scale, zp); out: (scale, zp)."""
    b = qnnref.GraphBuilder(profile=profile)
    names = [b.input(f"x{i}", dt, shape, scale=s, zero_point=z) for i, (dt, shape, s, z) in enumerate(specs)]
    y = b.node("concat", names, dict({"axis": axis}, **(attrs or {})), name=name, scale=out[0],
               zero_point=out[1])
    b.output(y)
    return b.build()


def test_spec_pseudocode_is_the_source():
    assert_spec_shows_the_source("concat", ["concat"])


@pytest.mark.parametrize("profile, want", [
    ("qnnref", [1, -2, 2, 1, -1]),
    ("float32-half-to-even", [1, -2, 2, 0, -2]),
])
def test_worked_example(profile, want):
    m = build([("int8", (2,), 0.5, 0), ("int8", (3,), 0.25, 4)], (0.5, 0), profile=profile)
    y = run1(m, np.array([1, -2], np.int8), np.array([8, 5, 1], np.int8))
    assert y.tolist() == want and y.dtype == np.int8
    ctx = m._contexts[0]
    assert ctx.prepared["params"][0] is None and ctx.prepared["params"][1] is not None


# ---------------------------------------------------------------------------
# multiplier exactly 1.0 is the identity under every recipe
# ---------------------------------------------------------------------------

def test_multiplier_one_is_identity_under_every_recipe():
    # every x - zp of every dtype up to int16 lies in [-65535, 65535]
    acc = np.arange(-65535, 65536, dtype=np.int64)
    for recipe in ALL_RECIPES:
        for s in (np.float32(0.1), np.float32(1.0), np.float32(3.7e-5), np.float32(255.0)):
            assert combine_scales([s], s, recipe.scale_dtype) == 1.0
        params = prepare_requant(combine_scales([np.float32(0.1)], np.float32(0.1), recipe.scale_dtype), recipe)
        assert np.array_equal(apply_requant(acc, params), acc), recipe


@pytest.mark.parametrize("dtype", ["int4", "uint4", "int8", "uint8"])
def test_equal_scales_shift_and_saturate_under_every_recipe(dtype):
    dt = dtypes.get(dtype)
    x = np.arange(dt.min, dt.max + 1).astype(dt.numpy)
    zps = sorted({dt.min, dt.max, (dt.min + dt.max) // 2, max(dt.min, 0)})
    for recipe in ALL_RECIPES:
        params = prepare_requant(combine_scales([np.float32(0.3)], np.float32(0.3), recipe.scale_dtype), recipe)
        for zx in zps:
            for zy in zps:
                got = requantize_output(x.astype(np.int64) - zx, params, zy, dtype)
                want = np.clip(x.astype(np.int64) - zx + zy, dt.min, dt.max)
                assert np.array_equal(got, want), (recipe, dtype, zx, zy)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_fast_path_equals_recipe_path(profile):
    # same quantization: the copy (params None) and the recipe (multiplier 1.0) agree
    recipe = PROFILES[profile].requant
    for dtype in ("int8", "uint8", "int16"):
        dt = dtypes.get(dtype)
        x = np.arange(dt.min, dt.max + 1).astype(dt.numpy).reshape(1, -1)
        for zp in (dt.min, 0 if dt.min < 0 else 1, dt.max):
            params = prepare_requant(combine_scales([np.float32(0.37)], np.float32(0.37), recipe.scale_dtype),
                                     recipe)
            fast = concat([x, x], 0, [zp, zp], [None, None], zp, dtype)
            slow = concat([x, x], 0, [zp, zp], [params, params], zp, dtype)
            assert np.array_equal(fast, slow)
            assert np.array_equal(fast, np.concatenate([x, x]))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_equal_scale_other_zero_point_is_a_shift(profile):
    x = np.arange(-128, 128).astype(np.int8)
    m = build([("int8", (256,), 0.2, -10), ("int8", (256,), 0.2, 20)], (0.2, 20), profile=profile)
    y = run1(m, x, x)
    assert np.array_equal(y[:256], np.clip(x.astype(int) + 30, -128, 127))
    assert np.array_equal(y[256:], x)


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 4), rank=st.integers(1, 3), data=st.data(),
       dtype=st.sampled_from(["int8", "uint8", "int16", "int4"]),
       profile=st.sampled_from(["qnnref", "float32-half-to-even"]), seed=st.integers(0, 2**32 - 1))
def test_matches_oracle(n, rank, data, dtype, profile, seed):
    rng = np.random.default_rng(seed)
    dt = dtypes.get(dtype)
    base = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    axis = data.draw(st.integers(-rank, rank - 1))
    ax = axis % rank
    sy = float(np.float32(data.draw(st.floats(0.01, 2.0))))
    zy = int(rng.integers(dt.min, dt.max + 1))
    specs, xs = [], []
    for _ in range(n):
        shape = list(base)
        shape[ax] = data.draw(st.integers(0, 3))
        if data.draw(st.booleans()):
            s, z = sy, zy                                   # the output's quantization
        else:
            s = float(np.float32(sy * data.draw(st.floats(0.05, 20.0))))
            z = int(rng.integers(dt.min, dt.max + 1))
        specs.append((dtype, tuple(shape), s, z))
        xs.append(rng.integers(dt.min, dt.max, shape, endpoint=True).astype(dt.numpy))
    m = build(specs, (sy, zy), axis=axis, profile=profile)
    y = run1(m, *xs)
    recipe = PROFILES[profile].requant
    parts = []
    for (_, _, s, z), x in zip(specs, xs):
        real = real_multiplier([s], sy, recipe.scale_dtype)
        mapped = [requantize_value(int(v) - z, real, recipe, zy, dtype) for v in x.ravel()]
        parts.append(np.array(mapped, dtype=np.int64).reshape(x.shape))
    want = np.concatenate(parts, axis=ax).astype(dt.numpy)
    assert y.dtype == dt.numpy and np.array_equal(y, want)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 4), dtype=st.sampled_from(["int32", "float32", "int64", "uint8"]),
       seed=st.integers(0, 2**32 - 1))
def test_unquantized_matches_numpy(n, dtype, seed):
    rng = np.random.default_rng(seed)
    dt = dtypes.get(dtype)
    xs = [(rng.standard_normal((2, k, 3)) * 100).astype(dt.numpy) for k in rng.integers(0, 4, n)]
    b = qnnref.GraphBuilder()
    names = [b.input(f"x{i}", dtype, x.shape) for i, x in enumerate(xs)]
    y = b.node("concat", names, {"axis": -2})
    b.output(y)
    assert np.array_equal(run1(b.build(), *xs), np.concatenate(xs, axis=1))


def test_single_input():
    m = build([("int8", (2, 2), 0.1, 0)], (0.1, 0), axis=1)
    x = np.array([[1, 2], [3, 4]], np.int8)
    assert np.array_equal(run1(m, x), x)


def test_saturation_extremes():
    # int8 input at scale 1 into an output at scale 0.25: everything saturates
    x = np.array([-128, -1, 0, 1, 127], np.int8)
    m = build([("int8", (5,), 1.0, 0)], (0.25, 0))
    assert run1(m, x).tolist() == [-128, -4, 0, 4, 127]


# ---------------------------------------------------------------------------
# invalid models
# ---------------------------------------------------------------------------

def test_invalid_models():
    with pytest.raises(qnnref.ValidationError, match="node 'c1'.*axis 2 is out of range"):
        build([("int8", (2, 2), 0.1, 0)] * 2, (0.1, 0), axis=2, name="c1")
    with pytest.raises(qnnref.ValidationError, match="node 'c2'.*shape"):
        build([("int8", (2, 2), 0.1, 0), ("int8", (3, 3), 0.1, 0)], (0.1, 0), axis=0, name="c2")
    with pytest.raises(qnnref.ValidationError, match="node 'c3'.*shape"):
        build([("int8", (2, 2), 0.1, 0), ("int8", (2, 2, 1), 0.1, 0)], (0.1, 0), axis=0, name="c3")
    with pytest.raises(qnnref.ValidationError, match="node 'c4'.*dtype"):
        build([("int8", (2,), 0.1, 0), ("uint8", (2,), 0.1, 0)], (0.1, 0), name="c4")
    with pytest.raises(qnnref.ValidationError, match="node 'c5'.*must be quantized"):
        build([("int8", (2,), 0.1, 0), ("int8", (2,), None, None)], (0.1, 0), name="c5")
    with pytest.raises(qnnref.ValidationError, match="node 'c6'.*must be quantized"):
        build([("int8", (2,), 0.1, 0)], (None, None), name="c6")
    with pytest.raises(qnnref.ValidationError, match="node 'c7'.*multiplier"):
        build([("int8", (2,), 1e-12, 0)], (1.0, 0), name="c7")
    with pytest.raises(qnnref.ValidationError, match="node 'c8'.*rank >= 1"):
        build([("int8", (), 0.1, 0)], (0.1, 0), name="c8")
    with pytest.raises(qnnref.ValidationError, match="node 'c9'.*int32"):
        build([("int32", (2,), 0.1, 0)], (0.1, 0), name="c9")
    b = qnnref.GraphBuilder()
    with pytest.raises(qnnref.ValidationError, match="at least 1 input"):
        b.node("concat", [], {"axis": 0}, name="c10")
    xa = b.input("xa", "int8", (2, 2), scale=np.array([0.1, 0.2]), axis=1)
    with pytest.raises(qnnref.ValidationError, match="node 'c11'.*per-axis"):
        b.node("concat", [xa, xa], {"axis": 0}, name="c11", scale=np.array([0.1, 0.2]), axis=1)
