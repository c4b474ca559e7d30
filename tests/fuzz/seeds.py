"""Seed models for the model fuzzers: together they use every registered
operator and most attributes (tests/fuzz/test_model_fuzz.py checks this)."""
from __future__ import annotations

import numpy as np
from qnnref import GraphBuilder
from qnnref.graph import Graph, Node, Quant, TensorInfo
from qnnref.ops.table import make_table


def f32(v):
    return np.asarray(v, np.float32)



# ---------------------------------------------------------------------------
# Seed models: together they use every operator and most attributes
# ---------------------------------------------------------------------------

def seed_cnn() -> Graph:
    """conv2d (groups, strides, dilations, asymmetric pads, per-channel, bias),
    max_pool2d, avg_pool2d (both paths), mean, matmul (int4 per-column), softmax."""
    rng = np.random.default_rng(1)
    b = GraphBuilder(description="cnn seed")
    x = b.input("x", "int8", (1, 6, 6, 4), scale=0.05, zero_point=-3)
    w = b.constant("w", rng.integers(-20, 20, (6, 3, 2, 2)).astype(np.int8),
                   scale=f32([0.01, 0.02, 0.015, 0.03, 0.01, 0.02]), axis=0)
    bias = b.constant("bias", rng.integers(-100, 100, 6).astype(np.int32))
    y = b.node("conv2d", [x, w, bias], {"strides": [2, 1], "dilations": [1, 2], "pads": [1, 2, 0, 1],
                                        "groups": 2, "act_min": -100}, scale=0.1, zero_point=2, name="conv")
    y = b.node("max_pool2d", [y], {"kernel": [2, 2], "strides": [1, 2], "pads": [0, 1, 1, 0]},
               scale=0.1, zero_point=2, name="maxpool")
    y = b.node("avg_pool2d", [y], {"kernel": [2, 3], "pads": [1, 1, 0, 1], "count_include_pad": True},
               scale=0.07, zero_point=0, name="avgpool")
    y = b.node("avg_pool2d", [y], {"kernel": [2, 2], "strides": [2, 1], "rounding": "half_to_even"},
               scale=0.07, zero_point=0, name="avgpool_same")
    y = b.node("mean", [y], {"axes": [1, 2], "keepdims": False}, scale=0.05, zero_point=1, name="gap")
    w4 = b.constant("w4", rng.integers(-8, 8, (6, 5)).astype(np.int8), dtype="int4",
                    scale=f32([0.1, 0.2, 0.1, 0.3, 0.05]), axis=1)
    b5 = b.constant("b5", rng.integers(-50, 50, 5).astype(np.int32))
    y = b.node("matmul", [y, w4, b5], {"act_min": -120, "act_max": 120}, scale=0.2, zero_point=0, name="fc")
    y = b.node("softmax", [y], {"beta": 0.5}, scale=1 / 256, zero_point=-128, name="softmax")
    b.output(y)
    return b.graph()


def seed_elementwise() -> Graph:
    """add and mul (broadcasting), concat (differing scales), clamp, pad (all
    modes), transpose, reshape, table, gather (constant and input indices)."""
    b = GraphBuilder(description="elementwise seed")
    a = b.input("a", "int8", (2, 1, 3), scale=0.1, zero_point=1)
    c = b.input("c", "int8", (1, 4, 3), scale=0.2, zero_point=-2)
    s = b.node("add", [a, c], {"act_min": -100}, scale=0.25, zero_point=0, name="add")
    m = b.node("mul", [a, c], scale=0.05, zero_point=3, name="mul")
    y = b.node("concat", [s, m, s], {"axis": -1}, scale=0.3, zero_point=0, name="concat")
    y = b.node("clamp", [y], {"min": -50, "max": 100}, scale=0.3, zero_point=0, name="clamp")
    y = b.node("pad", [y], {"pads": [0, 1, 1, 0, 0, 1], "mode": "edge"}, scale=0.3, zero_point=0, name="pad_edge")
    y = b.node("pad", [y], {"pads": [1, 0, 2, 0, 2, 0], "mode": "reflect"}, scale=0.3, zero_point=0,
               name="pad_reflect")
    y = b.node("pad", [y], {"pads": [0, 0, 1, 1, 0, 0], "value": 5}, scale=0.3, zero_point=0, name="pad_const")
    t = b.node("transpose", [y], {"perm": [2, 0, 1]}, scale=0.3, zero_point=0, name="transpose")
    r = b.node("reshape", [t], {"shape": [-1, 7]}, scale=0.3, zero_point=0, name="reshape")
    lut = b.constant("lut", make_table("sigmoid", "int8", 0.3, 0, "int8", 1 / 256, -128))
    r = b.node("table", [r, lut], scale=1 / 256, zero_point=-128, name="table")
    idx = b.constant("idx", np.array([[0, 2], [1, -1]], np.int32))
    g1 = b.node("gather", [t, idx], {"axis": 1}, scale=0.3, zero_point=0, name="gather_const")
    i = b.input("i", "int64", (3,))
    g2 = b.node("gather", [r, i], {"axis": 0}, scale=1 / 256, zero_point=-128, name="gather_input")
    b.output(g1, g2)
    return b.graph()


