"""Helpers of the ONNX import tests: small model builders, running a model in
ONNX Runtime and in qnnref, and the bundled digits CNN as a float ONNX model
(quantized by ONNX Runtime's own quantizer in the tests).

Every test module here imports this one first: without onnx and onnxruntime
the modules are skipped, with the reason (the ``test`` extra installs them:
``pip install -e ".[test]"``). (Not a conftest.py: tests/conftest.py is
imported as ``conftest`` by the operator tests, and a second one would
shadow it.)
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX import tests need onnx: pip install -e '.[test]'")
ort = pytest.importorskip("onnxruntime", reason="the ONNX import tests need onnxruntime: pip install -e '.[test]'")

from onnx import TensorProto as TP, helper, numpy_helper  # noqa: E402

import qnnref  # noqa: E402
from qnnref.onnx import import_onnx  # noqa: E402

MS = "com.microsoft"
#: the qnnref profile the closeness tests import with (the ONNX profiles come
#: from another branch; tests that need them are skipped until they exist)
PROFILE = "qnnref"
#: ONNX element type of each numpy dtype used here
ELEM = {np.dtype(np.uint8): TP.UINT8, np.dtype(np.int8): TP.INT8, np.dtype(np.int16): TP.INT16,
        np.dtype(np.int32): TP.INT32, np.dtype(np.int64): TP.INT64, np.dtype(np.float32): TP.FLOAT}


def needs_profile(name: str):
    """Skip a test until the semantic profile ``name`` is registered."""
    return pytest.mark.skipif(name not in qnnref.PROFILES,
                              reason=f"profile {name!r} is not registered yet (branch wt-profiles)")


def init(name: str, value, dtype=None) -> onnx.TensorProto:
    """An initializer from a number or array (``dtype`` forces a numpy type)."""
    arr = np.asarray(value, dtype=dtype)
    return numpy_helper.from_array(arr, name)


def vinfo(name: str, dtype, shape):
    elem = dtype if isinstance(dtype, int) else ELEM[np.dtype(dtype)]
    return helper.make_tensor_value_info(name, elem, list(shape))


def make_model(nodes, inputs, outputs, inits=(), opset: int = 13, check: bool = True) -> onnx.ModelProto:
    """A model from nodes, ``inputs``/``outputs`` as {name: (dtype, shape)} (an
    output shape may be None), initializers; com.microsoft is imported when used."""
    ins = [vinfo(n, d, s) for n, (d, s) in inputs.items()]
    outs = [vinfo(n, d, s) if s is not None else helper.make_tensor_value_info(n, ELEM[np.dtype(d)], None)
            for n, (d, s) in outputs.items()]
    g = helper.make_graph(list(nodes), "test", ins, outs, list(inits))
    opsets = [helper.make_opsetid("", opset)]
    if any(n.domain == MS for n in nodes):
        opsets.append(helper.make_opsetid(MS, 1))
    m = helper.make_model(g, opset_imports=opsets)
    m.ir_version = min(m.ir_version, 10)
    if check and all(s is not None for _, s in outputs.values()):
        onnx.checker.check_model(m)
    return m


def node(op, inputs, outputs, domain="", name=None, **attrs):
    return helper.make_node(op, list(inputs), list(outputs), domain=domain, name=name or outputs[0], **attrs)


def ort_run(model: onnx.ModelProto, feeds: dict) -> dict:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def qnn_run(model: onnx.ModelProto, feeds: dict, profile: str = PROFILE, **kw):
    """(imported qnnref model, its outputs)."""
    m = import_onnx(model, profile=profile, **kw)
    return m, m.run(feeds)


def steps(a: np.ndarray, b: np.ndarray) -> int:
    """The largest difference of two integer arrays, in steps."""
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    return int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)), initial=0))


def assert_close_to_ort(model, feeds, max_steps: int = 1, profile: str = PROFILE, **kw):
    """Import ``model``, run it in qnnref and ORT; every integer output may
    differ by at most ``max_steps`` (float outputs: compared exactly after
    dividing by nothing -- use integer outputs). Returns the qnnref Model."""
    ref = ort_run(model, feeds)
    m, got = qnn_run(model, feeds, profile, **kw)
    for name, r in ref.items():
        g = got[name]
        if r.dtype.kind == "f":
            np.testing.assert_allclose(g, r, rtol=0, atol=max_steps * float(np.max(np.abs(r), initial=1)) * 0.02)
        else:
            d = steps(g, r)
            assert d <= max_steps, f"output {name!r} differs from ONNX Runtime by {d} steps"
    return m


def ops_of(m) -> list[str]:
    return [n.op for n in m.graph.nodes]


def rand(rng, dtype, shape, lo=None, hi=None):
    info = np.iinfo(dtype)
    lo = info.min if lo is None else lo
    hi = info.max if hi is None else hi
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


# ---------------------------------------------------------------------------
# The bundled digits CNN as a float ONNX model
# ---------------------------------------------------------------------------

def digits_float_model(extra_ops: bool = False) -> onnx.ModelProto:
    """qnnref's bundled digits CNN (a trained model), its int8 weights
    dequantized to float, in ONNX's NCHW: 3 x (Conv + Relu),
    GlobalAveragePool, Flatten, Gemm. ``extra_ops`` adds a MaxPool (stride 1)
    and a residual Add, to exercise more of the quantizers' output."""
    m = qnnref.load(qnnref.bundled_model("digits"))
    T = m.graph.tensors
    inits, nodes = [], []
    x = "image"
    for i in (1, 2, 3):
        w, b = T[f"conv{i}.weight"], T[f"conv{i}.bias"]
        wf = (w.data.astype(np.float32) * w.quant.scale.reshape(-1, 1, 1, 1)).transpose(0, 3, 1, 2)
        bf = b.data.astype(np.float32) * b.quant.scale
        inits += [init(f"conv{i}.weight", np.ascontiguousarray(wf)), init(f"conv{i}.bias", bf)]
        nodes.append(node("Conv", [x, f"conv{i}.weight", f"conv{i}.bias"], [f"conv{i}.out"], name=f"conv{i}",
                          pads=[1, 1, 1, 1], strides=[1, 1] if i == 1 else [2, 2]))
        nodes.append(node("Relu", [f"conv{i}.out"], [f"relu{i}.out"], name=f"relu{i}"))
        x = f"relu{i}.out"
        if extra_ops and i == 1:
            nodes.append(node("MaxPool", [x], ["pool1.out"], name="pool1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
            nodes.append(node("Add", [x, "pool1.out"], ["res1.out"], name="res1"))
            x = "res1.out"
    nodes.append(node("GlobalAveragePool", [x], ["gap.out"], name="gap"))
    nodes.append(node("Flatten", ["gap.out"], ["flat.out"], name="flatten"))
    w, b = T["fc.weight"], T["fc.bias"]
    wf = w.data.astype(np.float32) * w.quant.scale.reshape(1, -1)
    inits += [init("fc.weight", np.ascontiguousarray(wf.T)), init("fc.bias", b.data.astype(np.float32) * b.quant.scale)]
    nodes.append(node("Gemm", ["flat.out", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1))
    return make_model(nodes, {"image": (np.float32, (1, 1, 8, 8))}, {"logits": (np.float32, (1, 10))}, inits)


def zoo_float_model(seed: int = 0) -> onnx.ModelProto:
    """A small float CNN with random weights using most operators the
    quantizers handle: strided Conv, Clip(0, 6), depthwise Conv, SiLU
    (Sigmoid * x), residual Add, MaxPool, nearest Resize, Concat, Relu,
    GlobalAveragePool, Reshape, MatMul + bias Add. Input "image" [1, 3, 16, 16]."""
    rng = np.random.default_rng(seed)

    def w(shape, s=0.3):
        return rng.normal(0, s, shape).astype(np.float32)
    inits = [init("w1", w((8, 3, 3, 3))), init("b1", w(8, 0.1)), init("wd", w((8, 1, 3, 3))), init("bd", w(8, 0.1)),
             init("w2", w((8, 8, 1, 1))), init("b2", w(8, 0.1)), init("w3", w((4, 16, 1, 1))), init("b3", w(4, 0.1)),
             init("six", np.float32(6)), init("zero", np.float32(0)),
             init("scales", np.array([1, 1, 2, 2], np.float32)), init("fc", w((4, 5))), init("fcb", w(5, 0.1)),
             init("shape", np.array([1, -1], np.int64))]
    nodes = [node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
             node("Clip", ["c1", "zero", "six"], ["r1"]),
             node("Conv", ["r1", "wd", "bd"], ["cd"], pads=[1, 1, 1, 1], group=8),
             node("Sigmoid", ["cd"], ["sg"]), node("Mul", ["cd", "sg"], ["silu"]),
             node("Conv", ["silu", "w2", "b2"], ["c2"]), node("Add", ["c2", "r1"], ["res"]),
             node("MaxPool", ["res"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
             node("Resize", ["mp", "", "scales"], ["up"], mode="nearest"),
             node("Concat", ["up", "res"], ["cat"], axis=1),
             node("Conv", ["cat", "w3", "b3"], ["c3"]), node("Relu", ["c3"], ["r3"]),
             node("GlobalAveragePool", ["r3"], ["gap"]), node("Reshape", ["gap", "shape"], ["flat"]),
             node("MatMul", ["flat", "fc"], ["mm"]), node("Add", ["mm", "fcb"], ["logits"])]
    return make_model(nodes, {"image": (np.float32, (1, 3, 16, 16))}, {"logits": (np.float32, (1, 5))}, inits)


@functools.lru_cache(maxsize=None)
def digits_images():
    """(NCHW float32 images [360, 1, 8, 8], labels) of the digits test set."""
    images, labels = qnnref.bundled_test_set("digits")
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).astype(np.float32), labels


def ort_quantize(tmp_path, float_model, images, fmt: str, act: str, weight: str, per_channel: bool,
                 dynamic: bool = False, calib: int = 64) -> onnx.ModelProto:
    """``float_model`` quantized by onnxruntime.quantization (static with the
    first ``calib`` images as calibration data, or dynamic)."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    types = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8, "s4": QuantType.QInt4, "s16": QuantType.QInt16}
    src, dst = tmp_path / "float.onnx", tmp_path / f"q_{fmt}_{act}{weight}_{per_channel}_{dynamic}.onnx"
    onnx.save(float_model, str(src))
    if dynamic:
        quantize_dynamic(str(src), str(dst), weight_type=types[weight], per_channel=per_channel)
        return onnx.load(str(dst))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"image": images[i:i + 1]} for i in range(calib)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ if fmt == "qdq" else
                    QuantFormat.QOperator, activation_type=types[act], weight_type=types[weight],
                    per_channel=per_channel)
    return onnx.load(str(dst))
