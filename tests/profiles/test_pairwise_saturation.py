"""Pairwise int16 saturation (spec/arithmetic.md, equation (6a)) in the
reference matmul and conv2d, against brute-force oracles written here one
element at a time. ONNX Runtime itself is compared in test_ort_profile.py."""
from __future__ import annotations

import numpy as np
import pytest

from qnnref import GraphBuilder, RuntimeCheckError, ValidationError
from qnnref.arith import pairwise_int16_matmul
from qnnref.ops.matmul import pairwise_int16_accumulator


def sat16(v: int) -> int:
    return max(-32768, min(32767, v))


def oracle_dot(a_row, b_col, za: int, zb: int) -> int:
    """(6a) for one output, in Python ints: raw products in pairs (k = 2i, 2i+1),
    each pair saturated, then the zero-point corrections."""
    a_row, b_col = [int(v) for v in a_row], [int(v) for v in b_col]
    k = len(a_row)
    pairs = sum(sat16(sum(a_row[j] * b_col[j] for j in range(i, min(i + 2, k)))) for i in range(0, k, 2))
    return pairs - zb * sum(a_row) - za * sum(b_col) + k * za * zb


def oracle_matmul(a, b, za, zb) -> np.ndarray:
    m, k = a.shape
    n = b.shape[1]
    zb = np.broadcast_to(np.asarray(zb), (n,))
    return np.array([[oracle_dot(a[i], b[:, j], int(za), int(zb[j])) for j in range(n)] for i in range(m)])


def u8(rng, shape, extreme):
    return (rng.choice([0, 1, 254, 255], shape) if extreme else rng.integers(0, 256, shape)).astype(np.uint8)


def s8(rng, shape, extreme):
    return (rng.choice([-128, -127, 126, 127], shape) if extreme else rng.integers(-128, 128, shape)).astype(np.int8)


def test_the_classic_case():
    # 255 * 127 + 255 * 127 = 64770 saturates to 32767 (ORT on AVX2 without VNNI returns 32767)
    a, b = np.array([[255, 255]], np.uint8), np.array([[127], [127]], np.int8)
    assert pairwise_int16_matmul(a, b).tolist() == [[32767]]
    assert pairwise_int16_accumulator(a, 0, b, 0).tolist() == [[32767]]
    # an odd K: the third product is a pair on its own
    a3, b3 = np.array([[255, 255, 255]], np.uint8), np.array([[127], [127], [-128]], np.int8)
    assert pairwise_int16_matmul(a3, b3).tolist() == [[32767 - 32640]]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 7, 16, 33])
def test_accumulator_equals_the_oracle(k):
    rng = np.random.default_rng(k)
    for trial in range(6):
        extreme = trial % 2 == 1
        a, b = u8(rng, (3, k), extreme), s8(rng, (k, 4), extreme)
        za = int(rng.integers(0, 256))
        zb = rng.integers(-128, 128, 4).astype(np.int8) if trial % 3 == 0 else np.int8(rng.integers(-128, 128))
        got = pairwise_int16_accumulator(a, za, b, zb)
        np.testing.assert_array_equal(got, oracle_matmul(a, b, za, zb))


def test_without_saturating_pairs_it_is_the_exact_sum():
    # 7-bit weights (|b| <= 64, ORT's reduce_range) never saturate: 2 * 255 * 64 < 32767
    rng = np.random.default_rng(1)
    a, b = u8(rng, (5, 64), False), rng.integers(-64, 65, (64, 6)).astype(np.int8)
    za, zb = 17, -5
    exact = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)
    np.testing.assert_array_equal(pairwise_int16_accumulator(a, za, b, zb), exact)


def test_saturation_is_of_the_raw_codes_not_of_the_centered_values():
    # a = 255 with zp_a = 255 is real 0, yet its raw products saturate a pair
    a, b = np.array([[255, 255]], np.uint8), np.array([[127], [127]], np.int8)
    exact = (a.astype(np.int64) - 255) @ b.astype(np.int64)               # 0
    got = pairwise_int16_accumulator(a, 255, b, 0)                         # 32767 - 255 * 254
    assert exact.tolist() == [[0]] and got.tolist() == [[32767 - 255 * 254]]


