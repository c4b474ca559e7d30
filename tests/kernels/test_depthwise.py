"""The depthwise conv2d kernel (qnnref/_kernels/depthwise.py, include/qnnref/depthwise.h):
bit-exact with the reference conv2d for every ISA and thread count.

The kernel is called by the conv2d Kernel glue (qnnref/_kernels/conv2d.py).
Where that glue is not registered, this module installs a test-only conv2d
Kernel that runs depthwise nodes on the depthwise kernel, so that the same
tests (through assert_all_backends_agree) run either way.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_all_backends_agree, needs_kernels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qnnref import GraphBuilder, RuntimeCheckError, dtypes
from qnnref import _kernels
from qnnref.arith import ROUNDING_MODES, Recipe
from qnnref.interpreter import Model
from qnnref.profiles import PROFILES

pytestmark = needs_kernels

INT32_MAX = 2**31 - 1
W_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int4": (-8, 7)}


class DepthwiseOnly(_kernels.Kernel):
    """Test-only conv2d glue: depthwise nodes on the depthwise kernel, the rest on the reference."""

    op = "conv2d"

    def prepare(self, ctx, isa):
        from qnnref._kernels import depthwise
        return depthwise.prepare(ctx, isa)

    def run(self, ctx, state, args, isa, threads):
        from qnnref._kernels import depthwise
        return depthwise.run(ctx, state, args, isa, threads)


@pytest.fixture(autouse=True, scope="module")
def conv2d_glue():
    if not _kernels.available() or "conv2d" in _kernels.load_glue():
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(_kernels.KERNELS, "conv2d", DepthwiseOnly())
        yield


# ---------------------------------------------------------------------------
# Building one depthwise node
# ---------------------------------------------------------------------------

def depthwise_graph(rng, x_shape, kernel, *, x_dtype="int8", zx=0, s_x=0.05, multiplier=1,
                    w_dtype="int8", w=None, zw="random", s_w=None, per_channel=True,
                    bias="constant", y_dtype=None, s_y=0.05, zy=0, strides=(1, 1), dilations=(1, 1),
                    pads=(0, 0, 0, 0), recipe=None, act=(None, None), profile="qnnref"):
    """A one-node depthwise conv2d graph (groups = C_in). ``bias``: None,
    "constant", "input" (a graph input named "bias") or an int32 array
    (constant). ``zw``: "random", "min", "max" or a value / array."""
    c_in = x_shape[3]
    c_out = c_in * multiplier
    lo, hi = W_RANGES[w_dtype]
    if w is None:
        w = rng.integers(lo, hi, (c_out, *kernel, 1), endpoint=True)
    w = np.asarray(w).astype(dtypes.get(w_dtype).numpy)
    n_zw = c_out if per_channel else None
    if isinstance(zw, str):
        zw = {"min": np.full(c_out, lo), "max": np.full(c_out, hi),
              "random": rng.integers(lo, hi, c_out, endpoint=True)}[zw]
    if s_w is None:
        s_w = 2.0 ** -rng.integers(4, 9, c_out) * rng.choice([1.0, 1.5, 1.2345], c_out)
    s_w = np.broadcast_to(np.asarray(s_w, np.float32), (c_out,)).copy()
    s_w = s_w if per_channel else float(s_w[0])
    zw = np.broadcast_to(np.asarray(zw), (c_out,))
    zw = zw.copy() if per_channel else int(zw[0])
    g = GraphBuilder(profile=profile)
    xi = g.input("x", x_dtype, x_shape, scale=s_x, zero_point=zx)
    wi = g.constant("w", w, dtype=w_dtype, scale=s_w, zero_point=zw, axis=0 if n_zw else None)
    ins = [xi, wi]
    if isinstance(bias, str) and bias == "constant":
        ins.append(g.constant("bias", rng.integers(-20000, 20000, c_out).astype(np.int32)))
    elif isinstance(bias, str) and bias == "input":
        ins.append(g.input("bias", "int32", (c_out,)))
    elif bias is not None:
        ins.append(g.constant("bias", np.asarray(bias, np.int32)))
    attrs = {"groups": c_in, "strides": list(strides), "dilations": list(dilations), "pads": list(pads)}
    if y_dtype is not None:
        attrs["dtype"] = y_dtype
    if recipe is not None:
        attrs["recipe"] = recipe.to_dict()
    if act[0] is not None:
        attrs["act_min"] = act[0]
    if act[1] is not None:
        attrs["act_max"] = act[1]
    y = g.node("conv2d", ins, attrs, scale=s_y, zero_point=zy, name="dw")
    g.output(y)
    return g.graph()


def random_x(rng, dtype, shape):
    dt = dtypes.get(dtype)
    return rng.integers(dt.min, dt.max, shape, endpoint=True).astype(dt.numpy)


def agree(graph, inputs):
    """Every backend, ISA and thread count gives the reference's output, and the node ran a kernel."""
    return assert_all_backends_agree(graph, inputs, expect_kernel="conv2d")


