"""avg_pool2d: exact rounded division, both paths, oracles in Python ints / Fractions."""
from __future__ import annotations

from fractions import Fraction
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_kernels, run1, unary_model
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from oracles import c_div, clamp_to, pool_geometry_ok, pool_out_shape, pool_windows, requantize_value, round_fraction

import qnnref
from qnnref import arith, dtypes
from qnnref.arith import ROUNDING_MODES, rounding_divide
from qnnref.arith import Recipe
from qnnref.ops.avg_pool2d import avg_pool2d, avg_pool2d_float
from qnnref.ops.mean import mean_multiplier
from qnnref.profiles import PROFILES

ROOT = Path(__file__).resolve().parents[2]
build = partial(unary_model, "avg_pool2d", scale=0.5, zp=0, name="ap")


# ---------------------------------------------------------------------------
# independent oracles (the windows: pool_windows of tests/oracles.py)
# ---------------------------------------------------------------------------

def oracle_same_quant(x, zp, kernel, strides, dilations, pads, include, mode, dtype, lo=None, hi=None):
    dt = dtypes.get(dtype)
    y = np.zeros(pool_out_shape(x.shape, kernel, strides, dilations, pads), dt.numpy)
    for n, oh, ow, c, vals in pool_windows(x, kernel, strides, dilations, pads):
        count = kernel[0] * kernel[1] if include else len(vals)
        codes = sum(vals) + (count - len(vals)) * zp        # padded taps are the code zp
        y[n, oh, ow, c] = clamp_to(round_fraction(Fraction(codes, count), mode), dtype, lo, hi)
    return y


def oracle_requant(x, zx, sx, sy, zy, kernel, strides, dilations, pads, include, recipe, dtype):
    dt = dtypes.get(dtype)
    y = np.zeros(pool_out_shape(x.shape, kernel, strides, dilations, pads), dt.numpy)
    for n, oh, ow, c, vals in pool_windows(x, kernel, strides, dilations, pads):
        count = kernel[0] * kernel[1] if include else len(vals)
        acc = sum(v - zx for v in vals)
        real = mean_multiplier(sx, sy, count, recipe.scale_dtype)
        y[n, oh, ow, c] = requantize_value(acc, real, recipe, zy, dtype)
    return y


def oracle_float_average(x, zx, sx, sy, zy, kernel, strides, dilations, pads, include, recipe, dtype,
                         lo=None, hi=None):
    """average_form float_average, one window and one scalar operation at a
    time, in ONNX Runtime's order (QLinearPool2DTask): Yh += fl(s_x * (x - zp))
    over the taps inside, Yh /= count, then nearbyint(Yh / s_y + zp)."""
    ft = np.float32 if recipe.float_dtype == "float32" else np.float64
    dt = dtypes.get(dtype)
    y = np.zeros(pool_out_shape(x.shape, kernel, strides, dilations, pads), dt.numpy)
    with np.errstate(over="ignore"):
        for n, oh, ow, c, vals in pool_windows(x, kernel, strides, dilations, pads):
            count = kernel[0] * kernel[1] if include else len(vals)
            total = ft(0)
            for v in vals:
                total = ft(total + ft(ft(sx) * ft(v - zx)))
            q = ft(ft(total / ft(count)) / ft(sy))
            v = ft(q + ft(zy)) if recipe.zero_point_in_float else q
            if not np.isfinite(v):
                r = dt.max if v > 0 else dt.min
            else:
                r = round_fraction(Fraction(float(v)), recipe.rounding)
            y[n, oh, ow, c] = clamp_to(r if recipe.zero_point_in_float else r + zy, dtype, lo, hi)
    return y


