"""``--cpu``: ONNX Runtime presented with an older CPU by CPUID masking
(qnnref/conform/cpumask.py + cpuidmask.c), at native speed. The tests that
need CPUID faulting skip, with the reason, where the machine has none."""
from __future__ import annotations

import pytest

from qnnref.conform import cpumask, main, run_conformance
from qnnref.conform.runner import OrtRunner, VendorUnavailable, cpu_mask_env

from .conftest import needs_importer, needs_ort, needs_ort_profile

WHY = cpumask.unavailable()
needs_cpu_mask = pytest.mark.skipif(bool(WHY), reason=f"CPUID masking is unavailable here: {WHY}")


def test_cpu_models():
    assert cpumask.CPU_MODELS["native"] == ""
    assert cpumask.hides_vnni(cpumask.CPU_MODELS["avx2"]) and cpumask.hides_vnni(cpumask.CPU_MODELS["avx512"])
    assert "avx512" in cpumask.CPU_MODELS["avx2"] and "avx512" not in cpumask.CPU_MODELS["avx512"]
    assert cpu_mask_env("native") == {}
    with pytest.raises(VendorUnavailable, match="unknown --cpu"):
        cpu_mask_env("pentium")


def test_unavailable_says_why(monkeypatch):
    monkeypatch.setattr(cpumask, "_platform_problem", lambda: "no CPUID faulting (test)")
    assert cpumask.unavailable() == "no CPUID faulting (test)"
    with pytest.raises(VendorUnavailable, match="--cpu avx2 is unavailable here: no CPUID faulting"):
        cpu_mask_env("avx2")
    monkeypatch.setattr(cpumask, "_platform_problem", lambda: "")
    monkeypatch.setattr(cpumask, "_compiler", lambda: None)
    assert "no C compiler" in cpumask.unavailable()
    monkeypatch.setattr(cpumask, "_compiler", lambda: ["/nonexistent/cc"])
    monkeypatch.setattr(cpumask, "_cache_dirs", lambda: [])
    assert "no writable cache directory" in cpumask.unavailable()


@needs_cpu_mask
def test_the_shim_is_compiled_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QNNREF_CACHE_DIR", str(tmp_path))
    assert cpumask._cache_dirs()[0] == tmp_path
    monkeypatch.setattr(cpumask, "_cache_dirs", lambda: [tmp_path])
    so = cpumask.library_path()
    assert so.parent == tmp_path and so.is_file()
    stamp = so.stat().st_mtime_ns
    assert cpumask.library_path() == so and so.stat().st_mtime_ns == stamp


@needs_ort
@needs_cpu_mask
def test_the_worker_sees_the_cpu_asked_for():
    """The worker's greeting measures u8 x s8: saturated with VNNI hidden."""
    runner = OrtRunner(env=cpu_mask_env("avx2"))
    try:
        hello = runner.start()
    finally:
        runner.close()
    assert hello["u8s8_saturates"] is True and hello["hidden_cpu_features"] == "avx512,vnni,amx"


@needs_ort
def test_cpu_and_emulation_exclude_each_other(capsys):
    assert main(["onnxruntime", "--cpu", "avx2", "--emulate-cpu", "Haswell", "--cases", "1"]) == 2
    assert "exclude each other" in capsys.readouterr().err


@needs_importer
@needs_ort_profile
@needs_cpu_mask
def test_avx2_cpu_saturation_is_diagnosed_and_explained():
    """With AVX-512, VNNI and AMX hidden, ONNX Runtime saturates u8 x s8 pair
    sums: ort-cpu-x86 (the expected profile) explains every case, and under
    onnx the diagnosis names the saturation. The QDQ convolution with a Relu
    that ONNX Runtime leaves in float (FusedConv) is explained too: qnnref runs
    that node without the saturation."""
    from qnnref.conform.suite import make_case
    cases = [make_case("QLinearMatMul", 13), make_case("QLinearMatMul", 6), make_case("QDQ Conv", 2),
             make_case("QLinearAveragePool", 8)]
    rep = run_conformance(cases, cpu="avx2")
    assert rep.profiles[0] == "ort-cpu-x86" and rep.meta["vendor"]["u8s8_saturates"] is True
    assert rep.exit_code() == 0, rep.render()
    sat = [r for r in rep.results if r.outcomes["onnx"].status == "differs" and r.op == "QLinearMatMul"]
    assert sat, "no case saturated: is VNNI really hidden?"
    for r in sat:
        dg = r.outcomes["onnx"].diagnosis
        assert dg["node"] == "matmul" and "u8\u00d7s8 int16 saturation" in dg["explained_by"]
    qdq = next(r for r in rep.results if r.op == "QDQ Conv")
    assert any(op == "FusedConv" for op, _ in qdq.vendor_ops) and qdq.outcomes["ort-cpu-x86"].explains


@needs_importer
@needs_ort_profile
def test_nodes_ort_computed_in_float_run_without_saturation():
    """engine.without_saturation: the matmul / conv2d nodes imported from the
    named ONNX nodes get pairwise_int16_saturation false; nothing else changes."""
    from qnnref.conform.engine import without_saturation
    from qnnref.conform.suite import make_case
    from qnnref.onnx import import_onnx
    model = import_onnx(make_case("graph", 4).model, profile="ort-cpu-x86")
    assert without_saturation(model, ()) is model and without_saturation(model, ["maxpool"]) is model
    # ORT leaves DQ -> Flatten -> MatMul -> Q in float: the importer now
    # reproduces that choice itself (a float_matmul, which has no saturation)
    ops = {n.name: n.op for n in model.graph.nodes}
    assert ops["fc"] == "float_matmul" and ops["conv"] == "conv2d"
    assert without_saturation(model, ["fc"]) is model
    changed = without_saturation(model, ["conv"])
    flags = {n.name: n.attrs.get("pairwise_int16_saturation") for n in changed.graph.nodes}
    assert flags["conv"] is False


def _onnx_helpers():
    """tests/onnx_import/onnx_helpers.py (the digits CNN as a float ONNX model, ORT's quantizer)."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "onnx_import" / "onnx_helpers.py"
    spec = importlib.util.spec_from_file_location("onnx_helpers_for_conform", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@needs_importer
@needs_ort_profile
@needs_cpu_mask
@pytest.mark.parametrize("fmt,act", [("qdq", "u8"), ("qop", "u8"), ("qop", "s8"), ("qdq", "s8")])
def test_quantize_static_models_under_ort_cpu_x86(tmp_path, fmt, act):
    """The issue's acceptance on this machine whatever its CPU: the trained
    digits CNN quantized by ORT's own quantize_static (per-channel s8
    weights), run by ORT as on an AVX2 CPU, is explained by ort-cpu-x86."""
    from qnnref.conform.suite import Case
    h = _onnx_helpers()
    images, _ = h.digits_images()
    qm = h.ort_quantize(tmp_path, h.digits_float_model(), images, fmt, act, "s8", True)
    cases = [Case(id=f"digits/{i}", op=f"digits {fmt} {act}s8", model=qm.SerializeToString(),
                  inputs={"image": images[i:i + 1]}) for i in range(0, 360, 12)]
    rep = run_conformance(cases, ["ort-cpu-x86"], cpu="avx2")
    assert rep.exit_code() == 0, rep.render()
