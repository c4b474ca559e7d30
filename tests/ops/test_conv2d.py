"""conv2d: the worked example of spec/ops/conv2d.md, hand-computed cases
(padding, strides, dilations, groups, depthwise), property tests against an
independent Python-int oracle, the int32 accumulator contract and the
ERROR_IF conditions."""
from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import node_attrs, random_values, random_zero_point, weights_node
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import requantize_channels

from qnnref import GraphBuilder, RuntimeCheckError, ValidationError, dtypes
from qnnref.arith import INT32_MAX, INT32_MIN, Recipe, prepare_requant
from qnnref.ops.conv2d import conv2d
from qnnref.profiles import PROFILES

# the oracle sums exactly; profiles with pairwise int16 saturation: tests/profiles/
PROFILE_NAMES = sorted(n for n, p in PROFILES.items() if not p.pairwise_int16_saturation)


# ---------------------------------------------------------------------------
# Independent oracle: Python integers, nested loops in the spec's index order
# (the output stage: requantize_channels of tests/oracles.py)
# ---------------------------------------------------------------------------

def oracle_acc(x, zx, w, zw, bias, strides, dilations, pads, groups):
    n_, h_, w_, c_in = x.shape
    c_out, kh_, kw_, cg = w.shape
    (sh, sw), (dh, dw), (top, left, bottom, right) = strides, dilations, pads
    oh_ = (h_ + top + bottom - dh * (kh_ - 1) - 1) // sh + 1
    ow_ = (w_ + left + right - dw * (kw_ - 1) - 1) // sw + 1
    og = c_out // groups
    zw = [int(z) for z in np.broadcast_to(zw, (c_out,))]
    X, W = x.tolist(), w.tolist()
    out = np.empty((n_, oh_, ow_, c_out), dtype=object)
    for n in range(n_):
        for oh in range(oh_):
            for ow in range(ow_):
                for co in range(c_out):
                    g = co // og
                    s = 0
                    for kh in range(kh_):
                        for kw in range(kw_):
                            ih = oh * sh - top + kh * dh
                            iw = ow * sw - left + kw * dw
                            for c in range(cg):
                                # a padded tap holds the zero point: it contributes 0
                                xv = X[n][ih][iw][g * cg + c] if 0 <= ih < h_ and 0 <= iw < w_ else int(zx)
                                s += (xv - int(zx)) * (W[co][kh][kw][c] - zw[co])
                    if bias is not None:
                        s += int(bias[co])
                    out[n, oh, ow, co] = s
    return out


def oracle(x, x_dtype, s_x, zx, w, s_w, zw, bias, s_y, zy, y_dtype, profile="qnnref",
           strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), groups=1, act=(None, None)):
    acc = oracle_acc(x, zx, w, 0 if zw is None else zw, bias, strides, dilations, pads, groups)
    return requantize_channels(acc, s_x, s_w, s_y, PROFILES[profile].requant, zy, y_dtype or x_dtype, *act)


# ---------------------------------------------------------------------------
# Building a one-node model
# ---------------------------------------------------------------------------

def one_node(x, x_dtype, s_x, zx, w, w_dtype, s_w, zw, bias=None, s_y=1.0, zy=0, y_dtype=None,
             profile="qnnref", strides=None, dilations=None, pads=None, groups=None,
             act=(None, None), w_constant=True):
    """Build and run a one-node conv2d model; returns the output array."""
    g = GraphBuilder(profile=profile)
    xi = g.input("x", x_dtype, x.shape, scale=s_x, zero_point=zx)
    axis = 0 if np.ndim(s_w) else None
    if w_constant:
        wi = g.constant("w", w, dtype=w_dtype, scale=s_w, zero_point=zw, axis=axis)
    else:
        wi = g.input("w", w_dtype, w.shape, scale=s_w, zero_point=zw, axis=axis)
    ins = [xi, wi] + ([g.constant("bias", bias)] if bias is not None else [])
    attrs = node_attrs(act=act, strides=strides, dilations=dilations, pads=pads, groups=groups, dtype=y_dtype)
    y = g.node("conv2d", ins, attrs, scale=s_y, zero_point=zy, name="conv")
    g.output(y)
    feeds = {"x": x} if w_constant else {"x": x, "w": w}
    return g.build().run(feeds)[y]


