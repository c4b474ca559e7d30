"""Vendor runtimes for compare.py: ONNX Runtime, LiteRT (TFLite + XNNPACK), torch.ao.

Each vendor builds the case's one operator in its own format from the same
integers and quantization parameters as qnnref (``_cases.make_data``), runs
it single-threaded, and returns the output in qnnref's layout.

compare.py never imports a vendor itself: it runs this file as a worker
subprocess, one per (vendor, case), so that a vendor that aborts (LiteRT can
SIGABRT) or is not installed costs one row, not the run:

    python benchmarks/vendors.py probe VENDOR [--cpu avx2]   -> one JSON line
    python benchmarks/vendors.py run VENDOR DATA.npz OUT.npy [--cpu avx2] [--min-time S] [--min-repeats N] [--clock cpu]

``--cpu avx2`` hides AVX-512, VNNI and AMX from CPUID in this worker before
any vendor library is imported (qnnref/conform/cpumask.py: Linux CPUID
faulting), so that ONNX Runtime, XNNPACK and fbgemm pick the kernels they
run on an AVX2-only CPU -- their real code at native speed. When masking is
unavailable here the worker answers {"status": "missing", "reason":
"[avx2] unavailable: <why>"}. ``--cpu native`` (default) leaves CPUID alone.

``run`` prints one JSON line: {"status": "ok", "median_s", "repeats", "note"},
or {"status": "n/a", "reason"} when the vendor has no such operator/dtype,
or {"status": "missing", "reason"} when the package cannot be imported.

Thread settings: ORT intra_op_num_threads=1 and inter_op_num_threads=1,
torch.set_num_threads(1), LiteRT num_threads=1; OMP/OpenBLAS/MKL threads are
set to 1 in the environment before anything is imported.
"""
from __future__ import annotations

import json
import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _cases import load_data, median_time  # noqa: E402


class NotApplicable(Exception):
    """The vendor has no operator for this case/dtype combination."""


def _conv_geometry(d):
    h, w, cin, cout, kh, kw, groups, pad = d["dims"]
    return h, w, cin, cout, kh, kw, groups, pad


# -- ONNX Runtime -------------------------------------------------------------------------

class OnnxRuntime:
    """QLinearMatMul / QLinearConv built with onnx.helper.

    ``precise=True`` sets the session option session.x64quantprecision=1,
    ORT's exact mode for u8 x s8 on x86 CPUs without VNNI."""

    package = "onnxruntime"
    expected_recipe = "f32-half-even"   # MLAS: float32(acc) * float32 scale, round half to even
    variants = {"u8s8", "u8u8", "s8s8"}

    def __init__(self, precise: bool):
        self.precise = precise
        self.label = "ORT x64quantprecision" if precise else "ORT"

    def version(self):
        import onnx  # noqa: F401  (needed to build the models)
        import onnxruntime
        return onnxruntime.__version__

    def prepare(self, d):
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
        if d["w_dtype"] not in ("int8", "uint8"):
            raise NotApplicable("no int4-weight QLinear operator")
        if d["x_dtype"] == "int8" and d["w_dtype"] == "uint8":
            raise NotApplicable("s8 x u8 not implemented")
        elem = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8}
        xt, wt = np.dtype(d["x_dtype"]), np.dtype(d["w_dtype"])
        channels = len(d["w_scale"])
        w_scale = d["w_scale"] if d["per_channel"] else d["w_scale"][:1].reshape(())
        w_zp = np.full(channels if d["per_channel"] else (), d["w_zp"], wt)
        inits = [numpy_helper.from_array(np.asarray(d["x_scale"], np.float32), "x_scale"),
                 numpy_helper.from_array(np.asarray(d["x_zp"], xt), "x_zp"),
                 numpy_helper.from_array(np.asarray(w_scale, np.float32), "w_scale"),
                 numpy_helper.from_array(w_zp, "w_zp"),
                 numpy_helper.from_array(np.asarray(d["y_scale"], np.float32), "y_scale"),
                 numpy_helper.from_array(np.asarray(d["y_zp"], xt), "y_zp")]
        if d["kind"] == "gemm":
            m, k, n = d["dims"]
            x_shape, y_shape = [m, k], [m, n]
            inits.append(numpy_helper.from_array(d["w"], "w"))
            node = helper.make_node("QLinearMatMul", ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp",
                                                      "y_scale", "y_zp"], ["y"])
            x_in = d["x"]
        else:
            h, w_, cin, cout, kh, kw, groups, pad = _conv_geometry(d)
            x_shape, y_shape = [1, cin, h, w_], [1, cout, h + 2 * pad - kh + 1, w_ + 2 * pad - kw + 1]
            inits.append(numpy_helper.from_array(np.ascontiguousarray(d["w"].transpose(0, 3, 1, 2)), "w"))  # OIHW
            node = helper.make_node("QLinearConv", ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp",
                                                    "y_scale", "y_zp"], ["y"],
                                    kernel_shape=[kh, kw], pads=[pad] * 4, group=groups, strides=[1, 1])
            x_in = np.ascontiguousarray(d["x"].transpose(0, 3, 1, 2))   # NCHW, converted outside the timing
        graph = helper.make_graph([node], "case", [helper.make_tensor_value_info("x", elem[d["x_dtype"]], x_shape)],
                                  [helper.make_tensor_value_info("y", elem[d["x_dtype"]], y_shape)], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
        model.ir_version = 10
        onnx.checker.check_model(model)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if self.precise:
            so.add_session_config_entry("session.x64quantprecision", "1")
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])

        def run():
            return sess.run(None, {"x": x_in})[0]

        def to_qnnref(y):
            return y if d["kind"] == "gemm" else y.transpose(0, 2, 3, 1)
        return run, to_qnnref, "NCHW input" if d["kind"] == "conv" else ""


