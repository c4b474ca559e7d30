"""Run ONNX models in ONNX Runtime for the profile and exporter tests.

Every batch of cases runs in a subprocess (this file is its main program), so
that a crash of ONNX Runtime fails one test instead of the whole run, and so
that the subprocess can present ONNX Runtime with another CPU:

* ``cpu="native"``: the CPU of this test run -- the machine as it is, or,
  under ``QNNREF_TEST_VENDOR_CPU`` (tests/vendor_cpu.py), the CPU the whole
  run presents to vendor runtimes. What ORT does there is probed, never
  assumed: :func:`vendor_probe` asks qnnref's conformance worker
  (qnnref.conform.worker, the one probe of the harness), and
  :func:`native_profile` is the profile that follows from it
  (``ort-cpu-x86`` when ORT sums u8 x s8 products in int16-saturated pairs,
  ``ort-cpu-x86-vnni`` when exactly).
* ``cpu="avx2"``: AVX-512, VNNI and AMX hidden from CPUID by qnnref's shim
  (qnnref/conform/cpuidmask.c, compiled on first use by
  qnnref.conform.cpumask), so MLAS picks its AVX2 kernels: ORT as on an
  AVX2 CPU without VNNI, on any newer x86-64 Linux machine with CPUID
  faulting. :func:`avx2_unavailable` says why it cannot be used elsewhere.

The subprocess, like the worker, reads the features to hide from
``$QNNREF_CPUID_MASK`` (and the shim from ``$QNNREF_CPUID_MASK_LIB``) and
hides them before importing onnxruntime (CPUID faulting does not survive
execve, so every child masks itself). It does not import qnnref: it loads
the compiled shim with ctypes, by path.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

HAVE_ORT = (importlib.util.find_spec("onnx") is not None
            and importlib.util.find_spec("onnxruntime") is not None)

#: the environment variables the subprocess reads (qnnref.conform.cpumask's names)
ENV_FEATURES, ENV_LIBRARY = "QNNREF_CPUID_MASK", "QNNREF_CPUID_MASK_LIB"


def _env(cpu: str, check: bool = True) -> dict:
    import vendor_cpu           # tests/vendor_cpu.py (not imported by the subprocess)
    if cpu not in ("native", "avx2"):
        raise ValueError(cpu)
    if cpu == "avx2" and check:
        why = avx2_unavailable()
        if why:
            raise RuntimeError(f"cpu='avx2' is unavailable: {why}")
    return dict(os.environ, **vendor_cpu.child_env(cpu))


def run_cases(cases, cpu: str = "native", session_config: dict | None = None, threads: int | None = None) -> list:
    """Run ``cases``, a list of ``(model_bytes, feeds)``, each in a fresh
    InferenceSession (CPU provider, default options plus ``session_config``;
    ``threads``: intra-op threads, default ORT's, i.e. one per core).
    Returns one entry per case: the list of output arrays, or a string
    (the exception) when ORT refused or failed."""
    env = _env(cpu)
    with tempfile.TemporaryDirectory(prefix="qnnref-ort-") as d:
        src, dst = Path(d) / "in.pkl", Path(d) / "out.pkl"
        src.write_bytes(pickle.dumps((list(cases), session_config or {}, threads)))
        proc = subprocess.run([sys.executable, str(Path(__file__)), str(src), str(dst)],
                              capture_output=True, text=True, timeout=300, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"the ONNX Runtime subprocess failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return pickle.loads(dst.read_bytes())


# -- what ONNX Runtime does on a CPU: the conformance worker's probe -------------

@functools.cache
def vendor_probe(cpu: str = "native") -> dict:
    """The conformance worker's greeting on ``cpu``: what its probes measured
    in ONNX Runtime there (``u8s8_saturates``, ``mlas_nchwc_block``, versions)."""
    from qnnref.conform.runner import OrtRunner
    env = {k: v for k, v in _env(cpu, check=False).items() if k in (ENV_FEATURES, ENV_LIBRARY)}
    runner = OrtRunner(env=env)
    try:
        return dict(runner.start())
    finally:
        runner.close()


def saturates(cpu: str = "native") -> bool:
    """Whether ORT sums u8 x s8 products in int16-saturated pairs on ``cpu``
    (measured by the worker: worker.u8s8_saturates)."""
    return bool(vendor_probe(cpu)["u8s8_saturates"])


def native_profile() -> str:
    """The qnnref profile that describes ORT on the CPU of this test run."""
    from qnnref.conform.harness import default_profiles
    return default_profiles(not saturates("native"))[0]


@functools.cache
def avx2_unavailable() -> str:
    """'' when ``cpu="avx2"`` works here, else the reason it does not."""
    if not HAVE_ORT:
        return "onnx or onnxruntime is not installed"
    import vendor_cpu
    why = vendor_cpu.unavailable("avx2")
    if why:
        return why
    try:
        if not vendor_probe("avx2")["u8s8_saturates"]:
            return "with AVX-512/VNNI/AMX hidden, ONNX Runtime still does not saturate"
    except Exception as e:      # VendorUnavailable, RuntimeError: the reason is the message
        return f"running ONNX Runtime with the shim failed: {e}"
    return ""


# -- the subprocess ---------------------------------------------------------------

def _main(src: str, dst: str) -> None:
    hidden = os.environ.get(ENV_FEATURES, "")
    if hidden:                  # before onnxruntime is loaded: MLAS reads CPUID once
        import ctypes
        lib = ctypes.CDLL(os.environ[ENV_LIBRARY])
        if lib.cpuidmask_enable(hidden.encode()) != 0:
            raise SystemExit("cpuidmask_enable failed")
    import onnxruntime as ort
    cases, config, threads = pickle.loads(Path(src).read_bytes())
    results = []
    for model, feeds in cases:
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        for k, v in config.items():
            so.add_session_config_entry(k, v)
        try:
            sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
            results.append(sess.run(None, feeds))
        except Exception as e:  # a refusal is a result, reported to the test
            results.append(f"{type(e).__name__}: {e}")
    Path(dst).write_bytes(pickle.dumps(results))


if __name__ == "__main__":
    _main(*sys.argv[1:3])