# ---------------------------------------------------------------------------
# Worked example and hand-computed cases
# ---------------------------------------------------------------------------

def test_worked_example_from_the_spec():
    x = np.array([1, 3, 5, 7], np.int8).reshape(1, 2, 2, 1)
    w = np.array([1, 2, 3, 4], np.int8).reshape(1, 2, 2, 1)
    bias = np.array([-10], np.int32)
    want = np.array([1, 3, 5, 11], np.int8).reshape(1, 2, 2, 1)
    y = one_node(x, "int8", 0.5, 1, w, "int8", 0.5, None, bias, s_y=1.0, zy=3, pads=[1, 1, 0, 0])
    np.testing.assert_array_equal(y, want)
    # The reference function, called directly with the same numbers.
    params = prepare_requant(np.float64(0.5 * 0.5 / 1.0), Recipe())
    got = conv2d(x, 1, w, 0, bias, params, 3, "int8", [1, 1], [1, 1], [1, 1, 0, 0], 1)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("x_dtype,zx", [("int8", -128), ("int8", 127), ("int8", 5), ("uint8", 0),
                                        ("uint8", 255), ("uint8", 128)])
def test_padding_holds_the_zero_point(x_dtype, zx, rng):
    # An input that is all zero point gives bias-only results, padded or not.
    x = np.full((1, 3, 4, 2), zx, dtypes.get(x_dtype).numpy)
    w = rng.integers(-128, 128, (3, 2, 3, 2)).astype(np.int8)
    bias = np.array([-7, 0, 9], np.int32)
    y = one_node(x, x_dtype, 1.0, zx, w, "int8", np.ones(3), np.array([3, -128, 127]), bias,
                 s_y=1.0, zy=0, y_dtype="int8", pads=[2, 0, 1, 3], strides=[1, 2])
    assert y.shape == (1, 5, 3, 3)
    np.testing.assert_array_equal(y, np.broadcast_to(np.array([-7, 0, 9], np.int8), y.shape))


def test_padding_is_asymmetric_and_contributes_zero():
    # 1x3 input, 1x2 kernel of ones, pads left 2, right 0: windows
    # [p, p], [p, x0], [x0, x1], [x1, x2] with p = zp (contributes 0).
    x = np.array([10, 20, 30], np.int8).reshape(1, 1, 3, 1)
    w = np.ones((1, 1, 2, 1), np.int8)
    y = one_node(x, "int8", 1.0, 10, w, "int8", 1.0, None, pads=[0, 2, 0, 0])
    np.testing.assert_array_equal(y.ravel(), [0, 0, 10, 30])


def test_strides_and_dilations_hand_computed():
    x = np.arange(25, dtype=np.int8).reshape(1, 5, 5, 1)
    w = np.array([[1, -1], [2, 0]], np.int8).reshape(1, 2, 2, 1)
    # dilations (2, 2): the 2x2 kernel's taps sit at offsets (0,0) (0,2) (2,0) (2,2);
    # strides (2, 3): OH = (5 - 2*(2-1) - 1)//2 + 1 = 2, OW = (5 - 3)//3 + 1 = 1
    y = one_node(x, "int8", 1.0, 0, w, "int8", 1.0, None, strides=[2, 3], dilations=[2, 2])
    assert y.shape == (1, 2, 1, 1)
    # out(i, 0) = x[2i, 0]*1 + x[2i, 2]*(-1) + x[2i+2, 0]*2 + x[2i+2, 2]*0
    want = [x[0, 2 * i, 0, 0] - x[0, 2 * i, 2, 0] + 2 * x[0, 2 * i + 2, 0, 0] for i in range(2)]
    np.testing.assert_array_equal(y.ravel(), want)       # [0 - 2 + 20, 10 - 12 + 40] = [18, 38]
    assert want == [18, 38]