# -- LiteRT ---------------------------------------------------------------------------------

class LiteRT:
    """FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D in a .tflite flatbuffer
    written with the schema module LiteRT ships (no TensorFlow needed).

    ``xnnpack=True``: the default resolver, which applies the XNNPACK
    delegate; False: BUILTIN_WITHOUT_DEFAULT_DELEGATES (TFLite's own
    optimized kernels)."""

    package = "ai_edge_litert"
    variants = {"s8s8", "u8u8"}

    def __init__(self, xnnpack: bool):
        self.xnnpack = xnnpack
        self.label = "LiteRT XNNPACK" if xnnpack else "LiteRT builtin"
        # XNNPACK requantizes in float32 with round half to even; TFLite's
        # optimized builtin kernels: gemmlowp's SRDHM, then a rounding shift
        # with ties up (shared/research/runtimes.md; the reference kernels
        # round that shift away from zero).
        self.expected_recipe = "f32-half-even" if xnnpack else "gemmlowp-up"

    def version(self):
        from importlib.metadata import version
        from ai_edge_litert import interpreter  # noqa: F401
        return version("ai-edge-litert")

    def build(self, d) -> bytes:
        from ai_edge_litert import schema_py_generated as S
        from ai_edge_litert.tools.flatbuffer_utils import convert_object_to_bytearray
        if d["w_dtype"] not in ("int8", "uint8"):
            raise NotApplicable("int4 weights not built here")
        if d["x_dtype"] != d["w_dtype"]:
            raise NotApplicable("TFLite pairs s8 x s8 or u8 x u8 only")
        ttype = S.TensorType.INT8 if d["x_dtype"] == "int8" else S.TensorType.UINT8
        buffers = [S.BufferT()]   # buffer 0: the empty sentinel

        def buffer(arr):
            b = S.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(arr).tobytes(), np.uint8)
            buffers.append(b)
            return len(buffers) - 1

        tensors = []

        def tensor(name, shape, tt, buf, scale, zp, qdim=0):
            t = S.TensorT()
            t.name, t.shape, t.type, t.buffer = name, list(shape), tt, buf
            q = S.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(scale)]
            q.zeroPoint = [int(z) for z in np.atleast_1d(zp)]
            q.quantizedDimension = qdim
            t.quantization = q
            tensors.append(t)
            return len(tensors) - 1

        pc = d["per_channel"]
        channels = len(d["w_scale"])
        w_scale = d["w_scale"] if pc else d["w_scale"][:1]
        w_zp = np.zeros(channels, np.int64) if pc else np.array([d["w_zp"]])
        bias_scale = (np.float32(d["x_scale"]) * w_scale.astype(np.float32)).astype(np.float32)
        bias_zp = np.zeros(len(bias_scale), np.int64)
        x_shape = d["x"].shape
        x = tensor("x", x_shape, ttype, 0, d["x_scale"], d["x_zp"])
        bias = tensor("bias", [channels], S.TensorType.INT32, buffer(np.zeros(channels, np.int32)),
                      bias_scale, bias_zp)
        op = S.OperatorT()
        code = S.OperatorCodeT()
        if d["kind"] == "gemm":
            m, k, n = d["dims"]
            w = tensor("w", [n, k], ttype, buffer(np.ascontiguousarray(d["w"].T)), w_scale, w_zp, 0)
            y = tensor("y", [m, n], ttype, 0, d["y_scale"], d["y_zp"])
            code.builtinCode, code.version = S.BuiltinOperator.FULLY_CONNECTED, 4 if ttype == S.TensorType.INT8 else 1
            op.builtinOptionsType = S.BuiltinOptions.FullyConnectedOptions
            op.builtinOptions = S.FullyConnectedOptionsT()
        else:
            h, w_, cin, cout, kh, kw, groups, pad = _conv_geometry(d)
            if pad != (kh - 1) // 2 or kh != kw or kh % 2 == 0:
                raise NotApplicable("padding other than SAME")
            y = tensor("y", [1, h, w_, cout], ttype, 0, d["y_scale"], d["y_zp"])
            if groups == 1:
                w = tensor("w", d["w"].shape, ttype, buffer(d["w"]), w_scale, w_zp, 0)   # OHWI
                code.builtinCode, code.version = S.BuiltinOperator.CONV_2D, 3 if ttype == S.TensorType.INT8 else 1
                opts = S.Conv2DOptionsT()
                op.builtinOptionsType = S.BuiltinOptions.Conv2DOptions
            elif groups == cin == cout:
                wd = np.ascontiguousarray(d["w"].transpose(3, 1, 2, 0))                # [1, KH, KW, C]
                w = tensor("w", wd.shape, ttype, buffer(wd), w_scale, w_zp, 3)
                code.builtinCode, code.version = (S.BuiltinOperator.DEPTHWISE_CONV_2D,
                                                  3 if ttype == S.TensorType.INT8 else 1)
                opts = S.DepthwiseConv2DOptionsT()
                opts.depthMultiplier = 1
                op.builtinOptionsType = S.BuiltinOptions.DepthwiseConv2DOptions
            else:
                raise NotApplicable("grouped convolution")
            opts.padding = S.Padding.SAME
            opts.strideW = opts.strideH = 1
            opts.dilationWFactor = opts.dilationHFactor = 1
            op.builtinOptions = opts
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
        op.opcodeIndex = 0
        op.inputs, op.outputs = [x, w, bias], [y]
        sg = S.SubGraphT()
        sg.tensors, sg.operators, sg.inputs, sg.outputs, sg.name = tensors, [op], [x], [y], "main"
        model = S.ModelT()
        model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [sg], buffers
        model.description = "qnnref benchmark case"
        return bytes(convert_object_to_bytearray(model))

    def prepare(self, d):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        content = self.build(d)
        resolver = OpResolverType.AUTO if self.xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        interp = Interpreter(model_content=content, num_threads=1, experimental_op_resolver_type=resolver)
        interp.allocate_tensors()
        x_index = interp.get_input_details()[0]["index"]
        y_index = interp.get_output_details()[0]["index"]
        x = d["x"]

        def run():
            interp.set_tensor(x_index, x)
            interp.invoke()
            return interp.get_tensor(y_index)

        ops = [o["op_name"] for o in interp._get_ops_details()]
        note = "delegated" if any("DELEGATE" in o.upper() for o in ops) else ""
        if self.xnnpack and not note:
            note = "NOT delegated to XNNPACK"
        return run, lambda y: y, note


