"""The ONNX Runtime worker: a child process that runs cases one after another.

Started by :mod:`qnnref.conform.runner` as ``python -m qnnref.conform.worker``.
It reads requests from stdin and writes results to a private copy of
stdout (fd 1 itself is pointed at stderr, so nothing ONNX Runtime prints can
corrupt the channel). Each message is a pickle preceded by its length (8
bytes, little-endian). If ONNX Runtime crashes or hangs on a case, only this
process is lost: the runner notices, reports the case, and starts a new one.

With ``$QNNREF_CPUID_MASK`` set (``--cpu``), the worker first hides those CPU
features from CPUID (:mod:`.cpumask`), then imports onnxruntime. Its
greeting names the versions, whether u8 x s8 products saturate in this
process (:func:`u8s8_saturates`, measured) and the NCHWc block of the MLAS
float kernel family ONNX Runtime selected (:func:`mlas_nchwc_block`).

A request is a dict: ``id``, ``model`` (serialized ONNX), ``inputs``,
``session_config`` and, in tests only, ``hook``. A result is a dict:

* ``status``: ``"ok"``, ``"refused"`` (ONNX Runtime raised: NOT_IMPLEMENTED,
  INVALID_ARGUMENT, ...) or ``"error"`` (the worker itself failed);
* ``outputs``: graph output name -> array;
* ``intermediates``: integer intermediate tensors (name -> array), taken from
  a second session of the model with those tensors exposed as outputs, or
  None when there are none; ``probe_consistent``: whether that second
  session gave the same graph outputs (when not, the intermediates are not
  trusted: exposing them changed what ONNX Runtime fused);
* ``vendor_ops``: the operators ONNX Runtime actually ran (its optimized
  graph) for models with DequantizeLinear nodes inside, and ``float_nodes``:
  those that compute in floating point (a QDQ pattern it did not fuse);
* ``message`` and ``seconds``.
"""
from __future__ import annotations

import os
import pickle
import struct
import sys
import tempfile
import time

from .cpumask import ENV_FEATURES, ENV_LIBRARY

#: operators whose float computation is exact (data movement, max, relu,
#: clip) or that compute in integers: anything else left in ONNX Runtime's
#: optimized graph between a DequantizeLinear and a QuantizeLinear is a
#: float computation with ONNX Runtime's own vectorized math
EXACT_OPS = {
    "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger",
    "ConvInteger", "QGemm", "QLinearAdd", "QLinearMul", "QLinearAveragePool",
    "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu",
    "QLinearSoftmax", "QLinearReduceMean", "QLinearWhere", "DynamicQuantizeLinear",
    "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Concat", "Slice",
    "Gather", "Split", "Pad", "MaxPool", "Relu", "Clip", "Shape", "Expand", "Tile",
    "DepthToSpace", "SpaceToDepth", "Max", "Min", "NhwcMaxPool",
}

HOOKS = ("crash", "hang", "exit", "error")


def write_message(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)))
    stream.write(data)
    stream.flush()


def read_message(stream):
    """The next message, or None at end of stream."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    data = stream.read(n)
    if len(data) < n:
        return None
    return pickle.loads(data)


def _session(ort, model: bytes, config: dict, optimized_path: str | None = None):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 4           # fatal only: refusals come back as exceptions
    for k, v in config.items():
        so.add_session_config_entry(str(k), str(v))
    if optimized_path:
        so.optimized_model_filepath = optimized_path
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def u8s8_saturates(ort, onnx) -> bool:
    """Whether this process's ONNX Runtime sums u8 x s8 products in int16-
    saturated pairs: MatMulInteger [255, 255] . [127, 127] is 64770 exactly,
    32767 saturated (the probe every worker runs before its greeting)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    b = numpy_helper.from_array(np.array([[127], [127]], np.int8), "b")
    g = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "probe",
                          [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1])], [b])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    (y,) = _session(ort, model.SerializeToString(), {}).run(None, {"a": np.array([[255, 255]], np.uint8)})
    return int(y[0, 0]) == 32767


