"""Data movement on quantized values: on integers (QOperator graphs) and on
DequantizeLinear outputs (QDQ graphs), where ONNX Runtime drops the Q/DQ
pairs around them. Moving values is exact: qnnref must agree bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from onnx_helpers import assert_close_to_ort, init, make_model, node, ops_of, rand

U8, S8, F32 = np.uint8, np.int8, np.float32


def qdq_wrap(op_nodes, x_shape, out_shape, extra_inits=(), scale=0.05, zp=128, out_scale=None, out_zp=None,
             opset=13):
    """float x -> Q -> DQ -> op_nodes (reading "xf", writing "yf") -> Q -> DQ -> float y."""
    out_scale = scale if out_scale is None else out_scale
    out_zp = zp if out_zp is None else out_zp
    inits = [init("s", scale, F32), init("z", zp, U8), init("os", out_scale, F32), init("oz", out_zp, U8),
             *extra_inits]
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["xq"]), node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             *op_nodes,
             node("QuantizeLinear", ["yf", "os", "oz"], ["yq"]), node("DequantizeLinear", ["yq", "os", "oz"], ["y"])]
    return make_model(nodes, {"x": (F32, x_shape)}, {"y": (F32, out_shape)}, inits, opset=opset)


def feed(shape, seed=0):
    return {"x": np.random.default_rng(seed).uniform(-6, 6, shape).astype(F32)}


CASES = {
    "reshape": ([node("Reshape", ["xf", "shape"], ["yf"])], (2, 3, 4), (4, 6), [init("shape", [4, -1], np.int64)]),
    "reshape_zero": ([node("Reshape", ["xf", "shape"], ["yf"])], (2, 3, 4), (2, 12), [init("shape", [0, -1], np.int64)]),
    "flatten": ([node("Flatten", ["xf"], ["yf"], axis=2)], (2, 3, 4), (6, 4), []),
    "transpose": ([node("Transpose", ["xf"], ["yf"], perm=[2, 0, 1])], (2, 3, 4), (4, 2, 3), []),
    "squeeze": ([node("Squeeze", ["xf", "axes"], ["yf"])], (2, 1, 4), (2, 4), [init("axes", [1], np.int64)]),
    "unsqueeze": ([node("Unsqueeze", ["xf", "axes"], ["yf"])], (2, 4), (1, 2, 4, 1),
                  [init("axes", [0, 3], np.int64)]),
    "identity": ([node("Identity", ["xf"], ["yf"])], (3, 5), (3, 5), []),
    "maxpool": ([node("MaxPool", ["xf"], ["yf"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
                (1, 2, 7, 7), (1, 2, 4, 4), []),
    "maxpool_ceil": ([node("MaxPool", ["xf"], ["yf"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)],
                     (1, 2, 7, 7), (1, 2, 4, 4), []),
    "gather": ([node("Gather", ["xf", "idx"], ["yf"], axis=1)], (2, 5, 3), (2, 2, 2, 3),
               [init("idx", [[0, 4], [-1, 2]], np.int64)]),
    "pad_zero": ([node("Pad", ["xf", "pads"], ["yf"])], (2, 3), (3, 6), [init("pads", [1, 2, 0, 1], np.int64)]),
    "pad_edge": ([node("Pad", ["xf", "pads"], ["yf"], mode="edge")], (2, 3), (3, 6),
                 [init("pads", [1, 2, 0, 1], np.int64)]),
    "relu": ([node("Relu", ["xf"], ["yf"])], (4, 5), (4, 5), []),
    "clip_exact": ([node("Clip", ["xf", "lo", "hi"], ["yf"])], (4, 5), (4, 5),
                   [init("lo", -1.0, F32), init("hi", 3.0, F32)]),
    "clip_inexact": ([node("Clip", ["xf", "lo", "hi"], ["yf"])], (4, 5), (4, 5),
                     [init("lo", -1.01, F32), init("hi", 2.99, F32)]),
    "depth_to_space_dcr": ([node("DepthToSpace", ["xf"], ["yf"], blocksize=2)], (1, 8, 2, 3), (1, 2, 4, 6), []),
    "depth_to_space_crd": ([node("DepthToSpace", ["xf"], ["yf"], blocksize=2, mode="CRD")], (1, 8, 2, 3),
                           (1, 2, 4, 6), []),
    "slice": ([node("Slice", ["xf", "st", "en", "ax", "sp"], ["yf"])], (2, 5, 6), (2, 2, 3),
              [init("st", [1, -1], np.int64), init("en", [4, 0], np.int64), init("ax", [1, 2], np.int64),
               init("sp", [2, -2], np.int64)]),
    "split": ([node("Split", ["xf", "sz"], ["yf", "unused"], axis=1)], (2, 5), (2, 2), [init("sz", [2, 3], np.int64)]),
    "resize_asymmetric_floor": ([node("Resize", ["xf", "", "sc"], ["yf"], mode="nearest",
                                      coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
                                (1, 2, 3, 4), (1, 2, 6, 8), [init("sc", [1, 1, 2, 2], F32)]),
    "resize_half_pixel_sizes": ([node("Resize", ["xf", "", "", "sz"], ["yf"], mode="nearest")],
                                (1, 2, 3, 4), (1, 2, 5, 7), [init("sz", [1, 2, 5, 7], np.int64)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_qdq_movement_is_exact(case):
    nodes, x_shape, y_shape, inits = CASES[case]
    m = qdq_wrap(nodes, x_shape, y_shape, inits)
    q = assert_close_to_ort(m, feed(x_shape), max_steps=0)
    ops = ops_of(q)
    assert ops[0] == "quantize" and ops[-1] == "dequantize" and "requantize" not in ops


@pytest.mark.parametrize("case", ["reshape", "transpose", "maxpool", "gather"])
def test_qdq_movement_then_other_parameters(case):
    """DQ -> op -> Q with other parameters: dequantize + quantize, as ONNX defines it."""
    nodes, x_shape, y_shape, inits = CASES[case]
    m = qdq_wrap(nodes, x_shape, y_shape, inits, out_scale=0.07, out_zp=100)
    q = assert_close_to_ort(m, feed(x_shape, 1), max_steps=0)
    assert ops_of(q).count("quantize") == 2


def test_resize_opset10():
    nodes = [node("Resize", ["xf", "sc"], ["yf"], mode="nearest")]
    m = qdq_wrap(nodes, (1, 2, 3, 3), (1, 2, 6, 9), [init("sc", [1, 1, 2, 3], F32)], opset=10)
    assert ops_of(assert_close_to_ort(m, feed((1, 2, 3, 3)), max_steps=0)).count("gather") == 2


def test_transpose_only_relabels():
    """Transposes cancel: NCHW -> NHWC -> NCHW emits nothing."""
    nodes = [node("Transpose", ["xf"], ["t"], perm=[0, 2, 3, 1]), node("Transpose", ["t"], ["yf"], perm=[0, 3, 1, 2])]
    q = assert_close_to_ort(qdq_wrap(nodes, (1, 2, 3, 4), (1, 2, 3, 4)), feed((1, 2, 3, 4)), max_steps=0)
    assert ops_of(q) == ["quantize", "dequantize"]


def test_one_tensor_seen_in_two_layouts():
    """Two Transposes of one tensor are two different views of it."""
    inits = [init("s", 0.05, F32), init("z", 128, U8)]
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             node("Transpose", ["xq"], ["a"], perm=[1, 2, 0]), node("Transpose", ["xq"], ["b"], perm=[2, 0, 1])]
    m = make_model(nodes, {"x": (F32, (2, 3, 4))}, {"a": (U8, (3, 4, 2)), "b": (U8, (4, 2, 3))}, inits)
    q = assert_close_to_ort(m, feed((2, 3, 4)), max_steps=0)
    assert ops_of(q) == ["quantize", "transpose", "transpose"]


def test_integer_movement_in_qoperator_graphs():
    """Reshape / Transpose / Concat / Gather on uint8 tensors between QLinear
    operators; the integer input's quantization comes from its consumer."""
    rng = np.random.default_rng(3)
    inits = [init("s", 0.05, F32), init("z", 128, U8), init("shape", [2, 12], np.int64),
             init("idx", [3, 0], np.int64), init("b", rand(rng, U8, (2, 12)))]
    nodes = [node("Reshape", ["x", "shape"], ["r"]),
             node("Concat", ["r", "b"], ["c"], axis=0),
             node("Transpose", ["c"], ["t"], perm=[1, 0]),
             node("Gather", ["t", "idx"], ["g"], axis=0),
             node("DequantizeLinear", ["g", "s", "z"], ["y"])]
    m = make_model(nodes, {"x": (U8, (2, 3, 4))}, {"y": (F32, (2, 4)), "t": (U8, (12, 4))}, inits, opset=14)
    q = assert_close_to_ort(m, {"x": rand(rng, U8, (2, 3, 4))}, max_steps=0)
    assert q.graph.tensors["x"].quant is not None


