"""Importer gaps closed after the first release of the importer: scalar weight
zero points with per-channel scales, channels_last QLinearAveragePool,
ceil_mode windows that start in the padding. Results are compared with ONNX
Runtime bit for bit under the profile that describes ONNX Runtime on the CPU
of this run (``ort-cpu-x86`` or ``ort-cpu-x86-vnni``, probed by the
conformance worker: tests/profiles/ort_harness.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from onnx_helpers import MS, assert_close_to_ort, init, make_model, node, ops_of, qnn_run, rand

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))
import ort_harness  # noqa: E402
from qnnref.profiles import get_profile  # noqa: E402

U8, S8 = np.uint8, np.int8


@pytest.fixture(scope="module")
def native():
    return ort_harness.native_profile()


# ---------------------------------------------------------------------------
# (1) one zero point for all channels, one scale per channel
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("w_dtype,wz", [(U8, 119), (S8, 0), (S8, -3)])
def test_qlinearconv_scalar_weight_zero_point_with_per_channel_scales(native, w_dtype, wz):
    rng = np.random.default_rng(20)
    c_out = 6
    w = rand(rng, w_dtype, (c_out, 3, 3, 3))
    scales = rng.uniform(0.002, 0.02, c_out).astype(np.float32)
    inits = [init("xs", 0.05, np.float32), init("xz", 128, U8), init("w", w), init("ws", scales),
             init("wz", wz, w_dtype), init("ys", 0.5, np.float32), init("yz", 100, U8)]
    n = node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], pads=[1, 1, 1, 1])
    m = make_model([n], {"x": (U8, (1, 3, 7, 7))}, {"y": (U8, (1, 6, 7, 7))}, inits)
    # u8 x s8 saturates on CPUs without VNNI; the import must say so through the profile
    q = assert_close_to_ort(m, {"x": rand(rng, U8, (1, 3, 7, 7))}, max_steps=0, profile=native)
    w_q = q.graph.tensors["w_ohwi"].quant
    assert w_q.axis == 0 and np.array_equal(w_q.zero_point_or_zeros(), np.full(c_out, wz))


def test_qlinearmatmul_scalar_weight_zero_point_with_per_column_scales(native):
    rng = np.random.default_rng(21)
    b = rand(rng, U8, (10, 5))
    inits = [init("as", 0.04, np.float32), init("az", 128, U8), init("b", b),
             init("bs", rng.uniform(0.01, 0.03, 5).astype(np.float32)), init("bz", 131, U8),
             init("ys", 0.3, np.float32), init("yz", 5, U8)]
    n = node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    m = make_model([n], {"a": (U8, (3, 10))}, {"y": (U8, (3, 5))}, inits)
    assert_close_to_ort(m, {"a": rand(rng, U8, (3, 10))}, max_steps=0, profile=native)


def test_dequantize_linear_still_wants_equal_shapes():
    """QuantizeLinear / DequantizeLinear: the ONNX spec wants the zero point
    shaped like the scale; no broadcasting there."""
    from qnnref import ValidationError
    from qnnref.onnx import import_onnx
    inits = [init("s", np.array([0.1, 0.2], np.float32)), init("z", 3, U8)]
    n = node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=1)
    m = make_model([n], {"x": (U8, (4, 2))}, {"y": (np.float32, (4, 2))}, inits, check=False)
    with pytest.raises(ValidationError, match="zero point shape"):
        import_onnx(m, profile="onnx")


# ---------------------------------------------------------------------------
# (4) com.microsoft.QLinearAveragePool with channels_last = 1
# ---------------------------------------------------------------------------

def avg_pool_model(shape, channels_last: bool, **attrs):
    inits = [init("xs", 0.05, np.float32), init("xz", 100, U8), init("ys", 0.03, np.float32), init("yz", 90, U8)]
    n = node("QLinearAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS,
             channels_last=int(channels_last), **attrs)
    return make_model([n], {"x": (U8, shape)}, {"y": (U8, None)}, inits)


@pytest.mark.parametrize("attrs", [{"kernel_shape": [2, 2]},
                                   {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1]},
                                   {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
                                   {"kernel_shape": [2, 3], "strides": [2, 2], "ceil_mode": 1}])
def test_qlinear_average_pool_channels_last(native, attrs):
    """NHWC in, NHWC out: exactly the NCHW operator on the transposed input,
    with no transpose at all in the qnnref model."""
    rng = np.random.default_rng(22)
    x = rand(rng, U8, (2, 7, 6, 5))                     # N, H, W, C
    q_last = assert_close_to_ort(avg_pool_model(x.shape, True, **attrs), {"x": x}, profile=native)
    assert ops_of(q_last) == ["avg_pool2d"]
    _, got = qnn_run(avg_pool_model(x.shape, True, **attrs), {"x": x}, native)
    _, want = qnn_run(avg_pool_model((2, 5, 7, 6), False, **attrs), {"x": x.transpose(0, 3, 1, 2).copy()}, native)
    np.testing.assert_array_equal(got["y"], want["y"].transpose(0, 2, 3, 1))


def test_ceil_mode_drops_a_last_window_that_starts_in_the_padding(native):
    """H = 5, kernel 2, stride 2, pad 1 + 1: ceil((5 + 2 - 2) / 2) + 1 = 4 windows,
    but the 4th would start at 3 * 2 - 1 = 5, past the input: ONNX Runtime has 3."""
    rng = np.random.default_rng(23)
    x = rand(rng, U8, (1, 2, 5, 5))
    m = avg_pool_model(x.shape, False, kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    q = assert_close_to_ort(m, {"x": x}, profile=native)
    assert q.graph.tensors["y"].shape == (1, 2, 3, 3)


# ---------------------------------------------------------------------------
# (2) MatMulInteger and ConvInteger: int32 accumulators
# ---------------------------------------------------------------------------

def _avx2_or_skip():
    why = ort_harness.avx2_unavailable()
    if why:
        pytest.skip(f"ONNX Runtime as on an AVX2 CPU: {why}")


def matmul_integer_model(b, a_dtype=U8, az=None, bz=None, a_shape=(3, 6), b_input=False):
    inits = [] if b_input else [init("b", b)]
    ins = ["a", "b"]
    if az is not None or bz is not None:
        inits.append(init("az", 0 if az is None else az, a_dtype))
        ins.append("az")
    if bz is not None:
        inits.append(init("bz", bz, b.dtype))
        ins.append("bz")
    inputs = {"a": (a_dtype, a_shape)}
    if b_input:
        inputs["b"] = (b.dtype, b.shape)
    out_shape = tuple(np.broadcast_shapes(a_shape[:-2], b.shape[:-2])) + (a_shape[-2], b.shape[-1])
    return make_model([node("MatMulInteger", ins, ["y"])], inputs, {"y": (np.int32, out_shape)}, inits)


@pytest.mark.parametrize("a_dtype,b_dtype", [(U8, S8), (U8, U8), (S8, S8), (S8, U8)])
@pytest.mark.parametrize("zps", ["none", "scalar", "per-column"])
def test_matmul_integer_is_exact(native, a_dtype, b_dtype, zps):
    rng = np.random.default_rng(30)
    b = rand(rng, b_dtype, (6, 4))
    az = None if zps == "none" else int(rand(rng, a_dtype, ()))
    bz = {"none": None, "scalar": int(rand(rng, b_dtype, ())), "per-column": rand(rng, b_dtype, (4,))}[zps]
    m = matmul_integer_model(b, a_dtype, az, bz, a_shape=(2, 3, 6))
    q = assert_close_to_ort(m, {"a": rand(rng, a_dtype, (2, 3, 6))}, max_steps=0, profile=native)
    assert ops_of(q) == ["matmul"] and q.graph.tensors["y"].dtype == "int32" and q.graph.tensors["y"].quant is None


def test_matmul_integer_with_a_runtime_b_and_its_zero_point(native):
    rng = np.random.default_rng(31)
    b = rand(rng, U8, (6, 4))
    m = matmul_integer_model(b, U8, 7, 200, b_input=True)
    q = assert_close_to_ort(m, {"a": rand(rng, U8, (3, 6)), "b": b}, max_steps=0, profile=native)
    assert q.graph.tensors["b"].quant.zero_point_or_zeros() == 200      # the graph input took its zero point


def test_matmul_integer_saturates_like_onnx_runtime_on_avx2():
    """u8 x s8 on x86 without VNNI: pairs saturated to int16 (ORT's own GEMM)."""
    _avx2_or_skip()
    rng = np.random.default_rng(32)
    b = rng.choice([-128, 127], (16, 5)).astype(S8)
    a = rng.choice([0, 255], (4, 16)).astype(U8)
    m = matmul_integer_model(b, U8, 3, 0, a_shape=(4, 16))
    (want,) = ort_harness.run_cases([(m.SerializeToString(), {"a": a})], "avx2")[0]
    _, got = qnn_run(m, {"a": a}, "ort-cpu-x86")
    np.testing.assert_array_equal(got["y"], want)
    _, exact = qnn_run(m, {"a": a}, "ort-cpu-x86-vnni")
    assert not np.array_equal(exact["y"], want)                         # saturation did happen


def conv_integer_model(w, x_dtype=U8, xz=None, wz=None, x_shape=(1, 4, 6, 6), **attrs):
    inits = [init("w", w)]
    ins = ["x", "w"]
    if xz is not None:
        inits += [init("xz", xz, x_dtype), init("wz", 0 if wz is None else wz, w.dtype)]
        ins += ["xz", "wz"]
    n = node("ConvInteger", ins, ["y"], **attrs)
    return make_model([n], {"x": (x_dtype, x_shape)}, {"y": (np.int32, None)}, inits)


@pytest.mark.parametrize("x_dtype,w_dtype", [(U8, S8), (U8, U8), (S8, S8), (S8, U8)])
@pytest.mark.parametrize("attrs", [{}, {"pads": [1, 0, 1, 2], "strides": [2, 1]}, {"group": 2, "dilations": [2, 1]}])
def test_conv_integer_is_exact(native, x_dtype, w_dtype, attrs):
    rng = np.random.default_rng(33)
    w = rand(rng, w_dtype, (4, 4 // attrs.get("group", 1), 3, 3))
    m = conv_integer_model(w, x_dtype, int(rand(rng, x_dtype, ())), int(rand(rng, w_dtype, ())), **attrs)
    q = assert_close_to_ort(m, {"x": rand(rng, x_dtype, (1, 4, 6, 6))}, max_steps=0, profile=native)
    # The graph follows from the profile, i.e. from what ONNX Runtime was
    # probed to do here: where it saturates u8 x s8 pairs, an s8 x and u8 w
    # ConvInteger (w x im2col(x) is a u8 x s8 GEMM) needs pad -> gather -> matmul
    if (x_dtype, w_dtype) == (S8, U8) and get_profile(native).pairwise_int16_saturation:
        assert "matmul" in ops_of(q) and "conv2d" not in ops_of(q)
    else:
        assert ops_of(q) == ["transpose", "conv2d", "transpose"]
        assert q.graph.nodes[1].attrs["pairwise_int16_saturation"] is False


@pytest.mark.parametrize("attrs", [{}, {"pads": [1, 2, 0, 1], "strides": [2, 1], "dilations": [1, 2]}, {"group": 2}])
def test_conv_integer_on_avx2_saturates_exactly_as_onnx_runtime(attrs):
    """ORT's ConvInteger multiplies w (GEMM operand A) by im2col(x): with u8 x
    and s8 w nothing saturates (conv2d, exact); with s8 x and u8 w pairs along
    (c, kh, kw) do, which the importer reproduces as pad -> gather -> matmul."""
    _avx2_or_skip()
    rng = np.random.default_rng(34)
    g = attrs.get("group", 1)
    x_u8 = rng.choice([0, 255], (1, 4, 6, 6)).astype(U8)
    m_u8 = conv_integer_model(rng.choice([-128, 127], (4, 4 // g, 3, 3)).astype(S8), U8, 3, 0, **attrs)
    x_s8 = rng.choice([-128, 127], (1, 4, 6, 6)).astype(S8)
    m_big = conv_integer_model(rng.choice([0, 255], (4, 4 // g, 3, 3)).astype(U8), S8, -7, 200, **attrs)
    m_small = conv_integer_model(rng.integers(0, 128, (4, 4 // g, 3, 3)).astype(U8), S8, 0, 0, **attrs)
    feeds = [(m_u8, x_u8), (m_big, x_s8), (m_small, x_s8)]
    outs = ort_harness.run_cases([(m.SerializeToString(), {"x": x}) for m, x in feeds], "avx2")
    for (m, x), (want,) in zip(feeds, outs):
        np.testing.assert_array_equal(qnn_run(m, {"x": x}, "ort-cpu-x86")[1]["y"], want)
    q, exact = qnn_run(m_big, {"x": x_s8}, "ort-cpu-x86-vnni")
    assert not np.array_equal(exact["y"], outs[1][0])                       # saturation did happen
    assert "conv2d" in ops_of(q) and "matmul" in ops_of(qnn_run(m_big, {"x": x_s8}, "ort-cpu-x86")[0])
    assert "conv2d" in ops_of(qnn_run(m_small, {"x": x_s8}, "ort-cpu-x86")[0])   # cannot saturate: conv2d


# ---------------------------------------------------------------------------
# (3) QGemm with alpha != 1 or a float output
# ---------------------------------------------------------------------------

def qgemm_model(b, alpha=1.0, b_scale=0.02, y=True, bias=None, a_dtype=U8, trans_b=0):
    n = b.shape[0] if trans_b else b.shape[1]
    inits = [init("as", 0.04, np.float32), init("az", 128 if a_dtype == U8 else 3, a_dtype), init("b", b),
             init("bs", b_scale, np.float32), init("bz", np.zeros(np.shape(b_scale), b.dtype))]
    ins = ["a", "as", "az", "b", "bs", "bz"]
    if bias is not None:
        inits.append(init("c", bias))
    ins.append("c" if bias is not None else "")
    if y:
        inits += [init("ys", 0.3, np.float32), init("yz", 5, a_dtype)]
        ins += ["ys", "yz"]
    else:
        ins = ins if bias is not None else ins[:-1]
    n_ = node("QGemm", ins, ["y"], domain=MS, alpha=alpha, transB=trans_b)
    return make_model([n_], {"a": (a_dtype, (3, 12))}, {"y": (a_dtype if y else np.float32, (3, n))}, inits)


@pytest.mark.parametrize("alpha", [0.5, 2.0, 0.75, 1.3])
@pytest.mark.parametrize("per_column", [False, True])
def test_qgemm_alpha_is_folded_into_the_weight_scales(native, alpha, per_column):
    rng = np.random.default_rng(40)
    b = rand(rng, S8, (12, 7), -64, 63)
    b_scale = rng.uniform(0.01, 0.03, 7).astype(np.float32) if per_column else 0.02
    m = qgemm_model(b, alpha, b_scale, bias=rng.integers(-300, 300, 7).astype(np.int32))
    from qnnref import ValidationError
    try:
        q = assert_close_to_ort(m, {"a": rand(rng, U8, (3, 12))}, max_steps=0, profile=native)
    except ValidationError as e:                     # some (s_a, s_b, alpha) have no float32 s_b'
        assert "no float32 weight scale" in str(e) and alpha not in (0.5, 2.0)
        return
    w = next(t for t in q.graph.tensors.values() if t.data is not None and t.dtype == "int8")
    np.testing.assert_allclose(w.quant.scale, np.float32(alpha) * np.float32(b_scale), rtol=2**-22)
    if alpha in (0.5, 2.0):                          # powers of two: exactly alpha * s_b
        np.testing.assert_array_equal(w.quant.scale, (np.float32(alpha) * np.float32(b_scale)).astype(np.float32))


@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_qgemm_float_output_is_the_dequantized_accumulator(native, per_column, bias):
    rng = np.random.default_rng(41)
    b = rand(rng, S8, (7, 12))
    b_scale = rng.uniform(0.01, 0.03, 7).astype(np.float32) if per_column else 0.02
    c = rng.integers(-3000, 3000, 7).astype(np.int32) if bias else None
    m = qgemm_model(b, 1.0, b_scale, y=False, bias=c, trans_b=1)
    a = rand(rng, U8, (3, 12))
    want = ort_harness.run_cases([(m.SerializeToString(), {"a": a})], "native")[0][0]
    q, got = qnn_run(m, {"a": a}, native)
    assert got["y"].dtype == np.float32
    np.testing.assert_array_equal(got["y"].view(np.uint32), want.view(np.uint32))    # bit for bit
    assert ops_of(q) == ["matmul", "dequantize"]
    acc = next(t for t in q.graph.tensors.values() if t.dtype == "int32" and t.data is None)
    assert acc.quant is not None and not np.any(acc.quant.zero_point_or_zeros())


def test_qgemm_refusals():
    from qnnref import ValidationError
    from qnnref.onnx import import_onnx
    rng = np.random.default_rng(42)
    with pytest.raises(ValidationError, match="alpha = -1.0"):
        import_onnx(qgemm_model(rand(rng, S8, (12, 7)), -1.0), profile="onnx")


# ---------------------------------------------------------------------------
# (6) Cast of integers (cast views), and the exporter's input quantization
# ---------------------------------------------------------------------------

I16 = np.int16


def with_input_quant(m, **quants):
    """Record graph-input quantization as qnnref's exporter does."""
    import json

    from onnx import helper
    helper.set_model_props(m, {"qnnref.input_quantization": json.dumps(
        {k: {"dtype": d, "scale": s, "zero_point": z, "axis": None, "block_size": None}
         for k, (d, s, z) in quants.items()})})
    return m


def test_int16_max_pool_through_float_cast_is_an_integer_max_pool(native):
    from onnx import TensorProto as TP
    rng = np.random.default_rng(50)
    nodes = [node("Cast", ["x"], ["xf"], to=TP.FLOAT),
             node("MaxPool", ["xf"], ["pf"], kernel_shape=[2, 2], pads=[1, 0, 0, 1]),
             node("Cast", ["pf"], ["y"], to=TP.INT16)]
    m = with_input_quant(make_model(nodes, {"x": (I16, (1, 3, 5, 4))}, {"y": (I16, (1, 3, 5, 4))}),
                         x=("int16", 0.1, 0))
    q = assert_close_to_ort(m, {"x": rand(rng, I16, (1, 3, 5, 4))}, max_steps=0, profile=native)
    assert ops_of(q) == ["transpose", "max_pool2d", "transpose"]
    assert q.graph.tensors["y"].quant is not None             # the integers keep their quantization


def test_int16_clip_and_pad_through_int32_cast(native):
    from onnx import TensorProto as TP
    rng = np.random.default_rng(51)
    inits = [init("lo", -1000, np.int32), init("hi", 20000, np.int32), init("pads", np.array([0, 1, 2, 0], np.int64)),
             init("v", 7, np.int32)]
    nodes = [node("Cast", ["x"], ["x32"], to=TP.INT32), node("Clip", ["x32", "lo", "hi"], ["c32"]),
             node("Pad", ["c32", "pads", "v"], ["p32"]), node("Cast", ["p32"], ["y"], to=TP.INT16)]
    m = make_model(nodes, {"x": (I16, (3, 5))}, {"y": (I16, (5, 6))}, inits)
    q = assert_close_to_ort(m, {"x": rand(rng, I16, (3, 5))}, max_steps=0, profile=native)
    assert ops_of(q)[:2] == ["clamp", "pad"]          # (then a copy to the output name)


@pytest.mark.parametrize("dtype,offset", [(S8, 128), (U8, 0), (S8, 0)])
def test_cast_add_gather_is_a_table(native, dtype, offset):
    """``y = table[x + offset]`` (qnnref's exported table; negative indices
    count from the end, as ONNX's Gather says)."""
    from onnx import TensorProto as TP
    rng = np.random.default_rng(52)
    inits = [init("t", rand(rng, U8, (256,)))]
    nodes = [node("Cast", ["x"], ["i"], to=TP.INT32)]
    if offset:
        inits.append(init("off", offset, np.int32))
        nodes.append(node("Add", ["i", "off"], ["j"]))
    nodes.append(node("Gather", ["t", "j" if offset else "i"], ["y"], axis=0))
    m = make_model(nodes, {"x": (dtype, (4, 64))}, {"y": (U8, (4, 64))}, inits)
    x = np.arange(256).astype(dtype).reshape(4, 64)
    q = assert_close_to_ort(m, {"x": x}, max_steps=0, profile=native)
    assert ops_of(q) == ["table"]


def test_cast_views_refused_where_they_cannot_be_exact():
    from onnx import TensorProto as TP

    from qnnref import ValidationError
    from qnnref.onnx import import_onnx

    def refused(nodes, inputs, outputs, match, inits=()):
        m = make_model(nodes, inputs, outputs, inits, check=False)
        with pytest.raises(ValidationError, match=match):
            import_onnx(m, profile="onnx")

    refused([node("Cast", ["x"], ["y"], to=TP.INT8)], {"x": (I16, (3,))}, {"y": (S8, (3,))},
            "does not hold each of them exactly")
    refused([node("Cast", ["x"], ["y"], to=TP.INT32)], {"x": (S8, (3,))}, {"y": (np.int32, (3,))},
            "integers cast to int32 as a graph output")
    refused([node("Cast", ["x"], ["f"], to=TP.FLOAT), node("Clip", ["f", "lo"], ["c"]),
             node("Cast", ["c"], ["y"], to=TP.INT8)], {"x": (S8, (3,))}, {"y": (S8, (3,))},
            "bound 2.5 .* not an integer", [init("lo", 2.5, np.float32)])
    refused([node("Cast", ["x"], ["f"], to=TP.FLOAT), node("Add", ["f", "f"], ["y"])],
            {"x": (S8, (3,))}, {"y": (np.float32, (3,))}, "integers cast to float32; only data movement")


def test_exported_input_quantization_is_a_hint_only():
    """A graph input's quantization comes from the graph when a quantized
    operator states it; the exporter's record counts only otherwise."""
    rng = np.random.default_rng(53)
    inits = [init("s", 0.02, np.float32), init("z", 9, U8)]
    nodes = [node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2]), node("DequantizeLinear", ["p", "s", "z"], ["y"])]
    m = with_input_quant(make_model(nodes, {"x": (U8, (1, 1, 4, 4))}, {"y": (np.float32, (1, 1, 3, 3))}, inits),
                         x=("uint8", 0.5, 3))
    q, _ = qnn_run(m, {"x": rand(rng, U8, (1, 1, 4, 4))}, "onnx")
    assert float(q.graph.tensors["x"].quant.scale) == np.float32(0.02)
    m = with_input_quant(make_model([nodes[0]], {"x": (U8, (1, 1, 4, 4))}, {"p": (U8, (1, 1, 3, 3))}),
                         x=("uint8", 0.5, 3))
    q, _ = qnn_run(m, {"x": rand(rng, U8, (1, 1, 4, 4))}, "onnx")
    assert float(q.graph.tensors["x"].quant.scale) == 0.5 and q.graph.tensors["p"].quant.zero_point_or_zeros() == 3


# ---------------------------------------------------------------------------
# (7) DynamicQuantizeLinear
# ---------------------------------------------------------------------------

def test_dynamic_quantize_linear_matches_onnx_runtime_bit_for_bit():
    from qnnref.onnx import import_onnx
    rng = np.random.default_rng(60)
    n = node("DynamicQuantizeLinear", ["x"], ["y", "y_scale", "y_zero_point"])
    m = make_model([n], {"x": (np.float32, (5, 7))}, {"y": (U8, (5, 7)), "y_scale": (np.float32, ()),
                                                       "y_zero_point": (U8, ())})
    feeds = [rng.standard_normal((5, 7)).astype(np.float32) * np.float32(10.0 ** k) for k in range(-4, 5)]
    feeds += [np.abs(feeds[3]), -np.abs(feeds[5]), np.zeros((5, 7), np.float32),
              rng.integers(-20, 20, (5, 7)).astype(np.float32) / np.float32(8)]
    outs = ort_harness.run_cases([(m.SerializeToString(), {"x": x}) for x in feeds], "native")
    q = import_onnx(m, profile="ort-cpu-x86")
    assert ops_of(q) == ["dynamic_quantize"]
    for x, want in zip(feeds, outs):
        got = q.run({"x": x})
        np.testing.assert_array_equal(got["y"], want[0])
        assert got["y_scale"].view(np.uint32) == want[1].view(np.uint32) and got["y_zero_point"] == want[2]


def test_dynamic_quantize_feeding_matmul_integer_imports_with_a_run_time_zero_point():
    """(Once refused; tests/onnx_import/test_dynamic.py has the full models.)"""
    from qnnref.onnx import import_onnx
    rng = np.random.default_rng(61)
    nodes = [node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             node("MatMulInteger", ["xq", "w", "xz"], ["y"])]
    m = make_model(nodes, {"x": (np.float32, (2, 4))}, {"y": (np.int32, (2, 3))}, [init("w", rand(rng, S8, (4, 3)))])
    q = import_onnx(m, profile="ort-cpu-x86")
    assert q.graph.nodes[-1].op == "matmul" and q.graph.nodes[-1].inputs[3]
