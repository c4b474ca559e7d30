"""QOperator graphs: QLinearConv, QLinearMatMul, QGemm and com.microsoft's
QLinear* operators become qnnref integer operators; results agree with ONNX
Runtime to within one rounding step under the qnnref profile (bit-exactness
is the job of the ``ort-cpu-x86`` profile)."""
from __future__ import annotations

import numpy as np
import pytest

from onnx_helpers import MS, assert_close_to_ort, init, make_model, node, ops_of, rand

U8, S8 = np.uint8, np.int8


def conv_model(x_shape, w, b=None, x_dtype=U8, y_dtype=None, w_scale=0.01, w_zp=None, x_zp=128, y_zp=100,
               y_scale=0.5, **attrs):
    y_dtype = y_dtype or x_dtype
    inits = [init("xs", 0.05, np.float32), init("xz", x_zp, x_dtype), init("w", w),
             init("ws", w_scale, np.float32), init("wz", np.zeros(np.shape(w_scale), w.dtype) if w_zp is None else w_zp),
             init("ys", y_scale, np.float32), init("yz", y_zp, y_dtype)]
    ins = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    if b is not None:
        inits.append(init("b", b))
        ins.append("b")
    n = node("QLinearConv", ins, ["y"], name="conv", **attrs)
    return make_model([n], {"x": (x_dtype, x_shape)}, {"y": (y_dtype, None)}, inits)


