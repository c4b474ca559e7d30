"""float_conv2d: the worked example, every geometry against a Fraction oracle
that follows the spec's operation order, IEEE special values, the model path,
ERROR_IF. (Bit-exactness against ONNX Runtime: tests/onnx_import/test_float_ops.py.)"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from float_oracle import add, blocked_dot

import qnnref
from qnnref import GraphBuilder
from qnnref.ops.float_conv2d import float_conv2d

F32 = np.float32


def oracle(x, w, bias, strides, dilations, pads, groups, k_block):
    """Direct loops: each output's terms in (c, kh, kw) order, padded taps 0.0."""
    n, h, wd, c_in = x.shape
    c_out, kh, kw, cg = w.shape
    top, left, bottom, right = pads
    oh = (h + top + bottom - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + left + right - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    y = np.zeros((n, oh, ow, c_out), F32)
    per_group = c_out // groups
    for b, i, j, co in itertools.product(range(n), range(oh), range(ow), range(c_out)):
        g = co // per_group
        xs, ws = [], []
        for c, p, q in itertools.product(range(cg), range(kh), range(kw)):
            r, s = i * strides[0] + p * dilations[0] - top, j * strides[1] + q * dilations[1] - left
            inside = 0 <= r < h and 0 <= s < wd
            xs.append(x[b, r, s, g * cg + c] if inside else F32(0))
            ws.append(w[co, p, q, c])
        v = blocked_dot(xs, ws, k_block)
        y[b, i, j, co] = v if bias is None else add(v, bias[co])
    return y


def rand(rng, shape, tiny=False):
    """Values with many significant bits; some tiny, to make every rounding count."""
    v = rng.standard_normal(shape).astype(F32)
    if tiny:
        v *= F32(2.0) ** rng.integers(-30, 1, shape).astype(F32)
    return v


def build(x_shape, w, bias=None, **attrs):
    b = GraphBuilder()
    xi = b.input("x", "float32", x_shape)
    ins = [xi, b.constant("w", w)]
    if bias is not None:
        ins.append(b.constant("b", bias))
    y = b.node("float_conv2d", ins, attrs, name="fconv")
    b.output(y)
    return b.build(), y


def test_worked_example():
    x = np.array([1, 2**-24, 2**-24, 2**-24], F32).reshape(1, 1, 1, 4)
    w = np.ones((1, 1, 1, 4), F32)
    geo = ([1, 1], [1, 1], [0, 0, 0, 0], 1)
    assert float_conv2d(x, w, None, *geo, 0).item() == 1.0
    assert float_conv2d(x, w, None, *geo, 2).item() == 1 + 2**-23
    assert float_conv2d(x, w, np.array([0.5], F32), *geo, 2).item() == 1.5 + 2**-23
    model, y = build(x.shape, w, np.array([0.5], F32), k_block=2)
    assert model.run(x)[y].item() == 1.5 + 2**-23


GEOMETRIES = [  # (x shape NHWC, w shape OHWI, strides, dilations, pads, groups)
    ((1, 4, 5, 3), (2, 3, 3, 3), [1, 1], [1, 1], [1, 1, 1, 1], 1),
    ((2, 5, 4, 4), (4, 2, 3, 2), [2, 1], [1, 2], [0, 2, 1, 0], 2),
    ((1, 3, 3, 6), (6, 1, 1, 1), [1, 1], [1, 1], [0, 0, 0, 0], 6),
    ((1, 6, 6, 2), (3, 3, 2, 2), [2, 2], [2, 1], [2, 1, 0, 1], 1),
]


@pytest.mark.parametrize("geo", GEOMETRIES)
@pytest.mark.parametrize("k_block", [0, 1, 2, 5])
def test_against_oracle(geo, k_block):
    x_shape, w_shape, strides, dilations, pads, groups = geo
    rng = np.random.default_rng(hash((x_shape, k_block)) % 2**32)
    x, w = rand(rng, x_shape, tiny=True), rand(rng, w_shape)
    bias = rand(rng, (w_shape[0],))
    for b in (None, bias):
        got = float_conv2d(x, w, b, strides, dilations, pads, groups, k_block)
        want = oracle(x, w, b, strides, dilations, pads, groups, k_block)
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))


