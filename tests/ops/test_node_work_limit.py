"""The node work limit (spec/format.md, "The node work limit"): what a
node's reference may cost is bounded when the model is loaded, so a
legal-looking file cannot keep the reference busy for minutes. Real models
stay well inside it."""
from __future__ import annotations

import time

import numpy as np
import pytest

from qnnref import GraphBuilder, ValidationError
from qnnref import graph as qgraph

rng = np.random.default_rng(0)


def timed_build(b: GraphBuilder, backend: str = "reference"):
    start = time.perf_counter()
    try:
        return b.build(backend=backend)
    finally:
        assert time.perf_counter() - start < 30, "validation itself must be quick"


def conv_model(x_shape, w_shape, strides=(1, 1), pads=(0, 0, 0, 0), float_=False, const_w=True):
    b = GraphBuilder()
    if float_:
        x = b.input("x", "float32", x_shape)
        w = (b.constant("w", rng.standard_normal(w_shape).astype(np.float32)) if const_w
             else b.input("w", "float32", w_shape))
        y = b.node("float_conv2d", [x, w], {"strides": list(strides), "pads": list(pads)}, name="conv")
    else:
        x = b.input("x", "int8", x_shape, scale=0.05, zero_point=0)
        w = (b.constant("w", rng.integers(-9, 9, w_shape).astype(np.int8), scale=0.01, zero_point=0)
             if const_w else b.input("w", "int8", w_shape, scale=0.01, zero_point=0))
        y = b.node("conv2d", [x, w], {"strides": list(strides), "pads": list(pads)}, scale=0.1,
                   zero_point=0, name="conv")
    b.output(y)
    return b


def matmul_model(m, k, n, float_=False, const_b=True):
    b = GraphBuilder()
    if float_:
        a = b.input("a", "float32", (m, k))
        w = b.constant("b", rng.standard_normal((k, n)).astype(np.float32)) if const_b else b.input("b", "float32", (k, n))
        y = b.node("float_matmul", [a, w], name="fc")
    else:
        a = b.input("a", "int8", (m, k), scale=0.05, zero_point=0)
        w = (b.constant("b", rng.integers(-9, 9, (k, n)).astype(np.int8), scale=0.01, zero_point=0)
             if const_b else b.input("b", "int8", (k, n), scale=0.01, zero_point=0))
        y = b.node("matmul", [a, w], scale=0.1, zero_point=0, name="fc")
    b.output(y)
    return b


def pool_model(op, x_shape, kernel, pads=(0, 0, 0, 0)):
    b = GraphBuilder()
    x = b.input("x", "int8", x_shape, scale=0.05, zero_point=0)
    b.output(b.node(op, [x], {"kernel": list(kernel), "pads": list(pads)}, scale=0.05, zero_point=0, name="pool"))
    return b


# ---------------------------------------------------------------------------
# Real models load
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape,w_shape,strides,pads", [
    ((1, 224, 224, 3), (64, 7, 7, 3), (2, 2), (3, 3, 3, 3)),     # ResNet-50 stem
    ((1, 56, 56, 64), (64, 3, 3, 64), (1, 1), (1, 1, 1, 1)),     # ResNet-50 stage 1
    ((1, 14, 14, 256), (256, 3, 3, 256), (1, 1), (1, 1, 1, 1)),  # ResNet-50 stage 3
    ((1, 7, 7, 2048), (512, 1, 1, 2048), (1, 1), (0, 0, 0, 0)),  # ResNet-50 stage 4, 1x1
    ((32, 14, 14, 256), (256, 3, 3, 256), (1, 1), (1, 1, 1, 1)),  # ... at batch 32
])
def test_resnet50_convolutions_load(x_shape, w_shape, strides, pads):
    timed_build(conv_model(x_shape, w_shape, strides, pads))


@pytest.mark.parametrize("x_shape,w_shape", [
    ((1, 256, 256, 1), (64, 5, 5, 1)),     # ESPCN at 256 x 256
    ((1, 256, 256, 64), (32, 3, 3, 64)),   # its largest convolution (~2^35 units)
    ((1, 256, 256, 32), (9, 3, 3, 32)),
])
def test_espcn_float_convolutions_at_256x256_load(x_shape, w_shape):
    pads = [w_shape[1] // 2] * 4
    timed_build(conv_model(x_shape, w_shape, pads=pads, float_=True, const_w=False))


@pytest.mark.parametrize("float_", [False, True])
def test_a_512_cubed_matmul_loads(float_):
    timed_build(matmul_model(512, 512, 512, float_=float_))


def test_resnet_max_pool_loads():
    timed_build(pool_model("max_pool2d", (1, 112, 112, 64), (3, 3), (1, 1, 1, 1)))


# ---------------------------------------------------------------------------
# Beyond the limit: refused at load, naming the node
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: matmul_model(4096, 4096, 4096, const_b=False),                     # 2^37 units
    lambda: matmul_model(2048, 2048, 2048, float_=True, const_b=False),         # 2^38 units
    lambda: conv_model((1, 512, 512, 64), (64, 3, 3, 64), pads=(1, 1, 1, 1), float_=True, const_w=False),
    lambda: conv_model((1, 128, 128, 512), (1024, 3, 3, 512), pads=(1, 1, 1, 1), const_w=False),  # 2^37 units
    lambda: conv_model((1, 1, 1, 1), (1, 1, 2**22, 1), pads=(0, 0, 0, 2**22 - 1), const_w=False),  # 2^22 loop steps
])
def test_work_beyond_the_limit_is_refused_at_load(make):
    with pytest.raises(ValidationError, match=r"node '(conv|fc)'.*node work limit"):
        timed_build(make())


