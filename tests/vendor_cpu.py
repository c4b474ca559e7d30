"""Which x86 CPU the vendor runtimes of the tests see: ``QNNREF_TEST_VENDOR_CPU``.

What ONNX Runtime computes depends on the CPU it runs on (MLAS picks its
kernels from CPUID when it is loaded). So that one machine can test both
kinds of x86-64 CPU, the test suite can present every ONNX Runtime it uses
with an older CPU, by CPUID masking (qnnref/conform/cpumask.py):

    QNNREF_TEST_VENDOR_CPU=avx2 python -m pytest -q tests/onnx_import tests/profiles tests/conform

``avx2`` hides AVX-512, VNNI and AMX (ONNX Runtime as on an AVX2-only CPU
such as AMD Zen 3 or Intel Haswell); ``avx512`` hides VNNI and AMX only;
``native`` (or unset) hides nothing. The names are those of ``qnnref
conform --cpu`` (cpumask.CPU_MODELS). Under a mask:

* the pytest process itself hides the features before anything imports
  onnxruntime (:func:`apply`, called by tests/conftest.py's
  ``pytest_configure``, before any test module is collected, and after
  pytest's faulthandler: CPUID faulting needs the shim's SIGSEGV handler),
  so the ONNX Runtime that the tests import in-process sees the older CPU;
* the mask is exported in ``$QNNREF_CPUID_MASK`` / ``$QNNREF_CPUID_MASK_LIB``,
  which every child that runs ONNX Runtime reads and applies again before
  importing it (CPUID faulting is reset on execve): the conformance
  worker (qnnref.conform.worker) and tests/profiles/ort_harness.py's
  subprocess.

The tests never ask which CPU this is: what ONNX Runtime does is probed by
the conformance worker, masked or not (``ort_harness.vendor_probe``).
Without CPUID faulting (or with nothing to hide) the masked run cannot be
made, and pytest stops with the reason instead of silently testing the
native CPU; ``.ci/run`` checks :func:`unavailable` first and skips the pass.
"""
from __future__ import annotations

import os
import sys

ENV = "QNNREF_TEST_VENDOR_CPU"


def requested() -> str:
    """The CPU model the tests present to vendor runtimes ('native' by default)."""
    return os.environ.get(ENV, "").strip() or "native"


def unavailable(cpu: str | None = None) -> str:
    """'' when the vendor runtimes can be shown ``cpu`` here, else why not."""
    from qnnref.conform.cpumask import CPU_MODELS, unavailable as mask_unavailable
    cpu = requested() if cpu is None else cpu
    if cpu not in CPU_MODELS:
        return f"{ENV}={cpu!r} is not a CPU model (known: {', '.join(CPU_MODELS)})"
    if not CPU_MODELS[cpu]:
        return ""
    return mask_unavailable()


def nothing_to_hide(cpu: str) -> str:
    """'' when this CPU has a feature that ``cpu`` hides, else a message
    saying that it already is such a CPU (a masked run would repeat the
    native one; .ci/run then skips it)."""
    from qnnref.conform.cpumask import CPU_MODELS
    features = CPU_MODELS.get(cpu, "")
    if features and not _has_hidden_features(features):
        return (f"this CPU has none of the features {cpu!r} hides ({features}): "
                "it already is such a CPU, there is nothing to mask")
    return ""


def _has_hidden_features(features: str) -> bool:
    """Whether /proc/cpuinfo lists any feature that ``features`` hides."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        return True
    prefixes = {"avx512": ("avx512",), "vnni": ("avx512_vnni", "avx_vnni", "avx_vnni_int8"),
                "amx": ("amx",), "noavx": ("avx",)}
    return any(flag.startswith(p) for name in features.split(",") for p in prefixes.get(name, (name,))
               for flag in flags)


def apply() -> str:
    """Present ``requested()`` to every ONNX Runtime of this test run (this
    process and its children). Returns the features hidden ('' for native).
    Raises RuntimeError, with the reason, when that cannot be done."""
    from qnnref.conform.cpumask import CPU_MODELS, ENV_FEATURES, ENV_LIBRARY, enable, library_path
    cpu = requested()
    why = unavailable(cpu)
    if why:
        raise RuntimeError(f"{ENV}={cpu}: cannot present ONNX Runtime with that CPU here: {why}")
    features = CPU_MODELS[cpu]
    if not features or _applied:
        return features
    if "onnxruntime" in sys.modules:
        raise RuntimeError(f"{ENV}={cpu}: onnxruntime was imported before the CPUID mask was set; "
                           "MLAS has already read CPUID")
    lib = str(library_path())
    enable(features, lib)
    os.environ[ENV_FEATURES] = features      # the children (worker, ort_harness) mask themselves too
    os.environ[ENV_LIBRARY] = lib
    _applied.append(features)
    return features


#: the features hidden in this process (apply() masks once: it cannot be undone)
_applied: list[str] = []


def child_env(cpu: str) -> dict:
    """The environment variables that make a child process (one that reads
    ``$QNNREF_CPUID_MASK`` before importing onnxruntime) see ``cpu``;
    ``native`` means the CPU of this test run (``requested()``)."""
    from qnnref.conform.cpumask import CPU_MODELS, ENV_FEATURES, ENV_LIBRARY, library_path
    if cpu == "native":
        cpu = requested()
    features = CPU_MODELS[cpu]
    if not features:
        return {ENV_FEATURES: "", ENV_LIBRARY: ""}
    return {ENV_FEATURES: features, ENV_LIBRARY: str(library_path())}


def why_not(cpu: str) -> str:
    """'' when a test run with the vendor runtimes shown ``cpu`` is possible
    here and tests something the native run does not, else why not."""
    return unavailable(cpu) or nothing_to_hide(cpu)


if __name__ == "__main__":        # .ci/run: python tests/vendor_cpu.py avx2 -> '' or the reason
    sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # the qnnref beside tests/
    print(why_not(sys.argv[1] if len(sys.argv) > 1 else "avx2"))