def test_depthwise_with_multiplier_hand_computed():
    # groups = C_in = 2, C_out = 4: channels 0, 1 read input channel 0, channels 2, 3 channel 1.
    x = np.array([[1, 10], [2, 20]], np.int8).reshape(1, 2, 1, 2)          # H=2, W=1
    w = np.array([[1, 1], [1, -1], [2, 0], [0, 3]], np.int8).reshape(4, 2, 1, 1)
    y = one_node(x, "int8", 1.0, 0, w, "int8", 1.0, None, groups=2)
    np.testing.assert_array_equal(y.ravel(), [3, -1, 20, 60])


def test_grouped_equals_separate_convolutions(rng):
    x = rng.integers(-128, 128, (2, 5, 4, 6)).astype(np.int8)          # C_in = 6, groups = 3
    w = rng.integers(-128, 128, (6, 3, 2, 2)).astype(np.int8)          # C_out = 6, C_in/groups = 2
    s_w = np.linspace(0.01, 0.03, 6).astype(np.float32)
    kw = dict(s_y=1.5, zy=2, pads=[1, 0, 1, 1], strides=[2, 1])
    y = one_node(x, "int8", 0.1, -4, w, "int8", s_w, None, groups=3, **kw)
    parts = [one_node(np.ascontiguousarray(x[..., 2 * g:2 * g + 2]), "int8", 0.1, -4, w[2 * g:2 * g + 2],
                      "int8", s_w[2 * g:2 * g + 2], None, **kw) for g in range(3)]
    np.testing.assert_array_equal(y, np.concatenate(parts, axis=-1))


def test_pointwise_conv_equals_matmul(rng):
    x = rng.integers(0, 256, (2, 3, 3, 5)).astype(np.uint8)
    w = rng.integers(-8, 8, (4, 1, 1, 5)).astype(np.int8)
    bias = rng.integers(-300, 300, 4).astype(np.int32)
    y = one_node(x, "uint8", 0.02, 100, w, "int4", 0.3, -2, bias, s_y=0.7, zy=-3, y_dtype="int8")
    g = GraphBuilder()
    ai = g.input("a", "uint8", (18, 5), scale=0.02, zero_point=100)
    bi = g.constant("b", np.ascontiguousarray(w.reshape(4, 5).T), dtype="int4", scale=0.3, zero_point=-2)
    mm = g.node("matmul", [ai, bi, g.constant("bias", bias)], {"dtype": "int8"}, scale=0.7, zero_point=-3)
    g.output(mm)
    np.testing.assert_array_equal(y.reshape(18, 4), g.build().run(x.reshape(18, 5))[mm])


def test_one_by_one_everything():
    x = np.array([[[[-128]]]], np.int8)
    w = np.array([[[[7]]]], np.int8)
    # (-128 - 127) * (7 - (-8)) = -3825 at multiplier 1/16: -239.06 -> -239
    y = one_node(x, "int8", 0.25, 127, w, "int4", 0.25, -8, s_y=1.0, y_dtype="int16")
    np.testing.assert_array_equal(y.ravel(), [-239])


def test_all_extreme_values_int4_weights_per_channel():
    for x_dtype, zx in (("int8", -128), ("int8", 127), ("uint8", 0), ("uint8", 255)):
        dt = dtypes.get(x_dtype)
        x = np.arange(dt.min, dt.max + 1).astype(dt.numpy).reshape(1, 8, 8, 4)
        w = np.where(np.arange(3 * 2 * 2 * 4).reshape(3, 2, 2, 4) % 3, 7, -8).astype(np.int8)
        zw, s_w = np.array([-8, 7, 0]), np.array([0.5, 0.25, 0.125], np.float32)
        kw = dict(strides=(2, 1), dilations=(1, 3), pads=(1, 0, 0, 2))
        y = one_node(x, x_dtype, 0.5, zx, w, "int4", s_w, zw, s_y=40.0, zy=0, y_dtype="int16", **kw)
        np.testing.assert_array_equal(y, oracle(x, x_dtype, 0.5, zx, w, s_w, zw, None, 40.0, 0, "int16", **kw))


