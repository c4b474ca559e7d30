"""The public Python API: load/save, Model.run/inputs/outputs/capture, the
builder, and errors naming inputs and nodes."""
from __future__ import annotations

import numpy as np
import pytest

import qnnref
from qnnref import GraphBuilder


def one_node_model():
    b = GraphBuilder(description="x -> requantize -> y")
    x = b.input("x", "int8", (2, 3), scale=0.5, zero_point=1)
    y = b.node("requantize", [x], {"dtype": "uint8"}, scale=0.25, zero_point=128, name="rq", output="y")
    b.output(y)
    return b


def test_builder_build_and_run():
    m = one_node_model().build()
    out = m.run(np.array([[1, 3, -128], [127, 0, 2]], np.int8))
    assert list(out) == ["y"]
    assert np.array_equal(out["y"], np.array([[128, 132, 0], [255, 126, 130]], np.uint8))


def test_inputs_outputs_describe_the_model():
    m = one_node_model().build()
    (i,), (o,) = m.inputs, m.outputs
    assert (i.name, i.dtype, i.shape, float(i.scale), int(i.zero_point)) == ("x", "int8", (2, 3), 0.5, 1)
    assert (o.name, o.dtype, o.shape, float(o.scale), int(o.zero_point)) == ("y", "uint8", (2, 3), 0.25, 128)


def test_run_accepts_a_dict_and_capture_returns_intermediates():
    m = one_node_model().build()
    x = np.zeros((2, 3), np.int8)
    out = m.run({"x": x}, capture=True)
    assert set(out) == {"x", "y"}


def test_save_load_round_trip(tmp_path):
    b = one_node_model()
    path = tmp_path / "m.qnn"
    digest = qnnref.save(b.graph(), path)
    m = qnnref.load(path)
    assert m.digest == digest
    x = np.arange(-3, 3, dtype=np.int8).reshape(2, 3)
    assert np.array_equal(m.run(x)["y"], b.build().run(x)["y"])


@pytest.mark.parametrize("bad,match", [
    (np.zeros((2, 3), np.int16), "dtype int8"),
    (np.zeros((3, 2), np.int8), r"shape \[2, 3\]"),
    ({"z": np.zeros((2, 3), np.int8)}, "unknown input"),
    ({}, "missing"),
    ([[1, 2, 3]], "numpy array|dict"),
])
def test_wrong_inputs_name_the_input(bad, match):
    m = one_node_model().build()
    with pytest.raises(qnnref.RuntimeCheckError, match=match):
        m.run(bad)


def test_int4_inputs_are_range_checked():
    b = GraphBuilder()
    x = b.input("x", "int4", (4,), scale=1.0)
    b.output(b.node("requantize", [x], {"dtype": "int8"}, scale=1.0))
    m = b.build()
    assert np.array_equal(m.run(np.array([-8, -1, 0, 7], np.int8))[m.outputs[0].name], [-8, -1, 0, 7])
    with pytest.raises(qnnref.RuntimeCheckError, match="outside the int4 range"):
        m.run(np.array([8, 0, 0, 0], np.int8))


def test_validation_errors_name_the_node():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=1.0)
    with pytest.raises(qnnref.ValidationError, match="node 'bad' .*dtype"):
        b.node("requantize", [x], {"dtype": "float32"}, scale=1.0, name="bad")
    with pytest.raises(qnnref.ValidationError, match="unknown operator"):
        b.node("no_such_op", [x])
    with pytest.raises(qnnref.ValidationError, match="unknown attribute"):
        b.node("requantize", [x], {"dtype": "int8", "colour": 1}, scale=1.0)
    with pytest.raises(qnnref.ValidationError, match="required"):
        b.node("requantize", [x], {}, scale=1.0)


def test_unknown_profile_is_refused():
    with pytest.raises(qnnref.ValidationError, match="unknown semantic profile"):
        GraphBuilder(profile="no-such-profile")


def test_declared_output_type_must_match_the_operator(tmp_path):
    g = one_node_model().graph()
    g.tensors["y"].shape = (3, 2)
    with pytest.raises(qnnref.ValidationError, match="declared uint8\\[3, 2\\]"):
        qnnref.Model(g)


def test_node_recipe_overrides_profile():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=1.0)
    half_even = {"kind": "fixed_point", "rounding": "half_to_even"}
    y1 = b.node("requantize", [x], {"dtype": "int8"}, scale=2.0, name="up")
    y2 = b.node("requantize", [x], {"dtype": "int8", "recipe": half_even}, scale=2.0, name="even")
    b.output(y1, y2)
    out = b.build().run(np.array([1, 3], np.int8))
    assert out[y1].tolist() == [1, 2]        # 0.5 -> 1, 1.5 -> 2 (ties up)
    assert out[y2].tolist() == [0, 2]        # 0.5 -> 0, 1.5 -> 2 (ties to even)


def test_bad_recipe_attribute_is_a_validation_error():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=1.0)
    with pytest.raises(qnnref.ValidationError, match="rounding"):
        b.node("requantize", [x], {"dtype": "int8", "recipe": {"rounding": "sideways"}}, scale=2.0)


def test_quantize_and_dequantize_helpers():
    m = one_node_model().build()
    q = m.quantize("x", np.array([[0.0, 0.5, 1.0], [-0.25, 0.25, 100.0]], np.float32))
    # x / 0.5 = -0.5 and 0.5 are ties: both round to the even 0 (then + zp 1)
    assert q.dtype == np.int8 and q.tolist() == [[1, 2, 3], [1, 1, 127]]
    assert m.dequantize("x", q).tolist() == [[0.0, 0.5, 1.0], [0.0, 0.0, 63.0]]


def test_bundled_model_path():
    assert qnnref.bundled_model("digits").endswith("digits.qnn")
    with pytest.raises(qnnref.QnnError, match="no bundled model"):
        qnnref.bundled_model("imagenet")