def seed_quantize() -> Graph:
    """quantize / dequantize per-tensor, per-axis and blocked, requantize
    per-axis and from int32, a quantize recipe override, float reshape and
    transpose, unquantized concat, dynamic_quantize."""
    b = GraphBuilder(description="quantize seed")
    f = b.input("f", "float32", (2, 4, 6))
    q1 = b.node("quantize", [f], {"dtype": "int8"}, scale=0.05, zero_point=3, name="q_tensor")
    q2 = b.node("quantize", [f], {"dtype": "int8"}, scale=f32([0.01, 0.02, 0.04, 0.08]), axis=1, name="q_axis")
    b.nodes[-1].attrs["quantize_recipe"] = {"method": "reciprocal", "rounding": "half_away_from_zero"}
    q3 = b.node("quantize", [f], {"dtype": "uint8"}, scale=0.02, zero_point=128, name="q_u8")
    d1 = b.node("dequantize", [q1], name="dq_tensor")
    d2 = b.node("dequantize", [q2], name="dq_axis")
    r2 = b.node("requantize", [q2], {"dtype": "int16"}, scale=f32([0.001, 0.002, 0.004, 0.008]), axis=1,
                name="rq_axis")
    r3 = b.node("requantize", [q3], {"dtype": "int4"}, scale=0.5, zero_point=-1, name="rq_int4")
    acc = b.constant("acc", np.array([[-70000, 5, 123456]], np.int32), scale=0.001)
    r4 = b.node("requantize", [acc], {"dtype": "int8"}, scale=0.5, zero_point=0, name="rq_int32")
    r4d = b.node("dequantize", [r4], name="dq_int32")
    cat = b.node("concat", [d1, d2], {"axis": 0}, name="concat_float")
    tr = b.node("transpose", [cat], {"perm": [1, 2, 0]}, name="transpose_float")
    rs = b.node("reshape", [tr], {"shape": [24, -1]}, name="reshape_float")
    dy, ds, dz = b.node("dynamic_quantize", [f], name="q_dynamic")
    b.output(rs, r2, r3, r4d, dy, ds, dz)
    # blocked int4 quantize -> dequantize, float16 scales
    g = b.graph()
    scale4 = np.array(np.random.default_rng(2).uniform(0.05, 0.2, (2, 4, 2)), np.float16)
    zp4 = np.random.default_rng(3).integers(-3, 3, (2, 4, 2)).astype(np.int8)
    g.tensors["q4"] = TensorInfo("q4", "int4", (2, 4, 6), Quant(scale4, zp4, axis=2, block_size=4))
    g.tensors["d4"] = TensorInfo("d4", "float32", (2, 4, 6))
    g.nodes += [Node("q_blocked", "quantize", ["f"], ["q4"], {"dtype": "int4"}),
                Node("dq_blocked", "dequantize", ["q4"], ["d4"], {})]
    g.outputs.append("d4")
    return g


def seed_double_round() -> Graph:
    """Profile fixed-point-double-round: depthwise uint8 conv2d to int16,
    requantize, add (uint8), mean keepdims, a recipe override."""
    rng = np.random.default_rng(4)
    b = GraphBuilder(profile="fixed-point-double-round", description="double-round seed")
    x = b.input("x", "uint8", (1, 5, 5, 3), scale=0.02, zero_point=128)
    w = b.constant("w", rng.integers(100, 156, (3, 3, 3, 1)).astype(np.uint8), scale=0.01, zero_point=128)
    y = b.node("conv2d", [x, w], {"groups": 3, "pads": [1, 1, 1, 1], "dtype": "int16"},
               scale=0.001, zero_point=0, name="dwconv")
    y = b.node("requantize", [y], {"dtype": "uint8"}, scale=0.03, zero_point=120, name="rq")
    y2 = b.node("add", [y, x], {"recipe": {"kind": "fixed_point", "rounding": "half_to_even",
                                           "double_round": "none"}},
                scale=0.04, zero_point=100, name="add_u8")
    y3 = b.node("mean", [y2], {"axes": [-1]}, scale=0.04, zero_point=100, name="mean_c")
    b.output(y3)
    return b.graph()


