"""The quantize kernel against the reference, on every ISA and thread count:
every quantize recipe (divide / reciprocal, float32 / float64, every
rounding mode) on ties, signed zeros, subnormals, huge values and
infinities, every output dtype with extreme zero points, per-axis and
blocked parameters, float16 inputs, and NaN (the reference's error)."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_all_backends_agree, needs_kernels
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnref import GraphBuilder, dtypes
from qnnref.arith import ROUNDING_MODES, QuantizeRecipe

pytestmark = needs_kernels

RECIPES = [QuantizeRecipe(method=m, rounding=r, float_dtype=f)
           for m in ("divide", "reciprocal") for r in ROUNDING_MODES for f in ("float32", "float64")]
OUT_DTYPES = ("int8", "uint8", "int16", "int4", "uint4")


def rid(r: QuantizeRecipe) -> str:
    return f"{r.method}-{r.float_dtype}-{r.rounding}"


def build(shape, y_dtype, scale, zp, recipe, axis=None, block_size=None, x_dtype="float32"):
    g = GraphBuilder()
    x = g.input("x", x_dtype, shape)
    y = g.node("quantize", [x], {"dtype": y_dtype, "quantize_recipe": recipe.to_dict()}, scale=scale,
               zero_point=zp, axis=axis, block_size=block_size, name="q")
    g.output(y)
    return g.build()


def special_values(scale: float, rng) -> np.ndarray:
    """Ties k + 1/2 (times the scale), their neighbours, zeros, subnormals,
    huge values, infinities and random values, float32."""
    s = np.float32(scale)
    k = np.arange(-300, 300, dtype=np.float32)
    ties = (k + np.float32(0.5)) * s
    near = np.concatenate([np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))])
    specials = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-38, 3e38, -3e38, np.inf, -np.inf, 1e10, -1e10,
                         2.0**40, -(2.0**40), 2.0**41, 8388608.5, -8388608.5], np.float32)
    rand = (rng.standard_normal(3000) * 200 * s).astype(np.float32)
    return np.concatenate([ties, near, specials, rand, k * s]).astype(np.float32)


@pytest.mark.parametrize("recipe", RECIPES, ids=rid)
def test_every_recipe(recipe, rng):
    for i, (scale, y_dtype) in enumerate([(0.25, "int8"), (0.1, "uint8"), (2.0**-7, "int16"), (3.0, "int4"),
                                          (0.37, "uint4")]):
        x = special_values(scale, rng)
        dt = dtypes.get(y_dtype)
        for zp in (dt.min, dt.max, (dt.min + dt.max + 1) // 2):
            model = build(x.shape, y_dtype, scale, zp, recipe)
            assert_all_backends_agree(model, x, threads=(1, 3) if i == 0 else (2,))


@pytest.mark.parametrize("recipe", RECIPES[:4], ids=rid)
def test_nan_is_the_reference_error(recipe):
    x = np.zeros(37, np.float32)
    for pos in (0, 5, 36):
        x[:] = 1.5
        x[pos] = np.nan
        model = build(x.shape, "int8", 0.1, 0, recipe)
        assert_all_backends_agree(model, x)      # the reference raises: every kernel run raises


AXIS_CASES = [((5, 7, 9), 0), ((5, 7, 9), 1), ((5, 7, 9), 2), ((300, 3), 1), ((3, 300), 1), ((6,), 0)]


@pytest.mark.parametrize("shape,axis", AXIS_CASES)
@pytest.mark.parametrize("recipe", RECIPES[::5], ids=rid)
def test_per_axis(shape, axis, recipe, rng):
    n = shape[axis]
    scale = rng.uniform(0.01, 0.5, n).astype(np.float32)
    zp = rng.integers(-128, 128, n)
    model = build(shape, "int8", scale, zp, recipe, axis=axis)
    x = (rng.standard_normal(shape) * 30).astype(np.float32)
    assert_all_backends_agree(model, x)


@pytest.mark.parametrize("shape,axis,block", [((8, 6), 0, 3), ((5, 12), 1, 5), ((4, 40, 3), 1, 16)])
def test_blocked(shape, axis, block, rng):
    nb = -(-shape[axis] // block)
    pshape = tuple(nb if i == axis else d for i, d in enumerate(shape))
    scale = rng.uniform(0.01, 0.5, pshape).astype(np.float32)
    zp = rng.integers(0, 16, pshape).astype(np.uint8)
    model = build(shape, "uint4", scale, zp, RECIPES[0], axis=axis, block_size=block)
    assert_all_backends_agree(model, (rng.standard_normal(shape) * 3).astype(np.float32))


def test_float16_input(rng):
    x = np.concatenate([(rng.standard_normal(500) * 50), [np.inf, -np.inf, 0.5, -0.5, 65504]]).astype(np.float16)
    model = build(x.shape, "int8", 0.5, -3, RECIPES[0], x_dtype="float16")
    assert_all_backends_agree(model, x)


@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (8,), (15,), (17,), (33,), (3, 0, 2)])
def test_sizes(shape, rng):
    model = build(shape, "int8", 0.1, 3, RECIPES[1])
    assert_all_backends_agree(model, (rng.standard_normal(shape) * 10).astype(np.float32))


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(RECIPES), st.sampled_from(OUT_DTYPES), st.floats(-20, 10), st.data())
def test_property(recipe, y_dtype, e, data):
    dt = dtypes.get(y_dtype)
    zp = data.draw(st.integers(dt.min, dt.max))
    x = np.array(data.draw(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=40)), np.float32)
    model = build(x.shape, y_dtype, float(np.float32(2.0**e)), zp, recipe)
    assert_all_backends_agree(model, x, threads=(1, 2))