def tflite_int8_average(acc: int, count: int) -> int:
    """TFLite reference_integer_ops AveragePool: C division truncates."""
    return c_div(acc + count // 2, count) if acc > 0 else c_div(acc - count // 2, count)


# ---------------------------------------------------------------------------
# spec page
# ---------------------------------------------------------------------------

def test_spec_includes_the_division_and_the_reference():
    # the blocks' text equals the code: tests/spec/test_spec_sync.py
    text = (ROOT / "spec/ops/avg_pool2d.md").read_text()
    assert "<!-- source: qnnref/arith.py rounding_divide -->" in text
    assert "<!-- source: qnnref/ops/avg_pool2d.py avg_pool2d -->" in text
    assert "<!-- source: qnnref/ops/avg_pool2d.py avg_pool2d_float -->" in text


# ---------------------------------------------------------------------------
# rounding_divide
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_rounding_divide_exhaustive_small(mode):
    n = np.arange(-300, 301, dtype=np.int64)
    for d in range(1, 17):
        got = rounding_divide(n, d, mode)
        want = [round_fraction(Fraction(int(v), d), mode) for v in n]
        assert got.tolist() == want, (mode, d)


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_rounding_divide_agrees_with_rounding_divide_by_pot(mode):
    x = np.concatenate([np.arange(-1000, 1001), [2**40 + 3, -(2**40) - 5, 2**61 - 1, -(2**61)]]).astype(np.int64)
    for e in range(0, 12):
        assert np.array_equal(rounding_divide(x, 2**e, mode), arith.rounding_divide_by_pot(x, e, mode))


@settings(max_examples=200, deadline=None)
@given(n=st.integers(-(2**61), 2**61), d=st.integers(1, 2**31), mode=st.sampled_from(ROUNDING_MODES))
def test_rounding_divide_large(n, d, mode):
    assert int(rounding_divide(np.array([n]), d, mode)[0]) == round_fraction(Fraction(n, d), mode)


def test_rounding_divide_is_tflite_for_half_away_from_zero():
    for count in range(1, 40):
        acc = np.arange(-128 * count, 127 * count + 1)
        got = rounding_divide(acc, count, "half_away_from_zero")
        assert got.tolist() == [tflite_int8_average(int(a), count) for a in acc]


# ---------------------------------------------------------------------------
# worked example
# ---------------------------------------------------------------------------

WX = np.array([[7, -2, 4], [1, 6, -9], [0, 3, 10]], np.int8).reshape(1, 3, 3, 1)
WATTRS = {"kernel": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1]}


@pytest.mark.parametrize("include, rounding, want", [
    (False, "half_away_from_zero", [[7, 1], [1, 3]]),
    (False, "half_to_even", [[7, 1], [0, 2]]),
    (True, "half_away_from_zero", [[-1, -1], [-1, 3]]),
    (True, "half_to_even", [[0, -1], [-1, 2]]),
])
def test_worked_example_same_quantization(include, rounding, want):
    attrs = dict(WATTRS, count_include_pad=include)
    if rounding != "half_away_from_zero":
        attrs["rounding"] = rounding
    m = build((1, 3, 3, 1), attrs, scale=0.5, zp=-3)
    assert run1(m, WX)[0, :, :, 0].tolist() == want


def test_worked_example_requantized():
    m = build((1, 3, 3, 1), WATTRS, scale=0.5, zp=-3, out_scale=0.5, out_zp=0)
    assert run1(m, WX)[0, :, :, 0].tolist() == [[10, 4], [4, 6]]


def test_default_rounding_is_half_away_from_zero():
    m = build((1, 1, 2, 1), {"kernel": [1, 2]}, zp=0)
    x = np.array([[[[-1], [0]]]], np.int8)      # -0.5
    assert run1(m, x).item() == -1
    x = np.array([[[[1], [0]]]], np.int8)       # 0.5
    assert run1(m, x).item() == 1


# ---------------------------------------------------------------------------
# property tests against the oracles
# ---------------------------------------------------------------------------