def matmul_model(a, za, b, zb, profile="ort-cpu-x86", attrs=None, b_dtype=None, y_dtype="int16"):
    g = GraphBuilder(profile=profile)
    x = g.input("a", a.dtype.name, a.shape, scale=1.0, zero_point=int(za))
    w = g.constant("b", b, dtype=b_dtype, scale=1.0, zero_point=zb)
    g.output(g.node("matmul", [x, w], dict(attrs or {}, dtype=y_dtype), scale=1.0, zero_point=0))
    return g.build(backend="reference")


def run1(model, x):
    return next(iter(model.run(x).values()))


def test_matmul_model_uses_it_under_ort_cpu_x86_only():
    # pairs (+64770 -> 32767) and (-65025 -> -32768): saturated -1, exact -255, both within int16
    a = np.array([[255, 255, 255, 255]], np.uint8)
    b = np.array([[127], [127], [-127], [-128]], np.int8)
    assert run1(matmul_model(a, 0, b, 0), a).tolist() == [[-1]]
    assert run1(matmul_model(a, 0, b, 0, profile="ort-cpu-x86-vnni"), a).tolist() == [[-255]]
    assert run1(matmul_model(a, 0, b, 0, profile="onnx"), a).tolist() == [[-255]]
    # the node attribute overrides the profile, both ways
    assert run1(matmul_model(a, 0, b, 0, attrs={"pairwise_int16_saturation": False}), a).tolist() == [[-255]]
    assert run1(matmul_model(a, 0, b, 0, profile="onnx", attrs={"pairwise_int16_saturation": True}),
                a).tolist() == [[-1]]


def test_only_uint8_activations_with_int8_weights():
    a8 = np.array([[255, 255, 255, 255]], np.uint8)
    # u8 x u8: exact (MLAS's u8u8 kernels widen to int16 first)
    bu = np.array([[255], [255], [0], [0]], np.uint8)
    assert run1(matmul_model(a8, 0, bu, 0, y_dtype="int16"), a8).tolist() == [[32767]]     # the dtype clamp
    g = GraphBuilder(profile="ort-cpu-x86")
    x = g.input("a", "uint8", (1, 4), scale=1.0, zero_point=0)
    w = g.constant("b", bu, scale=1.0, zero_point=0)
    g.output(g.node("matmul", [x, w], {"dtype": "int16"}, scale=4.0, zero_point=0))
    assert run1(g.build(backend="reference"), a8).tolist() == [[round(2 * 255 * 255 / 4)]]   # not 32767 / 4
    # s8 x s8: exact
    a = np.array([[-128, -128]], np.int8)
    b = np.array([[-128], [-128]], np.int8)
    g = GraphBuilder(profile="ort-cpu-x86")
    x = g.input("a", "int8", (1, 2), scale=1.0, zero_point=0)
    w = g.constant("b", b, scale=1.0, zero_point=0)
    g.output(g.node("matmul", [x, w], {"dtype": "int16"}, scale=4.0, zero_point=0))
    assert run1(g.build(backend="reference"), a).tolist() == [[8192]]                           # 32768 / 4
    # u8 x int4: never saturates, whatever the flag says
    b4 = np.array([[-8], [-8], [7], [7]], np.int8)
    assert run1(matmul_model(a8, 0, b4, 0, b_dtype="int4"), a8).tolist() == [[-255 * 2]]


def test_batched_matmul_and_per_column_zero_points():
    rng = np.random.default_rng(5)
    a = u8(rng, (2, 3, 9), True)
    b = s8(rng, (9, 4), True)
    zb = rng.integers(-128, 128, 4).astype(np.int8)
    g = GraphBuilder(profile="ort-cpu-x86")
    x = g.input("a", "uint8", a.shape, scale=1.0, zero_point=3)
    w = g.constant("b", b, scale=np.full(4, 2.0**10, np.float32), zero_point=zb, axis=1)
    g.output(g.node("matmul", [x, w], {"dtype": "int16"}, scale=1.0, zero_point=0))
    y = run1(g.build(backend="reference"), a)
    want = np.stack([oracle_matmul(a[i], b, 3, zb) for i in range(2)]) * 2**10
    np.testing.assert_array_equal(y, np.clip(want, -32768, 32767))


