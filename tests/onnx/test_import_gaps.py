"""Importer gaps closed after the first release of the importer: scalar weight
zero points with per-channel scales, channels_last QLinearAveragePool,
ceil_mode windows that start in the padding. Results are compared with ONNX
Runtime bit for bit under the profile that describes this machine's CPU
(``ort-cpu-x86`` or ``ort-cpu-x86-vnni``), on dtype combinations that the
CPU difference does not touch."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from onnx_helpers import MS, assert_close_to_ort, init, make_model, node, ops_of, qnn_run, rand

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))
import ort_harness  # noqa: E402

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
