"""The test suite's own set-up: which CPU the vendor runtimes see
(``QNNREF_TEST_VENDOR_CPU``, tests/vendor_cpu.py), and that nothing under
tests/ stands in for a vendor package (tests/onnx did: a namespace package
named ``onnx`` fooled every ``importorskip("onnx")`` on machines without onnx)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vendor_cpu

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

#: the packages the tests import, optionally or not: no file or directory
#: under tests/ (several of its directories are on sys.path) may bear their names
VENDOR_PACKAGES = {"onnx", "onnxruntime", "qonnx", "numpy", "pytest", "hypothesis", "pytest_benchmark",
                   "qnnref", "google", "protobuf", "onnxscript", "brevitas", "tflite_runtime", "ai_edge_litert"}


def test_no_test_directory_shadows_a_vendor_package():
    shadows = [str(p.relative_to(ROOT)) for p in TESTS.rglob("*")
               if "__pycache__" not in p.parts and (p.stem if p.suffix == ".py" else p.name) in VENDOR_PACKAGES]
    assert not shadows, f"these would be imported instead of the real packages: {shadows}"


@pytest.mark.parametrize("name", ["onnx", "onnxruntime", "qonnx"])
def test_vendor_packages_resolve_outside_tests(name):
    """Here, with tests/ directories on sys.path: an installed package is the
    real one, and a missing one is missing (so that the tests skip)."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    locations = [spec.origin] if spec.origin else list(spec.submodule_search_locations or [])
    assert locations and not any(str(loc).startswith(str(TESTS)) for loc in locations), locations


def test_unknown_vendor_cpu_is_refused():
    why = vendor_cpu.unavailable("pentium")
    assert "QNNREF_TEST_VENDOR_CPU" in why and "avx2" in why
    assert vendor_cpu.unavailable("native") == ""


def test_requested_defaults_to_native(monkeypatch):
    monkeypatch.delenv(vendor_cpu.ENV, raising=False)
    assert vendor_cpu.requested() == "native"
    monkeypatch.setenv(vendor_cpu.ENV, " avx2 ")
    assert vendor_cpu.requested() == "avx2"


def test_a_run_that_cannot_mask_stops_with_the_reason(tmp_path):
    """QNNREF_TEST_VENDOR_CPU with an unknown CPU: pytest stops (usage error,
    exit 4) naming the problem, instead of testing the native CPU silently."""
    env = dict(os.environ, **{vendor_cpu.ENV: "pentium"})
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(TESTS / "test_vendor_cpu.py"), "-k", "defaults_to_native"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "pentium" in r.stderr and "not a CPU model" in r.stderr


def _have_ort() -> bool:
    return importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None


def test_masked_run_reaches_every_onnx_runtime():
    """Under QNNREF_TEST_VENDOR_CPU=avx2 (run here in a child pytest): the
    ONNX Runtime imported in the pytest process, the one in
    tests/profiles/ort_harness.py's subprocess and the conformance worker
    all saturate u8 x s8 pairs (MLAS's AVX2 kernels), and all three agree
    that this run's profile is ort-cpu-x86."""
    if not _have_ort():
        pytest.skip("onnx / onnxruntime is not installed")
    why = vendor_cpu.unavailable("avx2")
    if why:
        pytest.skip(f"cannot mask the CPU here: {why}")
    if vendor_cpu.requested() == "avx2":
        pytest.skip("this run is masked already: test_under_the_mask runs directly")
    env = dict(os.environ, **{vendor_cpu.ENV: "avx2"})
    env.pop("QNNREF_CPUID_MASK", None)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"{TESTS / 'test_vendor_cpu.py'}::test_under_the_mask"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


def test_under_the_mask():
    """(Runs only under a mask: see test_masked_run_reaches_every_onnx_runtime.)"""
    if vendor_cpu.requested() != "avx2":
        pytest.skip("runs only with QNNREF_TEST_VENDOR_CPU=avx2")
    if not _have_ort():
        pytest.skip("onnx / onnxruntime is not installed")
    import onnx
    import onnxruntime as ort

    from qnnref.conform.worker import u8s8_saturates
    sys.path.insert(0, str(TESTS / "profiles"))
    import ort_harness
    assert os.environ["QNNREF_CPUID_MASK"] == "avx512,vnni,amx"
    assert u8s8_saturates(ort, onnx) is True                      # in this process
    assert ort_harness.saturates("native") is True                # the worker, a child of this run
    (out,) = ort_harness.run_cases([_classic_case()])             # ort_harness's subprocess
    assert int(out[0][0, 0]) == 32767
    assert ort_harness.native_profile() == "ort-cpu-x86"


def _classic_case():
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    g = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "classic",
                          [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1])],
                          [numpy_helper.from_array(np.array([[127], [127]], np.int8), "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    return m.SerializeToString(), {"a": np.array([[255, 255]], np.uint8)}
