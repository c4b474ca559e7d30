"""``qnnref conform onnxruntime``: arguments, exit codes, the JSON file, and
a small real run once qnnref's importer and the ONNX Runtime profiles exist."""
from __future__ import annotations

import json

import pytest

from qnnref.conform import main
from qnnref.conform.engine import profile_variant
from qnnref.profiles import PROFILES

from .conftest import needs_importer, needs_ort, needs_ort_profile
from .fakes import ReferenceEngine

pytestmark = needs_ort
EXACT = "float32-half-to-even"
#: rows whose every case onnx.reference runs (standard operators only)
REF_ROWS = "QuantizeLinear,DequantizeLinear"


class _OffByOne(ReferenceEngine):
    def run(self, case, profile, onnx_model=None, float_nodes=()):
        res = super().run(case, profile, onnx_model, float_nodes)
        res.outputs = {k: (v + 1).astype(v.dtype) if v.dtype.kind in "iu" else v for k, v in res.outputs.items()}
        return res



@pytest.mark.parametrize("argv, message", [
    (["--profile", "no-such-profile"], "unknown semantic profile"),
    (["--ops", "Conv"], "unknown --ops"),
    (["--cases", "0"], "--cases"),
    (["missing.onnx"], "no such model file"),
])
def test_usage_errors_exit_2(argv, message, capsys, fake_engine):
    fake_engine(ReferenceEngine)
    assert main(["onnxruntime", *argv]) == 2
    assert message in capsys.readouterr().err


def test_pass_writes_json_and_exits_0(tmp_path, capsys, fake_engine):
    fake_engine(ReferenceEngine)
    out = tmp_path / "r.json"
    rc = main(["onnxruntime", "--ops", REF_ROWS, "--cases", "16", "--profile", EXACT, "--json", str(out),
               "--progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.out
    assert "16/16" in captured.err                           # the progress bar, on stderr
    assert captured.out.splitlines()[-1].startswith("PASS")
    doc = json.loads(out.read_text())
    assert doc["schema"] == "qnnref-conform/2" and doc["exit_code"] == 0
    assert doc["totals"]["cases"] == 16 and doc["expected_profile"] == EXACT
    assert set(doc["operators"]) == {"QuantizeLinear", "DequantizeLinear"}
    assert doc["vendor"]["onnxruntime"] and "vnni" in doc["machine"]


def test_difference_exits_1(tmp_path, capsys, fake_engine):
    fake_engine(_OffByOne)
    out = tmp_path / "r.json"
    rc = main(["onnxruntime", "--ops", "QuantizeLinear", "--cases", "6", "--profile", EXACT,
               "--json", str(out), "--quiet"])
    assert rc == 1
    text = capsys.readouterr().out
    assert text.startswith("FAIL") and len(text.splitlines()) == 1
    doc = json.loads(out.read_text())
    bad = [c for c in doc["cases"] if c["profiles"][EXACT]["status"] not in ("exact", "within-bound")]
    assert bad and all("diagnosis" in c["profiles"][EXACT] for c in bad)


def test_unsupported_fails_unless_allowed(capsys, fake_engine):
    class Refusing(ReferenceEngine):
        def __init__(self):
            super().__init__(fail_ops={"QuantizeLinear"})
    fake_engine(Refusing)
    argv = ["onnxruntime", "--ops", "QuantizeLinear", "--cases", "4", "--profile", EXACT, "--quiet"]
    assert main(argv) == 1                    # not compared, and no documented reason: a failure
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and "4 unsupported by qnnref" in out and "0 compared" in out
    assert main(argv + ["--allow-unsupported"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS") and "4 unsupported by qnnref" in out and "allowed by --allow-unsupported" in out
    assert main(argv + ["--allow-unsupported", "--strict"]) == 2


def test_model_files(tmp_path, capsys, fake_engine):
    from qnnref.conform.suite import make_case
    fake_engine(ReferenceEngine)
    path = tmp_path / "q.onnx"
    path.write_bytes(make_case("QuantizeLinear", 1).model)
    assert main(["onnxruntime", str(path), "--profile", EXACT]) == 0
    assert "q.onnx" not in capsys.readouterr().err


def test_profile_variants_change_only_known_fields():
    v = profile_variant(EXACT, {"pairwise_int16_saturation": True, "no_such_field": 1})
    assert v == f"{EXACT}[pairwise_int16_saturation=True]"
    assert PROFILES[v].pairwise_int16_saturation and PROFILES[v].requant == PROFILES[EXACT].requant
    assert profile_variant(EXACT, {"pairwise_int16_saturation": False}) == EXACT


@needs_importer
@needs_ort_profile
def test_small_builtin_suite_conforms_to_ort_cpu_x86(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["onnxruntime", "--cases", "60", "--json", str(out)])
    text = capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["expected_profile"].startswith("ort-cpu-x86")
    assert rc == 0, text
    assert doc["totals"]["failures"] == 0


def _qemu() -> bool:
    import shutil
    return shutil.which("qemu-x86_64") is not None


@needs_importer
@needs_ort_profile
@pytest.mark.skipif(not _qemu(), reason="qemu-x86_64 (qemu-user) is not installed")
def test_emulated_avx2_saturation_is_diagnosed(tmp_path):
    """ONNX Runtime on an emulated Haswell (AVX2, no VNNI) saturates u8 x s8
    pair sums; ort-cpu-x86 explains it, and under onnx the diagnosis names it."""
    from qnnref.conform import run_conformance
    from qnnref.conform.suite import make_case
    cases = [make_case("QLinearMatMul", 13), make_case("QLinearMatMul", 6)]    # u8s8: saturate, random
    rep = run_conformance(cases, ["ort-cpu-x86", "onnx"], emulate_cpu="Haswell", jobs=1)
    assert rep.exit_code() == 0, rep.render()
    sat = [r for r in rep.results if r.outcomes["onnx"].status == "differs"]
    assert sat, "no case saturated: is the emulated CPU really without VNNI?"
    for r in sat:
        dg = r.outcomes["onnx"].diagnosis
        assert dg["node"] == "matmul" and "u8\u00d7s8 int16 saturation" in dg["explained_by"]


def test_suite_size_is_said_in_one_place(capsys):
    """--help computes the built-in suite's size; README and spec point there
    instead of repeating a number (they said ~2,100, 2,180 and 2,225)."""
    import os
    import re

    from qnnref.conform.suite import FULL_SUITE_SIZE, GENERATORS
    with pytest.raises(SystemExit):
        main(["onnxruntime", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"The built-in suite: {FULL_SUITE_SIZE} cases in {len(GENERATORS)} rows" in text
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    number = re.compile(r"\b\d,?\d{3} (?:seeded |generated )?cases\b")
    for page in ("README.md", "spec/conformance.md", "spec/profiles/README.md"):
        body = open(os.path.join(root, page), encoding="utf-8").read()
        assert not number.findall(body), f"{page} repeats the suite size: {number.findall(body)}"