# ---------------------------------------------------------------------------
# conv2d: the im2col (kh, kw, c) order
# ---------------------------------------------------------------------------

def oracle_conv(x, zx, w, zw, pads, strides, groups):
    """(6a) over the im2col rows of each group, (kh, kw, c) order, raw padded input."""
    n, h, wd, c_in = x.shape
    c_out, kh, kw, cg = w.shape
    top, left, bottom, right = pads
    xp = np.pad(x.astype(np.int64), ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=zx)
    oh = (h + top + bottom - kh) // strides[0] + 1
    ow = (wd + left + right - kw) // strides[1] + 1
    og = c_out // groups
    out = np.zeros((n, oh, ow, c_out), np.int64)
    for b_ in range(n):
        for i in range(oh):
            for j in range(ow):
                for co in range(c_out):
                    g = co // og
                    patch = xp[b_, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw,
                               g * cg:(g + 1) * cg].reshape(-1)
                    out[b_, i, j, co] = oracle_dot(patch, w[co].reshape(-1), zx, int(np.broadcast_to(zw, (c_out,))[co]))
    return out


def conv_model(x, zx, w, zw, pads, strides, groups, profile="ort-cpu-x86", attrs=None, scale=1.0):
    g = GraphBuilder(profile=profile)
    xi = g.input("x", x.dtype.name, x.shape, scale=1.0, zero_point=int(zx))
    per = np.ndim(zw) > 0
    wi = g.constant("w", w, scale=np.ones(w.shape[0], np.float32) if per else 1.0, zero_point=zw,
                    axis=0 if per else None)
    a = {"pads": list(pads), "strides": list(strides), "groups": groups, "dtype": "int16"}
    g.output(g.node("conv2d", [xi, wi], dict(a, **(attrs or {})), scale=scale, zero_point=0))
    return g.build(backend="reference")


@pytest.mark.parametrize("c_in, groups, c_out, k", [(3, 1, 2, (3, 3)), (5, 1, 3, (2, 3)), (1, 1, 2, (3, 3)),
                                                    (4, 2, 4, (3, 3)), (6, 3, 6, (1, 3)), (4, 4, 8, (3, 3))])
