"""The importer's contract: lazy onnx import, one error listing every node it
cannot import, clear refusals, names and metadata kept for the conformance
harness."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import qnnref
from onnx_helpers import MS, init, make_model, node, ops_of
from qnnref.onnx import import_onnx

U8, S8, F32 = np.uint8, np.int8, np.float32


def test_import_qnnref_does_not_import_onnx():
    code = "import sys, qnnref, qnnref.onnx; assert 'onnx' not in sys.modules, 'onnx imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)          # `import onnx` now raises ImportError
    with pytest.raises(qnnref.QnnError, match=r'pip install "qnnref\[onnx\]"'):
        import_onnx("model.onnx")


def test_every_unsupported_node_is_listed_at_once():
    inits = [init("s", 0.1, F32), init("z", 0, U8), init("bz", 0, U8)]
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             node("QLinearSoftmax", ["q", "s", "z", "s", "z"], ["mi"], domain=MS, name="mmi", opset=13),
             node("Foo", ["q"], ["foo"], domain="my.domain", name="custom"),
             node("DequantizeLinear", ["q", "s", "z"], ["f"]),
             node("Selu", ["f"], ["sm"], name="selu"),
             node("Erf", ["x"], ["erf"], name="erf")]
    m = make_model(nodes, {"x": (F32, (2, 2))},
                   {"mi": (U8, (2, 2)), "foo": (U8, (2, 2)), "sm": (F32, (2, 2)), "erf": (F32, (2, 2))},
                   inits, check=False)
    m.opset_import.append(__import__("onnx").helper.make_opsetid("my.domain", 1))
    with pytest.raises(qnnref.ValidationError) as e:
        import_onnx(m, profile="qnnref")
    text = str(e.value)
    for where in ("'mmi' (com.microsoft:QLinearSoftmax)", "'custom' (my.domain:Foo)", "'selu' (Selu)",
                  "'erf' (Erf)"):
        assert where in text, text
    assert "table-based softmax" in text and "custom domain" in text and "float32" in text
    assert text.count("\n  - ") == 4


def test_symbolic_input_shape_needs_input_shapes():
    """A symbolic dimension other than the leading one needs input_shapes; a
    symbolic leading one is kept as the model's symbolic batch
    (tests/onnx_import/test_import_symbolic_batch.py), unless input_shapes fixes it."""
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["y"])]
    m = make_model(nodes, {"x": (F32, (1, "L"))}, {"y": (U8, (1, "L"))}, [init("s", 0.1, F32), init("z", 3, U8)])
    with pytest.raises(qnnref.ValidationError, match="input_shapes"):
        import_onnx(m, profile="qnnref")
    m = make_model(nodes, {"x": (F32, ("N", 4))}, {"y": (U8, ("N", 4))}, [init("s", 0.1, F32), init("z", 3, U8)])
    assert import_onnx(m, profile="qnnref").inputs[0].shape == ("N", 4)
    q = import_onnx(m, profile="qnnref", input_shapes={"x": (2, 4)})
    assert q.inputs[0].shape == (2, 4)


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(qnnref.ValidationError, match="no such file"):
        import_onnx(tmp_path / "missing.onnx", profile="qnnref")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not a model")
    with pytest.raises(qnnref.ValidationError, match="not a readable ONNX model"):
        import_onnx(bad, profile="qnnref")
    m = make_model([node("Identity", ["x"], ["y"])], {"x": (F32, (1,))}, {"y": (F32, (1,))})
    with pytest.raises(qnnref.ValidationError, match="unknown semantic profile"):
        import_onnx(m, profile="no-such-profile")


def test_reinterpreting_integers_is_refused():
    """Q with one scale, DQ with another: qnnref tensors carry one quantization."""
    nodes = [node("QuantizeLinear", ["x", "s1", "z"], ["q"]), node("DequantizeLinear", ["q", "s2", "z"], ["y"])]
    m = make_model(nodes, {"x": (F32, (3,))}, {"y": (F32, (3,))},
                   [init("s1", 0.1, F32), init("s2", 0.2, F32), init("z", 0, U8)])
    with pytest.raises(qnnref.ValidationError, match="one quantization"):
        import_onnx(m, profile="qnnref")


@pytest.mark.parametrize("scale,zp,match", [(np.float32(0.0), U8(0), "finite and > 0"),
                                            (np.float16(0.1), U8(0), "float32"),
                                            (np.float32(0.1), np.uint16(0), "uint16|UINT16")])
def test_unsupported_quantization_parameters(scale, zp, match):
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["y"])]
    from onnx import TensorProto
    out_type = TensorProto.UINT16 if zp.dtype == np.uint16 else TensorProto.UINT8
    m = make_model(nodes, {"x": (F32, (3,))}, {"y": (out_type, (3,))}, [init("s", scale), init("z", zp)], opset=21,
                   check=False)
    with pytest.raises(qnnref.ValidationError, match=match):
        import_onnx(m, profile="qnnref")


def test_names_and_metadata_for_the_harness(tmp_path):
    rng = np.random.default_rng(0)
    inits = [init("s", 0.05, F32), init("z", 128, U8), init("w", rng.integers(-60, 60, (2, 3, 1, 1)).astype(S8)),
             init("ws", 0.01, F32), init("wz", 0, S8), init("ys", 0.1, F32), init("yz", 3, U8)]
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["xq"]), node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             node("DequantizeLinear", ["w", "ws", "wz"], ["wf"]), node("Conv", ["xf", "wf"], ["c"]),
             node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]), node("DequantizeLinear", ["cq", "ys", "yz"], ["y"])]
    m = make_model(nodes, {"x": (F32, (1, 3, 2, 2))}, {"y": (F32, (1, 2, 2, 2))}, inits)
    m.producer_name, m.producer_version = "unit-test", "1.0"
    q = import_onnx(m, profile="qnnref")
    md = q.metadata
    assert md["profile"] == "qnnref"
    assert md["source"]["format"] == "onnx" and md["source"]["opset"] == 13
    assert md["source"]["producer"] == "unit-test 1.0"
    # the integer tensors keep their ONNX names; layouts and float views are listed
    assert {"x", "xq", "cq", "y"} <= set(q.graph.tensors)
    assert md["source"]["tensors"]["cq"] == {"tensor": "cq", "perm": [0, 2, 3, 1]}
    assert md["source"]["tensors"]["xf"] == {"tensor": "xq", "dequantized": True}
    assert ops_of(q) == ["quantize", "transpose", "conv2d", "transpose", "dequantize"]
    qnnref.save(q, tmp_path / "m.qnn")
    assert qnnref.load(tmp_path / "m.qnn").metadata["source"] == md["source"]


def test_profile_is_recorded_and_used():
    nodes = [node("QLinearAdd", ["a", "s", "z", "a", "s", "z", "s2", "z"], ["y"], domain=MS)]
    m = make_model(nodes, {"a": (U8, (4,))}, {"y": (U8, (4,))}, [init("s", 0.1, F32), init("z", 0, U8),
                                                                 init("s2", 0.3, F32)])
    for profile in ("qnnref", "float32-half-to-even"):
        assert import_onnx(m, profile=profile).profile == profile


@pytest.mark.parametrize("dims", [[8, 0, 2**40, 2**40], [0, 2**31]])
def test_empty_initializer_with_huge_other_dims_is_refused(dims):
    """(Found by tools/fuzz.py, input 20142850.) An initializer with a zero
    dimension holds no data, but its other dims must still make a shape: they
    were handed to numpy, which raised ValueError on the reshape."""
    from onnx import TensorProto, helper
    t = helper.make_tensor("w", TensorProto.FLOAT, dims, vals=b"", raw=True)
    m = make_model([node("Identity", ["w"], ["y"])], {}, {"y": (F32, dims)}, [t], check=False)
    with pytest.raises(qnnref.QnnError, match="dims"):
        import_onnx(m)
