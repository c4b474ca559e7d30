"""QDQ graphs: DequantizeLinear -> float op -> QuantizeLinear groups fused
into qnnref integer operators (as ONNX Runtime's QDQ transformer does),
across opsets 10 to 21 (per-axis, int4 weights, int16, blocked)."""
from __future__ import annotations

import numpy as np
import pytest

import qnnref
from onnx_helpers import assert_close_to_ort, init, make_model, node, ops_of, rand

U8, S8, I16, F32 = np.uint8, np.int8, np.int16, np.float32


def q_in(name="x", scale=0.05, zp=128, dtype=U8):
    """Nodes and initializers quantizing float input ``name`` to ``name``q and
    dequantizing it to ``name``f."""
    return ([node("QuantizeLinear", [name, f"{name}_s", f"{name}_z"], [f"{name}q"]),
             node("DequantizeLinear", [f"{name}q", f"{name}_s", f"{name}_z"], [f"{name}f"])],
            [init(f"{name}_s", scale, F32), init(f"{name}_z", zp, dtype)])


def q_out(src="yf", scale=0.1, zp=100, dtype=U8):
    return ([node("QuantizeLinear", [src, "y_s", "y_z"], ["y"])], [init("y_s", scale, F32), init("y_z", zp, dtype)])


def weight(name, w, scale, zp=None, axis=None):
    """DequantizeLinear of an integer initializer ``name`` -> ``name``f."""
    attrs = {} if axis is None else {"axis": axis}
    zp = np.zeros(np.shape(scale), w.dtype) if zp is None else zp
    return ([node("DequantizeLinear", [name, f"{name}_s", f"{name}_z"], [f"{name}f"], **attrs)],
            [init(name, w), init(f"{name}_s", scale, F32), init(f"{name}_z", zp)])


def build(parts, inputs, out_dtype=U8, out_shape=None, opset=13):
    nodes, inits = [], []
    for n, i in parts:
        nodes += n
        inits += i
    return make_model(nodes, inputs, {"y": (out_dtype, out_shape)}, inits, opset=opset)


def xfeed(shape, name="x", seed=0, lo=-3, hi=3):
    return {name: np.random.default_rng(seed).uniform(lo, hi, shape).astype(F32)}