# most geometries drawn from ``geom`` leave some window without a tap: assume()
# filters them out, and the rate at which it does is not a failure
geom = dict(
    N=st.integers(1, 2), H=st.integers(1, 5), W=st.integers(1, 5), C=st.integers(1, 2),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilations=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    pads=st.tuples(*[st.integers(0, 3)] * 4),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(dtype=st.sampled_from(["int4", "uint4", "int8", "uint8", "int16"]), include=st.booleans(),
       mode=st.sampled_from(ROUNDING_MODES), act=st.booleans(), seed=st.integers(0, 2**32 - 1), **geom)
def test_same_quantization_matches_oracle(dtype, include, mode, act, seed, N, H, W, C, kernel, strides,
                                          dilations, pads):
    assume(pool_geometry_ok(H, W, kernel, strides, dilations, pads))
    dt = dtypes.get(dtype)
    rng = np.random.default_rng(seed)
    x = rng.integers(dt.min, dt.max, (N, H, W, C), endpoint=True).astype(dt.numpy)
    zp = int(rng.choice([dt.min, dt.max, 0 if dt.min <= 0 else dt.min, int(rng.integers(dt.min, dt.max + 1))]))
    lo = hi = None
    if act:
        lo, hi = sorted(int(v) for v in rng.integers(dt.min, dt.max, 2, endpoint=True))
    y = avg_pool2d(x, kernel, strides, dilations, pads, include, zp, mode, None, zp, dtype, lo, hi)
    assert y.dtype == dt.numpy
    assert np.array_equal(y, oracle_same_quant(x, zp, kernel, strides, dilations, pads, include, mode,
                                               dtype, lo, hi))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(dtype=st.sampled_from(["int8", "uint8", "int16"]), include=st.booleans(),
       profile=st.sampled_from(["qnnref", "float32-half-to-even"]),
       sx=st.floats(0.001, 10.0), ratio=st.floats(0.05, 20.0), seed=st.integers(0, 2**32 - 1), **geom)
def test_requantized_matches_oracle(dtype, include, profile, sx, ratio, seed, N, H, W, C, kernel, strides,
                                    dilations, pads):
    assume(pool_geometry_ok(H, W, kernel, strides, dilations, pads))
    dt = dtypes.get(dtype)
    rng = np.random.default_rng(seed)
    x = rng.integers(dt.min, dt.max, (N, H, W, C), endpoint=True).astype(dt.numpy)
    zx, zy = (int(v) for v in rng.integers(dt.min, dt.max, 2, endpoint=True))
    sx = float(np.float32(sx))
    sy = float(np.float32(sx * ratio))
    assume(sy != sx or zy != zx)
    attrs = {"kernel": list(kernel), "strides": list(strides), "dilations": list(dilations), "pads": list(pads),
             "count_include_pad": include}
    m = build((N, H, W, C), attrs, dtype=dtype, scale=sx, zp=zx, out_scale=sy, out_zp=zy, profile=profile)
    want = oracle_requant(x, zx, sx, sy, zy, kernel, strides, dilations, pads, include,
                          PROFILES[profile].requant, dtype)
    assert np.array_equal(run1(m, x), want)


def test_requantized_one_multiplier_per_distinct_count():
    # 3x3 input, 3x3 kernel, pads 1: counts 4 (corners), 6 (edges), 9 (centre)
    m = build((1, 3, 3, 1), {"kernel": [3, 3], "pads": [1, 1, 1, 1]}, scale=0.5, zp=0, out_scale=0.25)
    ctx = m._contexts[0]
    assert sorted(ctx.prepared["params_by_count"]) == [4, 6, 9]
    m2 = build((1, 3, 3, 1), {"kernel": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": True},
               scale=0.5, zp=0, out_scale=0.25)
    assert sorted(m2._contexts[0].prepared["params_by_count"]) == [9]
    x = np.full((1, 3, 3, 1), 3, np.int8)
    # exclude: average 3 everywhere -> real 1.5 -> 6 at s_y = 0.25
    assert (run1(m, x) == 6).all()
    # include: corners 12 / 9 * 2 = 2.67 -> 3, edges 18 / 9 * 2 = 4, centre 6
    assert run1(m2, x)[0, :, :, 0].tolist() == [[3, 4, 3], [4, 6, 4], [3, 4, 3]]


# ---------------------------------------------------------------------------
# average_form "float_average": ONNX Runtime's QLinearAveragePool
# ---------------------------------------------------------------------------

ORT_POOL = PROFILES["ort-cpu-x86"].recipe_for("avg_pool2d")


def test_float_average_worked_example():
    """Equal quantizations, s = 0.1, two taps -20 and -11: the real average is
    -15.5 (half to even: -16), but the float32 steps give -15.499999 -> -15."""
    x = np.array([-20, -11], np.int8).reshape(1, 1, 2, 1)
    for profile, want in (("ort-cpu-x86", -15), ("ort-cpu-x86-vnni", -15), ("onnx", -16)):
        m = build((1, 1, 2, 1), {"kernel": [1, 2], "rounding": "half_to_even"}, scale=0.1, zp=0,
                  profile=profile)
        assert run1(m, x).item() == want, profile
    assert oracle_float_average(x, 0, np.float32(0.1), np.float32(0.1), 0, (1, 2), (1, 1), (1, 1),
                                (0, 0, 0, 0), False, ORT_POOL, "int8").item() == -15


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(dtype=st.sampled_from(["int4", "uint4", "int8", "uint8", "int16"]), include=st.booleans(),
       mode=st.sampled_from(ROUNDING_MODES), zp_in_float=st.booleans(),
       float_dtype=st.sampled_from(["float32", "float64"]), sx=st.floats(0.001, 10.0),
       ratio=st.sampled_from([1.0, 0.5, 1.5, 2.0, 3.0, 1 / 3, 0.37, 7.9, 1e-3]), act=st.booleans(),
       seed=st.integers(0, 2**32 - 1), **geom)
def test_float_average_matches_oracle(dtype, include, mode, zp_in_float, float_dtype, sx, ratio, act, seed,
                                      N, H, W, C, kernel, strides, dilations, pads):
    assume(pool_geometry_ok(H, W, kernel, strides, dilations, pads))
    dt = dtypes.get(dtype)
    rng = np.random.default_rng(seed)
    x = rng.integers(dt.min, dt.max, (N, H, W, C), endpoint=True).astype(dt.numpy)
    zx, zy = (int(v) for v in rng.integers(dt.min, dt.max, 2, endpoint=True))
    sx = np.float32(sx)
    sy = np.float32(sx * ratio)
    if ratio == 1.0 and rng.random() < 0.5:
        zy = zx                                           # equal quantizations: the same form
    lo = hi = None
    if act:
        lo, hi = sorted(int(v) for v in rng.integers(dt.min, dt.max, 2, endpoint=True))
    recipe = Recipe(kind="float", rounding=mode, float_dtype=float_dtype, scale_dtype="float32",
                    zero_point_in_float=zp_in_float, average_form="float_average")
    attrs = {"kernel": list(kernel), "strides": list(strides), "dilations": list(dilations), "pads": list(pads),
             "count_include_pad": include, "recipe": recipe.to_dict(), "act_min": lo, "act_max": hi}
    attrs = {k: v for k, v in attrs.items() if v is not None}
    m = build((N, H, W, C), attrs, dtype=dtype, scale=float(sx), zp=zx, out_scale=float(sy), out_zp=zy)
    want = oracle_float_average(x, zx, sx, sy, zy, kernel, strides, dilations, pads, include, recipe, dtype, lo, hi)
    assert np.array_equal(run1(m, x), want)


def test_float_average_saturates_huge_and_infinite_values():
    # s_x / s_y = 2^60: every non-zero average is far beyond int32; float32 2^127 * 255 overflows to inf
    x = np.array([5, -5, 0, 0], np.int8).reshape(1, 1, 4, 1)
    for sx, sy in ((2.0**30, 2.0**-30), (2.0**127, 2.0**-10)):
        y = avg_pool2d_float(x, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), False, np.float32(sx), 0, np.float32(sy), 3,
                             "float32", "half_to_even", True, "int8", None, None)
        assert y.ravel().tolist() == [127, -128, 3, 3]


def test_float_average_refuses_dequantized_values_beyond_float32():
    with pytest.raises(qnnref.ValidationError, match="node 'ap6'.*overflows float32"):
        build((1, 4, 4, 1), {"kernel": [2, 2]}, scale=1e37, zp=0, out_scale=1.0, name="ap6", profile="ort-cpu-x86")


def test_float_average_rounding_attribute_must_agree_with_the_recipe():
    attrs = {"kernel": [2, 2], "rounding": "half_up"}
    with pytest.raises(qnnref.ValidationError, match="node 'ap5'.*contradicts the recipe"):
        build((1, 4, 4, 1), attrs, scale=0.5, zp=0, name="ap5", profile="ort-cpu-x86")
    build((1, 4, 4, 1), {"kernel": [2, 2], "rounding": "half_to_even"}, scale=0.5, zp=0, profile="ort-cpu-x86")


@needs_kernels
def test_float_average_runs_on_the_reference_with_kernels():
    """The avg_pool2d kernel does not implement the float form: such nodes
    run on the reference (never the integer form by mistake)."""
    from qnnref import Model
    m = build((1, 5, 6, 3), {"kernel": [3, 2], "pads": [1, 1, 1, 0], "count_include_pad": True},
              scale=0.1, zp=-3, out_scale=0.3, out_zp=5, profile="ort-cpu-x86")
    km = Model(m.graph, backend="kernels")
    assert "average pool computed in ORT's float form" in km.plan()[0]["runs"]
    x = np.random.default_rng(3).integers(-128, 128, (1, 5, 6, 3)).astype(np.int8)
    assert np.array_equal(run1(km, x), run1(Model(m.graph, backend="reference"), x))


# ---------------------------------------------------------------------------
# edge cases
# ---------------------------------------------------------------------------

def test_matches_tflite_reference_int8_and_uint8():
    rng = np.random.default_rng(5)
    for dtype in ("int8", "uint8"):
        dt = dtypes.get(dtype)
        x = rng.integers(dt.min, dt.max, (1, 6, 7, 2), endpoint=True).astype(dt.numpy)
        y = avg_pool2d(x, (3, 2), (2, 2), (1, 1), (1, 0, 1, 1), False, 17, "half_away_from_zero", None, 17,
                       dtype, None, None)
        for n, oh, ow, c, vals in pool_windows(x, (3, 2), (2, 2), (1, 1), (1, 0, 1, 1)):
            want = tflite_int8_average(sum(vals), len(vals))
            if dtype == "uint8":                       # TFLite's uint8 kernel: (acc + count/2) / count
                assert want == (sum(vals) + len(vals) // 2) // len(vals)
            assert y[n, oh, ow, c] == want


def test_extreme_values_and_zero_points():
    for dtype in ("int8", "uint8", "int16"):
        dt = dtypes.get(dtype)
        for v in (dt.min, dt.max):
            for zp in (dt.min, dt.max):
                x = np.full((1, 3, 3, 1), v, dt.numpy)
                for include in (False, True):
                    y = avg_pool2d(x, (2, 2), (1, 1), (1, 1), (1, 1, 0, 0), include, zp, "half_away_from_zero",
                                   None, zp, dtype, None, None)
                    want = oracle_same_quant(x, zp, (2, 2), (1, 1), (1, 1), (1, 1, 0, 0), include,
                                             "half_away_from_zero", dtype)
                    assert np.array_equal(y, want)
                    if not include:
                        assert (y == v).all()


def test_kernel_larger_than_input_with_padding():
    x = np.array([[3, -9], [7, 2]], np.int8).reshape(1, 2, 2, 1)
    y = avg_pool2d(x, (4, 4), (1, 1), (1, 1), (1, 1, 1, 1), False, 0, "half_away_from_zero", None, 0,
                   "int8", None, None)
    assert y.item() == 1                       # 3 / 4 -> 0.75 -> 1
    y = avg_pool2d(x, (4, 4), (1, 1), (1, 1), (1, 1, 1, 1), True, 0, "half_away_from_zero", None, 0,
                   "int8", None, None)
    assert y.item() == 0                       # 3 / 16
    y = avg_pool2d(x, (4, 4), (1, 1), (1, 1), (1, 1, 1, 1), True, -8, "half_away_from_zero", None, -8,
                   "int8", None, None)
    assert y.item() == -6                      # codes (3 + 12 * -8) / 16 = -93 / 16 = -5.8125


def test_one_by_one_kernel_is_identity():
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, (2, 3, 4, 5)).astype(np.int8)
    for mode in ROUNDING_MODES:
        y = avg_pool2d(x, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), False, -128, mode, None, -128, "int8", None, None)
        assert np.array_equal(y, x)


