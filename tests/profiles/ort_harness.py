"""Run ONNX models in ONNX Runtime for the profile and exporter tests.

Every batch of cases runs in a subprocess (this file is its main program), so
that a crash of ONNX Runtime fails one test instead of the whole run, and so
that the subprocess can present ONNX Runtime with another CPU:

* ``cpu="native"``: the machine as it is. On a CPU with AVX-VNNI,
  AVX512-VNNI or AMX-INT8, ORT's u8 x s8 products accumulate exactly
  (profile ``ort-cpu-x86-vnni``); on AVX2 or AVX-512 without VNNI they are
  summed in int16-saturated pairs (``ort-cpu-x86``). :func:`native_profile`
  finds out by running the classic case (255, 255) . (127, 127).
* ``cpu="avx2"``: the subprocess first loads ``cpuidmask.c`` (compiled here
  with the system C compiler), which makes CPUID hide AVX-512, VNNI and AMX,
  so MLAS picks its AVX2 kernels: ORT as on an AVX2 CPU without VNNI, on any
  newer x86-64 Linux machine with CPUID faulting. :func:`avx2_unavailable`
  says why it cannot be used elsewhere.

Nothing here uses qnnref.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
HAVE_ORT = (importlib.util.find_spec("onnx") is not None
            and importlib.util.find_spec("onnxruntime") is not None)
AVX2_FEATURES_HIDDEN = "avx512,vnni,amx"


def run_cases(cases, cpu: str = "native", session_config: dict | None = None) -> list:
    """Run ``cases``, a list of ``(model_bytes, feeds)``, each in a fresh
    InferenceSession (CPU provider, default options plus ``session_config``).
    Returns one entry per case: the list of output arrays, or a string
    (the exception) when ORT refused or failed."""
    if cpu not in ("native", "avx2"):
        raise ValueError(cpu)
    shim = ""
    if cpu == "avx2":
        why = avx2_unavailable()
        if why:
            raise RuntimeError(f"cpu='avx2' is unavailable: {why}")
        shim = str(_shim_path())
    with tempfile.TemporaryDirectory(prefix="qnnref-ort-") as d:
        src, dst = Path(d) / "in.pkl", Path(d) / "out.pkl"
        src.write_bytes(pickle.dumps((list(cases), session_config or {})))
        proc = subprocess.run([sys.executable, str(Path(__file__)), str(src), str(dst), shim],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"the ONNX Runtime subprocess failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return pickle.loads(dst.read_bytes())


# -- the CPUID shim ------------------------------------------------------------------

def _shim_path() -> Path:
    return Path(tempfile.gettempdir()) / f"qnnref-cpuidmask-{os.getuid()}-{_source_stamp()}.so"


def _source_stamp() -> str:
    import hashlib
    return hashlib.sha256((HERE / "cpuidmask.c").read_bytes()).hexdigest()[:12]


@functools.cache
def avx2_unavailable() -> str:
    """'' when ``cpu="avx2"`` works here, else the reason it does not."""
    if not HAVE_ORT:
        return "onnx or onnxruntime is not installed"
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return "needs x86-64 Linux"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "cannot read /proc/cpuinfo"
    if "cpuid_fault" not in flags:
        return "the CPU (or hypervisor) has no CPUID faulting"
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return "no C compiler to build tests/profiles/cpuidmask.c"
    so = _shim_path()
    if not so.exists():
        tmp = so.with_suffix(f".{os.getpid()}.tmp")
        r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(HERE / "cpuidmask.c")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return f"compiling cpuidmask.c failed: {r.stderr[-500:]}"
        os.replace(tmp, so)
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
            proc = subprocess.run([sys.executable, str(Path(__file__)), str(src), str(dst), str(_shim_path())],
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

def _main(src: str, dst: str, shim: str) -> None:
    if shim:
        import ctypes
        lib = ctypes.CDLL(shim)
        if lib.cpuidmask_enable(AVX2_FEATURES_HIDDEN.encode()) != 0:
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
    _main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
