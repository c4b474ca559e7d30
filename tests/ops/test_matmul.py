"""matmul: the worked example of spec/ops/matmul.md, hand-computed cases,
property tests against an independent Python-int oracle, the int32
accumulator contract and the ERROR_IF conditions."""
from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import all_values, node_attrs, random_values, random_zero_point, weights_node
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import requantize_channels

from qnnref import GraphBuilder, RuntimeCheckError, ValidationError, dtypes
from qnnref.arith import INT32_MAX, INT32_MIN, Recipe, prepare_requant
from qnnref.ops.matmul import exact_matmul, matmul
from qnnref.profiles import PROFILES

# the oracle sums exactly; profiles with pairwise int16 saturation: tests/profiles/
PROFILE_NAMES = sorted(n for n, p in PROFILES.items() if not p.pairwise_int16_saturation)


# ---------------------------------------------------------------------------
# Independent oracle: Python integers, nested loops (the output stage:
# requantize_channels of tests/oracles.py)
# ---------------------------------------------------------------------------

def oracle_acc(a, za, b, zb, bias):
    """acc[..., m, n] = sum_k (a - za)(b - zb[n]) + bias[n], in Python ints."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    m_, k_ = a.shape[-2:]
    n_ = b.shape[-1]
    A = np.broadcast_to(a, batch + (m_, k_))
    B = np.broadcast_to(b, batch + (k_, n_))
    zb = [int(z) for z in np.broadcast_to(zb, (n_,))]
    out = np.empty(batch + (m_, n_), dtype=object)
    for idx in np.ndindex(*batch):
        Al, Bl = A[idx].tolist(), B[idx].tolist()
        for m in range(m_):
            for n in range(n_):
                s = 0
                for k in range(k_):
                    s += (Al[m][k] - int(za)) * (Bl[k][n] - zb[n])
                if bias is not None:
                    s += int(bias[n])
                out[idx + (m, n)] = s
    return out


# ---------------------------------------------------------------------------
# Building a one-node model
# ---------------------------------------------------------------------------

def one_node(a, a_dtype, s_a, za, b, b_dtype, s_b, zb, bias=None, s_y=1.0, zy=0, y_dtype=None,
             act=(None, None), profile="qnnref", b_constant=True, b_axis=None, bias_q=None):
    """Build and run a one-node matmul model; returns the output array."""
    g = GraphBuilder(profile=profile)
    ai = g.input("a", a_dtype, a.shape, scale=s_a, zero_point=za)
    axis = b_axis if b_axis is not None else (b.ndim - 1 if np.ndim(s_b) else None)
    if b_constant:
        bi = g.constant("b", b, dtype=b_dtype, scale=s_b, zero_point=zb, axis=axis)
    else:
        bi = g.input("b", b_dtype, b.shape, scale=s_b, zero_point=zb, axis=axis)
    ins = [ai, bi]
    if bias is not None:
        ins.append(g.constant("bias", bias, **(bias_q or {})))
    y = g.node("matmul", ins, node_attrs(act=act, dtype=y_dtype), scale=s_y, zero_point=zy, name="mm")
    g.output(y)
    feeds = {"a": a} if b_constant else {"a": a, "b": b}
    return g.build().run(feeds)[y]


# ---------------------------------------------------------------------------
# Worked example and hand-computed cases
# ---------------------------------------------------------------------------

def test_worked_example_from_the_spec():
    a = np.array([[3, 1, -1], [5, 2, 0]], np.int8)
    b = np.array([[1, -2], [3, 4], [-1, 2]], np.int8)
    bias = np.array([2, 2], np.int32)
    want = np.array([[-3, -6], [-2, -6]], np.int8)
    y = one_node(a, "int8", 0.5, 1, b, "int8", 0.25, None, bias, s_y=0.5, zy=-5)
    np.testing.assert_array_equal(y, want)
    assert y.dtype == np.int8
    # The reference function, called directly with the same numbers.
    params = prepare_requant(np.float64(0.5 * 0.25 / 0.5), Recipe())
    assert (int(params.multiplier), int(params.shift)) == (2**30, -1)
    np.testing.assert_array_equal(matmul(a, 1, b, 0, bias, params, -5, "int8"), want)
    # The ties under the other two profiles, as the spec states.
    for profile, want in (("fixed-point-double-round", [[-3, -7], [-2, -6]]),
                          ("float32-half-to-even", [[-3, -7], [-3, -6]])):
        y = one_node(a, "int8", 0.5, 1, b, "int8", 0.25, None, bias, s_y=0.5, zy=-5, profile=profile)
        np.testing.assert_array_equal(y, want)


def test_hand_computed_uint8_by_int8_per_channel_zero_points():
    # a uint8 zp 128; b int8 per-column scales (0.5, 0.25) and zero points (1, -2);
    # s_a = 0.25, s_y = 0.125: multipliers 1 and 0.5.
    a = np.array([[130, 126]], np.uint8)               # a - zp = [2, -2]
    b = np.array([[4, 0], [-1, -5]], np.int8)          # b - zp = [[3, 2], [-2, -3]]
    # acc = [2*3 + (-2)(-2), 2*2 + (-2)(-3)] = [10, 10]; * [1, 0.5] = [10, 5]; + zp_y 3
    y = one_node(a, "uint8", 0.25, 128, b, "int8", np.array([0.5, 0.25]), np.array([1, -2]),
                 s_y=0.125, zy=3)
    np.testing.assert_array_equal(y, [[13, 8]])


def test_one_by_one():
    y = one_node(np.array([[-128]], np.int8), "int8", 1.0, 127, np.array([[-8]], "int8"), "int4",
                 1.0, 7, s_y=2.0**10, zy=0, y_dtype="int16")
    # (-128 - 127) * (-8 - 7) = 3825; / 1024 = 3.735... -> 4
    np.testing.assert_array_equal(y, [[4]])


def test_fused_activation_range_clamps():
    a = np.array([[1, 2, 3, 4]], np.int8)
    b = np.array([[10, -10, 1]] * 4, np.int8)
    # acc = [100, -100, 10]
    y = one_node(a, "int8", 1.0, 0, b, "int8", 1.0, None, act=(-20, 50))
    np.testing.assert_array_equal(y, [[50, -20, 10]])


def test_bias_scale_is_informational_and_zero_point_zero_is_accepted():
    a = np.array([[1, 1]], np.int8)
    b = np.array([[1], [1]], np.int8)
    bias = np.array([5], np.int32)
    # bias scale 123 (not s_a * s_b = 1): interpreted at s_a * s_b all the same
    y = one_node(a, "int8", 1.0, 0, b, "int8", 1.0, None, bias,
                 bias_q={"scale": 123.0, "zero_point": 0})
    np.testing.assert_array_equal(y, [[7]])


def test_constant_and_input_weights_agree(rng):
    a = rng.integers(-128, 128, (5, 9)).astype(np.int8)
    b = rng.integers(-128, 128, (9, 4)).astype(np.int8)
    s_b = np.array([0.01, 0.02, 0.03, 0.04])
    kw = dict(bias=np.arange(4, dtype=np.int32), s_y=0.5, zy=7)
    y1 = one_node(a, "int8", 0.1, -3, b, "int8", s_b, np.array([1, 2, 3, -4]), **kw)
    y2 = one_node(a, "int8", 0.1, -3, b, "int8", s_b, np.array([1, 2, 3, -4]), b_constant=False, **kw)
    np.testing.assert_array_equal(y1, y2)


def test_batched_b_broadcasts_like_np_matmul(rng):
    a = rng.integers(-128, 128, (2, 1, 3, 5)).astype(np.int8)
    b = rng.integers(0, 256, (3, 5, 4)).astype(np.uint8)
    y = one_node(a, "int8", 0.05, 2, b, "uint8", 0.02, 128, s_y=0.3, zy=-1, b_constant=False)
    assert y.shape == (2, 3, 3, 4)
    acc = oracle_acc(a, 2, b, 128, None)
    recipe = PROFILES["qnnref"].requant
    want = requantize_channels(acc, 0.05, 0.02, 0.3, recipe, -1, "int8")
    np.testing.assert_array_equal(y, want)


def test_all_int8_and_uint8_values_against_int4_extremes():
    for a_dtype, za in (("int8", -128), ("int8", 127), ("uint8", 0), ("uint8", 255)):
        a = all_values(a_dtype).reshape(16, 16)
        b = np.where(np.arange(16 * 3).reshape(16, 3) % 2, 7, -8).astype(np.int8)
        b[:, 2] = -8
        zb = np.array([-8, 7, 0])
        s_b = np.array([0.5, 0.25, 0.125], np.float32)
        y = one_node(a, a_dtype, 0.5, za, b, "int4", s_b, zb, s_y=40.0, zy=0, y_dtype="int16")
        recipe = PROFILES["qnnref"].requant
        want = requantize_channels(oracle_acc(a, za, b, zb, None), 0.5, s_b, 40.0, recipe, 0, "int16")
        np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_each_profile_matches_the_oracle_under_its_recipe(profile, rng):
    a = rng.integers(-128, 128, (7, 33)).astype(np.int8)
    b = rng.integers(-128, 128, (33, 6)).astype(np.int8)
    bias = rng.integers(-5000, 5000, 6).astype(np.int32)
    s_b = np.array([0.011, 0.02, 0.0031, 0.05, 0.007, 0.013], np.float32)
    zb = np.array([0, 1, -1, 5, -128, 127])
    y = one_node(a, "int8", 0.037, -9, b, "int8", s_b, zb, bias, s_y=0.41, zy=4, profile=profile)
    recipe = PROFILES[profile].requant
    want = requantize_channels(oracle_acc(a, -9, b, zb, bias), 0.037, s_b, 0.41, recipe, 4, "int8")
    np.testing.assert_array_equal(y, want)


def test_rounding_ties_differ_between_profiles():
    # acc = [6, -6, 10, -10] times 0.25: 1.5, -1.5, 2.5, -2.5
    a = np.array([[1], [-1]], np.int8)
    b = np.array([[6, 10]], np.int8)
    got = {p: one_node(a, "int8", 0.5, 0, b, "int8", 0.25, None, s_y=0.5, profile=p).ravel().tolist()
           for p in PROFILE_NAMES}
    assert got["qnnref"] == [2, 3, -1, -2]                       # half up
    assert got["fixed-point-double-round"] == [2, 3, -2, -3]     # half away from zero
    assert got["float32-half-to-even"] == [2, 2, -2, -2]         # half to even


def test_node_recipe_attribute_overrides_the_profile():
    a = np.array([[1], [-1]], np.int8)
    b = np.array([[6, 10]], np.int8)
    g = GraphBuilder(profile="qnnref")
    ai = g.input("a", "int8", a.shape, scale=0.5, zero_point=0)
    bi = g.constant("b", b, scale=0.25)
    recipe = PROFILES["float32-half-to-even"].requant.to_dict()
    y = g.node("matmul", [ai, bi], {"recipe": recipe}, scale=0.5, zero_point=0)
    g.output(y)
    np.testing.assert_array_equal(g.build().run(a)[y].ravel(), [2, 2, -2, -2])


# ---------------------------------------------------------------------------
# Property test against the oracle
# ---------------------------------------------------------------------------

@settings(max_examples=200, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1),
       profile=st.sampled_from(PROFILE_NAMES),
       a_dtype=st.sampled_from(["int8", "uint8"]),
       b_dtype=st.sampled_from(["int8", "int4", "uint8"]),
       y_dtype=st.sampled_from(["int8", "uint8", "int16"]),
       m=st.integers(1, 5), k=st.sampled_from([1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 40]),
       n=st.integers(1, 5),
       batch=st.sampled_from([(), (2,), (2, 1)]),
       per_channel=st.booleans(), with_bias=st.booleans(), b_constant=st.booleans(),
       values=st.sampled_from(["random", "extremes"]),
       zp_kind=st.sampled_from(["random", "min", "max", "zero"]),
       act=st.booleans())
def test_matches_oracle(seed, profile, a_dtype, b_dtype, y_dtype, m, k, n, batch, per_channel,
                        with_bias, b_constant, values, zp_kind, act):
    rng = np.random.default_rng(seed)
    a = random_values(rng, a_dtype, batch + (m, k), values)
    b = random_values(rng, b_dtype, ((2,) if batch and not b_constant else ()) + (k, n), values)
    za = random_zero_point(rng, a_dtype, zp_kind)
    zb = random_zero_point(rng, b_dtype, zp_kind, n if per_channel else None)
    s_a = np.float32(rng.uniform(0.001, 0.1))
    s_b = rng.uniform(0.001, 0.1, n).astype(np.float32) if per_channel else np.float32(rng.uniform(0.001, 0.1))
    # an output scale that keeps typical results inside the output range
    s_y = np.float32(float(s_a) * float(np.max(s_b)) * math.sqrt(k) * 100.0 * rng.uniform(0.2, 5.0))
    zy = random_zero_point(rng, y_dtype, "random")
    bias = rng.integers(-(2**20), 2**20, n).astype(np.int32) if with_bias else None
    dt_y = dtypes.get(y_dtype)
    act_range = (None, None)
    if act:
        lo, hi = sorted(int(v) for v in rng.integers(dt_y.min, dt_y.max, 2, endpoint=True))
        act_range = (lo, hi)
    y = one_node(a, a_dtype, s_a, za, b, b_dtype, s_b, zb, bias, s_y=s_y, zy=zy, y_dtype=y_dtype,
                 act=act_range, profile=profile, b_constant=b_constant)
    recipe = PROFILES[profile].requant
    want = requantize_channels(oracle_acc(a, za, b, zb, bias), s_a, s_b, s_y, recipe, zy, y_dtype,
                               *act_range)
    assert y.dtype == dt_y.numpy
    np.testing.assert_array_equal(y, want)


# ---------------------------------------------------------------------------
# Exactness of the fast path and its fallback
# ---------------------------------------------------------------------------

def test_exact_matmul_is_exact_beyond_float64():
    # One product of 2^53 + ... is not representable in float64; the fallback is exact.
    a = np.array([[2.0**30 + 1, 1.0]])
    b = np.array([[2.0**30 + 3], [-1.0]])
    want = (2**30 + 1) * (2**30 + 3) - 1
    assert float(np.matmul(a, b)[0, 0]) != want          # float64 would round
    assert int(exact_matmul(a, b)[0, 0]) == want


def test_exact_matmul_extreme_8bit_operands():
    # |a - za| = 255 and |b - zb| = 255 everywhere, K = 4096: sums of 2.66e8 (exact).
    a = np.full((3, 4096), 255.0)
    b = np.full((4096, 2), -255.0)
    np.testing.assert_array_equal(exact_matmul(a, b), np.full((3, 2), -255 * 255 * 4096))


# ---------------------------------------------------------------------------
# The int32 accumulator contract (REQUIRE)
# ---------------------------------------------------------------------------

def test_accumulator_at_int32_max_is_fine():
    a = np.array([[1]], np.int8)
    b = np.array([[1]], np.int8)
    y = one_node(a, "int8", 1.0, 0, b, "int8", 1.0, None, np.array([INT32_MAX - 1], np.int32),
                 s_y=2.0**20)
    np.testing.assert_array_equal(y, [[127]])


@pytest.mark.parametrize("sign", [1, -1])
def test_accumulator_overflow_raises_runtime_check_error(sign):
    a = np.array([[sign * 100, 0]], np.int8)
    b = np.array([[100], [5]], np.int8)
    bias = np.array([INT32_MAX - 9999 if sign > 0 else INT32_MIN + 9999], np.int32)
    with pytest.raises(RuntimeCheckError, match=r"node 'mm'.*overflows int32"):
        one_node(a, "int8", 1.0, 0, b, "int8", 1.0, None, bias, s_y=2.0**20)
    # one less in magnitude is fine
    a[0, 0] = sign * 99
    one_node(a, "int8", 1.0, 0, b, "int8", 1.0, None, bias, s_y=2.0**20)


# ---------------------------------------------------------------------------
# Invalid models (ERROR_IF) through GraphBuilder
# ---------------------------------------------------------------------------

def _node(a_shape=(2, 3), b_shape=(3, 4), a_dtype="int8", b_dtype="int8", a_q=None, b_q=None, **kw):
    return weights_node("matmul", ("a", a_dtype, a_shape, a_q), ("b", b_dtype, b_shape, b_q), name="mm", **kw)


@pytest.mark.parametrize("kwargs,match", [
    (dict(b_shape=(4, 4)), r"inner dimensions differ.*K = 3.*K = 4"),
    (dict(a_shape=(3,)), r"input a 'a' must have rank >= 2"),
    (dict(b_shape=(3,)), r"input b 'b' must have rank >= 2"),
    (dict(a_shape=(2, 2, 3), b_shape=(3, 3, 4)), r"batch dimensions .* do not broadcast"),
    (dict(a_dtype="int16"), r"input a 'a' has dtype int16"),
    (dict(b_dtype="uint4"), r"input b 'b' has dtype uint4"),
    (dict(b_q={"scale": np.full(3, 0.1), "axis": 0}), r"per-axis quantization must be on axis 1, got 0"),
    (dict(a_q={"scale": np.full(3, 0.1), "axis": 1}), r"input a 'a': per-axis quantization is not supported"),
    (dict(a_q={}), r"input a 'a' must be quantized"),
    (dict(b_q={}), r"input b 'b' must be quantized"),
    (dict(out_q={}), r"output .* must be quantized"),
    (dict(bias=np.zeros(3, np.int32)), r"bias 'bias' must have shape \[4\]"),
    (dict(bias=np.zeros(4, np.int8)), r"bias 'bias' has dtype int8"),
    (dict(bias=np.zeros(4, np.int32), bias_q={"scale": 0.01, "zero_point": 1}), r"zero point 0"),
    (dict(attrs={"dtype": "int4"}), r"attribute dtype must be one of"),
    (dict(attrs={"dtype": "int32"}), r"int32 output .* is the accumulator"),
    (dict(attrs={"dtype": "int32"}, out_q={"scale": 0.01, "zero_point": 0}), r"s_in \* s_w = 0\.0100"),
    (dict(attrs={"dtype": "int32"}, out_q={"scale": 0.01 * 0.1, "zero_point": 1}), r"with zero point 0"),
    (dict(attrs={"dtype": "int32"}, b_q={"scale": np.full(4, 0.1), "axis": 1}, out_q={"scale": 0.01}),
     r"int32 output .*per-tensor quantization is not supported"),
    (dict(attrs={"act_min": 10, "act_max": 5}), r"act_min 10 > act_max 5"),
    (dict(attrs={"act_min": -200}), r"act_min -200 is outside the int8 range"),
    (dict(out_q={"scale": 1e30, "zero_point": 0}), r"multiplier s_a \* s_b / s_y"),
])
def test_invalid_models_are_rejected(kwargs, match):
    with pytest.raises(ValidationError, match=r"node 'mm' \(matmul\): " + ".*" + match):
        _node(**kwargs)


def test_default_output_dtype_is_the_dtype_of_a():
    g = GraphBuilder()
    ai = g.input("a", "uint8", (1, 2), scale=0.1, zero_point=3)
    bi = g.constant("b", np.ones((2, 2), np.int8), scale=0.1)
    y = g.node("matmul", [ai, bi], scale=0.1, zero_point=0)
    assert g.tensors[y].dtype == "uint8" and g.tensors[y].shape == (1, 2)


# ---------------------------------------------------------------------------
# Output dtype int32: the accumulator itself (ONNX's MatMulInteger)
# ---------------------------------------------------------------------------

def int32_node(a, a_dtype, za, b, b_dtype, zb, bias=None, profile="qnnref", s_a=0.5, s_b=0.25, y_q=None,
               act=(None, None), b_constant=True):
    g = GraphBuilder(profile=profile)
    ai = g.input("a", a_dtype, a.shape, scale=s_a, zero_point=za)
    axis = b.ndim - 1 if np.ndim(zb) else None
    s_b = np.broadcast_to(np.float32(s_b), np.shape(zb)).astype(np.float32) if axis is not None else s_b
    bi = (g.constant("b", b, dtype=b_dtype, scale=s_b, zero_point=zb, axis=axis) if b_constant
          else g.input("b", b_dtype, b.shape, scale=s_b, zero_point=zb, axis=axis))
    ins = [ai, bi] + ([g.constant("bias", bias)] if bias is not None else [])
    y = g.node("matmul", ins, node_attrs(act=act, dtype="int32"), name="mm", **(y_q or {}))
    g.output(y)
    assert g.tensors[y].dtype == "int32"
    feeds = {"a": a} if b_constant else {"a": a, "b": b}
    return g.build().run(feeds)[y]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1),
       a_dtype=st.sampled_from(["int8", "uint8"]), b_dtype=st.sampled_from(["int8", "int4", "uint8"]),
       m=st.integers(1, 4), k=st.sampled_from([1, 2, 7, 16, 33]), n=st.integers(1, 4),
       batch=st.sampled_from([(), (2,)]), per_channel=st.booleans(), with_bias=st.booleans(),
       b_constant=st.booleans(), values=st.sampled_from(["random", "extremes"]),
       zp_kind=st.sampled_from(["random", "min", "max", "zero"]))
def test_int32_output_is_the_exact_accumulator(seed, a_dtype, b_dtype, m, k, n, batch, per_channel, with_bias,
                                                b_constant, values, zp_kind):
    rng = np.random.default_rng(seed)
    a = random_values(rng, a_dtype, batch + (m, k), values)
    b = random_values(rng, b_dtype, (k, n), values)
    za = random_zero_point(rng, a_dtype, zp_kind)
    zb = random_zero_point(rng, b_dtype, zp_kind, n if per_channel else None)
    bias = rng.integers(-(2**20), 2**20, n).astype(np.int32) if with_bias else None
    # every profile: no requantization, so no recipe is involved
    for profile in ("qnnref", "onnx"):
        y = int32_node(a, a_dtype, za, b, b_dtype, zb, bias, profile=profile, b_constant=b_constant)
        assert y.dtype == np.int32
        np.testing.assert_array_equal(y, oracle_acc(a, za, b, zb, bias).astype(np.int64))


def test_int32_output_quantized_at_the_accumulator_scale():
    """Unquantized, or quantized at fl32(s_a * s_b) (per column when b is)."""
    a = np.array([[3, 1, -1], [5, 2, 0]], np.int8)
    b = np.array([[1, -2], [3, 4], [-1, 2]], np.int8)
    want = oracle_acc(a, 1, b, 0, None).astype(np.int64)
    s_b = np.array([0.25, 0.1], np.float32)
    s_y = (np.float32(0.3) * s_b).astype(np.float32)
    got = int32_node(a, "int8", 1, b, "int8", np.zeros(2, np.int8), s_a=0.3, s_b=s_b,
                     y_q={"scale": s_y, "zero_point": np.zeros(2, np.int64), "axis": 1})
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(int32_node(a, "int8", 1, b, "int8", 0), want)


def test_int32_output_keeps_the_accumulator_contract_and_clamps():
    a = np.array([[100, 0]], np.int8)
    b = np.array([[100], [5]], np.int8)
    with pytest.raises(RuntimeCheckError, match=r"node 'mm'.*overflows int32"):
        int32_node(a, "int8", 0, b, "int8", 0, np.array([INT32_MAX - 9999], np.int32))
    assert int32_node(a, "int8", 0, b, "int8", 0, np.array([INT32_MAX - 10000], np.int32))[0, 0] == INT32_MAX
    assert int32_node(a, "int8", 0, b, "int8", 0, act=(-5, 7))[0, 0] == 7


def test_int32_output_keeps_pairwise_int16_saturation():
    """(255, 255) . (127, 127): 64770 exactly, 32767 summed in a saturated pair."""
    a = np.array([[255, 255]], np.uint8)
    b = np.array([[127], [127]], np.int8)
    assert int32_node(a, "uint8", 0, b, "int8", 0, profile="ort-cpu-x86")[0, 0] == 32767
    assert int32_node(a, "uint8", 0, b, "int8", 0, profile="ort-cpu-x86-vnni")[0, 0] == 64770