def context(graph):
    return Model(graph, backend="reference")._contexts[0]


# ---------------------------------------------------------------------------
# Values: every input value, extreme zero points and weights
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("x_dtype", ["int8", "uint8"])
@pytest.mark.parametrize("zx_kind", ["min", "max"])
@pytest.mark.parametrize("w_dtype", ["int8", "uint8", "int4"])
def test_every_value_extreme_zero_points(rng, x_dtype, zx_kind, w_dtype):
    dt = dtypes.get(x_dtype)
    zx = dt.min if zx_kind == "min" else dt.max
    shape = (1, 6, 7, 37)                      # every value of x appears; 37 = 2*16 + 5 channels
    x = np.resize(np.arange(dt.min, dt.max + 1), shape).astype(dt.numpy)
    lo, hi = W_RANGES[w_dtype]
    # weights at their extremes, zero points at the opposite extreme: |w - zp_w| = 255 (15 for int4)
    w = np.where(rng.random((37, 3, 3, 1)) < 0.5, lo, hi)
    zw = np.where(np.arange(37) % 2, lo, hi)
    for bias in (None, "constant"):
        graph = depthwise_graph(rng, shape, (3, 3), x_dtype=x_dtype, zx=zx, w_dtype=w_dtype, w=w, zw=zw,
                                s_x=0.5, s_w=np.full(37, 2.0**-6, np.float32), s_y=64.0, y_dtype="int16",
                                bias=bias, pads=(1, 1, 1, 1))
        agree(graph, x)


@pytest.mark.parametrize("y_dtype", ["int8", "uint8", "int16"])
def test_saturating_outputs(rng, y_dtype):
    # large multipliers: most outputs clamp at the dtype's ends
    shape = (2, 5, 5, 19)
    graph = depthwise_graph(rng, shape, (3, 3), s_x=1.0, s_y=0.01, y_dtype=y_dtype, zy=3, pads=(1, 0, 1, 2))
    agree(graph, random_x(rng, "int8", shape))


# ---------------------------------------------------------------------------
# Shapes: channel counts around the vector widths, kernels, strides,
# dilations, padding
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 2, 7, 8, 9, 15, 16, 17, 24, 31, 33, 48, 65])
def test_channel_counts(rng, channels):
    shape = (1, 5, 6, channels)
    graph = depthwise_graph(rng, shape, (3, 3), zx=-3, pads=(1, 1, 1, 1))
    agree(graph, random_x(rng, "int8", shape))


GEOMETRIES = [
    # kernel, strides, dilations, pads [top, left, bottom, right], input H x W
    ((1, 1), (1, 1), (1, 1), (0, 0, 0, 0), (4, 5)),
    ((3, 3), (1, 1), (1, 1), (0, 0, 0, 0), (5, 5)),
    ((3, 3), (2, 2), (1, 1), (0, 1, 1, 0), (7, 8)),
    ((5, 5), (1, 1), (2, 2), (4, 4, 4, 4), (6, 6)),
    ((2, 3), (1, 2), (1, 1), (1, 0, 0, 2), (5, 7)),
    ((1, 7), (1, 1), (1, 1), (0, 3, 0, 3), (3, 9)),
    ((7, 1), (3, 1), (1, 1), (3, 0, 3, 0), (9, 2)),
    ((3, 3), (1, 1), (1, 1), (1, 1, 1, 1), (1, 1)),             # one pixel, mostly padding
    ((3, 3), (1, 1), (1, 1), (4, 5, 3, 4), (2, 3)),             # whole rows and columns of padding only
    ((3, 2), (3, 2), (3, 2), (2, 1, 3, 3), (8, 6)),
    ((4, 4), (2, 3), (1, 1), (0, 0, 0, 0), (4, 11)),            # even kernel, strided
]


