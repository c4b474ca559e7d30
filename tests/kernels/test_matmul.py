"""The matmul kernel (qnnref/_kernels/matmul.py, include/qnnref/gemm.h):
bit-exact with the reference for every ISA and thread count, every dtype
combination, zero point, recipe and shape edge (sizes around the 16-column
panel and the 6-row tile, int4 weights packed as nibbles, batches, runtime
weights and bias), and REQUIRE failures deferred to the reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_all_backends_agree, needs_kernels
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnref import GraphBuilder, dtypes
from qnnref.arith import ROUNDING_MODES, Recipe
from qnnref.interpreter import Model
from qnnref.profiles import PROFILES

pytestmark = needs_kernels

INT32_MAX = 2**31 - 1

#: every profile's recipe, and the recipe kinds no profile uses
RECIPES = [p.requant for p in PROFILES.values()] + [
    Recipe(kind="fixed_point", rounding="half_up", double_round="tosa"),
    Recipe(kind="fixed_point", rounding="half_to_even", double_round="gemmlowp"),
    Recipe(kind="fixed_point", rounding="floor", scale_dtype="float32"),
    Recipe(kind="float", rounding="half_away_from_zero", float_dtype="float64", scale_dtype="float64"),
    Recipe(kind="float", rounding="truncate", float_dtype="float32"),
]


def values(rng, dtype, shape, kind="random"):
    dt = dtypes.get(dtype)
    if kind == "extremes":
        return rng.choice([dt.min, dt.max], size=shape).astype(dt.numpy)
    return rng.integers(dt.min, dt.max, size=shape, endpoint=True).astype(dt.numpy)


def zero_point(rng, dtype, kind, n=None):
    dt = dtypes.get(dtype)
    z = {"min": dt.min, "max": dt.max, "zero": max(dt.min, 0)}.get(kind)
    if z is None:
        return int(rng.integers(dt.min, dt.max, endpoint=True)) if n is None else \
            rng.integers(dt.min, dt.max, size=n, endpoint=True)
    return z if n is None else np.full(n, z)


def matmul_graph(rng, a_shape, b_shape, *, a_dtype="int8", b_dtype="int8", y_dtype=None, za=0, zb=0,
                 per_column=False, b_constant=True, bias="constant", zy=0, s_y=None, recipe=None,
                 act=(None, None), b=None, bias_values=None):
    """(graph, inputs) of one matmul node; s_y defaults to a scale that keeps
    typical results inside the output range."""
    k, n = b_shape[-2:]
    g = GraphBuilder()
    s_a = np.float32(0.02)
    s_b = rng.uniform(0.001, 0.01, n).astype(np.float32) if per_column else np.float32(0.004)
    if s_y is None:
        s_y = float(s_a) * float(np.max(s_b)) * math.sqrt(k) * 150.0
    ai = g.input("a", a_dtype, a_shape, scale=s_a, zero_point=za)
    b = values(rng, b_dtype, b_shape) if b is None else b
    axis = len(b_shape) - 1 if per_column else None
    if b_constant:
        bi = g.constant("b", b, dtype=b_dtype, scale=s_b, zero_point=zb, axis=axis)
    else:
        bi = g.input("b", b_dtype, b_shape, scale=s_b, zero_point=zb, axis=axis)
    ins = [ai, bi]
    bias_arr = None
    if bias is not None:
        bias_arr = (rng.integers(-(2**16), 2**16, n).astype(np.int32) if bias_values is None
                    else np.asarray(bias_values, np.int32))
        ins.append(g.constant("bias", bias_arr) if bias == "constant" else g.input("bias", "int32", (n,)))
    attrs = {}
    if y_dtype is not None:
        attrs["dtype"] = y_dtype
    if recipe is not None:
        attrs["recipe"] = recipe.to_dict()
    if act[0] is not None:
        attrs["act_min"] = act[0]
    if act[1] is not None:
        attrs["act_max"] = act[1]
    y = g.node("matmul", ins, attrs, scale=s_y, zero_point=zy, name="mm")
    g.output(y)
    inputs = {"a": values(rng, a_dtype, a_shape)}
    if not b_constant:
        inputs["b"] = b
    if bias == "runtime":
        inputs["bias"] = bias_arr
    return g.graph(), inputs


def check(graph, inputs):
    return assert_all_backends_agree(graph, inputs, expect_kernel="matmul")


# ---------------------------------------------------------------------------
# Shapes around the register tile (6 rows) and panel (16 columns), every dtype
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("a_dtype", ["int8", "uint8"])
@pytest.mark.parametrize("b_dtype", ["int8", "uint8", "int4"])
@pytest.mark.parametrize("mkn", [(1, 1, 1), (1, 7, 17), (7, 15, 16), (13, 33, 31), (6, 64, 48), (17, 9, 33)])
def test_shapes_and_dtypes(rng, a_dtype, b_dtype, mkn):
    m, k, n = mkn
    za = zero_point(rng, a_dtype, "random")
    zb = zero_point(rng, b_dtype, "random", n)
    check(*matmul_graph(rng, (m, k), (k, n), a_dtype=a_dtype, b_dtype=b_dtype, za=za, zb=zb, per_column=True))


@pytest.mark.parametrize("y_dtype", ["int8", "uint8", "int16"])
@pytest.mark.parametrize("zp_kind", ["min", "max", "zero"])
def test_output_dtypes_and_extreme_zero_points(rng, y_dtype, zp_kind):
    for a_dtype, b_dtype in (("int8", "int8"), ("uint8", "int4"), ("uint8", "uint8")):
        za = zero_point(rng, a_dtype, zp_kind)
        zb = zero_point(rng, b_dtype, zp_kind)
        zy = zero_point(rng, y_dtype, zp_kind)
        check(*matmul_graph(rng, (9, 31), (31, 19), a_dtype=a_dtype, b_dtype=b_dtype, y_dtype=y_dtype,
                            za=za, zb=zb, zy=zy))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: f"{r.kind}-{r.rounding}-{r.double_round}-{r.float_dtype}")
def test_every_recipe(rng, recipe):
    # multipliers below and above 1 (s_y small): rounding ties and gemmlowp's left shift
    for s_y in (None, 0.0000113):
        check(*matmul_graph(rng, (8, 21), (21, 18), a_dtype="uint8", za=131, zb=rng.integers(-5, 5, 18),
                            per_column=True, recipe=recipe, s_y=s_y, y_dtype="int16"))


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_every_rounding_mode(rng, rounding):
    for kind in ("fixed_point", "float"):
        recipe = Recipe(kind=kind, rounding=rounding)
        # s_y = 0.25 * s_a * s_b: results are quarter-integers, ties included
        g, inputs = matmul_graph(rng, (5, 3), (3, 7), za=0, zb=0, s_y=0.02 * 0.004 * 4, recipe=recipe,
                                 b=values(rng, "int8", (3, 7)))
        inputs["a"] = rng.integers(-3, 4, (5, 3)).astype(np.int8)
        check(g, inputs)


def test_all_extreme_values(rng):
    for a_dtype, b_dtype in (("int8", "int8"), ("uint8", "uint8"), ("uint8", "int4"), ("int8", "int4")):
        for zp_kind in ("min", "max"):
            za = zero_point(rng, a_dtype, zp_kind)
            zb = zero_point(rng, b_dtype, "max" if zp_kind == "min" else "min", 35)
            b = values(rng, b_dtype, (40, 35), "extremes")
            g, inputs = matmul_graph(rng, (14, 40), (40, 35), a_dtype=a_dtype, b_dtype=b_dtype, za=za, zb=zb,
                                     per_column=True, b=b, y_dtype="int16")
            inputs["a"] = values(rng, a_dtype, (14, 40), "extremes")
            check(g, inputs)


def test_every_a_value_against_int4_extremes():
    rng = np.random.default_rng(0)
    for a_dtype, za in (("int8", -128), ("uint8", 255)):
        dt = dtypes.get(a_dtype)
        a = np.arange(dt.min, dt.max + 1).astype(dt.numpy).reshape(16, 16)
        b = np.where(np.arange(16 * 3).reshape(16, 3) % 2, 7, -8).astype(np.int8)
        g, inputs = matmul_graph(rng, (16, 16), (16, 3), a_dtype=a_dtype, b_dtype="int4", za=za,
                                 zb=np.array([-8, 7, 0]), per_column=True, b=b, y_dtype="int16", s_y=0.05)
        inputs["a"] = a
        check(g, inputs)


def test_fused_activation_range(rng):
    check(*matmul_graph(rng, (7, 20), (20, 17), act=(-20, 50), zy=3))


def test_blocking_of_rows_and_panels(rng):
    # K = 4100: A blocks of 30 rows and chunks of 11 panels (gemm_driver.h); M and N cross both
    check(*matmul_graph(rng, (40, 4100), (4100, 200), a_dtype="uint8", za=120, zb=3, bias=None))


# ---------------------------------------------------------------------------
# Batches, runtime weights and bias
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("a_shape,b_shape", [
    ((2, 3, 5, 9), (9, 18)),            # 2-D b: one GEMM over all rows
    ((2, 1, 5, 9), (3, 9, 18)),         # broadcast both ways
    ((5, 9), (4, 9, 18)),               # a broadcast over b's batch
    ((3, 7, 9), (3, 9, 18)),
])
@pytest.mark.parametrize("b_dtype", ["int8", "int4"])
@pytest.mark.parametrize("b_constant", [True, False])
def test_batches(rng, a_shape, b_shape, b_dtype, b_constant):
    zb = zero_point(rng, b_dtype, "random", b_shape[-1])
    check(*matmul_graph(rng, a_shape, b_shape, b_dtype=b_dtype, za=-7, zb=zb, per_column=True,
                        b_constant=b_constant))


@pytest.mark.parametrize("bias", [None, "constant", "runtime"])
def test_runtime_weights_and_bias(rng, bias):
    for b_dtype in ("uint8", "int4"):
        check(*matmul_graph(rng, (11, 23), (23, 29), b_dtype=b_dtype, za=3, zb=1, b_constant=False, bias=bias))


def test_empty_output(rng):
    g, inputs = matmul_graph(rng, (0, 5), (5, 3))
    (y,) = check(g, inputs).values()
    assert y.shape == (0, 3)


# ---------------------------------------------------------------------------
# REQUIRE failures and the accumulator bound
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bias", ["constant", "runtime"])
@pytest.mark.parametrize("sign", [1, -1])
def test_bias_overflow_defers_to_the_reference(rng, bias, sign):
    b = np.array([[100], [5]], np.int8)
    big = INT32_MAX - 9999 if sign > 0 else -INT32_MAX - 1 + 9999
    for a00, fails in ((sign * 100, True), (sign * 99, False)):
        g, inputs = matmul_graph(rng, (1, 2), (2, 1), b=b, bias=bias, bias_values=[big], s_y=64.0)
        inputs["a"] = np.array([[a00, 0]], np.int8)
        ref = check(g, inputs)
        assert (ref == {}) == fails


def test_gemmlowp_overflow_defers_to_the_reference(rng):
    # multiplier > 1: gemmlowp shifts acc left first; large sums do not fit int32
    recipe = Recipe(kind="fixed_point", rounding="half_up", double_round="gemmlowp")
    g, inputs = matmul_graph(rng, (3, 64), (64, 5), recipe=recipe, s_y=0.02 * 0.004 / 3000, y_dtype="int16",
                             b=np.full((64, 5), 127, np.int8))
    inputs["a"] = np.full((3, 64), 127, np.int8)
    assert check(g, inputs) == {}


def test_unprovable_accumulator_bound_runs_on_the_reference(rng):
    # K = 33100 and |a - zp_a|, |b - zp_b| up to 255: the bound 255 * 255 * K exceeds 2^31
    k = 33100
    g, inputs = matmul_graph(rng, (2, k), (k, 1), a_dtype="uint8", b_dtype="int8", za=0, zb=-128,
                             b=np.full((k, 1), 127, np.int8), bias=None, s_y=2.0**16)
    plan = Model(g, backend="kernels").plan()
    assert plan[0]["runs"].startswith("reference") and "accumulator bound" in plan[0]["runs"]
    # a constant b whose actual columns are small is provable at that K
    g, inputs = matmul_graph(rng, (2, k), (k, 1), b=np.zeros((k, 1), np.int8), zb=0, bias=None)
    assert Model(g, backend="kernels").plan()[0]["runs"].startswith("kernel")


# ---------------------------------------------------------------------------
# Property test
# ---------------------------------------------------------------------------

@settings(max_examples=100, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1),
       a_dtype=st.sampled_from(["int8", "uint8"]),
       b_dtype=st.sampled_from(["int8", "int4", "uint8"]),
       y_dtype=st.sampled_from(["int8", "uint8", "int16"]),
       m=st.sampled_from([1, 2, 5, 6, 7, 12, 13, 19]), k=st.sampled_from([1, 2, 3, 7, 8, 9, 16, 17, 31, 33, 64]),
       n=st.sampled_from([1, 3, 15, 16, 17, 32, 33, 50]),
       batch=st.sampled_from([(), (2,), (2, 1)]),
       per_column=st.booleans(), bias=st.sampled_from([None, "constant", "runtime"]),
       b_constant=st.booleans(), kind=st.sampled_from(["random", "extremes"]),
       zp_kind=st.sampled_from(["random", "min", "max", "zero"]),
       recipe=st.sampled_from(RECIPES), act=st.booleans())
def test_property(seed, a_dtype, b_dtype, y_dtype, m, k, n, batch, per_column, bias, b_constant, kind, zp_kind,
                  recipe, act):
    rng = np.random.default_rng(seed)
    b_shape = ((2,) if batch and not b_constant else ()) + (k, n)
    za = zero_point(rng, a_dtype, zp_kind)
    zb = zero_point(rng, b_dtype, zp_kind, n if per_column else None)
    dt_y = dtypes.get(y_dtype)
    act_range = tuple(sorted(int(v) for v in rng.integers(dt_y.min, dt_y.max, 2, endpoint=True))) if act \
        else (None, None)
    g, inputs = matmul_graph(rng, batch + (m, k), b_shape, a_dtype=a_dtype, b_dtype=b_dtype, y_dtype=y_dtype,
                             za=za, zb=zb, per_column=per_column, b_constant=b_constant, bias=bias,
                             zy=zero_point(rng, y_dtype, "random"), recipe=recipe, act=act_range,
                             b=values(rng, b_dtype, b_shape, kind))
    inputs["a"] = values(rng, a_dtype, batch + (m, k), kind)
    check(g, inputs)


# ---------------------------------------------------------------------------
# The tile-wide requantization (requantize_rows): per-column multipliers on
# both sides of 1 (the AVX2 narrow fixed-point path needs every shift <= 0
# in the range it requantizes, else the 64-bit path runs), and quotients
# near the int32 limits on the narrow path
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("recipe", RECIPES[:1] + RECIPES[-5:-2],
                         ids=lambda r: f"{r.kind}-{r.rounding}-{r.double_round}")
@pytest.mark.parametrize("above_one", ["none", "some", "all"])
def test_tile_requantization_multipliers_around_one(rng, recipe, above_one):
    n, k = 40, 23
    s_b = rng.uniform(0.001, 0.01, n).astype(np.float32)
    # combined scale s_a * s_b / s_y: below 1 except on the chosen columns
    s_y = float(np.max(s_b)) * 0.02 * 20.0
    if above_one != "none":
        cols = slice(None) if above_one == "all" else slice(3, n, 4)
        s_b[cols] = np.float32(s_y / 0.02 * 1.7)
    g = GraphBuilder()
    a = g.input("a", "uint8", (13, k), scale=0.02, zero_point=7)
    b = g.constant("b", values(rng, "int8", (k, n)), dtype="int8", scale=s_b, zero_point=0, axis=1)
    y = g.node("matmul", [a, b], {"dtype": "int16", "recipe": recipe.to_dict()}, scale=s_y, zero_point=-3)
    g.output(y)
    check(g.graph(), {"a": values(rng, "uint8", (13, k))})


@pytest.mark.parametrize("y_dtype", ["int8", "int16"])
def test_narrow_requantization_near_int32_limits(rng, y_dtype):
    # |acc| up to ~1.06e9 (K = 32768, extreme values) with a multiplier just
    # below 1: shift 0, quotients near +-2^30 on the 32-bit clamp path
    m, k, n = 7, 32768, 17
    a_vals = rng.choice(np.array([0, 255], np.uint8), (m, k))
    b_vals = rng.choice(np.array([-127, 127], np.int8), (k, n))
    b_vals[:, 0] = 127                       # column 0: all positive, acc ~ +255 * 127 * K / 2
    g = GraphBuilder()
    ai = g.input("a", "uint8", (m, k), scale=0.5, zero_point=0)
    bi = g.constant("b", b_vals, dtype="int8", scale=np.full(n, 0.25, np.float32), zero_point=0, axis=1)
    y = g.node("matmul", [ai, bi], {"dtype": y_dtype}, scale=0.125 * 1.0001, zero_point=1)
    g.output(y)
    a_vals[0] = 255
    check(g.graph(), {"a": a_vals})
