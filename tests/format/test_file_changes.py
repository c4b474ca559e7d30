"""A loaded model is immune to its file changing on disk (spec/format.md,
"Loading into private memory").

Once ``qnnref.load`` has verified a file, the bytes it verified are what
runs: overwriting the bias bytes in place must not change the answers, and
truncating the file must not crash the process (with a memory map it was a
SIGBUS on both backends). Each case runs in a subprocess, so a crash fails
the test instead of killing pytest.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import qnnref

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent(r"""
    import json, os, struct, sys
    import numpy as np
    import qnnref

    path, backend, change = sys.argv[1], sys.argv[2], sys.argv[3]
    model = qnnref.load(path, backend=backend)
    spec = model.inputs[0]
    shape = [2 if isinstance(d, str) else d for d in spec.shape]    # a symbolic batch: 2 items
    x = np.random.default_rng(0).integers(-128, 128, shape).astype(spec.dtype)
    before = {k: np.array(v, copy=True) for k, v in model.run(x).items()}

    with open(path, "rb") as f:
        magic, major, minor, h, l = struct.unpack("<8sHHQQ", f.read(28))
        header = json.loads(f.read(h))
    data_start = -(-(28 + h) // 64) * 64
    if change == "overwrite-bias":
        blobs = [t["data"] for t in header["tensors"] if t.get("data") and t["dtype"] == "int32"]
        assert blobs, "the model has no int32 (bias) constants"
        with open(path, "r+b") as f:
            for blob in blobs:
                f.seek(data_start + blob["offset"])
                f.write(b"\x7f" * blob["nbytes"])
    elif change == "overwrite-all":
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.write(b"\xa5" * size)
    elif change.startswith("truncate"):
        os.truncate(path, 0 if change == "truncate-0" else data_start + 1)
    else:
        raise SystemExit("unknown change " + change)

    for _ in range(2):
        after = model.run(x)
        assert after.keys() == before.keys()
        for k, b in before.items():
            assert b.dtype == after[k].dtype and np.array_equal(b, after[k]), "the answers changed"
    print("same bits")
""")


def backends():
    out = ["reference"]
    if qnnref.kernels_info()["built"]:
        out.append("kernels")
    return out


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("change", ["overwrite-bias", "overwrite-all", "truncate-0", "truncate-data"])
def test_loaded_model_ignores_changes_to_its_file(tmp_path, backend, change):
    path = tmp_path / "digits.qnn"
    shutil.copyfile(qnnref.bundled_model("digits"), path)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(path), backend, change],
                            capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert result.returncode == 0, (
        f"exit {result.returncode} (a negative code is a signal, e.g. -7 SIGBUS)\n"
        f"{result.stdout}\n{result.stderr}")
    assert "same bits" in result.stdout


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_a_device_is_refused_not_read_forever(path):
    """The file is read whole into memory: a device without end (or size) is
    refused, not read until memory runs out."""
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    with pytest.raises(qnnref.FormatError, match="not a regular file"):
        qnnref.load(path)


def test_a_fifo_is_refused(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    fifo = tmp_path / "pipe.qnn"
    os.mkfifo(fifo)
    import threading
    writer = threading.Thread(target=lambda: open(fifo, "wb").close())   # lets open() return
    writer.start()
    try:
        with pytest.raises(qnnref.FormatError, match="not a regular file"):
            qnnref.load(fifo)
    finally:
        writer.join(5)