@pytest.mark.parametrize("act", [None, "Relu", "Clip"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_conv_group_fuses_with_activation(act, per_channel):
    rng = np.random.default_rng(1)
    w = rand(rng, S8, (4, 3, 3, 3), -64, 63)
    ws = rng.uniform(0.005, 0.02, 4).astype(F32) if per_channel else np.float32(0.01)
    b = rng.integers(-2000, 2000, 4).astype(np.int32)
    bs = (np.float32(0.05) * ws).astype(F32)
    conv_out = "cf" if act else "yf"
    conv = [node("Conv", ["xf", "wf", "bf"], [conv_out], pads=[1, 1, 1, 1])]
    acts = []
    if act == "Relu":
        acts = [node("Relu", ["cf"], ["yf"])]
    elif act == "Clip":
        acts = [node("Clip", ["cf", "lo", "hi"], ["yf"])]
    parts = [q_in(), weight("w", w, ws, axis=0 if per_channel else None),
             ([node("DequantizeLinear", ["b", "b_s"], ["bf"], **({"axis": 0} if per_channel else {}))],
              [init("b", b), init("b_s", bs)]),
             (conv + acts, [init("lo", 0.0, F32), init("hi", 6.0, F32)] if act == "Clip" else []),
             q_out(zp=20)]
    m = build(parts, {"x": (F32, (1, 3, 6, 6))})
    q = assert_close_to_ort(m, xfeed((1, 3, 6, 6)))
    assert ops_of(q) == ["quantize", "transpose", "conv2d", "transpose"]
    conv2d = next(n for n in q.graph.nodes if n.op == "conv2d")
    if act:
        assert conv2d.attrs["act_min"] == 20
    if act == "Clip":
        assert conv2d.attrs["act_max"] == 80           # Q(6.0) = 6 / 0.1 + 20


def test_quantize_after_data_movement_still_fuses():
    """Conv -> DepthToSpace -> Relu -> Q (ESPCN's last layer): Q commutes with
    data movement, so the Conv is an integer conv2d with Q's parameters."""
    rng = np.random.default_rng(11)
    w = rand(rng, S8, (8, 2, 3, 3), -64, 63)
    parts = [q_in(), weight("w", w, np.float32(0.01)),
             ([node("Conv", ["xf", "wf"], ["c"], pads=[1, 1, 1, 1]), node("DepthToSpace", ["c"], ["d"], blocksize=2),
               node("Relu", ["d"], ["yf"])], []), q_out(zp=30)]
    m = build(parts, {"x": (F32, (1, 2, 4, 4))})
    q = assert_close_to_ort(m, xfeed((1, 2, 4, 4)))
    assert ops_of(q)[:3] == ["quantize", "transpose", "conv2d"] and "clamp" in ops_of(q)


def test_matmul_and_gemm_groups():
    rng = np.random.default_rng(2)
    w1 = rand(rng, S8, (8, 6), -64, 63)
    w2 = rand(rng, S8, (5, 6), -64, 63)                   # Gemm transB: [N, K]
    b2 = rng.integers(-500, 500, 5).astype(np.int32)
    parts = [q_in(), weight("w1", w1, rng.uniform(0.01, 0.02, 6).astype(F32), axis=1),
             ([node("MatMul", ["xf", "w1f"], ["mf"]), node("QuantizeLinear", ["mf", "m_s", "m_z"], ["mq"]),
               node("DequantizeLinear", ["mq", "m_s", "m_z"], ["mdq"])], [init("m_s", 0.2, F32), init("m_z", 128, U8)]),
             weight("w2", w2, np.float32(0.015)),
             ([node("DequantizeLinear", ["b2", "b2_s"], ["b2f"]),
               node("Gemm", ["mdq", "w2f", "b2f"], ["yf"], transB=1)],
              [init("b2", b2), init("b2_s", np.float32(0.2) * np.float32(0.015))]),
             q_out()]
    m = build(parts, {"x": (F32, (3, 8))})
    q = assert_close_to_ort(m, xfeed((3, 8)), max_steps=2)
    assert ops_of(q) == ["quantize", "matmul", "matmul"]
    assert q.graph.tensors["mq"].dtype == "uint8"           # the QuantizeLinear output names the matmul result


def test_matmul_of_two_activations():
    parts = [q_in("a"), q_in("b", zp=120), ([node("MatMul", ["af", "bf"], ["yf"])], []), q_out(scale=0.5)]
    m = build(parts, {"a": (F32, (2, 3, 4)), "b": (F32, (2, 4, 5))})
    feeds = {**xfeed((2, 3, 4), "a"), **xfeed((2, 4, 5), "b", seed=1)}
    # u8 x u8: ORT is exact here (no pairwise int16 saturation)
    assert ops_of(assert_close_to_ort(m, feeds)) == ["quantize", "quantize", "matmul"]


@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_binary_groups_with_broadcast_constant(op):
    rng = np.random.default_rng(3)
    c = rand(rng, U8, (3, 1, 1))
    parts = [q_in(), weight("c", c, np.float32(0.04), zp=np.uint8(128)),
             ([node(op, ["xf", "cf"], ["yf"])], []), q_out(scale=0.1 if op == "Add" else 0.2)]
    m = build(parts, {"x": (F32, (2, 3, 4, 4))})
    assert ops_of(assert_close_to_ort(m, xfeed((2, 3, 4, 4)))) == ["quantize", op.lower()]


def test_add_after_convs_keeps_nhwc():
    rng = np.random.default_rng(4)
    w = rand(rng, S8, (3, 3, 1, 1), -64, 63)
    parts = [q_in(), weight("w", w, np.float32(0.02)),
             ([node("Conv", ["xf", "wf"], ["c1"]), node("QuantizeLinear", ["c1", "c_s", "c_z"], ["c1q"]),
               node("DequantizeLinear", ["c1q", "c_s", "c_z"], ["c1f"]),
               node("Conv", ["c1f", "wf"], ["c2"]), node("QuantizeLinear", ["c2", "c_s", "c_z"], ["c2q"]),
               node("DequantizeLinear", ["c2q", "c_s", "c_z"], ["c2f"]),
               node("Add", ["c1f", "c2f"], ["yf"])], [init("c_s", 0.05, F32), init("c_z", 128, U8)]),
             q_out()]
    m = build(parts, {"x": (F32, (1, 3, 5, 5))})
    q = assert_close_to_ort(m, xfeed((1, 3, 5, 5)), max_steps=2)
    assert ops_of(q) == ["quantize", "transpose", "conv2d", "conv2d", "add", "transpose"]


@pytest.mark.parametrize("op,attrs,qop", [
    ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}, "avg_pool2d"),
    ("GlobalAveragePool", {}, "mean"), ("ReduceMean", {"axes": [1, 3], "keepdims": 0}, "mean"),
    ("ReduceMean", {"axes": [-1]}, "mean"), ("GlobalMaxPool", {}, "max_pool2d"),
    ("Sigmoid", {}, "table"), ("LeakyRelu", {"alpha": 0.2}, "table")])
