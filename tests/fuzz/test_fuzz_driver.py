"""tools/fuzz.py, the long fuzz campaign: it counts crashes, hangs and raw
exceptions (writing reproducers) and goes on; a short campaign of each real
target finds nothing. The campaign itself (a million inputs) runs outside CI."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.path.join(ROOT, "tools", "fuzz.py")


def fuzz(*args, timeout=300):
    return subprocess.run([sys.executable, DRIVER, "-q", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def test_crashes_hangs_and_raw_exceptions_are_counted_and_the_campaign_goes_on(tmp_path):
    r = fuzz("--target", "selftest", "--inputs", "10", "--jobs", "1", "--timeout", "2", "--out", str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert "selftest: 10 inputs" in out, out
    assert "crashes: 2 (inputs [1, 6])" in out, out
    assert "hangs: 2 (inputs [2, 7])" in out, out
    assert "non-qnnref exceptions: 2 (1 distinct)" in out, out
    assert "qnnref errors: 2 " in out and "successes (read or imported, and ran): 2" in out, out
    names = sorted(os.listdir(tmp_path))
    for f in ("selftest-crash-1.txt", "selftest-hang-2.txt", "selftest-exception-3.txt"):
        assert f in names, names
    assert "IndexError" in (tmp_path / "selftest-exception-3.txt").read_text()


def test_a_short_qnn_campaign_finds_nothing(tmp_path):
    r = fuzz("--target", "qnn", "--inputs", "300", "--jobs", "1", "--out", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "qnn: 300 inputs" in r.stdout and "non-qnnref exceptions: 0" in r.stdout, r.stdout


def test_a_short_onnx_campaign_finds_nothing(tmp_path):
    pytest.importorskip("onnx", reason="the ONNX importer fuzzer needs onnx: pip install 'qnnref[test]'")
    pytest.importorskip("onnxruntime.quantization", reason="its seeds are quantized by onnxruntime: "
                        "pip install 'qnnref[test]'")
    r = fuzz("--target", "onnx", "--inputs", "200", "--jobs", "1", "--out", str(tmp_path),
             "--seeds-dir", str(tmp_path / "seeds"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "onnx: 200 inputs" in r.stdout and "non-qnnref exceptions: 0" in r.stdout, r.stdout


#: inputs of the long campaigns on main that once ended in a non-qnnref
#: exception (each fixed): their numbers regenerate them exactly
CAMPAIGN_FINDINGS = {
    20003223: "a symbolic batch: the fuzzer's own random_feeds passed 'N' to numpy",
    20142850: "an empty initializer with huge other dims: numpy's reshape raised ValueError",
    30126501: "constant folding of an object (None) array: onnx's from_array raised NotImplementedError",
    30150626: "a constant QuantizeLinear of an unknown domain: no handler, called anyway (TypeError)",
}


@pytest.fixture(scope="module")
def seeds_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("seeds")            # quantized once for the module's replays


@pytest.mark.parametrize("k", sorted(CAMPAIGN_FINDINGS))
def test_campaign_findings_replay_as_qnnref_errors_or_successes(seeds_dir, k):
    pytest.importorskip("onnx", reason="the ONNX importer fuzzer needs onnx: pip install 'qnnref[test]'")
    pytest.importorskip("onnxruntime.quantization", reason="its seeds are quantized by onnxruntime: "
                        "pip install 'qnnref[test]'")
    r = subprocess.run([sys.executable, DRIVER, "--target", "onnx", "--replay", str(k),
                        "--seeds-dir", str(seeds_dir)], capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    assert r.returncode == 0, f"{CAMPAIGN_FINDINGS[k]}:\n{r.stdout}{r.stderr}"
    assert f"input {k}: qnnref error" in r.stdout or f"input {k}: ok" in r.stdout, r.stdout