def test_fused_activation_range():
    m = build((1, 1, 2, 1), {"kernel": [1, 2], "act_min": -3, "act_max": 3})
    assert run1(m, np.array([[[[100], [50]]]], np.int8)).item() == 3
    assert run1(m, np.array([[[[-100], [50]]]], np.int8)).item() == -3


def test_accumulator_overflow_is_a_runtime_error():
    # requantizing path: 32769 taps of x - zp = 65535 exceeds int32
    m = build((1, 1, 32769, 1), {"kernel": [1, 32769]}, dtype="int16", scale=1.0, zp=-32768,
              out_scale=2.0, out_zp=0, name="big")
    x = np.full((1, 1, 32769, 1), 32767, np.int16)
    with pytest.raises(qnnref.RuntimeCheckError, match="node 'big'.*overflows int32"):
        m.run(x)
    # same quantization: the sum of codes 3 * 32769 * 32767 exceeds int32
    m = build((1, 3, 32769, 1), {"kernel": [3, 32769]}, dtype="int16", scale=1.0, zp=0, name="big2")
    x = np.full((1, 3, 32769, 1), 32767, np.int16)
    with pytest.raises(qnnref.RuntimeCheckError, match="node 'big2'.*overflows int32"):
        m.run(x)


# ---------------------------------------------------------------------------
# invalid models
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("attrs, kw, msg", [
    ({}, {}, "'kernel' is required"),
    ({"kernel": [2, 2], "strides": [1]}, {}, "strides"),
    ({"kernel": [2, 2], "pads": [0, -1, 0, 0]}, {}, "pads"),
    ({"kernel": [1, 1], "pads": [1, 0, 0, 0], "count_include_pad": True}, {}, "only of padding"),
    ({"kernel": [2, 2], "rounding": "nearest"}, {}, "rounding"),
    ({"kernel": [2, 2], "rounding": "half_up"}, {"out_scale": 0.25}, "applies only when"),
    ({"kernel": [2, 2], "count_include_pad": 1}, {}, "count_include_pad"),
    ({"kernel": [2, 2], "act_min": -200}, {}, "act_min"),
    ({"kernel": [2, 2]}, {"out_scale": 1e-12}, r"multiplier s_x / \(s_y \* 4\)"),
])
def test_invalid_models(attrs, kw, msg):
    with pytest.raises(qnnref.ValidationError, match=msg) as e:
        build((1, 4, 4, 1), attrs, name="ap1", **kw)
    assert "node 'ap1'" in str(e.value)


def test_invalid_quantization():
    b = qnnref.GraphBuilder()
    x = b.input("x", "int8", (1, 2, 2, 1))
    with pytest.raises(qnnref.ValidationError, match="node 'ap2'.*must be quantized"):
        b.node("avg_pool2d", [x], {"kernel": [2, 2]}, name="ap2", scale=0.1)
    xq = b.input("xq", "int8", (1, 2, 2, 2), scale=np.array([0.1, 0.2]), axis=3)
    with pytest.raises(qnnref.ValidationError, match="node 'ap3'.*per-axis"):
        b.node("avg_pool2d", [xq], {"kernel": [2, 2]}, name="ap3", scale=np.array([0.1, 0.2]), axis=3)
    x3 = b.input("x3", "int8", (2, 2, 1), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="node 'ap4'.*rank 4"):
        b.node("avg_pool2d", [x3], {"kernel": [1, 1]}, name="ap4", scale=0.1)