def seed_float_recipe() -> Graph:
    """Profile float32-half-to-even: batched matmul, int16 add, mul, concat
    with equal quantization (the copy path), avg_pool2d, max_pool2d per-axis."""
    rng = np.random.default_rng(5)
    b = GraphBuilder(profile="float32-half-to-even", description="float seed")
    a = b.input("a", "int8", (2, 3, 4), scale=0.05, zero_point=0)
    w = b.constant("w", rng.integers(-50, 50, (4, 5)).astype(np.int8), scale=0.02)
    y = b.node("matmul", [a, w], {"dtype": "int16"}, scale=0.001, zero_point=0, name="bmm")
    h = b.input("h", "int16", (1, 1, 5), scale=0.002, zero_point=0)
    y = b.node("add", [y, h], scale=0.003, zero_point=0, name="add_i16")
    y = b.node("mul", [y, y], scale=0.0001, zero_point=0, name="mul_i16")
    p = b.input("p", "int8", (1, 4, 4, 2), scale=f32([0.1, 0.2]), axis=3)
    mp = b.node("max_pool2d", [p], {"kernel": [3, 3], "strides": [1, 1], "dilations": [1, 1],
                                    "pads": [1, 1, 1, 1], "act_max": 100},
                scale=f32([0.1, 0.2]), axis=3, name="maxpool_axis")
    q = b.input("q", "int8", (1, 4, 4, 2), scale=0.1, zero_point=-5)
    ap = b.node("avg_pool2d", [q], {"kernel": [2, 2], "dilations": [2, 1], "pads": [0, 0, 1, 1]},
                scale=0.05, zero_point=0, name="avgpool_dil")
    cat = b.node("concat", [q, q], {"axis": 3}, scale=0.1, zero_point=-5, name="concat_copy")
    b.output(y, mp, ap, cat)
    return b.graph()


def seed_float_ops() -> Graph:
    """The float32 operators, as an imported ONNX graph chains them:
    dequantize -> float_conv2d (bias, blocks) -> float_elementwise (mul, add,
    relu, clip, sigmoid, sub of the float_mean) -> float_matmul (Gemm's bias first) -> float_softmax
    -> quantize."""
    rng = np.random.default_rng(6)
    b = GraphBuilder(profile="qnnref", description="float seed")
    x = b.input("xq", "uint8", (1, 5, 5, 3), scale=0.05, zero_point=128)
    xf = b.node("dequantize", [x], name="dq")
    w = b.constant("fw", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    y = b.node("float_conv2d", [xf, w, b.constant("fb", f32([0.5, -1, 0, 2]))],
               {"pads": [1, 1, 1, 1], "strides": [2, 1], "k_block": 7}, name="fconv")
    y = b.node("float_elementwise", [y, b.constant("fs", f32([1, 2, 3, 4]))], {"function": "mul"}, name="fmul")
    y = b.node("float_elementwise", [y], {"function": "clip", "min": -3.0, "max": 6.0}, name="fclip")
    y = b.node("float_elementwise", [y, y], {"function": "add"}, name="fadd")
    y = b.node("float_elementwise", [y], {"function": "sigmoid"}, name="fsig")
    m = b.node("float_mean", [y], {"axes": [1, 2], "keepdims": True}, name="fmean")
    y = b.node("float_elementwise", [y, m], {"function": "sub"}, name="fcenter")
    y = b.node("reshape", [y], {"shape": [3, 20]}, name="flat")
    y = b.node("float_matmul", [y, b.constant("fm", rng.standard_normal((20, 6)).astype(np.float32)),
                                b.constant("fc", rng.standard_normal(6).astype(np.float32))],
               {"k_block": 8, "bias_first": True}, name="fgemm")
    y = b.node("float_softmax", [y], {"axis": 1}, name="fsoftmax")
    y = b.node("float_elementwise", [y], {"function": "relu"}, name="frelu")
    b.output(b.node("quantize", [y], {"dtype": "uint8"}, scale=1 / 256, zero_point=0, name="fq"))
    return b.graph()


SEEDS = {f.__name__.removeprefix("seed_"): f for f in
         (seed_cnn, seed_elementwise, seed_quantize, seed_double_round, seed_float_recipe, seed_float_ops)}
SEED_GRAPHS = {name: f() for name, f in SEEDS.items()}
