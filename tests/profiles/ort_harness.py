"""Run ONNX models in ONNX Runtime for the profile and exporter tests.

Every batch of cases runs in a subprocess (this file is its main program), so
that a crash of ONNX Runtime fails one test instead of the whole run, and so
that the subprocess can present ONNX Runtime with another CPU:

* ``cpu="native"``: the machine as it is. On a CPU with AVX-VNNI,
  AVX512-VNNI or AMX-INT8, ORT's u8 x s8 products accumulate exactly
  (profile ``ort-cpu-x86-vnni``); on AVX2 or AVX-512 without VNNI they are
  summed in int16-saturated pairs (``ort-cpu-x86``). :func:`native_profile`
  finds out by running the classic case (255, 255) . (127, 127).
* ``cpu="avx2"``: the subprocess first loads qnnref's CPUID shim
  (qnnref/conform/cpuidmask.c, compiled on first use by
  qnnref.conform.cpumask), which makes CPUID hide AVX-512, VNNI and AMX, so
  MLAS picks its AVX2 kernels: ORT as on an AVX2 CPU without VNNI, on any
  newer x86-64 Linux machine with CPUID faulting. :func:`avx2_unavailable`
  says why it cannot be used elsewhere.

The subprocess itself does not import qnnref (it loads the compiled shim
with ctypes, by path).
"""
from __future__ import annotations

import functools
import importlib.util
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HAVE_ORT = (importlib.util.find_spec("onnx") is not None
            and importlib.util.find_spec("onnxruntime") is not None)


def run_cases(cases, cpu: str = "native", session_config: dict | None = None) -> list:
    """Run ``cases``, a list of ``(model_bytes, feeds)``, each in a fresh
    InferenceSession (CPU provider, default options plus ``session_config``).
    Returns one entry per case: the list of output arrays, or a string
    (the exception) when ORT refused or failed."""
    if cpu not in ("native", "avx2"):
        raise ValueError(cpu)
    shim = []
    if cpu == "avx2":
        why = avx2_unavailable()
        if why:
            raise RuntimeError(f"cpu='avx2' is unavailable: {why}")
        shim = _shim()
    with tempfile.TemporaryDirectory(prefix="qnnref-ort-") as d:
        src, dst = Path(d) / "in.pkl", Path(d) / "out.pkl"
        src.write_bytes(pickle.dumps((list(cases), session_config or {})))
        proc = subprocess.run([sys.executable, str(Path(__file__)), str(src), str(dst), *shim],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"the ONNX Runtime subprocess failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return pickle.loads(dst.read_bytes())


# -- the CPUID shim ------------------------------------------------------------------

def _shim() -> list[str]:
    """The subprocess arguments that load the shim: its path, the features to hide."""
    from qnnref.conform.cpumask import CPU_MODELS, library_path
    return [str(library_path()), CPU_MODELS["avx2"]]


@functools.cache
def avx2_unavailable() -> str:
    """'' when ``cpu="avx2"`` works here, else the reason it does not."""
    if not HAVE_ORT:
        return "onnx or onnxruntime is not installed"
    from qnnref.conform.cpumask import CpuMaskUnavailable, library_path
    try:
        library_path()                     # x86-64 Linux, CPUID faulting, a C compiler
    except CpuMaskUnavailable as e:
        return str(e)
    try:
        if not saturates("avx2_probe"):
            return "with AVX-512/VNNI/AMX hidden, ONNX Runtime still does not saturate"
    except RuntimeError as e:
        return f"running ONNX Runtime with the shim failed: {e}"
    return ""


# -- what the native CPU does -----------------------------------------------------

def _classic_case() -> tuple[bytes, dict]:
    """MatMulInteger u8 [255, 255] x s8 [127, 127]^T: exact 64770, saturated 32767."""
    from onnx import TensorProto, helper, numpy_helper
    b = np.array([[127], [127]], np.int8)
    g = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "classic",
                          [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1])],
                          [numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    return m.SerializeToString(), {"a": np.array([[255, 255]], np.uint8)}


@functools.cache
def saturates(cpu: str = "native") -> bool:
    """Whether ORT sums u8 x s8 products in int16-saturated pairs on ``cpu``."""
    if cpu == "avx2_probe":
        with tempfile.TemporaryDirectory(prefix="qnnref-ort-") as d:
            src, dst = Path(d) / "in.pkl", Path(d) / "out.pkl"
            src.write_bytes(pickle.dumps(([_classic_case()], {})))
            proc = subprocess.run([sys.executable, str(Path(__file__)), str(src), str(dst), *_shim()],
                                  capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-1000:])
            out = pickle.loads(dst.read_bytes())[0]
    else:
        out = run_cases([_classic_case()], cpu)[0]
    if isinstance(out, str):
        raise RuntimeError(out)
    return int(out[0][0, 0]) == 32767


def native_profile() -> str:
    """The qnnref profile that describes ORT on this machine's CPU."""
    return "ort-cpu-x86" if saturates("native") else "ort-cpu-x86-vnni"


# -- the subprocess ---------------------------------------------------------------

def _main(src: str, dst: str, shim: str = "", hidden: str = "") -> None:
    if shim:
        import ctypes
        lib = ctypes.CDLL(shim)
        if lib.cpuidmask_enable(hidden.encode()) != 0:
            raise SystemExit("cpuidmask_enable failed")
    import onnxruntime as ort
    cases, config = pickle.loads(Path(src).read_bytes())
    results = []
    for model, feeds in cases:
        so = ort.SessionOptions()
        for k, v in config.items():
            so.add_session_config_entry(k, v)
        try:
            sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
            results.append(sess.run(None, feeds))
        except Exception as e:  # a refusal is a result, reported to the test
            results.append(f"{type(e).__name__}: {e}")
    Path(dst).write_bytes(pickle.dumps(results))


if __name__ == "__main__":
    _main(*sys.argv[1:5])
