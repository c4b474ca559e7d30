"""The conv2d kernel (qnnref/_kernels/conv2d.py, include/qnnref/conv2d.h):
the packed GEMM per group over an im2col view of x, bit-exact with the
reference for every ISA and thread count: strides, dilations, asymmetric
padding (padded taps = x's zero point), groups, 1x1, int4/uint8 weights,
per-channel zero points, runtime weights and bias, REQUIRE failures.
Depthwise-eligible nodes may run the depthwise kernel instead; both are
"the conv2d kernel" here."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_all_backends_agree, needs_kernels
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnref import GraphBuilder, dtypes
from qnnref.arith import Recipe
from qnnref.interpreter import Model
from qnnref.ops.conv2d import output_size
from qnnref.profiles import PROFILES

pytestmark = needs_kernels

INT32_MAX = 2**31 - 1
RECIPES = [p.requant for p in PROFILES.values()] + [
    Recipe(kind="fixed_point", rounding="half_up", double_round="tosa"),
    Recipe(kind="float", rounding="half_away_from_zero", float_dtype="float64", scale_dtype="float64"),
]


def values(rng, dtype, shape, kind="random"):
    dt = dtypes.get(dtype)
    if kind == "extremes":
        return rng.choice([dt.min, dt.max], size=shape).astype(dt.numpy)
    return rng.integers(dt.min, dt.max, size=shape, endpoint=True).astype(dt.numpy)


def conv_graph(rng, x_shape, w_shape, *, x_dtype="int8", w_dtype="int8", y_dtype=None, zx=0, zw=0,
               per_channel=False, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), groups=1,
               w_constant=True, bias="constant", zy=0, s_y=None, recipe=None, act=(None, None), w=None,
               bias_values=None, kind="random"):
    c_out = w_shape[0]
    k = int(np.prod(w_shape[1:]))
    g = GraphBuilder()
    s_x = np.float32(0.02)
    s_w = rng.uniform(0.001, 0.01, c_out).astype(np.float32) if per_channel else np.float32(0.004)
    if s_y is None:
        s_y = float(s_x) * float(np.max(s_w)) * np.sqrt(k) * 150.0
    xi = g.input("x", x_dtype, x_shape, scale=s_x, zero_point=zx)
    w = values(rng, w_dtype, w_shape, kind) if w is None else w
    axis = 0 if per_channel else None
    wi = (g.constant("w", w, dtype=w_dtype, scale=s_w, zero_point=zw, axis=axis) if w_constant
          else g.input("w", w_dtype, w_shape, scale=s_w, zero_point=zw, axis=axis))
    ins = [xi, wi]
    bias_arr = None
    if bias is not None:
        bias_arr = (rng.integers(-(2**16), 2**16, c_out).astype(np.int32) if bias_values is None
                    else np.asarray(bias_values, np.int32))
        ins.append(g.constant("bias", bias_arr) if bias == "constant" else g.input("bias", "int32", (c_out,)))
    attrs = {"strides": list(strides), "dilations": list(dilations), "pads": list(pads), "groups": groups}
    if y_dtype is not None:
        attrs["dtype"] = y_dtype
    if recipe is not None:
        attrs["recipe"] = recipe.to_dict()
    if act[0] is not None:
        attrs["act_min"], attrs["act_max"] = act
    y = g.node("conv2d", ins, attrs, scale=s_y, zero_point=zy, name="conv")
    g.output(y)
    inputs = {"x": values(rng, x_dtype, x_shape, kind)}
    if not w_constant:
        inputs["w"] = w
    if bias == "runtime":
        inputs["bias"] = bias_arr
    return g.graph(), inputs


def check(graph, inputs):
    return assert_all_backends_agree(graph, inputs, expect_kernel="conv2d")


# ---------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------

GEOMETRIES = [
    # x [N, H, W, C], (C_out, KH, KW), strides, dilations, pads, groups
    ((1, 8, 8, 4), (6, 3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1),
    ((2, 9, 7, 6), (4, 2, 3), (2, 1), (1, 2), (0, 2, 1, 0), 2),
    ((1, 5, 5, 17), (33, 1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 1),      # 1x1: the plain matrix case
    ((1, 7, 6, 16), (20, 1, 1), (2, 2), (1, 1), (0, 0, 0, 0), 4),      # grouped 1x1, strided
    ((1, 4, 4, 3), (5, 5, 5), (3, 2), (1, 1), (3, 3, 3, 3), 1),        # kernel larger than x
    ((1, 11, 3, 8), (16, 3, 1), (1, 1), (3, 1), (4, 0, 2, 0), 1),
    ((3, 6, 6, 12), (12, 3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 3),
    ((1, 6, 6, 8), (8, 3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 8),        # depthwise
    ((1, 5, 6, 4), (8, 3, 3), (2, 2), (1, 1), (1, 0, 1, 2), 4),        # depthwise, multiplier 2
    ((1, 13, 13, 64), (32, 3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1),    # 169 rows, 576 deep, 2 panels
]


def w_shape_of(x_shape, w3, groups):
    return (w3[0], w3[1], w3[2], x_shape[3] // groups)


@pytest.mark.parametrize("x_shape,w3,strides,dilations,pads,groups", GEOMETRIES)
@pytest.mark.parametrize("w_dtype", ["int8", "uint8", "int4"])
def test_geometry(rng, x_shape, w3, strides, dilations, pads, groups, w_dtype):
    x_dtype = "uint8" if w_dtype == "uint8" else "int8"
    zx = int(rng.integers(-128, 128)) + (128 if x_dtype == "uint8" else 0)
    w_shape = w_shape_of(x_shape, w3, groups)
    dt = dtypes.get(w_dtype)
    zw = rng.integers(dt.min, dt.max, w_shape[0], endpoint=True)
    check(*conv_graph(rng, x_shape, w_shape, x_dtype=x_dtype, w_dtype=w_dtype, zx=zx, zw=zw, per_channel=True,
                      strides=strides, dilations=dilations, pads=pads, groups=groups))


@pytest.mark.parametrize("y_dtype", ["int8", "uint8", "int16"])
def test_output_dtypes_extreme_zero_points_and_values(rng, y_dtype):
    for x_dtype, zx, w_dtype, zw in (("int8", -128, "int8", 127), ("uint8", 255, "int4", -8), ("uint8", 0, "uint8", 255)):
        dt_y = dtypes.get(y_dtype)
        check(*conv_graph(rng, (2, 5, 6, 7), (9, 3, 2, 7), x_dtype=x_dtype, w_dtype=w_dtype, y_dtype=y_dtype,
                          zx=zx, zw=zw, pads=(2, 1, 0, 1), zy=dt_y.max, kind="extremes"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: f"{r.kind}-{r.rounding}-{r.double_round}")
def test_every_recipe(rng, recipe):
    check(*conv_graph(rng, (1, 6, 6, 5), (7, 3, 3, 5), zx=3, zw=rng.integers(-3, 3, 7), per_channel=True,
                      pads=(1, 1, 1, 1), recipe=recipe, act=(-50, 90)))


@pytest.mark.parametrize("bias", [None, "constant", "runtime"])
@pytest.mark.parametrize("w_dtype", ["int8", "int4"])
def test_runtime_weights_and_bias(rng, bias, w_dtype):
    check(*conv_graph(rng, (1, 5, 5, 6), (4, 3, 3, 3), w_dtype=w_dtype, zx=-5, zw=1, groups=2, pads=(1, 1, 1, 1),
                      w_constant=False, bias=bias))


def test_bias_overflow_defers_to_the_reference(rng):
    w = np.full((1, 1, 1, 2), 100, np.int8)
    for x00, fails in ((100, True), (99, False)):
        g, inputs = conv_graph(rng, (1, 1, 1, 2), (1, 1, 1, 2), w=w, bias_values=[INT32_MAX - 9999], s_y=64.0)
        inputs["x"] = np.array([x00, 0], np.int8).reshape(1, 1, 1, 2)
        assert (check(g, inputs) == {}) == fails


def test_unprovable_accumulator_bound_runs_on_the_reference(rng):
    # 1 x 1 x 33100 channels of |x - zp_x| <= 255 and |w - zp_w| = 255
    c = 33100
    g, _ = conv_graph(rng, (1, 1, 1, c), (1, 1, 1, c), x_dtype="uint8", w=np.full((1, 1, 1, c), 127, np.int8),
                      zw=-128, bias=None, s_y=2.0**16)
    plan = Model(g, backend="kernels").plan()
    assert plan[0]["runs"].startswith("reference") and "accumulator bound" in plan[0]["runs"]


def test_a_realistic_layer(rng):
    # 3x3 pad 1, 32 -> 40 channels on 20 x 20: blocks of rows, two panels + an edge panel
    check(*conv_graph(rng, (1, 20, 20, 32), (40, 3, 3, 32), x_dtype="uint8", zx=128, pads=(1, 1, 1, 1),
                      per_channel=True))


# ---------------------------------------------------------------------------
# Property test
# ---------------------------------------------------------------------------

@settings(max_examples=80, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 2), h=st.integers(1, 7), w=st.integers(1, 7),
       cg=st.sampled_from([1, 2, 3, 5, 8, 17]), groups=st.sampled_from([1, 1, 2, 3]),
       cout_g=st.sampled_from([1, 2, 7, 16, 17]), kh=st.integers(1, 3), kw=st.integers(1, 3),
       sh=st.integers(1, 2), sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
       pads=st.tuples(*[st.integers(0, 2)] * 4), x_dtype=st.sampled_from(["int8", "uint8"]),
       w_dtype=st.sampled_from(["int8", "uint8", "int4"]), y_dtype=st.sampled_from(["int8", "uint8", "int16"]),
       per_channel=st.booleans(), bias=st.sampled_from([None, "constant", "runtime"]),
       w_constant=st.booleans(), kind=st.sampled_from(["random", "extremes"]), recipe=st.sampled_from(RECIPES))
def test_property(seed, n, h, w, cg, groups, cout_g, kh, kw, sh, sw, dh, dw, pads, x_dtype, w_dtype, y_dtype,
                  per_channel, bias, w_constant, kind, recipe):
    if (output_size(h, kh, sh, dh, pads[0], pads[2]) < 1 or output_size(w, kw, sw, dw, pads[1], pads[3]) < 1):
        return
    rng = np.random.default_rng(seed)
    c_out = groups * cout_g
    dx, dwt = dtypes.get(x_dtype), dtypes.get(w_dtype)
    zx = int(rng.integers(dx.min, dx.max, endpoint=True))
    zw = rng.integers(dwt.min, dwt.max, c_out, endpoint=True) if per_channel else \
        int(rng.integers(dwt.min, dwt.max, endpoint=True))
    check(*conv_graph(rng, (n, h, w, cg * groups), (c_out, kh, kw, cg), x_dtype=x_dtype, w_dtype=w_dtype,
                      y_dtype=y_dtype, zx=zx, zw=zw, per_channel=per_channel, strides=(sh, sw),
                      dilations=(dh, dw), pads=pads, groups=groups, w_constant=w_constant, bias=bias,
                      zy=int(rng.integers(dtypes.get(y_dtype).min, dtypes.get(y_dtype).max)), recipe=recipe,
                      kind=kind))
