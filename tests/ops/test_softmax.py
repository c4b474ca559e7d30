"""softmax: the worked example with its intermediates, exactness against a
scalar Python-int transcription of the algorithm (with TFLite's own final
step for the recommended output quantization), accuracy against float
softmax, the fixed-point primitives, edge cases, ERROR_IF."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import INT32_MAX, INT32_MIN, c_div, gemmlowp_rdbpot, gemmlowp_srdhm, tflite_quantize_multiplier

import qnnref
from qnnref import GraphBuilder
from qnnref.ops.softmax import (
    MAX_AXIS_LENGTH,
    exp_on_negative_values,
    get_reciprocal,
    one_over_one_plus_x_for_x_in_0_1,
    prepare_softmax,
    softmax,
)

RANGES = {"int8": (-128, 127), "uint8": (0, 255)}
NP = {"int8": np.int8, "uint8": np.uint8}


# ---------------------------------------------------------------------------
# Oracle: the algorithm one scalar at a time, in Python ints with C int32
# semantics (gemmlowp's primitives from tests/oracles.py); every
# intermediate is asserted to fit int32.
# ---------------------------------------------------------------------------

def i32(v: int) -> int:
    assert INT32_MIN <= v <= INT32_MAX, v
    return v


def o_sat_shl(x: int, e: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0, transcribed."""
    threshold = (1 << (31 - e)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return i32(x << e)


def o_exp_interval(a: int) -> int:
    x = i32(a + (1 << 28))
    x2 = gemmlowp_srdhm(x, x)
    x3 = gemmlowp_srdhm(x2, x)
    x4 = gemmlowp_srdhm(x2, x2)
    x4_over_4 = gemmlowp_rdbpot(x4, 2)
    poly = gemmlowp_rdbpot(i32(gemmlowp_srdhm(i32(x4_over_4 + x3), 715827883) + x2), 1)
    return i32(1895147668 + gemmlowp_srdhm(1895147668, i32(x + poly)))


def o_exp_neg(a: int) -> int:
    """exp(a), a in Q5.26 (a <= 0), result in Q0.31."""
    k_frac = 26
    one_quarter = 1 << (k_frac - 2)
    amq = i32((a & (one_quarter - 1)) - one_quarter)
    result = o_exp_interval(o_sat_shl(amq, 5))
    remainder = i32(amq - a)
    for exponent, mult in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                           (2, 39332535), (3, 720401), (4, 242)):
        if remainder & (1 << (k_frac + exponent)):
            result = gemmlowp_srdhm(result, mult)
    return INT32_MAX if a == 0 else result


def o_one_over_one_plus_x(a: int) -> int:
    s = a + INT32_MAX                                  # RoundingHalfSum(a, One), in int64
    half_denominator = i32(c_div(s + (1 if s >= 0 else -1), 2))
    x = i32(1515870810 + gemmlowp_srdhm(half_denominator, -1010580540))
    for _ in range(3):
        hx = gemmlowp_srdhm(half_denominator, x)
        one_minus = i32((1 << 29) - hx)
        x = i32(x + o_sat_shl(gemmlowp_srdhm(x, one_minus), 2))
    return o_sat_shl(x, 1)


def o_params(beta, s_x, s_y):
    """TFLite PreprocessSoftmaxScaling + CalculateInputRadius, and 1 / s_y."""
    real = min(float(np.float32(beta)) * float(np.float32(s_x)) * (1 << 26), (1 << 31) - 1.0)
    m, shift = tflite_quantize_multiplier(real)
    radius = math.floor(Fraction(31 * 2**26, 2**shift))
    m2, shift2 = tflite_quantize_multiplier(1.0 / float(np.float32(s_y)))
    return m, shift, -radius, m2, shift2


def o_softmax_row(row, beta, s_x, s_y, zp_y, dtype, tflite_final=False):
    m, left_shift, diff_min, m_out, sh_out = o_params(beta, s_x, s_y)
    lo, hi = RANGES[dtype]
    mx = max(row)
    exps = []
    for v in row:
        d = v - mx
        if d >= diff_min:
            exps.append(o_exp_neg(gemmlowp_srdhm(i32(d * 2**left_shift), m)))
        else:
            exps.append(None)
    total = 0
    for e in exps:
        if e is not None:
            total = i32(total + gemmlowp_rdbpot(e, 12))
    headroom_plus_one = 32 - total.bit_length()                 # CountLeadingZeros(uint32)
    nbou = 12 - headroom_plus_one
    shifted_scale = o_one_over_one_plus_x(i32((total << headroom_plus_one) - 2**31))
    out = []
    for e in exps:
        if e is None:
            out.append(lo if tflite_final else max(lo, min(hi, zp_y)))
            continue
        prob = gemmlowp_srdhm(shifted_scale, e)
        if tflite_final:                                        # TFLite: RDBPOT(prob, nbou + 31 - 8) + min
            unsat = gemmlowp_rdbpot(prob, nbou + 31 - 8)
            out.append(max(lo, min(hi, unsat + lo)))
        else:
            p = Fraction(prob * m_out, 2**(62 + nbou - sh_out))   # >= 0: ties away = floor(v + 1/2)
            out.append(max(lo, min(hi, math.floor(p + Fraction(1, 2)) + zp_y)))
    return out