def test_the_limit_can_be_changed(monkeypatch):
    timed_build(matmul_model(64, 64, 64))
    monkeypatch.setattr(qgraph, "MAX_NODE_WORK", 2**18)
    with pytest.raises(ValidationError, match="node work limit of 262144"):
        timed_build(matmul_model(64, 64, 64))


# ---------------------------------------------------------------------------
# The pooling regression of issue 8: 2^16..2^28 windows or taps
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("log_windows", [16, 20, 24, 28])
def test_many_pooling_windows_are_bounded_at_load(op, log_windows):
    """A 1 x 1 window over a 2^e-element input: 2^e Python iterations of the
    reference (at 2^28, hours). Up to about 2^21 windows load (seconds of
    reference work); beyond, the model is refused at load."""
    side = 2 ** (log_windows // 2)
    start = time.perf_counter()
    if qgraph.LOOP_WORK * side * side > qgraph.MAX_NODE_WORK:
        with pytest.raises(ValidationError, match=r"node 'pool'.*node work limit"):
            pool_model(op, (1, side, side, 1), (1, 1))     # refused when the node is added
        assert time.perf_counter() - start < 5
    else:
        model = timed_build(pool_model(op, (1, side, side, 1), (1, 1)))
        if log_windows <= 16:
            x = rng.integers(-128, 128, (1, side, side, 1)).astype(np.int8)
            start = time.perf_counter()
            y = next(iter(model.run(x).values()))
            assert time.perf_counter() - start < 60
            assert np.array_equal(y, x)


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("kernel", [(2**8, 2**8), (2**12, 2**12), (2**14, 2**14), (2**28, 1), (1, 2**28)])
def test_huge_pooling_windows_run_quickly(op, kernel):
    """One window of 2^16..2^28 taps over a 1 x 1 input (the rest padding):
    it loads, and the reference finds the window's one inside tap without
    enumerating the others (it used to list all of them: 2^28 Python ints).
    (avg_pool2d's float form loops over the taps: see the test below.)"""
    model = timed_build(pool_model(op, (1, 1, 1, 1), kernel, (0, 0, kernel[0] - 1, kernel[1] - 1)))
    x = np.array([[[[-5]]]], np.int8)
    start = time.perf_counter()
    y = next(iter(model.run(x).values()))
    assert time.perf_counter() - start < 10
    assert np.array_equal(y, x)


def test_huge_windows_in_avg_pool2d_float_form_are_refused():
    """average_form float_average loops over the KH*KW taps in Python, so
    the same 2^24-tap window is refused there, at load."""
    b = GraphBuilder(profile="ort-cpu-x86")
    x = b.input("x", "uint8", (1, 1, 1, 1), scale=0.05, zero_point=0)
    with pytest.raises(ValidationError, match=r"node 'pool'.*node work limit"):
        b.node("avg_pool2d", [x], {"kernel": [2**12, 2**12], "pads": [0, 0, 2**12 - 1, 2**12 - 1]},
               scale=0.05, zero_point=0, name="pool")


# ---------------------------------------------------------------------------
# Working arrays that do not shrink with an empty axis
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode,x_shape,pads", [
    ("edge", (0, 2), [0, 0, 0, 2**31 - 4]),
    ("reflect", (0, 2**30), [0, 2**30 - 1, 0, 2**30 - 1]),
])
def test_pad_index_arrays_are_bounded_when_the_output_is_empty(mode, x_shape, pads):
    """An empty x padded along its other axis: y is empty, but edge / reflect
    build an index array as long as that axis (2^31 entries: 16 GiB)."""
    b = GraphBuilder()
    x = b.input("x", "int8", x_shape, scale=0.1, zero_point=0)
    with pytest.raises(ValidationError, match=r"node 'pad'.*index arrays"):
        b.node("pad", [x], {"pads": pads, "mode": mode}, scale=0.1, zero_point=0, name="pad")


def test_avg_pool2d_float_form_mask_is_bounded_when_n_times_c_is_0():
    """A 2 x 2 window dilated by 2^20 over a 1 x 1 input padded by 2^20 before
    it: 4 taps, but the float form's [H + pads, W + pads] mask has 2^40
    entries, whatever N * C."""
    d = 2**20
    b = GraphBuilder(profile="ort-cpu-x86")
    x = b.input("x", "uint8", (0, 1, 1, 1), scale=0.05, zero_point=0)
    with pytest.raises(ValidationError, match=r"node 'pool'.*padded input"):
        b.node("avg_pool2d", [x], {"kernel": [2, 2], "dilations": [d, d], "pads": [d, d, 0, 0]},
               scale=0.05, zero_point=0, name="pool")


def test_a_concat_of_millions_of_inputs_is_refused():
    """The concat reference loops over its inputs in Python: 2^22 inputs
    (a 40 MB header naming one tensor over and over) would take minutes."""
    b = GraphBuilder()
    x = b.input("x", "int8", (1,), scale=0.1, zero_point=0)
    with pytest.raises(ValidationError, match=r"node 'cat'.*node work limit"):
        b.node("concat", [x] * 2**22, name="cat", scale=0.1, zero_point=0)
    b.node("concat", [x] * 1000, name="cat_ok", scale=0.1, zero_point=0)
