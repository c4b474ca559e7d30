"""The command line: inspect, run, demo; errors are one line and exit 1."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import qnnref
from qnnref import GraphBuilder
from qnnref.cli import main


@pytest.fixture
def model_file(tmp_path):
    b = GraphBuilder(description="cli test model", dataset="none")
    x = b.input("x", "int8", (2, 3), scale=0.5, zero_point=1)
    b.output(b.node("requantize", [x], {"dtype": "uint8"}, scale=0.25, zero_point=128, name="rq", output="y"))
    path = tmp_path / "m.qnn"
    qnnref.save(b.graph(), path)
    return path


def test_inspect_prints_io_nodes_quantization_and_digest(model_file, capsys):
    assert main(["inspect", str(model_file)]) == 0
    out = capsys.readouterr().out
    for text in ("digest", "sha256:", "input", "x", "int8", "2x3", "scale=0.5 zp=1", "rq", "requantize",
                 "uint8", "scale=0.25 zp=128", "cli test model", "profile"):
        assert text in out, text


def test_inspect_json(model_file, capsys):
    import json
    assert main(["inspect", "--json", str(model_file)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["inputs"] == ["x"] and d["nodes"][0]["op"] == "requantize"


def test_run_writes_npz(model_file, tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.array([[1, 3, -128], [127, 0, 2]], np.int8))
    out = tmp_path / "out.npz"
    assert main(["run", str(model_file), "--input", f"x={x}", "--output", str(out)]) == 0
    with np.load(out) as z:
        assert np.array_equal(z["y"], [[128, 132, 0], [255, 126, 130]])
    # one-input models may leave out NAME=
    assert main(["run", str(model_file), "--input", str(x)]) == 0
    assert "y: uint8[2, 3]" in capsys.readouterr().out


def _one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("qnnref: error: ") and err.count("\n") == 1, err
    return err


def test_errors_are_one_line(model_file, tmp_path, capsys):
    _one_line_error(capsys, ["inspect", str(tmp_path / "missing.qnn")])
    garbage = tmp_path / "garbage.qnn"
    garbage.write_bytes(b"not a model at all")
    _one_line_error(capsys, ["inspect", str(garbage)])
    _one_line_error(capsys, ["run", str(garbage)])
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 3), np.float32))
    err = _one_line_error(capsys, ["run", str(model_file), "--input", f"x={bad}"])
    assert "'x'" in err
    notnpy = tmp_path / "notnpy.npy"
    notnpy.write_bytes(b"\x00\x01")
    _one_line_error(capsys, ["run", str(model_file), "--input", f"x={notnpy}"])
    truncated = tmp_path / "trunc.qnn"
    truncated.write_bytes(model_file.read_bytes()[:-50])
    _one_line_error(capsys, ["inspect", str(truncated)])


def test_module_entry_point_runs_without_traceback(tmp_path):
    garbage = tmp_path / "g.qnn"
    garbage.write_bytes(b"\x00" * 100)
    r = subprocess.run([sys.executable, "-m", "qnnref", "inspect", str(garbage)], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.startswith("qnnref: error:")


def test_demo_prints_float_and_int8_accuracy(capsys):
    assert main(["demo", "--limit", "50"]) == 0
    out = capsys.readouterr().out
    assert "float accuracy" in out and "int8  accuracy" in out and "ms per image" in out
    assert "for all 50 images in one run; logits identical to batch 1" in out     # a symbolic batch