def build(dtype, shape, s_x, zp_x, s_y, zp_y, axis=-1, beta=1.0, name="sm"):
    b = GraphBuilder()
    x = b.input("x", dtype, shape, scale=s_x, zero_point=zp_x)
    y = b.node("softmax", [x], {"axis": axis, "beta": beta}, scale=s_y, zero_point=zp_y, name=name)
    b.output(y)
    return b.build(), y


def float_softmax(x, beta, s_x, axis=-1):
    r = float(np.float32(beta)) * float(np.float32(s_x)) * x.astype(np.float64)
    e = np.exp(r - r.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------------------
# Worked example (spec/ops/softmax.md)
# ---------------------------------------------------------------------------

def test_worked_example():
    model, y = build("int8", (1, 4), 1 / 16, 0, 1 / 256, -128)
    x = np.array([[16, 0, -16, -128]], np.int8)
    assert model.run(x)[y].tolist() == [[42, -65, -105, -128]]


def test_worked_example_intermediates():
    p = prepare_softmax(1.0, 1 / 16, 1 / 256)
    assert (p.input_multiplier, p.input_left_shift, p.diff_min) == (2**30, 23, -248)
    assert (p.output_multiplier, p.output_shift) == (2**30, 9)
    scaled = np.array([0, -(2**26), -(2**27), -9 * 2**26])          # 0, -1, -2, -9 in Q5.26
    exps = exp_on_negative_values(scaled)
    assert exps.tolist() == [2147483647, 790015308, 290630390, 265021]
    terms = (exps + 2048) >> 12                                       # Q12.19, ties away (exps > 0)
    assert terms.tolist() == [524288, 192875, 70955, 65] and terms.sum() == 788183
    shifted_scale, nbou = get_reciprocal(np.array([788183]))
    assert (int(shifted_scale[0]), int(nbou[0])) == (1428475250, 0)
    assert [gemmlowp_srdhm(1428475250, int(e)) for e in exps] == [1428475249, 525506825, 193323157, 176288]
    # p * 256 = prob / 2^23: 170.29, 62.65, 23.05, 0.02 -> 170, 63, 23, 0; minus 128
    assert [math.floor(Fraction(v, 2**23) + Fraction(1, 2)) - 128
            for v in (1428475249, 525506825, 193323157, 176288)] == [42, -65, -105, -128]


# ---------------------------------------------------------------------------
# Exactness against the scalar oracle
# ---------------------------------------------------------------------------

betas = st.sampled_from([1.0, 0.5, 2.0, 0.1, 1.7, 10.0])
x_scales = st.sampled_from([1 / 16, 0.1, 0.0039, 0.02, 0.25, 0.5, 1.0, 3.0, 1e-6, 1e-3])


@settings(max_examples=120, deadline=None)
@given(dtype=st.sampled_from(["int8", "uint8"]), beta=betas, s_x=x_scales,
       out=st.sampled_from(["recommended", "1/255", "1/128", "any"]), data=st.data())
def test_matches_scalar_oracle(dtype, beta, s_x, out, data):
    lo, hi = RANGES[dtype]
    if out == "recommended":
        s_y, zp_y = 1 / 256, lo
    elif out == "1/255":
        s_y, zp_y = 1 / 255, lo
    elif out == "1/128":
        s_y, zp_y = 1 / 128, 0
    else:
        s_y = float(np.float32(data.draw(st.floats(1e-4, 10.0))))
        zp_y = data.draw(st.integers(lo, hi))
    rows, depth = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 40))
    center = data.draw(st.integers(lo, hi))
    spread = data.draw(st.sampled_from([0, 1, 3, 20, 255]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = np.clip(center + rng.integers(-spread, spread, size=(rows, depth), endpoint=True), lo, hi).astype(NP[dtype])
    model, y = build(dtype, (rows, depth), s_x, 0, s_y, zp_y, beta=beta)
    got = model.run(x)[y]
    want = [o_softmax_row([int(v) for v in row], beta, s_x, s_y, zp_y, dtype) for row in x]
    assert got.tolist() == want
    if out == "recommended":       # TFLite's own last step gives the same bits
        assert got.tolist() == [o_softmax_row([int(v) for v in row], beta, s_x, s_y, zp_y, dtype, True)
                                for row in x]


@pytest.mark.parametrize("beta,s_x", [(1.0, 1 / 16), (1.0, 0.1), (1.0, 1.0), (0.3, 0.02), (1.0, 2.0**-20)])
def test_every_int8_difference(beta, s_x):
    # rows holding the max 127 and one other value: every difference 0..-255 once
    x = np.full((256, 2), 127, np.int8)
    x[:, 1] = np.arange(-128, 128)
    model, y = build("int8", (256, 2), s_x, 0, 1 / 256, -128, beta=beta)
    got = model.run(x)[y]
    want = [o_softmax_row([int(a), int(b)], beta, s_x, 1 / 256, -128, "int8", True) for a, b in x]
    assert got.tolist() == want


def test_axis_other_than_last(rng):
    x = rng.integers(-128, 128, size=(5, 3, 4)).astype(np.int8)
    for axis in (0, 1, 2, -2):
        model, y = build("int8", x.shape, 0.1, 0, 1 / 256, -128, axis=axis)
        got = model.run(x)[y]
        moved = np.moveaxis(x, axis, -1)
        want = np.array([o_softmax_row([int(v) for v in row], 1.0, 0.1, 1 / 256, -128, "int8")
                         for row in moved.reshape(-1, moved.shape[-1])]).reshape(moved.shape)
        assert np.array_equal(got, np.moveaxis(want, -1, axis)), axis


# ---------------------------------------------------------------------------
# Accuracy against float softmax
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,s_y,zp_y", [("int8", 1 / 256, -128), ("uint8", 1 / 256, 0),
                                            ("int8", 1 / 255, -128), ("int8", 1 / 128, 0)])
