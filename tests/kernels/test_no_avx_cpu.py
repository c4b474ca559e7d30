"""On a CPU without AVX2 the kernels must still load, offer only the scalar
ISA, refuse QNNREF_ISA=avx2 with a clear error, and give the reference's bits.

This machine has AVX2, so the test presents an older CPU to a subprocess:
qnnref/conform/cpuidmask.c hides AVX, FMA, AVX2, AVX-512, VNNI and AMX from
CPUID (Linux CPUID faulting) before qnnref's extension is loaded, so its CPU
detection (libgcc's __builtin_cpu_supports, initialised at load) sees a
baseline x86-64 CPU. (The hardware could still execute AVX, so this checks
dispatch; tests/kernels/test_isa_safety.py checks the code the linker kept.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from qnnref import _kernels

pytestmark = pytest.mark.skipif(not _kernels.available(), reason="the C++ kernels are not built")

CHILD = r"""
import json, os, sys
from qnnref.conform import cpumask
cpumask.enable("noavx,avx512,vnni,amx")
import numpy as np
import qnnref
info = qnnref.kernels_info()
path = qnnref.bundled_model("digits")
images, _ = qnnref.bundled_test_set("digits")
ref = qnnref.load(path, backend="reference")
kern = qnnref.load(path, backend="kernels", threads=2)
x = ref.quantize(ref.inputs[0].name, images[:16])
same = all(np.array_equal(ref.run(xi[None])[ref.outputs[0].name], kern.run(xi[None])[kern.outputs[0].name])
           for xi in x)
try:
    qnnref.load(path, backend="kernels", isa="avx2")
    refused = ""
except qnnref.QnnError as e:
    refused = str(e)
print(json.dumps({"isas": info["available_isas"], "isa": info["isa"], "kernel_isa": kern.isa,
                  "same": same, "refused": refused}))
"""


def test_a_cpu_without_avx_gets_the_scalar_kernels():
    from qnnref.conform import cpumask
    why = cpumask.unavailable()
    if why:
        pytest.skip(f"CPUID masking is unavailable here: {why}")
    env = {k: v for k, v in os.environ.items() if k not in ("QNNREF_ISA", "QNNREF_BACKEND", "QNNREF_THREADS")}
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["isas"] == ["scalar"] and out["isa"] == "scalar" and out["kernel_isa"] == "scalar"
    assert out["same"]
    assert "not supported by this CPU" in out["refused"]
