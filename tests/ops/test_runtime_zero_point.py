"""matmul / conv2d with a run-time zero point of their first input (int32
output only; ONNX Runtime's dynamic quantization): the same accumulator as
with that zero point fixed in the model, exact and pairwise-saturated, and
the ERROR_IF conditions of the new input."""
from __future__ import annotations

import numpy as np
import pytest

from qnnref import GraphBuilder, ValidationError

RNG = np.random.default_rng(7)


def build(op, x, x_dtype, w, w_dtype, zw, zx, runtime, bias=None, pairwise=None, attrs=None,
          y_q=None, x_q=None, zp_dtype=None, zp_shape=(), backend=None):
    """A one-node model; ``runtime``: zx is fed as input "zp" (else it is
    x's constant zero point, scale 1). Returns (model, feeds)."""
    g = GraphBuilder(profile="qnnref")
    if runtime:
        xi = g.input("x", x_dtype, x.shape, **(x_q or {}))
        zi = g.input("zp", zp_dtype or x_dtype, zp_shape)
    else:
        xi = g.input("x", x_dtype, x.shape, scale=1.0, zero_point=zx)
    axis = (0 if op == "conv2d" else w.ndim - 1) if np.ndim(zw) else None
    wi = g.constant("w", w, dtype=w_dtype, scale=np.ones(np.shape(zw), np.float32) if np.ndim(zw) else 1.0,
                    zero_point=zw, axis=axis)
    ins = [xi, wi, g.constant("bias", bias) if bias is not None else ""]
    if runtime:
        ins.append(zi)
    a = dict(attrs or {}, dtype="int32")
    if pairwise is not None:
        a["pairwise_int16_saturation"] = pairwise
    y = g.node(op, ins, a, name="n", **(y_q or {}))
    g.output(y)
    feeds = {"x": x}
    if runtime:
        feeds["zp"] = np.array(zx, dtype=zp_dtype or x_dtype).reshape(zp_shape)
    return g.build(backend=backend), feeds, y


def cases():
    for op in ("matmul", "conv2d"):
        for x_dtype, w_dtype in (("uint8", "int8"), ("uint8", "uint8"), ("int8", "int8")):
            for per_channel in (False, True):
                yield op, x_dtype, w_dtype, per_channel


@pytest.mark.parametrize("op,x_dtype,w_dtype,per_channel", list(cases()))
@pytest.mark.parametrize("pairwise", [False, True])
def test_runtime_zero_point_equals_the_constant_one(op, x_dtype, w_dtype, per_channel, pairwise):
    info = np.iinfo(x_dtype)
    if op == "matmul":
        x = RNG.integers(info.min, info.max, (2, 3, 33), endpoint=True).astype(x_dtype)
        w = RNG.integers(-128 if w_dtype == "int8" else 0, 127, (33, 5), endpoint=True).astype(w_dtype)
        n, attrs = 5, {}
    else:
        x = RNG.integers(info.min, info.max, (1, 5, 6, 3), endpoint=True).astype(x_dtype)
        w = RNG.integers(-128 if w_dtype == "int8" else 0, 127, (4, 3, 3, 3), endpoint=True).astype(w_dtype)
        n, attrs = 4, {"pads": [1, 1, 1, 1], "strides": [2, 1]}
    # extreme activations (saturating pairs with +-127 weights under pairwise)
    x.reshape(-1)[:40] = info.max
    zw = RNG.integers(-3, 3, n).astype(w_dtype if w_dtype == "int8" else "uint8") if per_channel else np.array(0, w_dtype)
    bias = RNG.integers(-1000, 1000, n).astype(np.int32)
    for zx in (info.min, 0 if x_dtype == "int8" else 1, info.max, int(RNG.integers(info.min, info.max))):
        want_m, feeds, y = build(op, x, x_dtype, w, w_dtype, zw, zx, False, bias, pairwise, attrs,
                                 backend="reference")
        want = want_m.run(feeds)[y]
        for backend in ("reference", None):
            got_m, rfeeds, ry = build(op, x, x_dtype, w, w_dtype, zw, zx, True, bias, pairwise, attrs,
                                      backend=backend)
            got = got_m.run(rfeeds)[ry]
            assert got.dtype == np.int32 and np.array_equal(got, want), (zx, backend)


def test_kernels_leave_the_node_to_the_reference():
    from qnnref import _kernels
    if not _kernels.available():
        pytest.skip("no compiled kernels")
    x = RNG.integers(0, 255, (2, 8), endpoint=True).astype("uint8")
    w = RNG.integers(-128, 127, (8, 3), endpoint=True).astype("int8")
    m, feeds, y = build("matmul", x, "uint8", w, "int8", np.array(0, "int8"), 9, True)
    plan = m.plan()
    assert "run-time input" in str(plan), plan


X = np.zeros((2, 4), np.uint8)
W = np.ones((4, 3), np.int8)


@pytest.mark.parametrize("kw,match", [
    (dict(zp_dtype="int8"), r"zero point 'zp'.*int8"),
    (dict(zp_shape=(1,)), r"must be a scalar"),
    (dict(attrs={"dtype": "uint8"}), r"only with output dtype int32"),
    (dict(x_q={"scale": 0.5, "zero_point": 3}), r"must not be quantized"),
    (dict(y_q={"scale": 0.5, "zero_point": 0}), r"scale 1 with zero point 0"),
])
def test_error_if(kw, match):
    attrs = kw.pop("attrs", None)
    with pytest.raises(ValidationError, match=match):
        if attrs:
            g = GraphBuilder(profile="qnnref")
            xi, zi = g.input("x", "uint8", X.shape), g.input("zp", "uint8", ())
            wi = g.constant("w", W, dtype="int8", scale=1.0, zero_point=0)
            y = g.node("matmul", [xi, wi, "", zi], attrs, name="n", scale=1.0, zero_point=0)
            g.output(y)
            g.build()
        else:
            build("matmul", X, "uint8", W, "int8", np.array(0, "int8"), 0, True, **kw)[0]


def test_scale_one_output_dequantizes_as_a_cast():
    x = np.full((1, 2), 255, np.uint8)
    w = np.full((2, 1), 127, np.int8)
    g = GraphBuilder(profile="qnnref")
    xi, zi = g.input("x", "uint8", x.shape), g.input("zp", "uint8", ())
    wi = g.constant("w", w, dtype="int8", scale=1.0, zero_point=0)
    y = g.node("matmul", [xi, wi, "", zi], {"dtype": "int32"}, name="n", scale=1.0, zero_point=0)
    f = g.node("dequantize", [y], {}, name="cast")
    g.output(f)
    out = g.build().run({"x": x, "zp": np.array(0, np.uint8)})[f]
    assert out.dtype == np.float32 and out.tolist() == [[2 * 255 * 127]]