# -- torch.ao -------------------------------------------------------------------------------

class TorchAO:
    """torch.ao.nn.quantized Linear / Conv2d on one quantized engine."""

    package = "torch"
    variants = {"u8s8"}

    def __init__(self, engine: str):
        self.engine = engine
        self.label = f"torch {engine}"
        # fbgemm/x86: lrintf(float32(acc) * float32 multiplier), half to even;
        # qnnpack: reported to round ties up.
        self.expected_recipe = "f32-half-up" if engine == "qnnpack" else "f32-half-even"

    def version(self):
        import torch
        if self.engine not in torch.backends.quantized.supported_engines:
            raise ImportError(f"engine {self.engine} not in this torch build")
        return torch.__version__

    def prepare(self, d):
        import torch
        import torch.ao.nn.quantized as nnq
        torch.set_num_threads(1)
        if d["x_dtype"] != "uint8" or d["w_dtype"] != "int8":
            raise NotApplicable("torch quantized ops take quint8 x qint8 only")
        torch.backends.quantized.engine = self.engine
        scales = torch.from_numpy(d["w_scale"].astype(np.float64))
        zps = torch.zeros(len(d["w_scale"]), dtype=torch.int64)
        if d["kind"] == "gemm":
            _, k, n = d["dims"]
            wq = torch._make_per_channel_quantized_tensor(torch.from_numpy(np.ascontiguousarray(d["w"].T)),
                                                          scales, zps, 0)
            mod = nnq.Linear(k, n, bias_=False, dtype=torch.qint8)
            xq = torch._make_per_tensor_quantized_tensor(torch.from_numpy(d["x"]), float(d["x_scale"]), d["x_zp"])
        else:
            _, _, cin, cout, kh, kw, groups, pad = _conv_geometry(d)
            wq = torch._make_per_channel_quantized_tensor(
                torch.from_numpy(np.ascontiguousarray(d["w"].transpose(0, 3, 1, 2))), scales, zps, 0)  # OIHW
            mod = nnq.Conv2d(cin, cout, (kh, kw), padding=pad, groups=groups, bias=False)
            xt = torch.from_numpy(d["x"]).permute(0, 3, 1, 2)          # NCHW view of NHWC memory = channels_last
            xq = torch._make_per_tensor_quantized_tensor(xt.contiguous(), float(d["x_scale"]), d["x_zp"])
            xq = xq.contiguous(memory_format=torch.channels_last)
        mod.set_weight_bias(wq, None)
        mod.scale, mod.zero_point = float(d["y_scale"]), int(d["y_zp"])
        mod.eval()

        def run():
            with torch.inference_mode():
                return mod(xq)

        def to_qnnref(y):
            y = y.int_repr()
            return (y if d["kind"] == "gemm" else y.permute(0, 2, 3, 1)).contiguous().numpy()
        return run, to_qnnref, "channels_last" if d["kind"] == "conv" else ""