def test_unary_groups(op, attrs, qop):
    parts = [q_in(), ([node(op, ["xf"], ["yf"], **attrs)], []), q_out(scale=0.01 if op == "Sigmoid" else 0.04, zp=0)]
    m = build(parts, {"x": (F32, (1, 2, 4, 4))})
    assert qop in ops_of(assert_close_to_ort(m, xfeed((1, 2, 4, 4))))


def test_concat_group_requantizes():
    parts = [q_in("a"), q_in("b", scale=0.08, zp=100), ([node("Concat", ["af", "bf"], ["yf"], axis=1)], []),
             q_out(scale=0.07, zp=110)]
    m = build(parts, {"a": (F32, (1, 2, 3)), "b": (F32, (1, 4, 3))})
    feeds = {**xfeed((1, 2, 3), "a"), **xfeed((1, 4, 3), "b", 1)}
    assert "concat" in ops_of(assert_close_to_ort(m, feeds))


@pytest.mark.parametrize("act", ["Relu", "Clip"])
def test_activation_of_a_float_input_before_quantize(act):
    """Q(relu(x)) = max(Q(x), Q(0)): quantize, then clamp (Q is monotone)."""
    nodes = [node(act, ["x", "lo", "hi"] if act == "Clip" else ["x"], ["r"]), node("QuantizeLinear", ["r", "s", "z"], ["y"])]
    inits = [init("s", 0.05, F32), init("z", 100, U8), init("lo", -0.51, F32), init("hi", 2.0, F32)]
    m = make_model(nodes, {"x": (F32, (3, 8))}, {"y": (U8, (3, 8))}, inits)
    assert ops_of(assert_close_to_ort(m, xfeed((3, 8)), max_steps=0)) == ["quantize", "clamp"]


def test_opset10_without_axis():
    parts = [q_in(), ([node("Relu", ["xf"], ["yf"])], []), q_out()]
    m = build(parts, {"x": (F32, (2, 5))}, opset=10)
    assert_close_to_ort(m, xfeed((2, 5)), max_steps=0)


