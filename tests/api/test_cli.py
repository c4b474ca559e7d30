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


# ---------------------------------------------------------------------------
# issue 8: --version, help for every argument, --limit >= 1, kernels not
# built, inspect --json schema, -v/--verbose and -q/--quiet
# ---------------------------------------------------------------------------

def _clean_env() -> dict:
    """This environment without QNNREF_* (a cross-check CI pass sets QNNREF_BACKEND) or PYTHONPATH."""
    import os
    return {k: v for k, v in os.environ.items() if not k.startswith("QNNREF_") and k != "PYTHONPATH"}


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"qnnref {qnnref.__version__}"
    r = subprocess.run([sys.executable, "-m", "qnnref", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"qnnref {qnnref.__version__}"


def test_every_argument_of_every_command_has_a_help_line():
    import argparse
    from qnnref.cli import build_parser
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sub.choices, "no commands"
    missing = [f"qnnref {a.dest}" for a in parser._actions if not a.help]
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.help in (None, "") and not isinstance(action, argparse._HelpAction):
                missing.append(f"{name} {action.dest}")
    assert not missing, f"arguments without help: {missing}"
    # positionals are named in the usage line and described (not "file" with nothing after it)
    inspect_help = sub.choices["inspect"].format_help()
    assert "FILE" in inspect_help and "the .qnn model to describe" in inspect_help
    convert_help = sub.choices["convert"].format_help()
    assert "IN.onnx" in convert_help and "OUT.qnn" in convert_help and "the .qnn file to write" in convert_help


@pytest.mark.parametrize("limit", ["0", "-3", "x", "1.5"])
def test_demo_limit_must_be_at_least_one(capsys, limit):
    """--limit -3 ran all but the last 3 images and --limit 0 ran all: now a usage error."""
    with pytest.raises(SystemExit) as e:
        main(["demo", "--limit", limit])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--limit" in err and ">= 1" in err, err


def test_demo_limit_counts_images_and_defaults_to_all(capsys):
    images, _ = qnnref.bundled_test_set("digits")
    assert main(["demo", "--limit", "7"]) == 0
    assert "test set  7 held-out images" in capsys.readouterr().out
    assert main(["demo"]) == 0
    assert f"test set  {len(images)} held-out images" in capsys.readouterr().out


def _package_without_kernels(tmp_path, so_bytes: bytes | None = None):
    """A copy of the qnnref package with its compiled extension removed
    (or replaced by ``so_bytes``), as a QNNREF_NO_KERNELS install leaves it."""
    import shutil
    from pathlib import Path
    src = Path(qnnref.__file__).parent
    dst = tmp_path / "site" / "qnnref"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "_ext.cpp"))
    if so_bytes is not None:
        import sysconfig
        (dst / "_kernels" / ("_ext" + sysconfig.get_config_var("EXT_SUFFIX"))).write_bytes(so_bytes)
    return dst.parent


def _qnnref_cli(site, *argv):
    return subprocess.run([sys.executable, "-m", "qnnref", *argv], capture_output=True, text=True,
                          cwd=site, env=_clean_env(), timeout=300)


def test_kernels_command_without_compiled_kernels_says_they_were_not_built(tmp_path):
    """It said "cannot import name '_ext' from partially initialized module
    ... (most likely due to a circular import)"."""
    site = _package_without_kernels(tmp_path)
    r = _qnnref_cli(site, "kernels")
    assert r.returncode == 0, r.stderr
    assert "circular" not in r.stdout + r.stderr
    assert "the C++ kernels were not built" in r.stdout and "QNNREF_NO_KERNELS" in r.stdout, r.stdout
    assert "built            False" in r.stdout
    # import qnnref and the reference backend work without them
    r = _qnnref_cli(site, "demo", "--limit", "3")
    assert r.returncode == 0 and "reference backend" in r.stdout, r.stdout + r.stderr
    r = _qnnref_cli(site, "demo", "--limit", "3", "--backend", "kernels")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("qnnref: error: backend 'kernels' needs the C++ kernels: the C++ kernels were not built")


def test_kernels_command_with_a_broken_extension_says_it_cannot_be_loaded(tmp_path):
    site = _package_without_kernels(tmp_path, so_bytes=b"not an ELF file")
    r = _qnnref_cli(site, "kernels", "--json")
    assert r.returncode == 0, r.stderr
    import json
    info = json.loads(r.stdout)
    assert info["built"] is False and info["default_backend"] == "reference"
    assert info["error"].startswith("the compiled C++ kernels are there but cannot be loaded"), info


