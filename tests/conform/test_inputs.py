"""Model-file inputs of ``qnnref conform``: --input-shape, --data in its three
formats, symbolic dimensions, and a clear error for every kind of bad data."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import needs_onnx

pytestmark = needs_onnx


def _model(inputs, path=None):
    """A model with ``inputs`` = [(name, dtype, dims)], each through Identity."""
    import onnx
    from onnx import helper

    from qnnref.conform.onnxgraph import elem_type
    nodes = [helper.make_node("Identity", [n], [f"{n}_out"], name=f"id_{n}") for n, _, _ in inputs]
    g = helper.make_graph(nodes, "m",
                          [helper.make_tensor_value_info(n, elem_type(t), d) for n, t, d in inputs],
                          [helper.make_tensor_value_info(f"{n}_out", elem_type(t), d) for n, t, d in inputs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    if path is not None:
        onnx.save(m, str(path))
    return m


def _specs(inputs):
    from qnnref.conform.inputs import model_inputs
    return model_inputs(_model(inputs))


DYN = [("x", "float32", ["N", 1, 4]), ("t", "uint8", ["N", 2])]


def test_parse_input_shapes():
    from qnnref.conform.inputs import InputError, parse_input_shapes
    assert parse_input_shapes(["x=3,1,4", "t=3,2", "s="]) == {"x": (3, 1, 4), "t": (3, 2), "s": ()}
    assert parse_input_shapes(["a=b=2"]) == {"a=b": (2,)}          # the last "=" separates
    for bad in ("x", "=3", "x=3,a", "x=0,2", "x=-1"):
        with pytest.raises(InputError, match="--input-shape"):
            parse_input_shapes([bad])
    with pytest.raises(InputError, match="twice"):
        parse_input_shapes(["x=1", "x=2"])


def test_symbolic_dims_default_to_1_and_say_so():
    from qnnref.conform.inputs import resolve_shapes
    shapes, notes = resolve_shapes("m.onnx", _specs(DYN), {})
    assert shapes == {"x": (1, 1, 4), "t": (1, 2)}
    assert len(notes) == 2 and "'N' (axis 0) set to 1" in notes[0]
    shapes, notes = resolve_shapes("m.onnx", _specs(DYN), {"x": (3, 1, 4), "t": (3, 2)})
    assert shapes == {"x": (3, 1, 4), "t": (3, 2)} and notes == []
    shapes, notes = resolve_shapes("m.onnx", _specs(DYN), {}, {"x": (5, 1, 4), "t": (5, 2)})
    assert shapes["x"] == (5, 1, 4) and notes == []


def test_the_symbolic_batch():
    """A symbolic leading dimension is the batch: one symbol for every input
    that has one, set to ``batch`` without a note (the caller says which
    batch sizes it compares); other symbolic dimensions are still noted."""
    from qnnref.conform.inputs import batch_inputs, batch_symbol, resolve_shapes
    specs = _specs(DYN + [("k", "float32", [2, "K"])])
    assert [s.name for s in batch_inputs(specs)] == ["x", "t"] and batch_symbol(specs) == "N"
    shapes, notes = resolve_shapes("m.onnx", specs, {}, batch=3)
    assert shapes == {"x": (3, 1, 4), "t": (3, 2), "k": (2, 1)}
    assert len(notes) == 1 and "'K' (axis 1) set to 1" in notes[0]
    assert batch_symbol(_specs([("x", "float32", ["N", 2]), ("y", "float32", ["M", 2])])) is None
    assert batch_symbol(_specs([("x", "float32", [None, 2])])) == "?"
    assert batch_symbol(_specs([("x", "float32", [1, "H"])])) is None


@pytest.mark.parametrize("given, message", [
    ({"x": (3, 1)}, "rank 3"),
    ({"x": (3, 2, 4)}, "dimension 1 on axis 1"),
    ({"x": (3, 1, 4), "t": (2, 2)}, "symbolic dimension 'N' is 3"),
])
def test_input_shape_errors(given, message):
    from qnnref.conform.inputs import InputError, resolve_shapes
    with pytest.raises(InputError, match=message):
        resolve_shapes("m.onnx", _specs(DYN), given)


def _samples(tmp_path, make, given=None):
    from qnnref.conform.inputs import read_data, samples_from_data
    specs = _specs(DYN)
    path = make(tmp_path)
    return samples_from_data("m.onnx", specs, read_data(str(path), specs), given or {})


def _npz(arrays):
    def make(d):
        np.savez(d / "data.npz", **arrays)
        return d / "data.npz"
    return make


def _npy(arrays):
    def make(d):
        (d / "npy").mkdir()
        for k, v in arrays.items():
            np.save(d / "npy" / f"{k}.npy", v)
        return d / "npy"
    return make


def _pb(sets, names=("x", "t"), root=True):
    def make(d):
        from onnx import numpy_helper
        for i, arrays in enumerate(sets):
            sd = d / "zoo" / f"test_data_set_{i}"
            sd.mkdir(parents=True)
            for k, (name, v) in enumerate(zip(names, arrays)):
                (sd / f"input_{k}.pb").write_bytes(numpy_helper.from_array(v, name).SerializeToString())
        return d / "zoo" if root else d / "zoo" / "test_data_set_0"
    return make


def _x(n):
    return np.arange(n * 4, dtype=np.float32).reshape(n, 1, 4)


def _t(n):
    return np.arange(n * 2, dtype=np.uint8).reshape(n, 2)


def test_npz_one_sample_fixes_the_batch(tmp_path):
    (label, feeds), = _samples(tmp_path, _npz({"x": _x(3), "t": _t(3)}))
    assert label == "data.npz" and feeds["x"].shape == (3, 1, 4) and np.array_equal(feeds["t"], _t(3))


def test_npz_stack_of_samples(tmp_path):
    got = _samples(tmp_path, _npz({"x": _x(10).reshape(5, 2, 1, 4), "t": _t(10).reshape(5, 2, 2)}))
    assert [lb for lb, _ in got] == [f"data.npz[{i}]" for i in range(5)]
    assert all(f["x"].shape == (2, 1, 4) and f["t"].shape == (2, 2) for _, f in got)
    assert np.array_equal(got[3][1]["x"], _x(10)[6:8])


def test_npy_directory(tmp_path):
    got = _samples(tmp_path, _npy({"x": _x(2), "t": _t(2)}))
    assert len(got) == 1 and got[0][1]["x"].shape == (2, 1, 4)


def test_onnx_test_data_sets(tmp_path):
    got = _samples(tmp_path, _pb([(_x(1), _t(1)), (_x(4), _t(4))]))
    assert [lb for lb, _ in got] == ["test_data_set_0", "test_data_set_1"]
    assert got[1][1]["x"].shape == (4, 1, 4) and got[1][1]["t"].dtype == np.uint8


def test_one_test_data_set_directory_and_unnamed_tensors(tmp_path):
    got = _samples(tmp_path, _pb([(_x(2), _t(2))], names=("", ""), root=False))
    assert [lb for lb, _ in got] == ["test_data_set_0"] and set(got[0][1]) == {"x", "t"}


@pytest.mark.parametrize("make, message", [
    (_npz({"x": _x(1), "t": _t(1), "z": _t(1)}), r"\['z'\] are not inputs"),
    (_npz({"x": _x(1)}), r"no data for input\(s\) \['t'\]"),
    (_npz({"x": _x(1).astype(np.float64), "t": _t(1)}), "is given float64 data"),
    (_npz({"x": _x(1)[0, 0], "t": _t(1)}), "has rank 3; the data has shape"),
    (_npz({"x": _x(2).reshape(2, 1, 1, 4), "t": _t(2)}), "some inputs are stacks"),
    (_npz({"x": _x(2).reshape(2, 1, 1, 4), "t": _t(3).reshape(3, 1, 2)}), "different numbers of samples"),
    (_npz({"x": _x(2).reshape(1, 2, 4), "t": _t(1)}), "dimension 1 on axis 1"),
    (_pb([(_x(1), _t(1))], names=("t", "x")), "is named 't', but model input 0 is 'x'"),
    (_pb([(_x(1), _t(1), _t(1))], names=("x", "t", "u")), "has only 2 input"),
    (lambda d: d / "missing.npz", "no such file"),
    (lambda d: (d / "a.txt").write_text("x") and d / "a.txt", "must be an .npz"),
    (lambda d: (d / "bad.npz").write_bytes(b"not a zip") and d / "bad.npz", "cannot read"),
    (lambda d: d, "no NAME.npy files"),
])
def test_bad_data_is_a_clear_error(tmp_path, make, message):
    from qnnref.conform.inputs import InputError
    with pytest.raises(InputError, match=message):
        _samples(tmp_path, make)


def test_corrupt_tensor_proto(tmp_path):
    from qnnref.conform.inputs import InputError

    def make(d):
        sd = d / "test_data_set_0"
        sd.mkdir()
        (sd / "input_0.pb").write_bytes(b"\xff\xff\xff garbage")
        return d
    with pytest.raises(InputError, match="not a serialized onnx.TensorProto"):
        _samples(tmp_path, make)


def test_data_must_agree_with_input_shape(tmp_path):
    from qnnref.conform.inputs import InputError
    with pytest.raises(InputError, match="--input-shape says"):
        _samples(tmp_path, _npz({"x": _x(3), "t": _t(3)}), given={"x": (2, 1, 4)})


def test_model_cases_one_case_per_sample(tmp_path):
    from qnnref.conform import model_cases
    path = tmp_path / "m.onnx"
    _model(DYN, path)
    np.savez(tmp_path / "d.npz", x=_x(6).reshape(3, 2, 1, 4), t=_t(6).reshape(3, 2, 2))
    cases, notes = model_cases([str(path)], data=str(tmp_path / "d.npz"))
    # the stack of 3 samples of batch 2 is also one sample of batch 6 (the batch 'N' is symbolic)
    assert [c.id for c in cases] == ["m.onnx/d.npz[0]", "m.onnx/d.npz[1]", "m.onnx/d.npz[2]", "m.onnx/d.npz[all]"]
    assert all(c.op == "m.onnx" and c.input_shapes == {"x": (2, 1, 4), "t": (2, 2)} for c in cases[:3])
    assert cases[3].input_shapes == {"x": (6, 1, 4), "t": (6, 2)} and cases[3].batch == 6
    assert np.array_equal(cases[3].inputs["x"], _x(6).reshape(6, 1, 4))
    assert notes == [] and len({id(c.model) for c in cases}) == 1        # one copy of the model bytes
    cases, notes = model_cases([str(path)], input_shapes={"x": (4, 1, 4), "t": (4, 2)})
    (c,) = cases
    assert c.inputs["x"].shape == (4, 1, 4) and c.inputs["t"].dtype == np.uint8 and notes == []
    # random inputs are seeded
    again, _ = model_cases([str(path)], input_shapes={"x": (4, 1, 4), "t": (4, 2)})
    assert np.array_equal(again[0].inputs["x"], c.inputs["x"])


def test_model_cases_errors(tmp_path):
    from qnnref.conform import model_cases
    from qnnref.conform.inputs import InputError
    path = tmp_path / "m.onnx"
    _model(DYN, path)
    with pytest.raises(InputError, match=r"\['y'\], which are not inputs of m.onnx"):
        model_cases([str(path)], input_shapes={"y": (1,)})
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage\xff")
    with pytest.raises(InputError, match="not an ONNX model"):
        model_cases([str(bad)])
    other = tmp_path / "sub"
    other.mkdir()
    _model(DYN, other / "m.onnx")
    cases, _ = model_cases([str(path), str(other / "m.onnx")])
    # same base name: the paths (each at batches 1 and 3: the models have a symbolic batch)
    assert [c.op for c in cases] == [str(path)] * 2 + [str(other / "m.onnx")] * 2