def test_constant_and_input_weights_agree(rng):
    x = rng.integers(-128, 128, (1, 6, 5, 4)).astype(np.int8)
    w = rng.integers(0, 256, (6, 3, 3, 2)).astype(np.uint8)
    kw = dict(s_y=3.0, zy=1, pads=[1, 1, 1, 1], groups=2, bias=np.arange(6, dtype=np.int32))
    s_w, zw = np.linspace(0.01, 0.05, 6).astype(np.float32), np.arange(120, 126)
    y1 = one_node(x, "int8", 0.1, 3, w, "uint8", s_w, zw, **kw)
    y2 = one_node(x, "int8", 0.1, 3, w, "uint8", s_w, zw, w_constant=False, **kw)
    np.testing.assert_array_equal(y1, y2)


def test_fused_activation_range_clamps():
    x = np.array([1, -1, 3], np.int8).reshape(1, 1, 3, 1)
    w = np.array([50], np.int8).reshape(1, 1, 1, 1)
    y = one_node(x, "int8", 1.0, 0, w, "int8", 1.0, None, act=(-10, 100))
    np.testing.assert_array_equal(y.ravel(), [50, -10, 100])


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_each_profile_matches_the_oracle_under_its_recipe(profile, rng):
    x = rng.integers(-128, 128, (1, 5, 6, 3)).astype(np.int8)
    w = rng.integers(-128, 128, (4, 3, 3, 3)).astype(np.int8)
    bias = rng.integers(-3000, 3000, 4).astype(np.int32)
    s_w = np.array([0.011, 0.0031, 0.05, 0.007], np.float32)
    zw = np.array([0, -128, 127, 3])
    kw = dict(pads=(1, 2, 0, 1), strides=(1, 2), dilations=(2, 1))
    y = one_node(x, "int8", 0.037, -9, w, "int8", s_w, zw, bias, s_y=0.9, zy=4, profile=profile, **kw)
    np.testing.assert_array_equal(y, oracle(x, "int8", 0.037, -9, w, s_w, zw, bias, 0.9, 4, "int8",
                                            profile=profile, **kw))


# ---------------------------------------------------------------------------
# Property test against the oracle
# ---------------------------------------------------------------------------

@settings(max_examples=200, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1),
       profile=st.sampled_from(PROFILE_NAMES),
       x_dtype=st.sampled_from(["int8", "uint8"]),
       w_dtype=st.sampled_from(["int8", "int4", "uint8"]),
       y_dtype=st.sampled_from(["int8", "uint8", "int16"]),
       n=st.integers(1, 2), h=st.integers(1, 6), wd=st.integers(1, 6),
       groups=st.integers(1, 3), cg=st.integers(1, 3), og=st.integers(1, 2),
       kh=st.integers(1, 3), kw=st.integers(1, 3),
       strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilations=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(*[st.integers(0, 2)] * 4),
       per_channel=st.booleans(), with_bias=st.booleans(), w_constant=st.booleans(),
       values=st.sampled_from(["random", "extremes"]),
       zp_kind=st.sampled_from(["random", "min", "max", "zero"]),
       act=st.booleans())
def test_matches_oracle(seed, profile, x_dtype, w_dtype, y_dtype, n, h, wd, groups, cg, og, kh, kw,
                        strides, dilations, pads, per_channel, with_bias, w_constant, values, zp_kind, act):
    # grow the input until the output is at least 1 x 1
    h = max(h, dilations[0] * (kh - 1) + 1 - pads[0] - pads[2])
    wd = max(wd, dilations[1] * (kw - 1) + 1 - pads[1] - pads[3])
    rng = np.random.default_rng(seed)
    c_in, c_out = groups * cg, groups * og
    x = random_values(rng, x_dtype, (n, h, wd, c_in), values)
    w = random_values(rng, w_dtype, (c_out, kh, kw, cg), values)
    zx = random_zero_point(rng, x_dtype, zp_kind)
    zw = random_zero_point(rng, w_dtype, zp_kind, c_out if per_channel else None)
    s_x = np.float32(rng.uniform(0.001, 0.1))
    s_w = rng.uniform(0.001, 0.1, c_out).astype(np.float32) if per_channel else np.float32(rng.uniform(0.001, 0.1))
    k = kh * kw * cg
    s_y = np.float32(float(s_x) * float(np.max(s_w)) * math.sqrt(k) * 100.0 * rng.uniform(0.2, 5.0))
    zy = random_zero_point(rng, y_dtype, "random")
    bias = rng.integers(-(2**20), 2**20, c_out).astype(np.int32) if with_bias else None
    dt_y = dtypes.get(y_dtype)
    act_range = (None, None)
    if act:
        act_range = tuple(sorted(int(v) for v in rng.integers(dt_y.min, dt_y.max, 2, endpoint=True)))
    geometry = dict(strides=strides, dilations=dilations, pads=pads, groups=groups)
    y = one_node(x, x_dtype, s_x, zx, w, w_dtype, s_w, zw, bias, s_y=s_y, zy=zy, y_dtype=y_dtype,
                 profile=profile, act=act_range, w_constant=w_constant, **geometry)
    want = oracle(x, x_dtype, s_x, zx, w, s_w, zw, bias, s_y, zy, y_dtype, profile=profile,
                  act=act_range, **geometry)
    assert y.dtype == dt_y.numpy
    np.testing.assert_array_equal(y, want)


