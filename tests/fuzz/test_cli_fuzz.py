"""The command line on mutated models: exit 0, or exit 1 with one line."""
from __future__ import annotations

import copy
import os
import tempfile

import numpy as np
import qnnref
from hypothesis import given, settings
from hypothesis import strategies as st
from qnnref import GraphBuilder
from qnnref import format as qformat
from qnnref.cli import main

from .harness import EXAMPLES, FUZZ, guarded, random_input, write_or_none
from .seeds import SEED_GRAPHS
from .strategies import mutated_graphs

# ---------------------------------------------------------------------------
# The command line on mutated files
# ---------------------------------------------------------------------------

def mutated_file_bytes(n: int) -> list[bytes]:
    """``n`` files whose graphs the file layer accepts but the model layer refuses."""
    out = []
    rng = np.random.default_rng(7)
    bad_attrs = [("conv", "strides", [0, 1]), ("maxpool", "kernel", [2**40, 1]), ("softmax", "beta", -1.0),
                 ("pad_edge", "mode", "wrap"), ("concat", "axis", 2**40), ("gather_const", "axis", "0"),
                 ("mean_c", "axes", []), ("q_tensor", "dtype", "int64")]
    for node_name, attr, value in bad_attrs[:n]:
        for seed, g in SEED_GRAPHS.items():
            if any(nd.name == node_name for nd in g.nodes):
                g = copy.deepcopy(g)
                next(nd for nd in g.nodes if nd.name == node_name).attrs[attr] = value
                out.append(qformat.to_bytes(g))
    rng.shuffle(out)
    return out


def _one_line_error(capsys, argv) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 1, captured
    assert captured.err.startswith("qnnref: error: ") and captured.err.count("\n") == 1, captured.err
    return captured.err


def test_cli_inspect_and_run_on_invalid_models(tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 6, 6, 4), np.int8))
    for i, data in enumerate(mutated_file_bytes(8)):
        path = tmp_path / f"bad{i}.qnn"
        path.write_bytes(data)
        err = _one_line_error(capsys, ["inspect", str(path)])
        assert str(path) in err and "node '" in err, err
        _one_line_error(capsys, ["run", str(path), "--input", f"x={x}"])
        _one_line_error(capsys, ["inspect", "--json", "--no-verify", str(path)])


def _cli(capsys, argv) -> int:
    """main(argv): exit 0, or 1 with one line on stderr; nothing else."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 1), (code, err)
    if code:
        assert err.startswith("qnnref: error: ") and err.count("\n") == 1, err
    return code


@settings(FUZZ, max_examples=EXAMPLES or 40)
@given(mutated_graphs(), st.integers(0, 2**32 - 1))
def test_cli_on_mutated_files(capsys, graph, seed):
    """inspect (text and JSON) and run on mutated files, valid or not."""
    data = write_or_none(graph)
    if data is None:
        return
    with tempfile.TemporaryDirectory() as tmp, guarded():
        path = os.path.join(tmp, "m.qnn")
        with open(path, "wb") as f:
            f.write(data)
        loads = _cli(capsys, ["inspect", path]) == 0
        assert (_cli(capsys, ["inspect", "--json", path]) == 0) == loads
        args = ["run", path, "--output", os.path.join(tmp, "out.npz")]
        if loads:
            rng = np.random.default_rng(seed)
            for spec in qnnref.load(path).inputs:
                npy = os.path.join(tmp, f"{len(args)}.npy")
                np.save(npy, random_input(spec, rng))
                args += ["--input", f"{spec.name}={npy}"]
        _cli(capsys, args)


def test_cli_run_writes_outputs_with_any_names(tmp_path, capsys):
    """Output tensors named like np.savez's own parameters ("file",
    "allow_pickle") are written like any other (np.savez(**outputs) raised
    TypeError on the first and silently dropped the second)."""
    b = GraphBuilder()
    x = b.input("x", "int8", (0, 4), scale=np.zeros((0,), np.float32), axis=0)
    for name in ("file", "allow_pickle", "arr_0"):
        b.output(b.node("requantize", [x], {"dtype": "int8"}, scale=np.zeros((0,), np.float32), axis=0,
                        output=name))
    path, npy, out = tmp_path / "m.qnn", tmp_path / "x.npy", tmp_path / "out.npz"
    qnnref.save(b.graph(), path)
    np.save(npy, np.zeros((0, 4), np.int8))
    assert main(["inspect", str(path)]) == 0           # per-axis on an empty axis: "(0 scales)"
    assert "axis=0 (0 scales)" in capsys.readouterr().out
    assert main(["run", str(path), "--input", str(npy), "--output", str(out)]) == 0
    with np.load(out) as z:
        assert sorted(z.files) == ["allow_pickle", "arr_0", "file"]


def test_cli_run_reports_runtime_errors_in_one_line(tmp_path, capsys):
    """A valid model whose run fails (a gather index out of range)."""
    path = tmp_path / "m.qnn"
    qnnref.save(copy.deepcopy(SEED_GRAPHS["elementwise"]), path)
    arrays = {"a": np.zeros((2, 1, 3), np.int8), "c": np.zeros((1, 4, 3), np.int8),
              "i": np.array([0, 1, 99], np.int64)}
    args = ["run", str(path)]
    for name, arr in arrays.items():
        np.save(tmp_path / f"{name}.npy", arr)
        args += ["--input", f"{name}={tmp_path / f'{name}.npy'}"]
    err = _one_line_error(capsys, args)
    assert "gather_input" in err and "99" in err
