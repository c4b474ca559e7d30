"""Seed models of the ONNX importer fuzzers: small float CNNs and an MLP,
built with onnx.helper and quantized by ONNX Runtime's own quantizer
(``quantize_static``, QDQ and QOperator; ``quantize_dynamic`` for the MLP).

Used by tests/fuzz/test_onnx_fuzz.py and by tools/fuzz.py. Needs onnx and
onnxruntime; importing this module without them raises ImportError (the
tests skip with the reason). Quantizing takes a few seconds, so the seeds
are built once per process (:func:`seed_models`) and can be cached on disk
(:func:`seed_models` with ``cache_dir``).
"""
from __future__ import annotations

import functools
import os
import pathlib
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def _model(nodes, inputs, outputs, inits, opset=13):
    g = helper.make_graph(nodes, "seed", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                                          for n, s in inputs.items()],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def float_cnn(seed: int = 0) -> onnx.ModelProto:
    """Conv(stride 2, pads) + Relu, depthwise Conv + Clip, MaxPool, residual
    Add, Concat, AveragePool, GlobalAveragePool, Flatten, Gemm; input
    "x" [1, 2, 8, 8]."""
    rng = np.random.default_rng(seed)

    def w(*shape, s=0.4):
        return rng.normal(0, s, shape).astype(np.float32)
    inits = [_init("w1", w(4, 2, 3, 3)), _init("b1", w(4, s=0.1)), _init("wd", w(4, 1, 3, 3)),
             _init("bd", w(4, s=0.1)), _init("lo", np.float32(0)), _init("hi", np.float32(6)),
             _init("w2", w(3, 8, 1, 1)), _init("b2", w(3, s=0.1)), _init("fc", w(5, 3)), _init("fcb", w(5, s=0.1))]
    n = helper.make_node
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[2, 2]),
             n("Relu", ["c1"], ["r1"], name="relu1"),
             n("Conv", ["r1", "wd", "bd"], ["cd"], name="dw", pads=[1, 1, 1, 1], group=4),
             n("Clip", ["cd", "lo", "hi"], ["r2"], name="clip"),
             n("MaxPool", ["r2"], ["mp"], name="pool", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             n("Add", ["mp", "r1"], ["res"], name="add"),
             n("Concat", ["res", "r1"], ["cat"], name="concat", axis=1),
             n("Conv", ["cat", "w2", "b2"], ["c2"], name="conv2"),
             n("AveragePool", ["c2"], ["ap"], name="avg", kernel_shape=[2, 2], strides=[2, 2]),
             n("GlobalAveragePool", ["ap"], ["gap"], name="gap"),
             n("Flatten", ["gap"], ["flat"], name="flatten"),
             n("Gemm", ["flat", "fc", "fcb"], ["y"], name="fc", transB=1)]
    return _model(nodes, {"x": [1, 2, 8, 8]}, {"y": [1, 5]}, inits)