VENDORS = {
    "ort": OnnxRuntime(precise=False),
    "ort-x64prec": OnnxRuntime(precise=True),
    "litert-xnnpack": LiteRT(xnnpack=True),
    "litert-builtin": LiteRT(xnnpack=False),
    "torch-qnnpack": TorchAO("qnnpack"),
    "torch-fbgemm": TorchAO("fbgemm"),
    "torch-x86": TorchAO("x86"),
}


# -- worker ------------------------------------------------------------------------------------

#: features hidden from CPUID for ``--cpu avx2`` (cpumask.CPU_MODELS["avx2"])
CPU_CHOICES = ("native", "avx2")


def _mask_cpu(cpu: str) -> str:
    """Hide the features of ``cpu`` from CPUID in this process; '' on success,
    else why it is unavailable. Must run before any vendor is imported."""
    if cpu == "native":
        return ""
    try:
        from qnnref.conform import cpumask
    except ImportError:                      # a source checkout that is not installed
        sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        try:
            from qnnref.conform import cpumask
        except ImportError as e:
            return f"qnnref.conform.cpumask cannot be imported: {e}"
    try:
        cpumask.enable(cpumask.CPU_MODELS[cpu])
    except cpumask.CpuMaskUnavailable as e:
        return str(e)
    for module in ("onnxruntime", "ai_edge_litert", "torch"):
        if module in sys.modules:            # too late: it has read CPUID already
            return f"{module} was imported before CPUID was masked"
    return ""

def _probe(name):
    v = VENDORS[name]
    try:
        return {"status": "ok", "version": v.version(), "label": v.label}
    except Exception as e:  # noqa: BLE001  (ImportError, or anything a broken install raises)
        return {"status": "missing", "reason": f"{type(e).__name__}: {e}".strip()[:200], "label": v.label}


def _run(name, data_path, out_path, min_time, min_repeats, max_time, clock):
    v = VENDORS[name]
    probe = _probe(name)
    if probe["status"] != "ok":
        return probe
    d = load_data(data_path)
    try:
        run, to_qnnref, note = v.prepare(d)
    except NotApplicable as e:
        return {"status": "n/a", "reason": str(e)}
    except Exception as e:  # noqa: BLE001  (the vendor's own error: reported in its row)
        return {"status": "error", "reason": f"{type(e).__name__}: {e}"[:300]}
    y = np.ascontiguousarray(to_qnnref(run()))
    np.save(out_path, y)
    median_s, repeats = median_time(run, min_time, min_repeats, max_time, clock=clock)
    return {"status": "ok", "median_s": median_s, "repeats": repeats, "note": note}


def main(argv=None) -> int:
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("probe")
    pp.add_argument("vendor", choices=VENDORS)
    pp.add_argument("--cpu", choices=CPU_CHOICES, default="native")
    pr = sub.add_parser("run")
    pr.add_argument("vendor", choices=VENDORS)
    pr.add_argument("data")
    pr.add_argument("out")
    pr.add_argument("--min-time", type=float, default=1.0)
    pr.add_argument("--min-repeats", type=int, default=10)
    pr.add_argument("--max-time", type=float, default=20.0)
    pr.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    pr.add_argument("--cpu", choices=CPU_CHOICES, default="native")
    a = p.parse_args(argv)
    why = _mask_cpu(a.cpu)
    if why:
        result = {"status": "missing", "reason": f"[{a.cpu}] unavailable: {why}"[:300],
                  "label": VENDORS[a.vendor].label}
    elif a.cmd == "probe":
        result = _probe(a.vendor)
    else:
        result = _run(a.vendor, a.data, a.out, a.min_time, a.min_repeats, a.max_time, a.clock)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