# ---------------------------------------------------------------------------
# The int32 accumulator contract (REQUIRE)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("sign", [1, -1])
def test_accumulator_overflow_raises_runtime_check_error(sign):
    x = np.full((1, 2, 2, 1), sign * 100, np.int8)
    w = np.full((1, 2, 2, 1), 100, np.int8)
    # the sum of products is sign * 40000: 100 more than fits with this bias
    bias = np.array([(INT32_MAX - 39_900) if sign > 0 else (INT32_MIN + 39_900)], np.int32)
    kw = dict(s_y=2.0**20)
    with pytest.raises(RuntimeCheckError, match=r"node 'conv'.*overflows int32"):
        one_node(x, "int8", 1.0, 0, w, "int8", 1.0, None, bias, **kw)
    x[0, 0, 0, 0] = sign * 99                   # sign * 39900: exactly INT32_MAX / INT32_MIN, fine
    y = one_node(x, "int8", 1.0, 0, w, "int8", 1.0, None, bias, **kw)
    assert int(y.ravel()[0]) == (127 if sign > 0 else -128)


def test_padding_cannot_overflow_what_the_window_would_not():
    # padded taps contribute exactly 0, so the sum equals the bias at the border
    x = np.full((1, 1, 1, 1), 5, np.int8)
    w = np.full((1, 3, 3, 1), 127, np.int8)
    y = one_node(x, "int8", 1.0, 5, w, "int8", 1.0, None, np.array([INT32_MAX], np.int32),
                 s_y=2.0**20, pads=[1, 1, 1, 1], y_dtype="int16")
    np.testing.assert_array_equal(y.ravel(), [2048])


# ---------------------------------------------------------------------------
# Invalid models (ERROR_IF) through GraphBuilder
# ---------------------------------------------------------------------------

def _node(x_shape=(1, 4, 4, 4), w_shape=(2, 3, 3, 4), x_dtype="int8", w_dtype="int8", x_q=None, w_q=None, **kw):
    return weights_node("conv2d", ("x", x_dtype, x_shape, x_q), ("w", w_dtype, w_shape, w_q), name="conv", **kw)