def test_int4_weights_opset21():
    rng = np.random.default_rng(5)
    w = rng.integers(-8, 8, (4, 3, 3, 3)).astype(np.int8)
    from onnx import TensorProto, helper
    wi = helper.make_tensor("w", TensorProto.INT4, w.shape, w.flatten().tolist())
    scales = rng.uniform(0.02, 0.05, 4).astype(F32)
    zi = helper.make_tensor("w_z", TensorProto.INT4, [4], [0, 0, 0, 0])
    parts = [q_in(dtype=S8, zp=0), ([node("DequantizeLinear", ["w", "w_s", "w_z"], ["wf"], axis=0),
                                     node("Conv", ["xf", "wf"], ["yf"])], [wi, init("w_s", scales), zi]),
             q_out(scale=0.2, zp=0, dtype=S8)]
    m = build(parts, {"x": (F32, (1, 3, 5, 5))}, out_dtype=S8, opset=21)
    q = assert_close_to_ort(m, xfeed((1, 3, 5, 5)))
    wt = next(t for t in q.graph.tensors.values() if t.dtype == "int4")
    assert wt.quant.axis == 0 and np.array_equal(wt.data, w.transpose(0, 2, 3, 1))


def test_int16_add_opset21():
    parts = [q_in("a", scale=0.001, zp=0, dtype=I16), q_in("b", scale=0.002, zp=5, dtype=I16),
             ([node("Add", ["af", "bf"], ["yf"])], []), q_out(scale=0.003, zp=-7, dtype=I16)]
    m = build(parts, {"a": (F32, (3, 4)), "b": (F32, (3, 4))}, out_dtype=I16, opset=21)
    feeds = {**xfeed((3, 4), "a"), **xfeed((3, 4), "b", 1)}
    assert ops_of(assert_close_to_ort(m, feeds)) == ["quantize", "quantize", "add"]


def test_blocked_quantize_dequantize_opset21():
    from onnx import helper
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], axis=1, block_size=4),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["y"], axis=1, block_size=4)]
    rng = np.random.default_rng(6)
    s = rng.uniform(0.01, 0.05, (2, 3)).astype(F32)
    z = rng.integers(-10, 10, (2, 3)).astype(S8)
    m = make_model(nodes, {"x": (F32, (2, 10))}, {"y": (F32, (2, 10))}, [init("s", s), init("z", z)], opset=21)
    q = assert_close_to_ort(m, xfeed((2, 10)), max_steps=0)
    assert q.graph.tensors["xq"].quant.block_size == 4


def test_weights_quantized_by_quantize_linear_fold():
    """QCDQ-style weights (QuantizeLinear of a float initializer, then
    DequantizeLinear) fold into a quantized constant."""
    rng = np.random.default_rng(7)
    wf = rng.uniform(-1, 1, (6, 4)).astype(F32)
    parts = [q_in(), ([node("QuantizeLinear", ["w", "w_s", "w_z"], ["wq"]),
                       node("DequantizeLinear", ["wq", "w_s", "w_z"], ["wf"]),
                       node("MatMul", ["xf", "wf"], ["yf"])],
                      [init("w", wf), init("w_s", 0.01, F32), init("w_z", 0, S8)]), q_out()]
    m = build(parts, {"x": (F32, (2, 6))})
    q = assert_close_to_ort(m, xfeed((2, 6)))
    assert ops_of(q) == ["quantize", "matmul"]


def test_float_op_without_quantize_runs_in_float32():
    """No QuantizeLinear after the Conv: it and the Softmax are float32
    operators (tests/onnx_import/test_float_ops.py has the details)."""
    rng = np.random.default_rng(8)
    parts = [q_in(), weight("w", rand(rng, S8, (2, 3, 1, 1)), np.float32(0.01)),
             ([node("Conv", ["xf", "wf"], ["yf"], name="conv_float"), node("Softmax", ["yf"], ["y"], name="sm")], [])]
    m = build(parts, {"x": (F32, (1, 3, 2, 2))}, out_dtype=F32)
    q = qnnref.onnx.import_onnx(m, profile="qnnref")
    assert {"float_conv2d", "float_softmax"} <= set(ops_of(q))
