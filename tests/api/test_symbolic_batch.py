"""A symbolic batch (spec/format.md, "Symbolic batch"): load once, run at any
batch size, with the same bits per item as batch 1, on every backend, ISA and
thread count; the file round-trips it; what would mix the items of a batch is
refused at load time; size limits are checked per batch before allocating."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import qnnref
from qnnref import _kernels
from qnnref import format as qformat
from qnnref.errors import FormatError, QnnError, RuntimeCheckError, ValidationError

BACKENDS = ["reference"] + (["kernels", "cross-check"] if _kernels.available() else [])
ISAS = _kernels.available_isas() or [None]


def cnn(rng, batch="N", out_dtype="int8"):
    """conv -> depthwise conv -> max pool -> avg pool -> add of a constant
    (broadcast) -> concat on channels -> table -> flatten [N, -1] -> matmul ->
    softmax, and a mean over H, W: the common CNN patterns."""
    b = qnnref.GraphBuilder(profile="qnnref", description="symbolic batch cnn")
    x = b.input("x", "int8", (batch, 8, 8, 2), scale=0.02, zero_point=-3)
    w = b.constant("w", rng.integers(-127, 128, (4, 3, 3, 2)).astype(np.int8),
                   scale=np.linspace(0.005, 0.02, 4).astype(np.float32), axis=0)
    bias = b.constant("bias", rng.integers(-500, 500, 4).astype(np.int32))
    y = b.node("conv2d", [x, w, bias], {"pads": [1, 1, 1, 1]}, scale=0.05, zero_point=2, name="conv")
    dw = b.constant("dw", rng.integers(-127, 128, (4, 3, 3, 1)).astype(np.int8),
                    scale=np.full(4, 0.01, np.float32), axis=0)
    y = b.node("conv2d", [y, dw], {"groups": 4, "pads": [1, 1, 1, 1]}, scale=0.05, zero_point=2, name="dw")
    y = b.node("max_pool2d", [y], {"kernel": [2, 2], "strides": [2, 2]}, scale=0.05, zero_point=2, name="pool")
    y = b.node("avg_pool2d", [y], {"kernel": [3, 3], "pads": [1, 1, 1, 1]}, scale=0.05, zero_point=2,
               name="avg")
    c = b.constant("c", rng.integers(-128, 128, (1, 1, 1, 4)).astype(np.int8), scale=0.03, zero_point=1)
    y = b.node("add", [y, c], scale=0.06, zero_point=0, name="add")
    y = b.node("concat", [y, y], {"axis": 3}, scale=0.06, zero_point=0, name="cat")
    table = b.constant("lut", rng.integers(-128, 128, 256).astype(np.int8))
    y = b.node("table", [y, table], scale=0.06, zero_point=0, name="lut")
    m = b.node("mean", [y], {"axes": [1, 2], "keepdims": False}, scale=0.06, zero_point=0, name="gap")
    f = b.node("reshape", [y], {"shape": [-1, 128]}, scale=0.06, zero_point=0, name="flat")
    fc = b.constant("fc", rng.integers(-127, 128, (4 * 4 * 8, 10)).astype(np.int8), scale=0.01)
    y = b.node("matmul", [f, fc], scale=0.1, zero_point=0, name="fc")
    y = b.node("softmax", [y], scale=1 / 256, zero_point=-128, name="softmax")
    b.output(y, m)
    return b


def per_item_identical(model, x):
    """Run ``x`` as one batch and item by item; every output bit-identical."""
    whole = model.run(x)
    for name, value in whole.items():
        assert value.shape[0] == len(x)
        alone = np.concatenate([model.run(x[i:i + 1])[name] for i in range(len(x))])
        assert np.array_equal(value, alone), name
    return whole


def test_builder_declares_the_batch_and_shapes_follow_it(rng):
    g = cnn(rng).graph()
    shapes = {k: t.shape for k, t in g.tensors.items() if not t.is_constant}
    assert shapes["x"] == ("N", 8, 8, 2) and shapes["flat_out"] == ("N", 128)
    assert shapes["gap_out"] == ("N", 8) and all(s[0] == "N" for s in shapes.values())
    m = qnnref.Model(g, backend="reference")
    assert m.batch_symbol == "N" and g.batch_symbol == "N"
    assert m.inputs[0].shape == ("N", 8, 8, 2) and m.inputs[0].batch_symbol == "N"
    assert str(m.inputs[0]).startswith("x: int8[N,8,8,2]")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 3])
def test_every_item_gets_its_batch_1_bits(rng, backend, isa, threads):
    if backend == "reference" and (isa != ISAS[0] or threads != 1):
        pytest.skip("the reference has no ISA or threads")
    model = qnnref.Model(cnn(rng).graph(), backend=backend,
                         isa=isa if backend != "reference" else None, threads=threads)
    x = rng.integers(-128, 128, (4, 8, 8, 2)).astype(np.int8)
    for n in (1, 3, 4):
        out = per_item_identical(model, x[:n])
        assert out["softmax_out"].shape == (n, 10)


def test_backends_agree_at_every_batch(rng):
    if not _kernels.available():
        pytest.skip("the kernels are not built")
    g = cnn(rng).graph()
    x = rng.integers(-128, 128, (5, 8, 8, 2)).astype(np.int8)
    ref = qnnref.Model(g, backend="reference").run(x)
    for isa in ISAS:
        got = qnnref.Model(g, backend="cross-check", isa=isa).run(x)
        assert all(np.array_equal(ref[k], got[k]) for k in ref)


def test_same_bits_as_the_static_model(rng):
    """The symbolic model at batch 3 = the static batch-3 model of the same weights."""
    seed = int(rng.integers(1 << 30))
    sym = qnnref.Model(cnn(np.random.default_rng(seed)).graph(), backend="reference")
    static = qnnref.Model(cnn(np.random.default_rng(seed), batch=3).graph(), backend="reference")
    assert static.batch_symbol is None
    x = rng.integers(-128, 128, (3, 8, 8, 2)).astype(np.int8)
    a, b = sym.run(x), static.run(x)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_prepared_batches_are_cached_and_bounded(rng, monkeypatch):
    model = qnnref.Model(cnn(rng).graph(), backend="reference")
    monkeypatch.setattr(model, "BATCH_CACHE", 2)
    x = rng.integers(-128, 128, (5, 8, 8, 2)).astype(np.int8)
    assert model.prepared_batches() == [1]
    model.run(x[:2])
    first = model._for_batch(2)
    model.run(x[:2])
    assert model._for_batch(2) is first                 # prepared once, then reused
    model.run(x[:3])
    assert model.prepared_batches() == [2, 3]           # least recently used dropped
    model.run(x[:1])
    assert model.prepared_batches() == [3, 1]


def test_file_round_trip_and_version(rng, tmp_path):
    g = cnn(rng).graph()
    data = qformat.to_bytes(g)
    assert struct.unpack_from("<HH", data, 8) == (1, 1)
    loaded = qformat.from_bytes(data)
    assert loaded.version == (1, 1) and loaded.graph.tensors["x"].shape == ("N", 8, 8, 2)
    header = json.loads(data[28:28 + struct.unpack_from("<Q", data, 12)[0]])
    assert next(t for t in header["tensors"] if t["name"] == "x")["shape"] == ["N", 8, 8, 2]
    path = tmp_path / "m.qnn"
    qnnref.save(g, path)
    m = qnnref.load(path)
    x = rng.integers(-128, 128, (3, 8, 8, 2)).astype(np.int8)
    want = qnnref.Model(g, backend="reference").run(x)
    got = m.run(x)
    assert m.batch_symbol == "N" and all(np.array_equal(want[k], got[k]) for k in want)
    # a static graph is still written as 1.0, as before
    static = qformat.to_bytes(cnn(rng, batch=1).graph())
    assert struct.unpack_from("<HH", static, 8) == (1, 0)


def _edit_header(data: bytes, edit, version=None) -> bytes:
    """Re-encode a .qnn image with its header JSON edited (digests fixed)."""
    import hashlib
    hlen, dlen = struct.unpack_from("<QQ", data, 12)
    header = json.loads(data[28:28 + hlen])
    edit(header)
    text = json.dumps(header).encode()
    major, minor = struct.unpack_from("<HH", data, 8) if version is None else version
    start = -(-(28 + hlen) // 64) * 64
    blobs = data[start:start + dlen]
    pre = struct.pack("<8sHHQQ", qformat.MAGIC, major, minor, len(text), dlen)
    body = pre + text + bytes(-(-(28 + len(text)) // 64) * 64 - 28 - len(text)) + blobs
    return body + hashlib.sha256(body).digest()


def _tensor(header, name):
    return next(t for t in header["tensors"] if t["name"] == name)


@pytest.mark.parametrize("edit,version,message", [
    (lambda h: None, (1, 0), "needs format version 1.1"),
    (lambda h: _tensor(h, "conv_out")["shape"].__setitem__(0, "M"), None, "differs from 'N'"),
    (lambda h: _tensor(h, "conv_out")["shape"].__setitem__(1, "H"), None, "non-integer"),
    (lambda h: _tensor(h, "x")["shape"].__setitem__(0, "1N"), None, "not a name"),
    (lambda h: _tensor(h, "w")["shape"].__setitem__(0, "N"), None, "constant cannot have a symbolic batch"),
])
def test_reader_refuses_bad_symbols(rng, edit, version, message):
    data = _edit_header(qformat.to_bytes(cnn(rng).graph()), edit, version)
    with pytest.raises(FormatError, match=message):
        qnnref.Model(qformat.from_bytes(data).graph)


def _one(op, attrs, shape=("N", 4, 4, 2), extra=None, dtype="int8", **quant):
    b = qnnref.GraphBuilder(profile="qnnref")
    x = b.input("x", dtype, shape, scale=0.02, zero_point=0)
    ins = [x] + ([b.constant("k", extra)] if extra is not None else [])
    q = quant or {"scale": 0.02, "zero_point": 0}
    y = b.node(op, ins, attrs, name="n", **q)
    b.output(*(y if isinstance(y, list) else [y]))
    return b.graph()


@pytest.mark.parametrize("make,message", [
    (lambda: _one("mean", {"axes": [0, 1]}), "include the batch axis"),
    (lambda: _one("softmax", {"axis": 0}, scale=1 / 256, zero_point=-128), "is the batch axis"),
    (lambda: _one("concat", {"axis": 0}), "batch"),
    (lambda: _one("transpose", {"perm": [1, 0, 2, 3]}), "moves the batch axis|batch"),
    (lambda: _one("gather", {"axis": 0}, extra=np.array([0], np.int32)), "gathers along the batch axis"),
    (lambda: _one("pad", {"pads": [1, 0, 0, 0, 0, 0, 0, 0]}), "batch"),
    (lambda: _one("reshape", {"shape": [2, -1]}), "folds the batch|batch"),
])
def test_nodes_that_mix_the_items_are_refused(make, message):
    with pytest.raises(ValidationError, match=message):
        qnnref.Model(make())


def test_a_reshape_that_folds_the_batch_is_refused():
    g = _one("reshape", {"shape": [1, 16, 2]})
    qnnref.Model(g)                                    # keeps the batch: fine
    bad = g.copy()
    bad.nodes[0].attrs["shape"] = [1, 32]
    bad.tensors["n_out"].shape = (1, 32)                # static output of a batched input
    with pytest.raises(ValidationError, match="batch"):
        qnnref.Model(bad)


def test_batchwise_quantization_and_two_symbols_are_refused(rng):
    g = cnn(rng).graph()
    bad = g.copy()
    bad.tensors["conv_out"].shape = ("M", 8, 8, 4)
    with pytest.raises(ValidationError, match="one symbolic batch"):
        qnnref.Model(bad)
    bad = g.copy()
    t = bad.tensors["x"]
    t.quant = qnnref.Quant(np.full(1, 0.1, np.float32), None, 0)
    with pytest.raises(ValidationError, match="batch"):
        qnnref.Model(bad)


def test_run_time_checks(rng, monkeypatch):
    model = qnnref.Model(cnn(rng).graph(), backend="reference")
    with pytest.raises(RuntimeCheckError, match="N >= 1"):
        model.run(np.zeros((0, 8, 8, 2), np.int8))
    with pytest.raises(RuntimeCheckError, match=r"shape \['N', 8, 8, 2\]"):
        model.run(np.zeros((2, 8, 8, 3), np.int8))
    # the element-count limit holds per concrete batch, checked before allocating:
    # with a limit of 3 items' largest working array, batch 3 runs, batch 4 is refused
    g = cnn(rng).graph()
    lo, hi = 1, 10**6                  # the largest per-item working array: the least limit batch 1 loads with
    while lo < hi:
        monkeypatch.setattr(qnnref.graph, "MAX_TENSOR_ELEMENTS", (lo + hi) // 2)
        try:
            qnnref.Model(g, backend="reference")
            hi = (lo + hi) // 2
        except ValidationError:
            lo = (lo + hi) // 2 + 1
    monkeypatch.setattr(qnnref.graph, "MAX_TENSOR_ELEMENTS", lo)
    model = qnnref.Model(g, backend="reference")
    model.run(np.zeros((1, 8, 8, 2), np.int8))
    big = lo // (8 * 8 * 2) + 1        # even the input has more elements than the limit
    with pytest.raises(RuntimeCheckError, match=f"batch size {big} .*model size limit"):
        model.run(np.zeros((big, 8, 8, 2), np.int8))


def test_two_batched_inputs_must_agree(rng):
    b = qnnref.GraphBuilder(profile="qnnref")
    x = b.input("x", "int8", ("B", 3), scale=0.1, zero_point=0)
    y = b.input("y", "int8", ("B", 3), scale=0.1, zero_point=0)
    c = b.input("c", "int8", (1, 3), scale=0.1, zero_point=0)       # a static input broadcasts
    s = b.node("add", [x, y], scale=0.2, zero_point=0, name="s")
    s = b.node("add", [s, c], scale=0.3, zero_point=0, name="t")
    b.output(s)
    m = b.build(backend="reference")
    assert m.batch_symbol == "B"
    a = rng.integers(-128, 128, (3, 3)).astype(np.int8)
    one = np.ones((1, 3), np.int8)
    out = m.run({"x": a, "y": a, "c": one})["t_out"]
    assert out.shape == (3, 3)
    with pytest.raises(RuntimeCheckError, match="two batch sizes"):
        m.run({"x": a, "y": a[:2], "c": one})


def test_inspect_shows_the_symbol(rng, tmp_path, capsys):
    from qnnref.cli import main
    path = tmp_path / "m.qnn"
    qnnref.save(cnn(rng).graph(), path)
    assert main(["inspect", str(path)]) == 0
    assert "Nx8x8x2" in capsys.readouterr().out
    assert main(["inspect", "--json", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tensors"]["x"]["shape"] == ["N", 8, 8, 2]


def test_errors_are_qnnref_errors(rng):
    with pytest.raises(QnnError):
        b = qnnref.GraphBuilder(profile="qnnref")
        b.input("x", "int8", (1, "N", 4), scale=0.1)


def test_concurrent_runs_at_different_batch_sizes(rng):
    """Runs from several threads, each at its own batch size, share the
    per-batch cache; each gets the bits of batch 1."""
    from concurrent.futures import ThreadPoolExecutor
    model = qnnref.Model(cnn(rng).graph())
    x = rng.integers(-128, 128, (6, 8, 8, 2)).astype(np.int8)
    alone = np.concatenate([model.run(x[i:i + 1])["softmax_out"] for i in range(6)])
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: (n, model.run(x[:n])["softmax_out"]), [1, 2, 3, 4, 5, 6] * 3))
    for n, out in results:
        assert np.array_equal(out, alone[:n])
    assert len(model.prepared_batches()) <= model.BATCH_CACHE