@pytest.mark.parametrize("kwargs,match", [
    (dict(attrs={"groups": 3}), r"C_in = 4 are not a multiple of groups = 3"),
    (dict(w_shape=(3, 3, 3, 2), attrs={"groups": 2}), r"C_out = 3 .* not a multiple of groups = 2"),
    (dict(w_shape=(2, 3, 3, 4), attrs={"groups": 2}), r"last dimension must be C_in / groups = 4 / 2 = 2"),
    (dict(w_shape=(2, 3, 3, 3)), r"last dimension must be C_in / groups = 4 / 1 = 4"),
    (dict(attrs={"groups": 0}), r"groups must be >= 1"),
    (dict(attrs={"pads": [1, 1, 1]}), r"pads must have 4 values"),
    (dict(attrs={"pads": [0, -1, 0, 0]}), r"pads values must be >= 0"),
    (dict(attrs={"strides": [0, 1]}), r"strides values must be >= 1"),
    (dict(attrs={"strides": [1]}), r"strides must have 2 values"),
    (dict(attrs={"dilations": [1, 0]}), r"dilations values must be >= 1"),
    (dict(attrs={"dilations": [3, 1]}), r"empty output: the dilated kernel \(7 x 3\) does not fit"),
    (dict(w_shape=(2, 5, 3, 4)), r"empty output: the dilated kernel \(5 x 3\) does not fit the padded input \(4 x 4\)"),
    (dict(x_shape=(4, 4, 4)), r"input x 'x' must have rank 4"),
    (dict(w_shape=(2, 9, 4)), r"weight w 'w' must have rank 4"),
    (dict(w_shape=(2, 0, 3, 4)), r"empty kernel"),
    (dict(x_dtype="int16"), r"input x 'x' has dtype int16"),
    (dict(w_dtype="int16"), r"weight w 'w' has dtype int16"),
    (dict(w_q={"scale": np.full(4, 0.1), "axis": 3}), r"per-axis quantization must be on axis 0, got 3"),
    (dict(x_q={"scale": np.full(4, 0.1), "axis": 3}), r"input x 'x': per-axis quantization is not supported"),
    (dict(w_q={}), r"weight w 'w' must be quantized"),
    (dict(out_q={}), r"output .* must be quantized"),
    (dict(bias=np.zeros(4, np.int32)), r"bias 'bias' must have shape \[2\]"),
    (dict(bias=np.zeros(2, np.int64)), r"bias 'bias' has dtype int64"),
    (dict(bias=np.zeros(2, np.int32), bias_q={"scale": np.full(2, 0.01), "zero_point": np.array([0, 3]),
                                              "axis": 0}), r"zero point 0"),
    (dict(attrs={"dtype": "int4"}), r"attribute dtype must be one of"),
    (dict(attrs={"dtype": "int32"}), r"int32 output .* is the accumulator"),
    (dict(attrs={"dtype": "int32"}, w_q={"scale": np.full(2, 0.1), "axis": 0}, out_q={"scale": 0.01}),
     r"int32 output .*per-tensor quantization is not supported"),
    (dict(attrs={"act_max": 300, "dtype": "uint8"}), r"act_max 300 is outside the uint8 range"),
    (dict(attrs={"strides": "1,1"}), r"attribute 'strides' must be of kind ints"),
])
def test_invalid_models_are_rejected(kwargs, match):
    with pytest.raises(ValidationError, match=r"node 'conv' \(conv2d\): .*" + match):
        _node(**kwargs)


def test_output_shape_formula():
    g = GraphBuilder()
    xi = g.input("x", "uint8", (2, 10, 7, 6), scale=0.1, zero_point=3)
    wi = g.constant("w", np.ones((9, 3, 2, 2), np.int8), scale=0.1)
    y = g.node("conv2d", [xi, wi], {"strides": [2, 3], "dilations": [2, 1], "pads": [1, 0, 2, 1],
                                    "groups": 3}, scale=0.1, zero_point=0)
    # OH = (10 + 1 + 2 - 2*2 - 1)//2 + 1 = 5; OW = (7 + 0 + 1 - 1 - 1)//3 + 1 = 3
    assert g.tensors[y].shape == (2, 5, 3, 9) and g.tensors[y].dtype == "uint8"


# ---------------------------------------------------------------------------
# Output dtype int32: the accumulator itself (ONNX's ConvInteger)
# ---------------------------------------------------------------------------

def int32_conv(x, x_dtype, zx, w, w_dtype, zw, bias=None, profile="qnnref", y_q=None, w_constant=True, **geo):
    g = GraphBuilder(profile=profile)
    xi = g.input("x", x_dtype, x.shape, scale=0.5, zero_point=zx)
    axis = 0 if np.ndim(zw) else None
    s_w = np.full(np.shape(zw), 0.25, np.float32) if axis is not None else 0.25
    wi = (g.constant("w", w, dtype=w_dtype, scale=s_w, zero_point=zw, axis=axis) if w_constant
          else g.input("w", w_dtype, w.shape, scale=s_w, zero_point=zw, axis=axis))
    ins = [xi, wi] + ([g.constant("bias", bias)] if bias is not None else [])
    y = g.node("conv2d", ins, node_attrs(dtype="int32", **geo), name="conv", **(y_q or {}))
    g.output(y)
    return g.build().run({"x": x} if w_constant else {"x": x, "w": w})[y]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), x_dtype=st.sampled_from(["int8", "uint8"]),
       w_dtype=st.sampled_from(["int8", "int4", "uint8"]), groups=st.sampled_from([1, 2]),
       kh=st.integers(1, 3), kw=st.integers(1, 3), per_channel=st.booleans(), with_bias=st.booleans(),
       w_constant=st.booleans(), values=st.sampled_from(["random", "extremes"]),
       zp_kind=st.sampled_from(["random", "min", "max", "zero"]), pads=st.sampled_from([(0, 0, 0, 0), (1, 0, 2, 1)]),
       strides=st.sampled_from([(1, 1), (2, 1)]), dilations=st.sampled_from([(1, 1), (1, 2)]))