def mlas_nchwc_block(ort, onnx) -> int:
    """The NCHWc block of the MLAS kernel family this process's ONNX Runtime
    selected (8: AVX2/FMA3, 16: AVX-512F; 0: it does not rewrite Conv to
    NCHWc), which decides the summation order of float convolutions with
    constant weights (spec/ops/float_conv2d.md): a float Conv of 24 to 24
    channels, whose weights ONNX Runtime's NchwcTransformer pads to a
    multiple of the block (com.microsoft.nchwc Conv, 24 or 32 output channels)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones((24, 24, 3, 3), np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "probe",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 24, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 24, 6, 6])], [w])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    fd, path = tempfile.mkstemp(suffix=".onnx", prefix="qnnref-probe-")
    os.close(fd)
    try:
        _session(ort, model.SerializeToString(), {}, optimized_path=path)
        optimized = onnx.load(path)
    finally:
        os.unlink(path)
    sizes = {t.name: list(t.dims) for t in optimized.graph.initializer}
    for n in optimized.graph.node:
        if n.domain == "com.microsoft.nchwc" and n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in sizes:
            out_channels = sizes[n.input[1]][0]
            return next((b for b in (8, 16) if -(-24 // b) * b == out_channels), 0)
    return 0


def _has_inner_dequantize(model) -> bool:
    outputs = {o.name for o in model.graph.output}
    return any(n.op_type == "DequantizeLinear" and n.output[0] not in outputs for n in model.graph.node)


def _vendor_ops(ort, onnx, model_bytes: bytes, config: dict) -> list[tuple[str, str]]:
    """(op_type, node name) of the graph ONNX Runtime optimized the model into."""
    fd, path = tempfile.mkstemp(suffix=".onnx", prefix="qnnref-conform-")
    os.close(fd)
    try:
        _session(ort, model_bytes, config, optimized_path=path)
        optimized = onnx.load(path)
    finally:
        os.unlink(path)
    return [(n.op_type, n.name) for n in optimized.graph.node]


def run_request(ort, onnx, req: dict) -> dict:
    from .onnxgraph import with_intermediate_outputs
    hook = req.get("hook")
    if hook == "crash":
        os.abort()
    if hook == "hang":
        time.sleep(10**6)
    if hook == "exit":
        os._exit(7)
    if hook == "error":
        raise RuntimeError("test hook: a failure inside the worker")
    t0 = time.perf_counter()
    config = req.get("session_config") or {}
    result = {"id": req["id"], "status": "ok", "outputs": {}, "intermediates": None,
              "probe_consistent": None, "vendor_ops": None, "float_nodes": [], "message": ""}
    try:
        sess = _session(ort, req["model"], config)
        names = [o.name for o in sess.get_outputs()]
        values = sess.run(None, req["inputs"])
    except Exception as e:      # onnxruntime raises its own exception types (Fail, NotImplemented...)
        result.update(status="refused", message=f"{type(e).__name__}: {e}".strip())
        result["seconds"] = time.perf_counter() - t0
        return result
    result["outputs"] = dict(zip(names, values))
    model = onnx.load_from_string(req["model"])
    if _has_inner_dequantize(model):
        try:
            ops = _vendor_ops(ort, onnx, req["model"], config)
            result["vendor_ops"] = ops
            result["float_nodes"] = [f"{op} {name}" for op, name in ops if op not in EXACT_OPS]
        except Exception as e:
            result["message"] = f"could not read the optimized graph: {e}"
    probe, added = with_intermediate_outputs(req["model"])
    if added:
        try:
            sess = _session(ort, probe, config)
            pnames = [o.name for o in sess.get_outputs()]
            pvalues = dict(zip(pnames, sess.run(None, req["inputs"])))
            result["intermediates"] = {n: pvalues[n] for n in added}
            result["probe_consistent"] = all(
                _same(pvalues[n], result["outputs"][n]) for n in names)
        except Exception as e:
            result["message"] = f"intermediate tensors unavailable: {type(e).__name__}: {e}"
    result["seconds"] = time.perf_counter() - t0
    return result


def _same(a, b) -> bool:
    import numpy as np
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def main() -> int:
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                       # stray prints go to stderr, never into the channel
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    hidden = os.environ.get(ENV_FEATURES, "")
    try:
        if hidden:                      # before onnxruntime is loaded: MLAS reads CPUID once
            from .cpumask import enable
            enable(hidden, os.environ.get(ENV_LIBRARY) or None)
        import onnx
        import onnxruntime as ort
        saturates = u8s8_saturates(ort, onnx)
        nchwc_block = mlas_nchwc_block(ort, onnx)
    except Exception as e:
        write_message(channel, {"hello": None, "error": f"{type(e).__name__}: {e}"})
        return 1
    write_message(channel, {"hello": {"onnxruntime": ort.__version__, "onnx": onnx.__version__,
                                      "pid": os.getpid(), "device": ort.get_device(),
                                      "hidden_cpu_features": hidden, "u8s8_saturates": saturates,
                                      "mlas_nchwc_block": nchwc_block}})
    while True:
        req = read_message(inp)
        if req is None:
            return 0
        try:
            res = run_request(ort, onnx, req)
        except Exception as e:
            res = {"id": req.get("id"), "status": "error", "outputs": {}, "intermediates": None,
                   "probe_consistent": None, "vendor_ops": None, "float_nodes": [],
                   "message": f"{type(e).__name__}: {e}", "seconds": 0.0}
        write_message(channel, res)


if __name__ == "__main__":
    sys.exit(main())