def test_inspect_json_has_a_schema_field(model_file, capsys):
    import json
    from qnnref.cli import INSPECT_SCHEMA
    assert main(["inspect", "--json", str(model_file)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["schema"] == INSPECT_SCHEMA == "qnnref-inspect/1"
    assert list(d)[0] == "schema"


def _run_args(model_file, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.array([[1, 3, -128], [127, 0, 2]], np.int8))
    return ["run", str(model_file), "--input", f"x={x}", "--output", str(tmp_path / "out.npz")]


def test_status_lines_verbose_and_quiet(model_file, tmp_path, capsys):
    args = _run_args(model_file, tmp_path)
    assert main(args) == 0                      # default: the status line, no details
    c = capsys.readouterr()
    assert c.out.count("wrote 1 tensor(s) to") == 1 and c.err == "", c
    assert main(args) == 0                      # handlers are removed after each call, not piled up
    assert capsys.readouterr().out.count("wrote") == 1
    import logging
    assert not logging.getLogger("qnnref").handlers and logging.getLogger("qnnref").propagate
    for argv in (["-v", *args], [*args, "--verbose"]):
        assert main(argv) == 0
        c = capsys.readouterr()
        assert "wrote 1 tensor(s)" in c.out
        assert all(line.startswith("qnnref: debug: ") for line in c.err.splitlines()), c.err
        for text in ("loaded", "sha256:", "backend", "plan: 1 nodes", "rq (requantize)", "ran in"):
            assert text in c.err, text
    for argv in (["-q", *args], [*args, "--quiet"]):
        assert main(argv) == 0
        c = capsys.readouterr()
        assert c.out == "" and c.err == "", c
    # the result a command was asked for is still printed under -q; errors too
    assert main(["inspect", "-q", str(model_file)]) == 0
    assert "requantize" in capsys.readouterr().out
    _one_line_error(capsys, ["-q", "inspect", str(tmp_path / "missing.qnn")])


def test_demo_quiet_prints_only_the_results(capsys):
    assert main(["demo", "-q", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert "int8  accuracy" in out and "sha256" not in out and "demo:" not in out


def test_verbose_and_quiet_cannot_be_combined(model_file, capsys):
    with pytest.raises(SystemExit) as e:
        main(["-v", "inspect", "-q", str(model_file)])
    assert e.value.code == 2 and "cannot be combined" in capsys.readouterr().err


def test_quiet_before_conform_is_its_quiet(monkeypatch):
    import qnnref.cli as cli
    seen = []
    monkeypatch.setattr(cli, "cmd_conform", lambda args: seen.append(args.rest) or 0)
    assert cli.main(["-q", "conform", "onnxruntime", "--suite", "builtin"]) == 0
    assert cli.main(["conform", "onnxruntime", "m.onnx"]) == 0
    assert seen == [["onnxruntime", "--suite", "builtin", "--quiet"], ["onnxruntime", "m.onnx"]]


def test_a_closed_pipe_stops_quietly(tmp_path):
    """`qnnref inspect big.qnn | head -1` printed "qnnref: error: : Broken pipe":
    the BrokenPipeError branch came after the OSError one, which caught it."""
    b = GraphBuilder()
    x = b.input("x", "int8", (2, 3), scale=0.5, zero_point=1)
    for i in range(1500):               # far more than a pipe's buffer of output
        x = b.node("requantize", [x], {"dtype": "int8"}, scale=0.5, zero_point=1, name=f"n{i}", output=f"t{i}")
    b.output(x)
    path = tmp_path / "big.qnn"
    qnnref.save(b.graph(), path)
    p = subprocess.Popen([sys.executable, "-m", "qnnref", "inspect", str(path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=_clean_env())
    assert p.stdout.readline().startswith(b"file")
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 1 and err == "", err


def test_library_log_records_reach_the_cli_streams(monkeypatch, model_file, capsys):
    """Records of any qnnref.* logger during a command: INFO on stdout, the rest
    on stderr with the level, DEBUG only with -v."""
    import logging
    import qnnref.cli as cli
    original = cli.cmd_inspect

    def inspect_and_log(args):
        lib = logging.getLogger("qnnref.somewhere")
        lib.debug("a detail")
        lib.info("a status")
        lib.warning("a warning")
        lib.error("an error")
        return original(args)
    monkeypatch.setattr(cli, "cmd_inspect", inspect_and_log)
    assert main(["inspect", str(model_file)]) == 0
    c = capsys.readouterr()
    assert c.out.startswith("a status\n")
    assert c.err == "qnnref: warning: a warning\nqnnref: error: an error\n", c.err
    assert main(["-v", "inspect", str(model_file)]) == 0
    assert "qnnref: debug: a detail\n" in capsys.readouterr().err
    assert main(["-q", "inspect", str(model_file)]) == 0
    c = capsys.readouterr()
    assert "a status" not in c.out and "a warning" in c.err