@pytest.mark.parametrize("attrs", [
    {}, {"pads": [1, 1, 1, 1]}, {"pads": [0, 2, 1, 0], "strides": [2, 1]}, {"dilations": [2, 2]},
    {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, {"auto_pad": "SAME_LOWER"}, {"auto_pad": "VALID"},
])
def test_qlinearconv_geometry(attrs):
    rng = np.random.default_rng(0)
    w = rand(rng, S8, (6, 3, 3, 3), -64, 63)
    m = conv_model((2, 3, 9, 8), w, rng.integers(-500, 500, 6).astype(np.int32), **attrs)
    q = assert_close_to_ort(m, {"x": rand(rng, U8, (2, 3, 9, 8))})
    assert ops_of(q) == ["transpose", "conv2d", "transpose"]     # NCHW -> NHWC -> conv -> NCHW at the output


@pytest.mark.parametrize("x_dtype,w_dtype", [(U8, S8), (S8, S8), (U8, U8)])
def test_qlinearconv_per_channel_and_types(x_dtype, w_dtype):
    rng = np.random.default_rng(1)
    lo, hi = (-64, 63) if w_dtype == S8 else (0, 255)
    w = rand(rng, w_dtype, (5, 4, 3, 3), lo, hi)
    scales = rng.uniform(0.002, 0.02, 5).astype(np.float32)
    wz = np.full(5, 0 if w_dtype == S8 else 120, w_dtype)
    x_zp = 0 if x_dtype == S8 else 128
    m = conv_model((1, 4, 7, 7), w, None, x_dtype=x_dtype, w_scale=scales, w_zp=wz, x_zp=x_zp, y_zp=3,
                   pads=[1, 1, 1, 1])
    q = assert_close_to_ort(m, {"x": rand(rng, x_dtype, (1, 4, 7, 7))})
    conv = next(t for t in q.graph.tensors.values() if t.name == "w_ohwi")
    assert conv.shape == (5, 3, 3, 4) and conv.quant.axis == 0          # OHWI, per output channel


@pytest.mark.parametrize("group", [2, 6])
def test_qlinearconv_grouped_and_depthwise(group):
    rng = np.random.default_rng(2)
    w = rand(rng, S8, (6, 6 // group, 3, 3), -64, 63)
    m = conv_model((1, 6, 6, 6), w, group=group, pads=[1, 1, 1, 1])
    assert_close_to_ort(m, {"x": rand(rng, U8, (1, 6, 6, 6))})


def test_consecutive_convs_stay_nhwc():
    """Two convolutions and a MaxPool between them: one transpose in, one out."""
    rng = np.random.default_rng(3)
    inits = [init("xs", 0.05, np.float32), init("xz", 128, U8),
             init("w1", rand(rng, S8, (8, 3, 3, 3), -60, 60)), init("w1s", 0.01, np.float32), init("w1z", 0, S8),
             init("ys", 0.3, np.float32), init("yz", 10, U8),
             init("w2", rand(rng, S8, (4, 8, 1, 1), -60, 60)), init("w2s", 0.01, np.float32), init("w2z", 0, S8),
             init("zs", 0.2, np.float32), init("zz", 50, U8)]
    nodes = [node("QLinearConv", ["x", "xs", "xz", "w1", "w1s", "w1z", "ys", "yz"], ["c1"], pads=[1, 1, 1, 1]),
             node("MaxPool", ["c1"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             node("QLinearConv", ["p", "ys", "yz", "w2", "w2s", "w2z", "zs", "zz"], ["y"])]
    m = make_model(nodes, {"x": (U8, (1, 3, 8, 8))}, {"y": (U8, (1, 4, 4, 4))}, inits)
    q = assert_close_to_ort(m, {"x": rand(rng, U8, (1, 3, 8, 8))}, max_steps=2)
    assert ops_of(q) == ["transpose", "conv2d", "max_pool2d", "conv2d", "transpose"]
    # intermediate tensors keep their ONNX names; their layout is recorded
    assert q.metadata["source"]["tensors"]["c1"] == {"tensor": "c1", "perm": [0, 2, 3, 1]}
    assert q.graph.tensors["c1"].shape == (1, 8, 8, 8)


def matmul_model(a_shape, b, a_dtype=U8, b_scale=0.02, b_zp=None, out_dtype=None):
    out_dtype = out_dtype or a_dtype
    bz = np.zeros(np.shape(b_scale), b.dtype) if b_zp is None else b_zp
    inits = [init("as", 0.04, np.float32), init("az", 0 if a_dtype == S8 else 128, a_dtype), init("b", b),
             init("bs", b_scale, np.float32), init("bz", bz), init("ys", 0.3, np.float32),
             init("yz", 5, out_dtype)]
    n = node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    return make_model([n], {"a": (a_dtype, a_shape)}, {"y": (out_dtype, None)}, inits)


@pytest.mark.parametrize("a_shape,b_shape", [((4, 16), (16, 8)), ((2, 3, 16), (16, 5)), ((2, 3, 16), (2, 16, 5))])
def test_qlinearmatmul(a_shape, b_shape):
    rng = np.random.default_rng(4)
    m = matmul_model(a_shape, rand(rng, S8, b_shape, -64, 63))
    assert ops_of(assert_close_to_ort(m, {"a": rand(rng, U8, a_shape)})) == ["matmul"]


def test_qlinearmatmul_per_column_s8s8():
    rng = np.random.default_rng(5)
    m = matmul_model((3, 10), rand(rng, S8, (10, 6)), a_dtype=S8, b_scale=rng.uniform(0.01, 0.03, 6).astype(np.float32))
    assert_close_to_ort(m, {"a": rand(rng, S8, (3, 10))})


@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (0, 1), (1, 1)])
def test_qgemm(trans_a, trans_b):
    rng = np.random.default_rng(6)
    a_shape = (12, 3) if trans_a else (3, 12)
    b = rand(rng, S8, (7, 12) if trans_b else (12, 7), -64, 63)
    inits = [init("as", 0.04, np.float32), init("az", 128, U8), init("b", b), init("bs", 0.02, np.float32),
             init("bz", 0, S8), init("c", rng.integers(-300, 300, 7).astype(np.int32)),
             init("ys", 0.3, np.float32), init("yz", 5, U8)]
    n = node("QGemm", ["a", "as", "az", "b", "bs", "bz", "c", "ys", "yz"], ["y"], domain=MS,
             transA=trans_a, transB=trans_b)
    m = make_model([n], {"a": (U8, a_shape)}, {"y": (U8, (3, 7))}, inits)
    assert_close_to_ort(m, {"a": rand(rng, U8, a_shape)})


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("b_shape,b_const", [((2, 3, 4, 5), False), ((3, 1, 1), False), ((5,), True)])
def test_qlinear_binary(op, b_shape, b_const):
    rng = np.random.default_rng(7)
    b = rand(rng, U8, b_shape)
    inits = [init("as", 0.05, np.float32), init("az", 120, U8), init("bs", 0.03, np.float32), init("bz", 130, U8),
             init("cs", 0.08 if op == "QLinearAdd" else 0.5, np.float32), init("cz", 128, U8)]
    ins = {"a": (U8, (2, 3, 4, 5))}
    feeds = {"a": rand(rng, U8, (2, 3, 4, 5))}
    if b_const:
        inits.append(init("b", b))
    else:
        ins["b"] = (U8, b_shape)
        feeds["b"] = b
    n = node(op, ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["y"], domain=MS)
    m = make_model([n], ins, {"y": (U8, (2, 3, 4, 5))}, inits)
    assert_close_to_ort(m, feeds)


def test_qlinear_add_after_conv_stays_nhwc():
    """A residual QLinearAdd of two NHWC tensors needs no transposes."""
    rng = np.random.default_rng(8)
    inits = [init("xs", 0.05, np.float32), init("xz", 128, U8), init("w", rand(rng, S8, (3, 3, 1, 1), -60, 60)),
             init("ws", 0.01, np.float32), init("wz", 0, S8), init("ys", 0.05, np.float32), init("yz", 128, U8),
             init("cs", 0.1, np.float32), init("cz", 128, U8)]
    nodes = [node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["c1"]),
             node("QLinearConv", ["c1", "ys", "yz", "w", "ws", "wz", "ys", "yz"], ["c2"]),
             node("QLinearAdd", ["c1", "ys", "yz", "c2", "ys", "yz", "cs", "cz"], ["y"], domain=MS)]
    m = make_model(nodes, {"x": (U8, (1, 3, 5, 5))}, {"y": (U8, (1, 3, 5, 5))}, inits)
    q = assert_close_to_ort(m, {"x": rand(rng, U8, (1, 3, 5, 5))}, max_steps=2)
    assert ops_of(q) == ["transpose", "conv2d", "conv2d", "add", "transpose"]


@pytest.mark.parametrize("dtype", [U8, S8])
def test_qlinear_leaky_relu_is_an_exact_table(dtype):
    """LeakyRelu in float32 is one multiplication: the table is exactly ORT's."""
    x = np.arange(np.iinfo(dtype).min, np.iinfo(dtype).max + 1).astype(dtype)
    inits = [init("xs", 0.037, np.float32), init("xz", 7, dtype), init("ys", 0.021, np.float32), init("yz", 60, dtype)]
    n = node("QLinearLeakyRelu", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS, alpha=0.13)
    m = make_model([n], {"x": (dtype, (256,))}, {"y": (dtype, (256,))}, inits)
    q = assert_close_to_ort(m, {"x": x}, max_steps=0)
    assert ops_of(q) == ["table"]


@pytest.mark.parametrize("dtype", [U8, S8])
def test_qlinear_sigmoid_table(dtype):
    x = np.arange(np.iinfo(dtype).min, np.iinfo(dtype).max + 1).astype(dtype)
    inits = [init("xs", 0.05, np.float32), init("xz", 3, dtype), init("ys", 1 / 256, np.float32),
             init("yz", 0 if dtype == U8 else -128, dtype)]
    n = node("QLinearSigmoid", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS)
    m = make_model([n], {"x": (dtype, (256,))}, {"y": (dtype, (256,))}, inits)
    assert_close_to_ort(m, {"x": x}, max_steps=1)


@pytest.mark.parametrize("attrs", [{"kernel_shape": [2, 2]}, {"kernel_shape": [3, 3], "strides": [2, 2],
                                                               "pads": [1, 1, 1, 1]},
                                   {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}])
@pytest.mark.parametrize("same_quant", [True, False])
def test_qlinear_average_pool(attrs, same_quant):
    rng = np.random.default_rng(9)
    inits = [init("xs", 0.05, np.float32), init("xz", 100, U8),
             init("ys", 0.05 if same_quant else 0.03, np.float32), init("yz", 100 if same_quant else 90, U8)]
    n = node("QLinearAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS, **attrs)
    m = make_model([n], {"x": (U8, (1, 3, 6, 6))}, {"y": (U8, None)}, inits)
    assert_close_to_ort(m, {"x": rand(rng, U8, (1, 3, 6, 6))})


def test_qlinear_global_average_pool_works_in_any_layout():
    rng = np.random.default_rng(10)
    inits = [init("xs", 0.05, np.float32), init("xz", 100, U8), init("ys", 0.02, np.float32), init("yz", 90, U8)]
    n = node("QLinearGlobalAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS)
    m = make_model([n], {"x": (U8, (2, 3, 5, 4))}, {"y": (U8, (2, 3, 1, 1))}, inits)
    q = assert_close_to_ort(m, {"x": rand(rng, U8, (2, 3, 5, 4))})
    assert ops_of(q) == ["mean"]                                # on NCHW axes [2, 3]: no transpose


def test_qlinear_concat_requantizes_each_input():
    rng = np.random.default_rng(11)
    inits = [init("ys", 0.05, np.float32), init("yz", 128, U8), init("as", 0.04, np.float32), init("az", 120, U8),
             init("bs", 0.07, np.float32), init("bz", 130, U8), init("c", rand(rng, U8, (1, 2, 3, 3))),
             init("cs", 0.05, np.float32), init("cz", 128, U8)]
    n = node("QLinearConcat", ["ys", "yz", "a", "as", "az", "b", "bs", "bz", "c", "cs", "cz"], ["y"],
             domain=MS, axis=1)
    m = make_model([n], {"a": (U8, (1, 3, 3, 3)), "b": (U8, (1, 1, 3, 3))}, {"y": (U8, (1, 6, 3, 3))}, inits)
    assert_close_to_ort(m, {"a": rand(rng, U8, (1, 3, 3, 3)), "b": rand(rng, U8, (1, 1, 3, 3))})


def test_quantize_and_dequantize_at_the_edges():
    rng = np.random.default_rng(12)
    inits = [init("s", 0.02, np.float32), init("z", 128, U8)]
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["q"]), node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    m = make_model(nodes, {"x": (np.float32, (3, 4))}, {"y": (np.float32, (3, 4)), "q": (U8, (3, 4))}, inits)
    x = rng.uniform(-3, 3, (3, 4)).astype(np.float32)
    q = assert_close_to_ort(m, {"x": x}, max_steps=0)
    assert ops_of(q) == ["quantize", "dequantize"]