def test_accuracy_against_float_softmax(dtype, s_y, zp_y):
    # Measured (spec/ops/softmax.md, "Precision"): every output is within
    # 0.5011 output steps of the exact p / s_y, so within one step of the
    # correctly rounded result; asserted here with some margin.
    rng = np.random.default_rng(11)
    lo, hi = RANGES[dtype]
    worst = 0.0
    for s_x in (1 / 16, 0.1, 0.0039, 0.5, 0.02):
        for beta in (1.0, 0.5, 2.0):
            for depth in (1, 2, 5, 10, 100, 1000, MAX_AXIS_LENGTH):
                x = rng.integers(lo, hi, size=(4, depth), endpoint=True)
                x[2:] = np.clip(hi - rng.integers(0, 8, size=(2, depth)), lo, hi)     # near-equal rows
                x = x.astype(NP[dtype])
                got = softmax(x, prepare_softmax(beta, s_x, s_y), 1, zp_y, dtype).astype(np.float64)
                ideal = float_softmax(x, beta, s_x) / np.float64(np.float32(s_y)) + zp_y
                inside = (ideal >= lo) & (ideal <= hi)
                worst = max(worst, float(np.abs(got - ideal)[inside].max(initial=0)))
    assert worst <= 0.5 + 2.0**-8, worst


def test_exp_on_negative_values_accuracy_and_exactness():
    # every multiple of 2^-10 in (-32, 0], plus the interval ends
    a = np.concatenate([-np.arange(0, 32 * 2**10) * 2**16, [-(31 * 2**26), -1, -(2**24), -(2**24) + 1]])
    got = exp_on_negative_values(a)
    sample = a[::97]
    assert [o_exp_neg(int(v)) for v in sample] == got[::97].tolist()
    err = np.abs(got / 2.0**31 - np.exp(a / 2.0**26))
    # the 4th-order Taylor polynomial around -1/8 on [-1/4, 0) is off by up to
    # (1/8)^5 / 120 ~ 2.5e-7 (measured: 2.3e-7, about 490 units of 2^-31)
    assert err.max() < 2.5e-7