@pytest.mark.parametrize("kernel,strides,dilations,pads,hw", GEOMETRIES)
def test_geometry(rng, kernel, strides, dilations, pads, hw):
    shape = (2, *hw, 21)
    graph = depthwise_graph(rng, shape, kernel, x_dtype="uint8", zx=131, w_dtype="uint8", strides=strides,
                            dilations=dilations, pads=pads)
    agree(graph, random_x(rng, "uint8", shape))


@pytest.mark.parametrize("multiplier,channels", [(2, 1), (2, 8), (3, 5), (4, 9)])
def test_channel_multiplier(rng, multiplier, channels):
    shape = (1, 6, 5, channels)
    graph = depthwise_graph(rng, shape, (3, 3), multiplier=multiplier, zx=7, pads=(1, 1, 1, 1), strides=(2, 1))
    agree(graph, random_x(rng, "int8", shape))


def test_empty_batch(rng):
    graph = depthwise_graph(rng, (0, 4, 4, 20), (3, 3), pads=(1, 1, 1, 1))
    out = agree(graph, np.zeros((0, 4, 4, 20), np.int8))
    assert next(iter(out.values())).shape == (0, 4, 4, 20)


def test_non_contiguous_input(rng):
    shape = (1, 6, 5, 18)
    graph = depthwise_graph(rng, shape, (3, 3), pads=(1, 1, 1, 1))
    big = random_x(rng, "int8", (1, 6, 10, 36))
    agree(graph, big[:, :, ::2, ::2])


# ---------------------------------------------------------------------------
# Requantization: every recipe and rounding mode, output dtypes, activation,
# per-tensor and per-channel weights
# ---------------------------------------------------------------------------

RECIPES = [pytest.param(p.requant, id=f"profile-{name}") for name, p in PROFILES.items()]
RECIPES += [pytest.param(Recipe(kind="fixed_point", rounding=m), id=f"fixed-{m}") for m in ROUNDING_MODES]
RECIPES += [pytest.param(Recipe(kind="fixed_point", rounding=m, double_round="gemmlowp"), id=f"gemmlowp-{m}")
            for m in ("half_away_from_zero", "half_to_even", "floor")]
RECIPES += [pytest.param(Recipe(kind="fixed_point", rounding="half_up", double_round="tosa"), id="tosa")]
RECIPES += [pytest.param(Recipe(kind="float", rounding=m, float_dtype=f, scale_dtype=f), id=f"float-{f}-{m}")
            for f in ("float32", "float64") for m in ROUNDING_MODES]


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes(rng, recipe):
    # power-of-two scales make exact ties common: every rounding mode matters
    shape = (1, 5, 4, 23)
    for i, y_dtype in enumerate(("int8", "uint8", "int16")):
        graph = depthwise_graph(rng, shape, (3, 3), zx=-5, s_x=0.5, s_w=np.float32(2.0**-6),
                                per_channel=bool(i % 2), s_y=[1.0, 1.0, 0.25][i],
                                y_dtype=y_dtype, zy=[-1, 128, 0][i], recipe=recipe, pads=(1, 1, 1, 1))
        agree(graph, random_x(rng, "int8", shape))


@pytest.mark.parametrize("act", [(-20, 30), (0, None), (None, -1), (5, 5)])
def test_fused_activation(rng, act):
    shape = (1, 4, 4, 17)
    graph = depthwise_graph(rng, shape, (3, 3), act=act, zy=2, pads=(1, 1, 1, 1))
    agree(graph, random_x(rng, "int8", shape))


@pytest.mark.parametrize("w_dtype", ["int8", "uint8", "int4"])
def test_per_tensor_weights(rng, w_dtype):
    shape = (1, 5, 5, 20)
    graph = depthwise_graph(rng, shape, (3, 3), x_dtype="uint8", zx=0, w_dtype=w_dtype, per_channel=False,
                            pads=(0, 1, 2, 1), y_dtype="uint8", zy=100)
    agree(graph, random_x(rng, "uint8", shape))


# ---------------------------------------------------------------------------
# Bias and the int32 accumulator contract
# ---------------------------------------------------------------------------

def test_bias_input(rng):
    shape = (1, 5, 5, 19)
    graph = depthwise_graph(rng, shape, (3, 3), bias="input", pads=(1, 1, 1, 1))
    bias = rng.integers(-(2**20), 2**20, 19).astype(np.int32)
    agree(graph, {"x": random_x(rng, "int8", shape), "bias": bias})