def float_cnn2(seed: int = 1) -> onnx.ModelProto:
    """Conv + Sigmoid * x (SiLU), Resize (nearest), Transpose, Reshape, MatMul;
    input "x" [1, 3, 4, 4]."""
    rng = np.random.default_rng(seed)

    def w(*shape, s=0.4):
        return rng.normal(0, s, shape).astype(np.float32)
    inits = [_init("w1", w(4, 3, 3, 3)), _init("b1", w(4, s=0.1)), _init("scales", np.array([1, 1, 2, 2], np.float32)),
             _init("shape", np.array([1, -1], np.int64)), _init("fc", w(64 * 4 // 4, 6)),
             _init("w2", w(4, 4, 1, 1)), _init("b2", w(4, s=0.1))]
    n = helper.make_node
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             n("Sigmoid", ["c1"], ["sg"], name="sigmoid"), n("Mul", ["c1", "sg"], ["silu"], name="mul"),
             n("Resize", ["silu", "", "scales"], ["up"], name="resize", mode="nearest"),
             n("Conv", ["up", "w2", "b2"], ["c2"], name="conv2", strides=[2, 2]),
             n("Transpose", ["c2"], ["t"], name="transpose", perm=[0, 2, 3, 1]),
             n("Reshape", ["t", "shape"], ["flat"], name="reshape"),
             n("MatMul", ["flat", "fc"], ["y"], name="matmul")]
    return _model(nodes, {"x": [1, 3, 4, 4]}, {"y": [1, 6]}, inits)


def float_mlp(seed: int = 2) -> onnx.ModelProto:
    """MatMul + Add + Relu, MatMul + Add; input "x" [2, 6]."""
    rng = np.random.default_rng(seed)
    inits = [_init("w1", rng.normal(0, 0.5, (6, 8)).astype(np.float32)), _init("b1", np.full(8, 0.1, np.float32)),
             _init("w2", rng.normal(0, 0.5, (8, 4)).astype(np.float32)), _init("b2", np.full(4, -0.1, np.float32))]
    n = helper.make_node
    nodes = [n("MatMul", ["x", "w1"], ["m1"], name="mm1"), n("Add", ["m1", "b1"], ["a1"], name="add1"),
             n("Relu", ["a1"], ["r1"], name="relu1"), n("MatMul", ["r1", "w2"], ["m2"], name="mm2"),
             n("Add", ["m2", "b2"], ["y"], name="add2")]
    return _model(nodes, {"x": [2, 6]}, {"y": [2, 4]}, inits)


FLOAT_MODELS = {"cnn": float_cnn, "cnn2": float_cnn2, "mlp": float_mlp}

#: (float model, format, activation type, weight type, per channel)
STATIC = [("cnn", "qdq", "u8", "s8", True), ("cnn", "qop", "u8", "s8", False), ("cnn", "qdq", "s8", "s8", False),
          ("cnn2", "qdq", "u8", "u8", False), ("cnn2", "qop", "u8", "s8", True), ("mlp", "qdq", "s16", "s8", False),
          ("mlp", "qop", "s8", "s8", True), ("cnn", "qdq", "u8", "s4", True)]
DYNAMIC = [("mlp", "s8", False), ("mlp", "u8", True)]


def _quantize(name, fmt, act, weight, per_channel, tmp):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    types = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8, "s4": QuantType.QInt4, "s16": QuantType.QInt16}
    model = FLOAT_MODELS[name]()
    src = os.path.join(tmp, f"{name}.onnx")
    dst = os.path.join(tmp, f"{name}_{fmt}_{act}{weight}_{per_channel}.onnx")
    onnx.save(model, src)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(0)
    data = [{"x": rng.uniform(0, 1, shape).astype(np.float32)} for _ in range(8)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(data)

        def get_next(self):
            return next(self.it, None)

    quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    activation_type=types[act], weight_type=types[weight], per_channel=per_channel)
    return onnx.load(dst)


def _dynamic(name, weight, per_channel, tmp):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    src = os.path.join(tmp, f"{name}.onnx")
    dst = os.path.join(tmp, f"{name}_dyn_{weight}_{per_channel}.onnx")
    onnx.save(FLOAT_MODELS[name](), src)
    quantize_dynamic(src, dst, weight_type={"u8": QuantType.QUInt8, "s8": QuantType.QInt8}[weight],
                     per_channel=per_channel)
    return onnx.load(dst)


def build_seeds() -> dict[str, bytes]:
    """{seed name: serialized ModelProto} of every quantized seed."""
    import logging
    logging.getLogger().setLevel(logging.ERROR)       # the quantizer's advice is noise here
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, fmt, act, weight, pc in STATIC:
            out[f"{name}_{fmt}_{act}{weight}{'_pc' if pc else ''}"] = \
                _quantize(name, fmt, act, weight, pc, tmp).SerializeToString()
        for name, weight, pc in DYNAMIC:
            out[f"{name}_dyn_{weight}{'_pc' if pc else ''}"] = _dynamic(name, weight, pc, tmp).SerializeToString()
    return out


@functools.lru_cache(maxsize=None)
def seed_models(cache_dir: str | None = None) -> dict[str, bytes]:
    """The seeds (built once per process; read from / written to ``cache_dir``
    as ``<name>.onnx`` when given)."""
    if cache_dir and os.path.isdir(cache_dir) and any(f.endswith(".onnx") for f in os.listdir(cache_dir)):
        return {f[:-5]: pathlib.Path(cache_dir, f).read_bytes()
                for f in sorted(os.listdir(cache_dir)) if f.endswith(".onnx")}
    seeds = build_seeds()
    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(cache_dir, f"{name}.onnx"), "wb") as f:
                f.write(data)
    return seeds