def test_int32_output_is_the_exact_accumulator(seed, x_dtype, w_dtype, groups, kh, kw, per_channel, with_bias,
                                                w_constant, values, zp_kind, pads, strides, dilations):
    rng = np.random.default_rng(seed)
    c_in, c_out = 2 * groups, 2 * groups
    x = random_values(rng, x_dtype, (1, 5, 6, c_in), values)
    w = random_values(rng, w_dtype, (c_out, kh, kw, c_in // groups), values)
    zx = random_zero_point(rng, x_dtype, zp_kind)
    zw = random_zero_point(rng, w_dtype, zp_kind, c_out if per_channel else None)
    bias = rng.integers(-(2**20), 2**20, c_out).astype(np.int32) if with_bias else None
    geo = dict(pads=list(pads), strides=list(strides), dilations=list(dilations), groups=groups)
    y = int32_conv(x, x_dtype, zx, w, w_dtype, zw, bias, w_constant=w_constant, **geo)
    assert y.dtype == np.int32
    want = oracle_acc(x, zx, w, zw, bias, strides, dilations, pads, groups)
    np.testing.assert_array_equal(y, want.astype(np.int64))


def test_int32_output_quantized_at_the_accumulator_scale_and_saturation():
    x = np.full((1, 1, 2, 2), 255, np.uint8)
    w = np.full((1, 1, 2, 2), 127, np.int8)
    q = {"scale": np.float32(0.5 * 0.25), "zero_point": 0}
    # 4 products of 255 * 127: exact 129540; pairwise int16 saturation: 2 * 32767
    assert int32_conv(x, "uint8", 0, w, "int8", 0, y_q=q, profile="ort-cpu-x86-vnni")[0, 0, 0, 0] == 129540
    assert int32_conv(x, "uint8", 0, w, "int8", 0, profile="ort-cpu-x86")[0, 0, 0, 0] == 65534
    with pytest.raises(RuntimeCheckError, match=r"node 'conv'.*overflows int32"):
        int32_conv(x, "uint8", 0, w, "int8", 0, np.array([INT32_MAX - 100000], np.int32))


def test_int32_output_runs_on_the_reference_unless_a_kernel_declares_it():
    """A kernel written before the int32 output mode (the depthwise kernel) is
    never given such a node: it needs the semantic "int32_output"."""
    from qnnref import _kernels
    g = GraphBuilder(profile="qnnref")
    xi = g.input("x", "uint8", (1, 4, 4, 3), scale=0.5, zero_point=7)
    wi = g.constant("w", np.arange(27, dtype=np.int8).reshape(3, 3, 3, 1), scale=0.25)
    y = g.node("conv2d", [xi, wi], {"groups": 3, "dtype": "int32"}, name="conv")
    g.output(y)
    model = g.build()
    runs = model.plan()[0]["runs"]
    assert runs.startswith("reference")
    if _kernels.available() and "conv2d" in _kernels.KERNELS:
        assert "int32 output is the accumulator" in runs
    assert "int32_output" in _kernels.needed_semantics(model._contexts[0])
    x = np.arange(48, dtype=np.uint8).reshape(1, 4, 4, 3)
    want = oracle_acc(x, 7, np.arange(27).reshape(3, 3, 3, 1), 0, None, (1, 1), (1, 1), (0, 0, 0, 0), 3)
    np.testing.assert_array_equal(model.run({"x": x})[y], want.astype(np.int64))
