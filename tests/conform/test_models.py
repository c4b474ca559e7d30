"""``qnnref conform onnxruntime MODEL.onnx``: a run passes only if it compared
the model; real inputs (--data), symbolic dimensions (--input-shape), and
counts per model and output."""
from __future__ import annotations

import json

import numpy as np
import pytest

import qnnref.conform.engine as engine_mod
from qnnref.conform import main

from .conftest import needs_importer, needs_ort
from .fakes import ReferenceEngine

pytestmark = needs_ort
EXACT = "float32-half-to-even"


def _run(argv, capsys):
    rc = main(["onnxruntime", "--no-progress", *argv])
    return rc, capsys.readouterr()



@pytest.fixture(scope="module")
def dynamic_qdq(tmp_path_factory):
    """A QDQ model made by ONNX Runtime's quantize_static from a float CNN
    whose input is ``x: ['N', 1, 8, 8]`` (a dynamic batch)."""
    pytest.importorskip("onnxruntime.quantization")
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    d = tmp_path_factory.mktemp("dyn")
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((4 * 6 * 6, 3)).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
             helper.make_node("MatMul", ["f", "w2"], ["y"], name="matmul")]
    g = helper.make_graph(nodes, "dyn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    onnx.save(m, str(d / "float.onnx"))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": rng.standard_normal((1, 1, 8, 8)).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.it, None)
    quantize_static(str(d / "float.onnx"), str(d / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    q = onnx.load(str(d / "q.onnx"))
    assert q.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    return d / "q.onnx"


@pytest.fixture
def count_imports(monkeypatch):
    """Counts the imports conform's engine makes: (input_shapes, batch kept) per call."""
    from qnnref.onnx import import_onnx
    calls = []

    def counting(model, **kw):
        m = import_onnx(model, **kw)
        calls.append((kw.get("input_shapes"), m.batch_symbol))
        return m
    monkeypatch.setattr(engine_mod, "find_importer", lambda: counting)
    return calls


@needs_importer
def test_dynamic_batch_qdq_model_is_compared(dynamic_qdq, tmp_path, capsys, count_imports):
    """It used to end "PASS ... 1 unsupported" without comparing anything.
    Now it is imported once per profile with its symbolic batch kept and
    compared at batches 1 and 3, bit-exact with ONNX Runtime."""
    out = tmp_path / "r.json"
    rc, cap = _run([str(dynamic_qdq), "--json", str(out), "--full-json"], capsys)
    assert rc == 0, cap.out
    assert "note: q.onnx: symbolic batch 'N' (axis 0 of 'x'): compared at batch sizes 1, 3" in cap.out
    assert ("q.onnx: symbolic batch 'N' kept by qnnref (imported once, run at each size); batch sizes "
            "compared: 1, 3; per item: 1 of 1 batched samples give each item the bits of batch 1") in cap.out
    doc = json.loads(out.read_text())
    assert doc["totals"]["compared"] == 2 and doc["totals"]["unsupported"] == 0 and doc["exit_code"] == 0
    assert [c["id"] for c in doc["cases"]] == ["q.onnx/batch1", "q.onnx/batch3"]
    assert [c["batch"]["size"] for c in doc["cases"]] == [1, 3]
    assert all(c["batch"]["kept"] and c["batch"]["symbol"] == "N" for c in doc["cases"])
    assert doc["cases"][1]["batch"]["per_item"] == {"items": 3, "identical": True}
    assert doc["operators"]["q.onnx"]["batch"] == {"symbol": "N", "kept": True, "sizes": [1, 3],
                                                   "per_item": {"samples": 1, "identical": 1}}
    ys = [c["profiles"][doc["expected_profile"]]["outputs"][0] for c in doc["cases"]]
    assert [y["shape"] for y in ys] == [[1, 3], [3, 3]] and all(y["differing"] == 0 for y in ys)
    counts = doc["operators"]["q.onnx"]["profiles"][doc["expected_profile"]]["outputs"]["y"]
    assert counts["samples"] == counts["identical"] == 2          # bit-exact with ONNX Runtime
    # one import per profile, not per batch size, each with the batch kept
    assert len(count_imports) == len(doc["profiles"])
    assert all(shapes is None and symbol == "N" for shapes, symbol in count_imports)


@needs_importer
def test_dynamic_batch_items_have_the_bits_of_batch_1(dynamic_qdq):
    """What conform checks per item, checked here directly: qnnref's batch-3
    outputs are its batch-1 outputs of each item."""
    from qnnref.onnx import import_onnx
    m = import_onnx(str(dynamic_qdq), profile="onnx")
    assert m.batch_symbol == "N"
    x = np.random.default_rng(5).standard_normal((3, 1, 8, 8)).astype(np.float32)
    whole = m.run({"x": x})
    for name, y in whole.items():
        items = np.concatenate([m.run({"x": x[i:i + 1]})[name] for i in range(3)])
        assert y.dtype == items.dtype and y.tobytes() == items.tobytes()


@needs_importer
def test_input_shape_fixes_the_batch(dynamic_qdq, tmp_path, capsys, count_imports):
    """--input-shape gives the batch ONNX Runtime and qnnref both run; the
    model is still imported with its batch kept."""
    out = tmp_path / "r.json"
    rc, cap = _run([str(dynamic_qdq), "--input-shape", "x=4,1,8,8", "--json", str(out), "--full-json"], capsys)
    assert rc == 0, cap.out
    doc = json.loads(out.read_text())
    (case,) = doc["cases"]
    (y,) = case["profiles"][doc["expected_profile"]]["outputs"]
    assert y["shape"] == [4, 3] and not doc["notes"]
    assert case["batch"] == {"size": 4, "symbol": "N", "kept": True, "per_item": {"items": 4, "identical": True}}
    assert doc["operators"]["q.onnx"]["batch"]["sizes"] == [4]
    assert all(shapes is None and symbol == "N" for shapes, symbol in count_imports)


@needs_importer
def test_data_batches_of_several_sizes_share_one_import(dynamic_qdq, tmp_path, capsys, count_imports):
    """test_data_set_* samples of batches 1, 2 and 5: one import per profile."""
    from onnx import numpy_helper
    rng = np.random.default_rng(11)
    data = tmp_path / "zoo"
    for i, b in enumerate((1, 2, 5)):
        (data / f"test_data_set_{i}").mkdir(parents=True)
        x = rng.standard_normal((b, 1, 8, 8)).astype(np.float32)
        (data / f"test_data_set_{i}" / "input_0.pb").write_bytes(numpy_helper.from_array(x, "x").SerializeToString())
    out = tmp_path / "r.json"
    rc, cap = _run([str(dynamic_qdq), "--data", str(data), "--json", str(out)], capsys)
    assert rc == 0, cap.out
    doc = json.loads(out.read_text())
    assert doc["totals"]["compared"] == 3
    assert doc["operators"]["q.onnx"]["batch"]["sizes"] == [1, 2, 5]
    assert doc["operators"]["q.onnx"]["batch"]["per_item"] == {"samples": 2, "identical": 2}
    assert len(count_imports) == len(doc["profiles"])


def _reshape_to_one_model(path):
    """x: ['N', 4] reshaped to [1, -1]: a batch that cannot stay open in a qnnref model."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "s")
    g = helper.make_graph([helper.make_node("Reshape", ["x", "s"], ["r"], name="reshape"),
                           helper.make_node("Relu", ["r"], ["y"], name="relu")], "rs",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None])], [shape])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@needs_importer
def test_a_batch_qnnref_cannot_keep_is_compared_per_batch_size(tmp_path, capsys, count_imports):
    """The importer refuses to keep the batch: each batch size is imported
    on its own, compared, and the report says why."""
    path = _reshape_to_one_model(tmp_path / "rs.onnx")
    out = tmp_path / "r.json"
    rc, cap = _run([str(path), "--json", str(out)], capsys)
    assert rc == 0, cap.out
    assert "rs.onnx: symbolic batch 'N' not kept by qnnref (imported per batch size: import_onnx:" in cap.out
    doc = json.loads(out.read_text())
    b = doc["operators"]["rs.onnx"]["batch"]
    assert b["kept"] is False and b["sizes"] == [1, 3] and "pass input_shapes" in b["not_kept"]
    assert doc["totals"]["compared"] == 2
    fixed = [shapes for shapes, symbol in count_imports if symbol is None]
    assert {s["x"] for s in fixed} == {(1, 4), (3, 4)}


@needs_importer
@pytest.mark.parametrize("fmt", ["npz", "npy", "pb"])
def test_data_in_every_format_compares_every_sample(dynamic_qdq, tmp_path, capsys, fmt):
    from onnx import numpy_helper
    rng = np.random.default_rng(7)
    batches = [rng.standard_normal((b, 1, 8, 8)).astype(np.float32) for b in (1, 3)]
    if fmt == "npz":                      # a stack: 2 samples of batch 3, and both as one of batch 6
        data = tmp_path / "d.npz"
        np.savez(data, x=np.stack([batches[1], batches[1][::-1]]))
        want = 3
    elif fmt == "npy":                    # one sample of batch 3
        data = tmp_path / "npy"
        data.mkdir()
        np.save(data / "x.npy", batches[1])
        want = 1
    else:                                 # the ONNX model zoo layout: one sample per set
        data = tmp_path / "zoo"
        for i, x in enumerate(batches):
            (data / f"test_data_set_{i}").mkdir(parents=True)
            (data / f"test_data_set_{i}" / "input_0.pb").write_bytes(
                numpy_helper.from_array(x, "x").SerializeToString())
        want = 2
    out = tmp_path / "r.json"
    rc, cap = _run([str(dynamic_qdq), "--data", str(data), "--json", str(out)], capsys)
    assert rc == 0, cap.out
    doc = json.loads(out.read_text())
    assert doc["totals"]["cases"] == doc["totals"]["compared"] == want
    counts = doc["operators"]["q.onnx"]["profiles"][doc["expected_profile"]]["outputs"]["y"]
    assert counts["samples"] == want
    assert counts["identical"] + counts["within_bound"] == want and counts["outside"] == 0
    assert f"output 'y': {want} sample" in cap.out and "note:" not in cap.out
    sizes = {"npz": [3, 6], "npy": [3], "pb": [1, 3]}[fmt]
    assert doc["operators"]["q.onnx"]["batch"]["sizes"] == sizes


@needs_importer
def test_bad_data_exits_2(dynamic_qdq, tmp_path, capsys):
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 1, 8, 8)))
    rc, cap = _run([str(dynamic_qdq), "--data", str(tmp_path / "d.npz")], capsys)
    assert rc == 2 and "is given float64 data" in cap.err
    rc, cap = _run([str(dynamic_qdq), "--input-shape", "x=2,1,9,8"], capsys)
    assert rc == 2 and "dimension 8 on axis 2" in cap.err
    rc, cap = _run(["--data", str(tmp_path / "d.npz")], capsys)
    assert rc == 2 and "none given" in cap.err


def _erf_model(path, batch=2):
    """A float model qnnref's importer refuses (Erf has no qnnref operator)."""
    import onnx
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Erf", ["x"], ["y"], name="erf")], "erf",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@needs_importer
@pytest.mark.parametrize("batch", [2, "N"])
def test_a_model_qnnref_cannot_import_fails(tmp_path, capsys, batch):
    """Also with a symbolic batch: the import at a fixed batch is refused too."""
    path = _erf_model(tmp_path / "erf.onnx", batch)
    rc, cap = _run([str(path)], capsys)
    assert rc == 1
    last = cap.out.splitlines()[-1]
    n = 1 if batch == 2 else 2                   # a symbolic batch: batches 1 and 3
    assert last.startswith(f"FAIL: {n} cases, 0 compared") and f"{n} unsupported by qnnref" in last
    if batch == "N":
        assert "erf.onnx: symbolic batch 'N' not imported by qnnref; batch sizes compared: none" in cap.out
    assert "unsupported by qnnref (its importer refused the model)" in cap.out
    rc, cap = _run([str(path), "--allow-unsupported"], capsys)
    assert rc == 0 and "(allowed by --allow-unsupported)" in cap.out.splitlines()[-1]


def test_a_model_onnx_runtime_refuses_fails(tmp_path, capsys, fake_engine):
    """The built-in suite's documented ONNX Runtime refusal does not excuse a model file."""
    from qnnref.conform.suite import make_case
    fake_engine(ReferenceEngine)
    path = tmp_path / "blocked.onnx"
    path.write_bytes(make_case("DequantizeLinear", 44).model)     # refused by ONNX Runtime on purpose
    rc, cap = _run([str(path), "--profile", EXACT], capsys)
    assert rc == 1 and "1 refused by ONNX Runtime" in cap.out
    assert "Refused by ONNX Runtime (not compared: failures)" in cap.out
    assert _run([str(path), "--profile", EXACT, "--allow-unsupported"], capsys)[0] == 0
    # the same case in the built-in suite is refused on purpose
    rc, cap = _run(["--ops", "DequantizeLinear", "--cases", "45", "--profile", EXACT], capsys)
    assert "Refused on purpose" in cap.out and "by ONNX Runtime: blocked quantization" in cap.out


class _OneUlpOff(ReferenceEngine):
    """Moves the float outputs of the samples whose first input value is
    negative by one float32 ulp: within the float bound, not identical."""

    def run(self, case, profile, onnx_model=None, float_nodes=()):
        res = super().run(case, profile, onnx_model, float_nodes)
        if next(iter(case.inputs.values())).ravel()[0] < 0:
            res.outputs = {k: np.nextafter(v, np.float32(np.inf)) if v.dtype.kind == "f" else v
                           for k, v in res.outputs.items()}
        return res


def test_counts_say_identical_and_within_the_bound(tmp_path, capsys, fake_engine):
    """360 images, 4 of them one ulp off: "356 identical, 4 within the float bound"."""
    import onnx
    from onnx import TensorProto, helper
    fake_engine(_OneUlpOff)
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    images = np.random.default_rng(3).uniform(1, 2, size=(360, 1, 4)).astype(np.float32)
    images[[3, 100, 200, 359], 0, 0] = -1.0
    np.savez(tmp_path / "images.npz", x=images)
    out = tmp_path / "r.json"
    rc, cap = _run([str(path), "--data", str(tmp_path / "images.npz"), "--profile", EXACT, "--json", str(out)],
                   capsys)
    assert rc == 0, cap.out
    assert "output 'y': 360 samples: 356 identical, 4 within the float bound, 0 outside it" in cap.out
    assert "1440 elements: 1424 identical, 16 within, 0 outside" in cap.out
    doc = json.loads(out.read_text())
    c = doc["operators"]["relu.onnx"]["profiles"][EXACT]["outputs"]["y"]
    assert (c["samples"], c["identical"], c["within_bound"], c["outside"]) == (360, 356, 4, 0)
    assert (c["elements"], c["within_bound_elements"]) == (1440, 16)
    assert [cs["id"] for cs in doc["cases"]][:2] == ["relu.onnx/images.npz[0]", "relu.onnx/images.npz[1]"]


@needs_importer
def test_other_symbolic_dims_are_fixed_and_the_batch_kept(tmp_path, capsys, count_imports):
    """x: ['N', 'C']: C is fixed (in a copy of the model qnnref imports), N stays symbolic."""
    import onnx
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "C"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "C"])])
    path = tmp_path / "nc.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    rc, cap = _run([str(path)], capsys)
    assert rc == 0, cap.out
    assert "input 'x' dimension 'C' (axis 1) set to 1" in cap.out and "dimension 'N'" not in cap.out
    assert "batch sizes compared: 1, 3" in cap.out
    rc, cap = _run([str(path), "--input-shape", "x=3,5"], capsys)
    assert rc == 0 and "batch sizes compared: 3;" in cap.out, cap.out
    assert all(shapes is None and symbol == "N" for shapes, symbol in count_imports)


@needs_importer
def test_an_item_that_differs_from_batch_1_fails(dynamic_qdq, tmp_path, capsys, monkeypatch):
    """Should qnnref ever give an item of a batch other bits than at batch 1,
    the case fails as a qnnref error naming the batch, item and output."""
    monkeypatch.setattr(engine_mod, "per_item",
                        lambda model, feeds, captured: {"items": 3, "identical": False, "item": 2, "output": "y"})
    out = tmp_path / "r.json"
    rc, cap = _run([str(dynamic_qdq), "--input-shape", "x=3,1,8,8", "--json", str(out)], capsys)
    assert rc == 1
    assert "at batch 3, item 2 of output 'y' differs from the same item run at batch 1" in cap.out
    assert "per item: 0 of 1 batched samples give each item the bits of batch 1" in cap.out
    doc = json.loads(out.read_text())
    assert doc["operators"]["q.onnx"]["batch"]["per_item"] == {"samples": 1, "identical": 0}