def test_integer_relu_and_clip_on_int8():
    rng = np.random.default_rng(4)
    inits = [init("s", 0.05, F32), init("z", 3, S8), init("lo", -5, S8), init("hi", 90, S8)]
    nodes = [node("Relu", ["x"], ["r"]), node("Clip", ["x", "lo", "hi"], ["c"]),
             node("DequantizeLinear", ["r", "s", "z"], ["y1"]), node("DequantizeLinear", ["c", "s", "z"], ["y2"])]
    m = make_model(nodes, {"x": (S8, (3, 7))}, {"y1": (F32, (3, 7)), "y2": (F32, (3, 7))}, inits, opset=14)
    q = assert_close_to_ort(m, {"x": rand(rng, S8, (3, 7))}, max_steps=0)
    assert ops_of(q).count("clamp") == 2


def test_shape_subgraph_is_folded():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape (a PyTorch flatten)
    folds into one static reshape."""
    inits = [init("zero", 0, np.int64), init("minus1", [-1], np.int64), init("ax", [0], np.int64)]
    nodes = [node("Shape", ["xf"], ["shp"]), node("Gather", ["shp", "zero"], ["n"]),
             node("Unsqueeze", ["n", "ax"], ["n1"]), node("Concat", ["n1", "minus1"], ["target"], axis=0),
             node("Reshape", ["xf", "target"], ["yf"])]
    q = assert_close_to_ort(qdq_wrap(nodes, (2, 3, 2, 2), (2, 12), inits), feed((2, 3, 2, 2)), max_steps=0)
    assert ops_of(q) == ["quantize", "reshape", "dequantize"]