def test_k_block_longer_than_k_is_one_block():
    rng = np.random.default_rng(3)
    x, w = rand(rng, (1, 3, 3, 4), tiny=True), rand(rng, (2, 3, 3, 4))
    geo = ([1, 1], [1, 1], [1, 1, 1, 1], 1)
    np.testing.assert_array_equal(float_conv2d(x, w, None, *geo, 36), float_conv2d(x, w, None, *geo, 0))
    np.testing.assert_array_equal(float_conv2d(x, w, None, *geo, 1000), float_conv2d(x, w, None, *geo, 0))


def test_ieee_special_values():
    """Padded taps are terms 0.0 * w: an infinite weight makes them NaN, as
    in ONNX Runtime's im2col SGEMM; overflow gives inf; subnormals survive."""
    x = np.ones((1, 2, 2, 1), F32)
    w = np.full((1, 3, 3, 1), np.inf, F32)
    with np.errstate(invalid="ignore", over="ignore"):
        y = float_conv2d(x, w, None, [1, 1], [1, 1], [1, 1, 1, 1], 1, 0)
    assert np.isnan(y).all()
    big = np.full((1, 1, 1, 2), 3e38, F32)
    assert float_conv2d(big, np.ones((1, 1, 1, 2), F32), None, [1, 1], [1, 1], [0] * 4, 1, 0).item() == np.inf
    sub = np.array([[[[2**-140]]]], F32)
    assert float_conv2d(sub, np.array([[[[0.5]]]], F32), None, [1, 1], [1, 1], [0] * 4, 1, 0).item() == F32(2**-141)


def test_runtime_weights_and_model_path():
    rng = np.random.default_rng(4)
    x, w = rand(rng, (1, 4, 4, 2)), rand(rng, (3, 2, 2, 2))
    b = GraphBuilder()
    xi, wi = b.input("x", "float32", x.shape), b.input("w", "float32", w.shape)
    y = b.node("float_conv2d", [xi, wi], {"pads": [0, 1, 1, 0], "k_block": 3})
    b.output(y)
    got = b.build().run({"x": x, "w": w})[y]
    np.testing.assert_array_equal(got, float_conv2d(x, w, None, [1, 1], [1, 1], [0, 1, 1, 0], 1, 3))


@pytest.mark.parametrize("change,pattern", [
    (dict(x_dtype="int8"), "dtype int8"),
    (dict(w_shape=(2, 3, 3)), "rank 4"),
    (dict(bias_shape=(3,)), r"shape \[2\]"),
    (dict(attrs={"k_block": -1}), "k_block must be >= 0"),
    (dict(attrs={"groups": 2}), "multiples of groups"),
    (dict(attrs={"pads": [0, 0, 0]}), "4 values"),
    (dict(attrs={"strides": [0, 1]}), ">= 1"),
    (dict(x_shape=(1, 2, 2, 3), w_shape=(2, 3, 3, 3)), "empty output"),
    (dict(out_scale=0.1), "cannot be quantized"),
])
def test_errors(change, pattern):
    b = GraphBuilder()
    x_shape = change.get("x_shape", (1, 4, 4, 3))
    dtype = change.get("x_dtype", "float32")
    xi = b.input("x", dtype, x_shape, **({"scale": 0.1} if dtype == "int8" else {}))
    w = b.constant("w", np.ones(change.get("w_shape", (2, 3, 3, 3)), F32))
    ins = [xi, w]
    if "bias_shape" in change:
        ins.append(b.constant("b", np.zeros(change["bias_shape"], F32)))
    with pytest.raises(qnnref.ValidationError, match=pattern):
        b.node("float_conv2d", ins, change.get("attrs", {}), name="bad", scale=change.get("out_scale"))