def test_bias_at_the_bound_runs_the_kernel(rng):
    # zx = -128, every |w - zp_w| = 255: max|x - zp_x| = 255, tap_bound = 9 * 255 * 255
    shape = (1, 3, 3, 2)
    w = np.full((2, 3, 3, 1), 127)
    tap_bound = 9 * 255 * 255
    bias = np.array([INT32_MAX - tap_bound, -(INT32_MAX - tap_bound)], np.int32)
    graph = depthwise_graph(rng, shape, (3, 3), zx=-128, w=w, zw=-128, bias=bias, s_x=1.0,
                            s_w=np.ones(2, np.float32), s_y=2.0**20, y_dtype="int16")
    from qnnref._kernels import depthwise
    state = depthwise.prepare(context(graph), "scalar")
    assert state.tap_bound.tolist() == [tap_bound, tap_bound]
    # all x = 127: the accumulators reach exactly +-INT32_MAX
    for x in (np.full(shape, 127, np.int8), np.full(shape, -128, np.int8), random_x(rng, "int8", shape)):
        agree(graph, x)
    # one more and the bound fails: the node runs on the reference
    graph = depthwise_graph(rng, shape, (3, 3), zx=-128, w=w, zw=-128, bias=bias + np.array([1, 0], np.int32),
                            s_x=1.0, s_w=np.ones(2, np.float32), s_y=2.0**20, y_dtype="int16")
    with pytest.raises(_kernels.Unsupported, match="overflow"):
        depthwise.prepare(context(graph), "scalar")
    with pytest.raises(RuntimeCheckError, match="overflows int32"):
        Model(graph, backend="reference").run(np.full(shape, 127, np.int8))
    assert_all_backends_agree(graph, np.full(shape, 127, np.int8), expect_kernel=False)


def test_bias_input_overflow_defers_to_the_reference(rng):
    shape = (1, 3, 3, 3)
    graph = depthwise_graph(rng, shape, (3, 3), zx=0, w=np.full((3, 3, 3, 1), 127), zw=0, bias="input",
                            s_x=1.0, s_w=np.ones(3, np.float32), s_y=2.0**24, y_dtype="int16")
    big = np.array([INT32_MAX, -INT32_MAX - 1, 5], np.int32)
    # x = zp_x: the accumulator is the bias, in range: the reference (rerun) computes it
    zero = np.zeros(shape, np.int8)
    out = assert_all_backends_agree(graph, {"x": zero, "bias": big}, expect_kernel="conv2d")
    assert out
    # x far from zp_x: the sum overflows int32 somewhere: every backend raises
    with pytest.raises(RuntimeCheckError):
        Model(graph, backend="reference").run({"x": np.full(shape, 127, np.int8), "bias": big})
    assert_all_backends_agree(graph, {"x": np.full(shape, 127, np.int8), "bias": big}, expect_kernel="conv2d")


def test_gemmlowp_overflow_defers_to_the_reference(rng):
    # multiplier 4 (shift 3): gemmlowp needs acc * 8 to fit int32; a bias of 3e8 breaks it
    shape = (1, 3, 3, 9)
    for bias_value, fails in ((3 * 10**8, True), (10**6, False)):
        graph = depthwise_graph(rng, shape, (3, 3), s_x=1.0, s_w=np.ones(9, np.float32), s_y=0.25,
                                bias=np.full(9, bias_value), profile="fixed-point-double-round",
                                y_dtype="int16")
        x = random_x(rng, "int8", shape)
        if fails:
            with pytest.raises(RuntimeCheckError):
                Model(graph, backend="reference").run(x)
        agree(graph, x)


# ---------------------------------------------------------------------------
# What the kernel covers (prepare raises Unsupported otherwise)
# ---------------------------------------------------------------------------

def test_not_depthwise_is_unsupported(rng):
    from qnnref._kernels import depthwise
    g = GraphBuilder()
    x = g.input("x", "int8", (1, 4, 4, 6), scale=0.1, zero_point=0)
    for groups, cg in ((1, 6), (3, 2)):
        w = g.constant(f"w{groups}", np.ones((6, 3, 3, cg), np.int8), scale=0.1)
        g.output(g.node("conv2d", [x, w], {"groups": groups}, scale=0.5, zero_point=0, name=f"g{groups}"))
    for ctx in Model(g.graph(), backend="reference")._contexts:
        with pytest.raises(_kernels.Unsupported, match="not depthwise"):
            depthwise.prepare(ctx, "scalar")


