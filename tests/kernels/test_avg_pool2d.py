"""avg_pool2d kernels (scalar, AVX2; 1-3 threads) against the reference, bit for bit:
both paths (exact division by every rounding mode; requantization by every recipe)."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_all_backends_agree, needs_kernels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import pool_geometry_ok

from qnnref import GraphBuilder, Recipe, dtypes
from qnnref.arith import ROUNDING_MODES
from qnnref.interpreter import Model
from qnnref.profiles import PROFILES

pytestmark = needs_kernels

DTYPES = ("int8", "uint8", "int16", "int4", "uint4")
RECIPES = {name: p.requant for name, p in PROFILES.items()}
RECIPES.update({
    "tosa-double-round": Recipe(kind="fixed_point", rounding="half_up", double_round="tosa"),
    "fixed-half-to-even-f32": Recipe(kind="fixed_point", rounding="half_to_even", scale_dtype="float32"),
    "fixed-floor": Recipe(kind="fixed_point", rounding="floor"),
    "gemmlowp-half-down": Recipe(kind="fixed_point", rounding="half_down", double_round="gemmlowp"),
    "float64-half-away": Recipe(kind="float", rounding="half_away_from_zero", float_dtype="float64",
                                scale_dtype="float64"),
    "float32-truncate": Recipe(kind="float", rounding="truncate", float_dtype="float32"),
    "float32-ceil-f64-scale": Recipe(kind="float", rounding="ceil", float_dtype="float32", scale_dtype="float64"),
})


def pool_graph(shape, kernel, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), dtype="int8",
               include_pad=False, rounding=None, x_q=(0.5, 0), y_q=None, recipe=None, act=(None, None)):
    """One avg_pool2d node; y_q None: y quantized like x (the exact-division path)."""
    b = GraphBuilder()
    x = b.input("x", dtype, shape, scale=x_q[0], zero_point=x_q[1])
    attrs = {"kernel": list(kernel), "strides": list(strides), "dilations": list(dilations),
             "pads": list(pads), "count_include_pad": include_pad}
    if rounding is not None:
        attrs["rounding"] = rounding
    if recipe is not None:
        attrs["recipe"] = recipe.to_dict()
    if act[0] is not None:
        attrs["act_min"] = act[0]
    if act[1] is not None:
        attrs["act_max"] = act[1]
    y_q = x_q if y_q is None else y_q
    y = b.node("avg_pool2d", [x], attrs, name="pool", scale=y_q[0], zero_point=y_q[1])
    b.output(y)
    return b.graph()


def values(rng, dtype, shape, kind="random"):
    dt = dtypes.get(dtype)
    if kind == "extremes":
        return rng.choice([dt.min, dt.max], size=shape).astype(dt.numpy)
    return rng.integers(dt.min, dt.max, size=shape, endpoint=True).astype(dt.numpy)


GEOMETRIES = [  # kernel, strides, dilations, pads
    ((3, 3), (2, 2), (1, 1), (1, 1, 1, 1)),
    ((2, 2), (2, 2), (1, 1), (0, 0, 0, 0)),
    ((3, 3), (1, 1), (2, 2), (2, 0, 1, 2)),
    ((1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),
    ((5, 2), (3, 1), (1, 3), (4, 1, 0, 3)),
    ((7, 7), (1, 1), (1, 1), (3, 3, 3, 3)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ROUNDING_MODES)
@pytest.mark.parametrize("include_pad", [False, True])
def test_same_quantization_every_rounding_mode(rng, dtype, mode, include_pad):
    dt = dtypes.get(dtype)
    shape = (2, 5, 6, 33)
    for zp in (dt.min, dt.max, int(rng.integers(dt.min, dt.max))):
        g = pool_graph(shape, (3, 3), (2, 2), (1, 1), (1, 2, 1, 0), dtype, include_pad, mode, x_q=(0.5, zp))
        for kind in ("random", "extremes"):
            assert_all_backends_agree(g, values(rng, dtype, shape, kind), threads=(1, 3))


@pytest.mark.parametrize("channels", [1, 3, 17, 33])
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("requantize", [False, True])
def test_geometries_and_channels(rng, channels, geometry, requantize):
    kernel, strides, dilations, pads = geometry
    shape = (2, 5, 6, channels)
    for include_pad in (False, True):
        g = pool_graph(shape, kernel, strides, dilations, pads, "int8", include_pad, x_q=(0.5, -3),
                       y_q=(0.3, 7) if requantize else None)
        assert_all_backends_agree(g, values(rng, "int8", shape))


@pytest.mark.parametrize("recipe", sorted(RECIPES))
@pytest.mark.parametrize("dtype", ("int8", "uint8", "int16", "uint4"))
def test_requantize_every_recipe(rng, recipe, dtype):
    dt = dtypes.get(dtype)
    shape = (1, 7, 5, 19)
    for x_q, y_q in (((0.5, dt.min), (0.25, dt.max)), ((0.02, dt.max), (0.7, dt.min)),
                     ((0.1, (dt.min + dt.max) // 2), (0.1, 0 if dt.min < 0 else 1))):
        for include_pad in (False, True):
            g = pool_graph(shape, (3, 2), (2, 1), (1, 2), (1, 1, 2, 1), dtype, include_pad, x_q=x_q, y_q=y_q,
                           recipe=RECIPES[recipe])
            for kind in ("random", "extremes"):
                assert_all_backends_agree(g, values(rng, dtype, shape, kind), threads=(1, 2))


@pytest.mark.parametrize("dtype", ("int8", "uint8", "int16"))
def test_fused_activation_range(rng, dtype):
    dt = dtypes.get(dtype)
    lo, hi = dt.min + (dt.max - dt.min) // 3, dt.max - (dt.max - dt.min) // 4
    shape = (1, 6, 5, 24)
    for act in ((lo, hi), (lo, None), (None, hi)):
        for y_q in (None, (0.2, 1)):
            g = pool_graph(shape, (2, 3), (1, 2), (1, 1), (0, 1, 1, 0), dtype, x_q=(0.5, 0), y_q=y_q, act=act)
            assert_all_backends_agree(g, values(rng, dtype, shape))


def test_gemmlowp_overflow_defers_to_the_reference(rng):
    # s_x / (s_y * 1) = 2^16: shift 17, and acc * 2^17 overflows int32 for |acc| >= 2^14
    g = pool_graph((1, 2, 2, 9), (1, 1), dtype="int16", x_q=(1.0, 0), y_q=(2.0**-16, 0),
                   recipe=RECIPES["fixed-point-double-round"])
    assert_all_backends_agree(g, np.full((1, 2, 2, 9), 20000, np.int16))     # the reference raises
    assert_all_backends_agree(g, np.full((1, 2, 2, 9), 3, np.int16))         # fits: a result


def test_huge_window_runs_on_the_reference():
    # 200 x 200 taps of int16 may overflow the int32 window sum: the kernel refuses it
    g = pool_graph((1, 200, 200, 1), (200, 200), dtype="int16", x_q=(0.5, 0))
    (row,) = Model(g, backend="kernels").plan()
    assert row["runs"].startswith("reference"), row
    g = pool_graph((1, 200, 200, 1), (200, 200), dtype="int8", x_q=(0.5, 0))
    assert_all_backends_agree(g, np.full((1, 200, 200, 1), -128, np.int8), threads=(1,))


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_large_windows_at_and_near_ties(rng, mode):
    # 4096-tap windows of int16: quotients near every half-integer, positive
    # and negative, exercise the AVX2 division's float estimate and corrections
    C = 20
    base = rng.integers(-32768, 32766, size=C)
    base[:4] = [-32768, 32766, -1, 0]
    half = np.zeros((64 * 64, C), np.int64)
    half[:2048] = 1                                   # sum = 4096 * base + 2048: a tie
    for c in range(C):
        half[:, c] = rng.permutation(half[:, c])
    x = (base + half).reshape(1, 64, 64, C)
    x[0, 0, 0, 1::3] += 1                             # ... and one above a tie
    x[0, 0, 1, 2::3] = np.minimum(x[0, 0, 1, 2::3], 32766) - 1    # ... and one below
    x = np.clip(x, -32768, 32767).astype(np.int16)
    for include_pad in (False, True):
        g = pool_graph(x.shape, (64, 64), dtype="int16", include_pad=include_pad, rounding=mode,
                       pads=(0, 0, 0, 0) if not include_pad else (1, 0, 0, 1), x_q=(0.5, -7))
        assert_all_backends_agree(g, x, threads=(1,))


def test_4bit_window_of_2_to_the_18_taps(rng):
    x = rng.integers(0, 15, size=(1, 512, 512, 9), endpoint=True).astype(np.uint8)
    x[..., 0] = 15
    for mode in ROUNDING_MODES:
        g = pool_graph(x.shape, (512, 512), dtype="uint4", rounding=mode, x_q=(0.5, 3))
        assert_all_backends_agree(g, x, threads=(1,))


def test_empty_batch():
    g = pool_graph((0, 4, 4, 3), (2, 2))
    assert_all_backends_agree(g, np.zeros((0, 4, 4, 3), np.int8))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(H=st.integers(1, 7), W=st.integers(1, 7), C=st.sampled_from([1, 2, 7, 8, 9, 15, 16, 17, 33]),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
       dh=st.integers(1, 3), dw=st.integers(1, 3), pads=st.tuples(*[st.integers(0, 3)] * 4),
       dtype=st.sampled_from(DTYPES), include_pad=st.booleans(), mode=st.sampled_from(ROUNDING_MODES),
       recipe=st.sampled_from([None] + sorted(RECIPES)), seed=st.integers(0, 2**32 - 1))
def test_random(H, W, C, kh, kw, sh, sw, dh, dw, pads, dtype, include_pad, mode, recipe, seed):
    if not pool_geometry_ok(H, W, (kh, kw), (sh, sw), (dh, dw), pads):
        return
    rng = np.random.default_rng(seed)
    dt = dtypes.get(dtype)
    x_zp = int(rng.integers(dt.min, dt.max, endpoint=True))
    shape = (1, H, W, C)
    if recipe is None:
        g = pool_graph(shape, (kh, kw), (sh, sw), (dh, dw), pads, dtype, include_pad, mode, x_q=(0.5, x_zp))
    else:
        y_q = (float(np.float32(rng.uniform(0.05, 2.0))), int(rng.integers(dt.min, dt.max, endpoint=True)))
        g = pool_graph(shape, (kh, kw), (sh, sw), (dh, dw), pads, dtype, include_pad, x_q=(0.5, x_zp), y_q=y_q,
                       recipe=RECIPES[recipe])
    assert_all_backends_agree(g, values(rng, dtype, shape), threads=(1, 3))