def test_conv2d_pairs_follow_im2col_rows_across_taps(c_in, groups, c_out, k):
    rng = np.random.default_rng(c_in * 100 + groups)
    for trial in range(3):
        x = u8(rng, (1, 4, 5, c_in), True)
        w = s8(rng, (c_out, *k, c_in // groups), True)
        zx = int(rng.integers(0, 256))
        zw = np.int8(0) if trial == 0 else np.full(c_out, rng.integers(-128, 128), np.int8)
        pads, strides = (1, 0, 1, 2), (1, 2)
        want = oracle_conv(x, zx, w, zw, pads, strides, groups)
        scale = float(2.0 ** max(0, int(np.ceil(np.log2(np.abs(want).max() / 32000 + 1e-9)))))
        y = run1(conv_model(x, zx, w, zw, pads, strides, groups, scale=scale), x)
        np.testing.assert_array_equal(y, np.clip(np.rint(want / scale), -32768, 32767))


def test_pairs_straddle_taps_when_channels_are_odd():
    # C_in = 1, a 1 x 2 kernel, two output channels (not depthwise): the two
    # taps form one pair (ORT's im2col GEMM); scale 2 keeps 64770 in range
    x = np.full((1, 1, 2, 1), 255, np.uint8)
    w = np.full((2, 1, 2, 1), 127, np.int8)                      # OHWI [2, 1, 2, 1]
    y = run1(conv_model(x, 0, w, 0, (0, 0, 0, 0), (1, 1), 1, scale=2.0), x)
    assert y.ravel().tolist() == [16384, 16384]                  # 32767 / 2, half to even (exact: 32385)
    # with C_in = 2 a pair is the two channels of one tap
    x2 = np.full((1, 1, 2, 2), 255, np.uint8)
    w2 = np.array([[[[127, -127], [127, -127]]]] * 2, np.int8)
    assert run1(conv_model(x2, 0, w2, 0, (0, 0, 0, 0), (1, 1), 1), x2).ravel().tolist() == [0, 0]
    # and the same taps in (c, kh, kw) order would pair 127 with 127: not what is computed
    w3 = np.array([[[[127, 127], [-127, -128]]]] * 2, np.int8)  # pairs (127,127) and (-127,-128) per tap
    assert run1(conv_model(x2, 0, w3, 0, (0, 0, 0, 0), (1, 1), 1), x2).ravel().tolist() == [-1, -1]


def test_padded_taps_take_part_with_the_raw_zero_point():
    # zp_x = 255: the padded tap is code 255, real 0; paired with the centre tap it saturates
    x = np.full((1, 1, 1, 1), 255, np.uint8)
    w = np.full((2, 1, 2, 1), 127, np.int8)                      # 1 x 2 kernel, pad right 1
    y = run1(conv_model(x, 255, w, 0, (0, 0, 0, 1), (1, 1), 1), x)
    assert y.ravel().tolist() == [32767 - 255 * 254] * 2         # exact: 0
    y_exact = run1(conv_model(x, 255, w, 0, (0, 0, 0, 1), (1, 1), 1, profile="ort-cpu-x86-vnni"), x)
    assert y_exact.ravel().tolist() == [0, 0]


def test_depthwise_is_exempt_but_not_with_a_channel_multiplier():
    x = np.full((1, 1, 2, 2), 255, np.uint8)
    w1 = np.full((2, 1, 2, 1), 127, np.int8)                     # groups 2, one output channel each
    assert run1(conv_model(x, 0, w1, 0, (0, 0, 0, 0), (1, 1), 2), x).ravel().tolist() == [32767, 32767]
    # the exact value 64770 does not fit int16: use scale 2
    y1 = run1(conv_model(x, 0, w1, 0, (0, 0, 0, 0), (1, 1), 2, scale=2.0), x)
    assert y1.ravel().tolist() == [32385, 32385]                 # exact: the depthwise kernel
    w2 = np.full((4, 1, 2, 1), 127, np.int8)                     # channel multiplier 2: ORT's grouped GEMM
    y2 = run1(conv_model(x, 0, w2, 0, (0, 0, 0, 0), (1, 1), 2, scale=2.0), x)
    assert y2.ravel().tolist() == [16384] * 4                    # 32767 / 2, half to even
    # the node attribute overrides the exemption
    y3 = run1(conv_model(x, 0, w1, 0, (0, 0, 0, 0), (1, 1), 2, scale=2.0,
                         attrs={"pairwise_int16_saturation": True}), x)
    assert y3.ravel().tolist() == [16384, 16384]


def test_the_int32_contract_applies_to_the_saturated_value():
    """The value that must fit int32 is (6a) itself: here the exact sum
    64770 + bias would overflow, the saturated 32767 + bias does not."""
    a = np.array([[255, 255]], np.uint8)
    b = np.array([[127], [127]], np.int8)

    def model(bias):
        g = GraphBuilder(profile="ort-cpu-x86")
        x = g.input("a", "uint8", (1, 2), scale=1.0, zero_point=0)
        w = g.constant("b", b, scale=1.0, zero_point=0)
        g.output(g.node("matmul", [x, w, g.constant("bias", np.array([bias], np.int32))],
                        scale=2.0**24, zero_point=0))
        return g.build(backend="reference")
    assert run1(model(2**31 - 1 - 32767), a).tolist() == [[128]]      # fl32(2^31 - 1) = 2^31; / 2^24
    with pytest.raises(RuntimeCheckError, match="overflows int32"):
        run1(model(2**31 - 32767), a)


def test_the_attribute_must_be_a_bool():
    a = np.zeros((1, 2), np.uint8)
    with pytest.raises(ValidationError, match="pairwise_int16_saturation"):
        matmul_model(a, 0, np.zeros((2, 1), np.int8), 0, attrs={"pairwise_int16_saturation": "yes"})


# ---------------------------------------------------------------------------
# s8_activations_as_u8: ONNX Runtime's int8 -> uint8 rewrite of QDQ activations
# ---------------------------------------------------------------------------

def s8_oracle_matmul(a, za, b, zb):
    """(6a) on the shifted codes a + 128, zero point za + 128."""
    return oracle_matmul(a.astype(np.int64) + 128, b, int(za) + 128, zb)


def test_s8_activations_as_u8_saturate_the_shifted_codes():
    # 127 -> 255: the pair 255 * 127 * 2 saturates; the zero points are corrected exactly
    a = np.array([[127, 127]], np.int8)
    b = np.array([[127], [127]], np.int8)
    on = {"s8_activations_as_u8": True}
    assert run1(matmul_model(a, 0, b, 0, attrs=on, y_dtype="int32"), a).tolist() == [[32767 - 128 * 254]]
    # without the attribute, or without saturation, s8 x s8 is exact
    assert run1(matmul_model(a, 0, b, 0, y_dtype="int32"), a).tolist() == [[32258]]
    assert run1(matmul_model(a, 0, b, 0, profile="ort-cpu-x86-vnni", attrs=on, y_dtype="int32"),
                a).tolist() == [[32258]]
    assert run1(matmul_model(a, 0, b, 0, attrs=dict(on, pairwise_int16_saturation=False), y_dtype="int32"),
                a).tolist() == [[32258]]
    # the attribute does nothing to uint8 activations or to uint8 weights
    bu = np.array([[255], [255]], np.uint8)
    assert run1(matmul_model(a, 0, bu, 0, attrs=on, y_dtype="int32"), a).tolist() == [[127 * 255 * 2]]


@pytest.mark.parametrize("k", [1, 2, 3, 16, 33])
def test_s8_activations_as_u8_matmul_equals_the_oracle(k):
    rng = np.random.default_rng(100 + k)
    for trial in range(4):
        extreme = trial % 2 == 1
        a, b = s8(rng, (3, k), extreme), s8(rng, (k, 4), extreme)
        za = int(rng.integers(-128, 128))
        zb = np.int8(rng.integers(-128, 128)) if trial >= 2 else np.int8(0)
        got = run1(matmul_model(a, za, b, zb, attrs={"s8_activations_as_u8": True}, y_dtype="int32"), a)
        np.testing.assert_array_equal(got, s8_oracle_matmul(a, za, b, zb))


def test_s8_activations_as_u8_conv2d_shifts_the_padding_too():
    """Codes and padding x + 128, zero point zx + 128, pairs along im2col
    rows; a depthwise convolution stays exempt (exact), as for uint8 x."""
    rng = np.random.default_rng(7)
    on = {"s8_activations_as_u8": True}
    pads, strides, scale = (1, 0, 1, 2), (1, 2), 4.0
    for c_in, groups, c_out in [(3, 1, 2), (4, 2, 4), (1, 1, 2), (2, 2, 2)]:
        x = s8(rng, (1, 4, 5, c_in), True)
        w = s8(rng, (c_out, 3, 2, c_in // groups), True)
        zx = int(rng.integers(-128, 128))
        y = run1(conv_model(x, zx, w, np.int8(0), pads, strides, groups, attrs=on, scale=scale), x)
        if c_in == groups == c_out:
            exact = run1(conv_model(x, zx, w, np.int8(0), pads, strides, groups, scale=scale), x)
            np.testing.assert_array_equal(y, exact)
            continue
        want = oracle_conv(x.astype(np.int64) + 128, zx + 128, w, 0, pads, strides, groups)
        np.testing.assert_array_equal(y, np.clip(np.rint(want / scale), -32768, 32767))


def test_the_kernels_refuse_s8_activations_as_u8():
    """The C++ kernels sum exactly: a node with the shifted saturation runs
    on the reference (needed_semantics: pairwise_int16)."""
    a = np.array([[127, 127]], np.int8)
    b = np.array([[127], [127]], np.int8)

    def model(attrs):
        g = GraphBuilder(profile="ort-cpu-x86")
        x = g.input("a", "int8", (1, 2), scale=1.0, zero_point=0)
        w = g.constant("b", b, scale=1.0, zero_point=0)
        g.output(g.node("matmul", [x, w], dict(attrs, dtype="int16"), scale=4.0, zero_point=0))
        return g.build()
    shifted = model({"s8_activations_as_u8": True})
    assert run1(shifted, a).tolist() == [[round((32767 - 128 * 254) / 4)]]
    runs = shifted.plan()[0]["runs"]
    assert runs.startswith("reference") and "pairwise" in runs, runs
    assert run1(model({}), a).tolist() == [[round(32258 / 4)]]


def qdq_model(kind="Conv", input_pair=True, q_readers=1, dq_readers=1, output_pair=True, x_dtype="int8",
              out_dq_readers=1):
    """float x -> Q -> DQ -> Conv/MatMul/Gemm (int8 weights) -> Q [-> DQ]:
    the structures ONNX Runtime's int8 -> uint8 rewrite looks at."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto as T
    from onnx import helper as H
    from onnx import numpy_helper as NH
    npx = np.int8 if x_dtype == "int8" else np.uint8
    inits = [NH.from_array(np.float32(0.5), "s"), NH.from_array(npx(3), "z"),
             NH.from_array(np.float32(64.0), "ys"), NH.from_array(npx(1), "yz"),
             NH.from_array(np.full((2, 2, 1, 1) if kind == "Conv" else (2, 2), 127, np.int8), "w"),
             NH.from_array(np.float32(1.0), "ws"), NH.from_array(np.int8(0), "wz")]
    shape = [1, 2, 1, 1] if kind == "Conv" else [1, 2]
    nodes, outs = [], []
    if input_pair:
        x = H.make_tensor_value_info("x", T.FLOAT, shape)
        nodes.append(H.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_x"))
    else:
        x = H.make_tensor_value_info("xq", T.INT8 if x_dtype == "int8" else T.UINT8, shape)
    nodes.append(H.make_node("DequantizeLinear", ["xq", "s", "z"], ["xdq"], name="dq_x"))
    for j in range(1, q_readers):
        nodes.append(H.make_node("DequantizeLinear", ["xq", "s", "z"], [f"xdq{j}"], name=f"dq_x{j}"))
        outs.append(H.make_tensor_value_info(f"xdq{j}", T.FLOAT, shape))
    if dq_readers > 1:
        nodes.append(H.make_node("Relu", ["xdq"], ["xr"], name="other_reader"))
        outs.append(H.make_tensor_value_info("xr", T.FLOAT, shape))
    nodes.append(H.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wdq"], name="dq_w"))
    nodes.append(H.make_node(kind, ["xdq", "wdq"], ["o"], name="op"))
    ytype = T.INT8 if x_dtype == "int8" else T.UINT8
    nodes.append(H.make_node("QuantizeLinear", ["o", "ys", "yz"], ["yq"], name="q_y"))
    if output_pair:
        nodes.append(H.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"], name="dq_y"))
        outs.insert(0, H.make_tensor_value_info("y", T.FLOAT, None))
        for j in range(1, out_dq_readers):
            nodes.append(H.make_node("Relu", ["y"], [f"yr{j}"], name=f"y_reader{j}"))
            outs.append(H.make_tensor_value_info(f"yr{j}", T.FLOAT, None))
    else:
        outs.insert(0, H.make_tensor_value_info("yq", ytype, None))
    g = H.make_graph(nodes, "g", [x], outs, inits)
    return H.make_model(g, opset_imports=[H.make_opsetid("", 17)])


def imported_flag(model, profile="ort-cpu-x86"):
    from qnnref.onnx import import_onnx
    m = import_onnx(model, profile=profile)
    if any(n.op in ("float_conv2d", "float_matmul") for n in m.graph.nodes):
        return "float"                  # ONNX Runtime does not fuse the group: float32, no pairs
    (node,) = [n for n in m.graph.nodes if n.op in ("conv2d", "matmul")]
    return node.attrs.get("s8_activations_as_u8")


@pytest.mark.parametrize("kind", ["Conv", "MatMul", "Gemm"])
def test_the_importer_marks_what_ort_rewrites(kind):
    """Measured with ONNX Runtime 1.32 (AVX-512, VNNI, AMX hidden; the
    conformance row 'QDQ s8 float input' and spec/profiles/ort-cpu-x86.md
    rule 11): only an int8 Q -> DQ pair read by the node alone, with the
    node's output Q -> DQ rewritten too, is fused as u8 x s8. Where only
    one of the two pairs is rewritten, ORT's QDQ selectors see a uint8 input
    and an int8 output (or the reverse) and leave the node in float."""
    assert imported_flag(qdq_model(kind)) is True
    assert imported_flag(qdq_model(kind), profile="ort-cpu-x86-vnni") is True   # harmless: no saturation
    assert imported_flag(qdq_model(kind), profile="onnx") is None
    assert imported_flag(qdq_model(kind, x_dtype="uint8")) is None              # uint8 already
    assert imported_flag(qdq_model(kind, input_pair=False)) == "float"          # int8 graph input: no Q
    # the input pair stays int8 (above too), the output pair becomes uint8 (or the reverse): float
    assert imported_flag(qdq_model(kind, q_readers=2)) == "float"               # Q read twice: stays int8
    assert imported_flag(qdq_model(kind, dq_readers=2)) == "float"              # DQ copied per reader
    assert imported_flag(qdq_model(kind, output_pair=False)) == "float"         # int8 out: ORT runs float
    assert imported_flag(qdq_model(kind, out_dq_readers=2)) == "float"          # output DQ copied: Q stays int8
    assert imported_flag(qdq_model(kind, output_pair=False), profile="onnx") is None


@pytest.mark.parametrize("kind", ["Conv", "MatMul", "Gemm"])
def test_the_imported_node_saturates_like_ort_on_avx2(kind):
    """x codes 127 (zero point 3), w = [127, 127]: ONNX Runtime 1.32 returns
    -256 with AVX-512, VNNI and AMX hidden and 8064 natively (measured)."""
    from qnnref.onnx import import_onnx
    x = np.full((1, 2, 1, 1) if kind == "Conv" else (1, 2), 62.0, np.float32)   # code 124 + 3 = 127
    y = {}
    for profile in ("ort-cpu-x86", "ort-cpu-x86-vnni"):
        m = import_onnx(qdq_model(kind), profile=profile)
        y[profile] = next(iter(m.run({"x": x}).values())).ravel().tolist()
    # exact: 124 * 127 * 2 * 0.5 / 64 = 246.06 -> 246 + 1, clamped to 127 -> (127 - 1) * 64
    assert y["ort-cpu-x86-vnni"] == [8064.0, 8064.0]
    # shifted codes 255, zero point 131: sat16(64770) - 131 * 254 = -507; -507 * 0.5 / 64 -> -4 + 1 -> (-3 - 1) * 64
    assert y["ort-cpu-x86"] == [-256.0, -256.0]


@pytest.mark.parametrize("kind", ["Conv", "MatMul", "Gemm"])
@pytest.mark.parametrize("variant", [{"input_pair": False}, {"q_readers": 2}, {"dq_readers": 2},
                                     {"output_pair": False}, {"out_dq_readers": 2}, {}])
def test_split_groups_equal_onnx_runtime(kind, variant):
    """The groups ONNX Runtime leaves in float after rewriting one int8 pair
    to uint8, and the one it fuses, equal it bit for bit under the profile
    of the CPU of this run (probed), at codes whose u8 x s8 pairs saturate."""
    import ort_harness
    if not ort_harness.HAVE_ORT:
        pytest.skip("onnx / onnxruntime is not installed")
    from qnnref.onnx import import_onnx
    model = qdq_model(kind, **variant)
    shape = (1, 2, 1, 1) if kind == "Conv" else (1, 2)
    feeds = {"xq": np.full(shape, 127, np.int8)} if variant.get("input_pair") is False else \
        {"x": np.full(shape, 62.0, np.float32)}                       # codes 127 either way
    (want,) = ort_harness.run_cases([(model.SerializeToString(), feeds)])
    got = import_onnx(model, profile=ort_harness.native_profile()).run(feeds)
    assert [o.name for o in model.graph.output] == list(got)
    for w, g in zip(want, got.values()):
        np.testing.assert_array_equal(np.asarray(g).ravel(), np.asarray(w).ravel())