def test_one_over_one_plus_x_accuracy_and_exactness():
    a = np.concatenate([np.arange(0, 2**31, 2**31 // 4099), [0, 1, INT32_MAX - 1, INT32_MAX]])
    got = one_over_one_plus_x_for_x_in_0_1(a)
    assert [o_one_over_one_plus_x(int(v)) for v in a[::13]] == got[::13].tolist()
    err = np.abs(got / 2.0**31 - 1 / (1 + a / 2.0**31))
    assert err.max() < 4e-9
    assert got[a == 0].tolist() == [INT32_MAX, INT32_MAX]     # 1 saturates to 2^31 - 1


# ---------------------------------------------------------------------------
# Edge cases
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 2, 3, 4, 10, 256, 1000, MAX_AXIS_LENGTH])
def test_all_equal_inputs(depth):
    for value in (-128, 0, 127):
        x = np.full((1, depth), value, np.int8)
        got = softmax(x, prepare_softmax(1.0, 0.1, 1 / 256), 1, -128, "int8")
        want = math.floor(Fraction(256, depth) + Fraction(1, 2)) - 128      # 256 / depth, rounded
        assert got.tolist() == [[min(127, want)] * depth], (depth, value)


def test_one_hot_max():
    # a large scale makes every non-maximal input negligible
    x = np.full((1, 10), -128, np.int8)
    x[0, 3] = 127
    got = softmax(x, prepare_softmax(1.0, 0.1, 1 / 256), 1, -128, "int8")
    assert got.tolist() == [[-128] * 3 + [127] + [-128] * 6]
    # a difference beyond diff_min is skipped (exp counted as 0) rather than overflowing
    # (s_x = 1: multiplier 2^26 = 2^30 * 2^(27 - 31), left shift 27, radius floor(31 / 2) = 15)
    p = prepare_softmax(1.0, 1.0, 1 / 256)
    assert (p.input_left_shift, p.diff_min) == (27, -15)
    x2 = np.array([[127, 112, 111, -128]], np.int8)                     # differences 0, -15, -16, -255
    assert softmax(x2, p, 1, -128, "int8").tolist() == [[127, -128, -128, -128]]
    assert o_softmax_row([127, 112, 111, -128], 1.0, 1.0, 1 / 256, -128, "int8", True) == [127, -128, -128, -128]


def test_all_minimum_inputs_uint8():
    x = np.zeros((2, 4), np.uint8)
    model, y = build("uint8", (2, 4), 0.05, 0, 1 / 256, 0)
    assert model.run(x)[y].tolist() == [[64] * 4] * 2


def test_large_multiplier_is_capped():
    # beta * s_x * 2^26 > 2^31 - 1: capped, left shift 31, only the maxima count
    p = prepare_softmax(1.0, 64.0, 1 / 256)
    assert (p.input_multiplier, p.input_left_shift, p.diff_min) == (2**31 - 1, 31, 0)
    x = np.array([[5, 5, 4, -128]], np.int8)
    assert softmax(x, p, 1, -128, "int8").tolist() == [[0, 0, -128, -128]]
    assert o_softmax_row([5, 5, 4, -128], 1.0, 64.0, 1 / 256, -128, "int8", True) == [0, 0, -128, -128]


def test_input_zero_point_does_not_matter():
    x = np.array([[3, -7, 12, 0]], np.int8)
    outs = []
    for zp in (-128, 0, 127):
        model, y = build("int8", (1, 4), 0.1, zp, 1 / 256, -128)
        outs.append(model.run(x)[y].tolist())
    assert outs[0] == outs[1] == outs[2]


# ---------------------------------------------------------------------------
# ERROR_IF
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case,pattern", [
    ("dtype", "input x.*int16"),
    ("axis", "axis 2 is out of range"),
    ("too_long", "length 4096"),
    ("beta_zero", "beta must be"),
    ("beta_negative", "beta must be"),
    ("beta_inf", "beta must be"),
    ("beta_overflows_f32", "beta must be"),
    ("per_axis", "per-axis"),
    ("unquantized", "must be quantized"),
    ("tiny_beta_scale", "below 2\\^-26"),
    ("tiny_output_scale", "s_y"),
    ("scalar", "out of range for rank 0"),
])
def test_errors(case, pattern):
    b = GraphBuilder()
    dtype, shape, kw = "int8", (2, 3), {"scale": 0.1, "zero_point": 0}
    attrs = {}
    s_y = 1 / 256
    if case == "dtype":
        dtype = "int16"
    if case == "axis":
        attrs["axis"] = 2
    if case == "too_long":
        shape = (1, 4096)
    if case.startswith("beta"):
        attrs["beta"] = {"beta_zero": 0.0, "beta_negative": -1.0, "beta_inf": math.inf,
                         "beta_overflows_f32": 1e39}[case]
    if case == "per_axis":
        kw = {"scale": [0.1, 0.2], "zero_point": 0, "axis": 0}
    if case == "unquantized":
        kw = {}
    if case == "tiny_beta_scale":
        kw = {"scale": 1e-9, "zero_point": 0}
    if case == "tiny_output_scale":
        s_y = 1e-10
    if case == "scalar":
        shape = ()
    x = b.input("x", dtype, shape, **kw)
    with pytest.raises(qnnref.ValidationError, match=f"'bad'.*{pattern}"):
        b.node("softmax", [x], attrs, scale=s_y, zero_point=0, name="bad")


def test_longest_axis_is_valid():
    model, y = build("int8", (1, MAX_AXIS_LENGTH), 0.1, 0, 1 / 256, -128)
    out = model.run(np.full((1, MAX_AXIS_LENGTH), 127, np.int8))[y]
    assert (out == -128).all()        # 256 / 4095 rounds to 0