def test_weights_input_is_unsupported():
    from qnnref._kernels import depthwise
    g = GraphBuilder()
    x = g.input("x", "int8", (1, 4, 4, 3), scale=0.1, zero_point=0)
    w = g.input("w", "int8", (3, 3, 3, 1), scale=0.1, zero_point=0)
    g.output(g.node("conv2d", [x, w], {"groups": 3}, scale=0.5, zero_point=0))
    with pytest.raises(_kernels.Unsupported, match="constant"):
        depthwise.prepare(context(g.graph()), "scalar")


def test_pack_pairs_layout():
    from qnnref._kernels.depthwise import pack_pairs
    taps = np.arange(3 * 18, dtype=np.int16).reshape(3, 18)       # 3 taps, 18 channels
    packed = pack_pairs(taps).reshape(2, 2, 16, 2)                 # [blocks, pairs, 16, 2]
    assert packed[0, 0, 5].tolist() == [taps[0, 5], taps[1, 5]]
    assert packed[1, 1, 1].tolist() == [taps[2, 17], 0]            # the odd tap pairs with zeros
    assert packed[1, 0, 2].tolist() == [0, 0]                      # channels past C are zeros


# ---------------------------------------------------------------------------
# Property test
# ---------------------------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_depthwise(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    kh, kw = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    sh, sw, dh, dw = (data.draw(st.integers(1, 3)) for _ in range(4))
    pads = [data.draw(st.integers(0, 3)) for _ in range(4)]
    h_min = max(1, dh * (kh - 1) + 1 - pads[0] - pads[2])         # OH >= 1
    w_min = max(1, dw * (kw - 1) + 1 - pads[1] - pads[3])         # OW >= 1
    h, w = data.draw(st.integers(h_min, h_min + 6)), data.draw(st.integers(w_min, w_min + 6))
    c = data.draw(st.sampled_from([1, 3, 8, 13, 16, 17, 32, 40]))
    x_dtype = data.draw(st.sampled_from(["int8", "uint8"]))
    w_dtype = data.draw(st.sampled_from(["int8", "uint8", "int4"]))
    y_dtype = data.draw(st.sampled_from(["int8", "uint8", "int16"]))
    dt = dtypes.get(x_dtype)
    zx = data.draw(st.sampled_from([dt.min, dt.max, (dt.min + dt.max) // 2 + 1]))
    recipe = data.draw(st.sampled_from([p.values[0] for p in RECIPES]))
    shape = (data.draw(st.integers(1, 2)), h, w, c)
    graph = depthwise_graph(rng, shape, (kh, kw), x_dtype=x_dtype, zx=zx, w_dtype=w_dtype,
                            multiplier=data.draw(st.sampled_from([1, 1, 2])),
                            per_channel=data.draw(st.booleans()), y_dtype=y_dtype,
                            zy=data.draw(st.sampled_from([0, 1, -1])) if y_dtype != "uint8" else 128,
                            strides=(sh, sw), dilations=(dh, dw), pads=pads, recipe=recipe,
                            bias=data.draw(st.sampled_from([None, "constant"])), s_y=0.02)
    agree(graph, random_x(rng, x_dtype, shape))


@pytest.mark.parametrize("recipe", [Recipe(kind="fixed_point", rounding="half_up"),
                                    Recipe(kind="fixed_point", rounding="half_to_even"),
                                    Recipe(kind="fixed_point", rounding="half_up", double_round="tosa")],
                         ids=["fixed-half_up", "fixed-half_to_even", "tosa"])
def test_per_channel_multipliers_around_one(rng, recipe):
    # the AVX2 requantization of a row of pixels takes its narrow fixed-point
    # path only when every channel's multiplier is below 1: mix both sides
    shape = (1, 4, 5, 37)
    s_w = rng.uniform(0.001, 0.01, 37)
    s_w[::3] = 4.0                                # combined scale 0.05 * 4 / 0.05 = 4 > 1
    for y_dtype in ("int8", "int16"):
        graph = depthwise_graph(rng, shape, (3, 3), zx=3, s_w=s_w, y_dtype=y_dtype, zy=-2, recipe=recipe,
                                pads=(1, 1, 1, 1))
        agree(graph, random_x(rng, "int8", shape))
