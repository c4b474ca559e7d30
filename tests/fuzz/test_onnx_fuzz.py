"""Fuzzing the ONNX importer: whatever the model, ``qnnref.import_onnx``
either returns a Model that runs (or refuses its input with a qnnref error)
or raises a ``qnnref.QnnError``: never another exception, never the
importer's "internal error" backstop, never a hang, never a big allocation.

The seeds are real ONNX Runtime quantizations (tests/fuzz/onnx_seeds.py:
``quantize_static`` QDQ and QOperator of small CNNs and an MLP, and
``quantize_dynamic``). Two fuzzers, like the .qnn reader's:

* bytes: the serialized protobuf corrupted (bit flips, byte sets,
  insertions, deletions, truncation, splices);
* graph: structured mutations (attributes, shapes, initializer dtypes,
  dims, contents and sizes, scales of 0 / NaN / inf / negative / denormal,
  zero points out of range, wiring, duplicate and missing nodes and names,
  cycles, op types, opsets; tests/fuzz/onnx_mutators.py).

Hypothesis draws the seed model and the number of a ``random.Random`` that
drives the mutations; each run here is a bounded slice.
``QNNREF_FUZZ_EXAMPLES=20000`` runs longer, and ``tools/fuzz.py`` runs the
campaign (a million inputs, crash- and hang-proof worker processes).

Below the fuzzers, each kind of exception the importer used to raise on
malformed models, as a small regression example per module.
"""
from __future__ import annotations

import random
import time
import tracemalloc

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX importer fuzzers need onnx: pip install 'qnnref[test]'")
pytest.importorskip("onnxruntime.quantization",
                    reason="the ONNX importer fuzzers quantize their seeds with onnxruntime: "
                           "pip install 'qnnref[test]'")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import AttributeProto, TensorProto, helper, numpy_helper  # noqa: E402

from qnnref import QnnError, ValidationError  # noqa: E402
from qnnref.onnx import import_onnx  # noqa: E402

from .harness import EXAMPLES, FUZZ, guarded  # noqa: E402
from .onnx_mutators import PROFILES, mutate_bytes, mutate_graph, random_feeds, run_one  # noqa: E402
from .onnx_seeds import seed_models  # noqa: E402

SEEDS = seed_models()
NAMES = sorted(SEEDS)
BLOBS = [SEEDS[n] for n in NAMES]


def proto(name: str) -> onnx.ModelProto:
    return onnx.ModelProto.FromString(SEEDS[name])


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", NAMES)
def test_seeds_import_and_run(name, profile):
    model = import_onnx(SEEDS[name], profile=profile)
    outputs = model.run(random_feeds(model, 0))
    assert set(outputs) == {o.name for o in proto(name).graph.output}


# ---------------------------------------------------------------------------
# The fuzzers (a bounded slice in CI)
# ---------------------------------------------------------------------------

@settings(FUZZ, max_examples=EXAMPLES or 400)
@given(st.integers(0, len(NAMES) - 1), st.integers(0, 2**64 - 1))
def test_corrupt_model_bytes_import_or_raise_qnn_errors(index, seed):
    rng = random.Random(seed)
    data = mutate_bytes(BLOBS[index], rng, BLOBS)
    with guarded():
        run_one(data, seed % 2**32)


@settings(FUZZ, max_examples=EXAMPLES or 400)
@given(st.integers(0, len(NAMES) - 1), st.integers(0, 2**64 - 1), st.integers(1, 4), st.sampled_from(PROFILES))
def test_mutated_models_import_and_run_or_raise_qnn_errors(index, seed, count, profile):
    m = proto(NAMES[index])
    mutate_graph(m, random.Random(seed), count)
    with guarded():
        run_one(m, seed % 2**32, profile)


# ---------------------------------------------------------------------------
# Regressions: each kind of raw exception the importer raised, per module
# ---------------------------------------------------------------------------

def _node(m, name):
    return next(n for n in m.graph.node if n.name == name)


def _init(m, name):
    return next(t for t in m.graph.initializer if t.name == name)


def _attr(m, node, name):
    return next(a for a in _node(m, node).attribute if a.name == name)


def _set_init(m, name, arr):
    _init(m, name).CopyFrom(numpy_helper.from_array(np.asarray(arr), name))


def _wrong_kind(m):                       # pads as a FLOAT: TypeError in layout.py
    a = _attr(m, "conv1", "pads")
    a.Clear()
    a.name, a.type, a.f = "pads", AttributeProto.FLOAT, 1.0


def _duplicate_attr(m):
    _node(m, "conv1").attribute.append(helper.make_attribute("pads", [0, 0, 0, 0]))


def _not_utf8(m):                         # UnicodeDecodeError in reader.py
    _node(m, "conv1").attribute.append(helper.make_attribute("auto_pad", b"\xff\xfe"))


def _truncated_raw(m):                    # ValueError (reshape) in numpy_helper
    t = _init(m, "w1_quantized")
    t.raw_data = t.raw_data[:-5]


def _empty_raw(m):                        # raw_data set but empty, the values in int32_data
    t = _init(m, "w1_zero_point")
    vals = list(onnx.numpy_helper.to_array(t).reshape(-1))
    t.ClearField("raw_data")
    t.int32_data.extend(int(v) for v in vals)
    t.raw_data = b""


def _undefined_type(m):                   # TypeError: element type UNDEFINED
    _init(m, "w1_scale").data_type = TensorProto.UNDEFINED


def _unknown_type(m):                     # KeyError: 99
    _init(m, "w1_scale").data_type = 99


def _external(m):
    t = _init(m, "w1_scale")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "../../etc/passwd"


def _missing_value(m):                    # KeyError in context.py
    _node(m, "conv1").input[0] = "nowhere"


def _cycle(m):
    _node(m, "conv1").input[0] = "r2"


def _absent_input(m):                     # KeyError '' in context.py
    _node(m, "add").input[1] = ""


def _ssa(m):
    _node(m, "conv1").output[0] = "x_DequantizeLinear_Output"


def _opset(m):
    m.opset_import[0].version = 10**6


def _required(m):                         # TypeError (None) in compute.py
    n = _node(m, "concat")
    del n.attribute[:]


def _stride_zero(m):                      # ZeroDivisionError in ops/conv2d.py via floatops.py
    _attr(m, "conv1", "strides").ints[:] = [0, 2]


def _pads_huge(m):                        # the import hang: an output of 2^40 x 2^40 windows
    _attr(m, "conv1", "pads").ints[:] = [0, 0, 2**40, 2**40]


def _resize_nan(m):                       # ValueError (NaN to int) in selection.py
    _set_init(m, "scales", np.array([1, 1, np.nan, 2], np.float32))


def _resize_inf(m):                       # OverflowError in selection.py
    _set_init(m, "scales", np.array([1, 1, 3.4e38, 2], np.float32))


def _reshape_float(m):                    # TypeError in movement.py
    _set_init(m, "shape", np.array([1.5, -1], np.float32))


def _clip_vector(m):                      # ValueError (reshape) in activations.py / floatops.py
    m.graph.initializer.append(numpy_helper.from_array(np.array([0, 6], np.float32), "lo"))
    m.graph.node.append(helper.make_node("Clip", ["x_DequantizeLinear_Output", "lo"], ["clipped"], name="clip"))
    m.graph.output.append(helper.make_tensor_value_info("clipped", TensorProto.FLOAT, None))


def _scale_zero(m):
    _set_init(m, "x_scale", np.float32(0))


def _scale_nan(m):
    _set_init(m, "w1_scale", np.array([np.nan, 1, 1, 1], np.float32))


def _zero_point_wide(m):                  # a zero point of another type (out of uint8's range)
    _set_init(m, "x_zero_point", np.int32(300))


def _axis_out_of_range(m):
    _attr(m, "w1_DequantizeLinear", "axis").i = 7


def _qlinear_scale_vector(m):             # ValueError (truth value of an array) in qoperator.py
    _set_init(m, "c1_scale", np.array([0.1, 0.2], np.float32))


def _huge_initializer(m):                 # MemoryError: dims of 2^40 elements, no data
    t = _init(m, "w1_quantized")
    del t.dims[:]
    t.dims.extend([2**20, 2**20])


def _concat_ranks(m):                     # ValueError (transpose axes) in compute.py
    m.graph.initializer.append(numpy_helper.from_array(np.zeros((2, 2), np.uint8), "flat_q"))
    m.graph.node.insert(0, helper.make_node("DequantizeLinear", ["flat_q", "x_scale", "x_zero_point"], ["dq_flat"],
                                            name="dq_flat"))
    _node(m, "concat").input[1] = "dq_flat"


def _blocked_axis(m):                     # an axis below -rank
    a = _attr(m, "w1_DequantizeLinear", "axis")
    a.i = -9


def _no_output(m):                        # IndexError (outputs[0]) in qdq.py
    del _node(m, "w1_DequantizeLinear").output[:]


def _input_count(m):
    _node(m, "conv1").input.extend(["x", "x"])


REGRESSIONS = {
    "reader-attribute-kind": ("cnn_qdq_u8s8_pc", _wrong_kind, "attribute 'pads' must be INTS"),
    "reader-attribute-twice": ("cnn_qdq_u8s8_pc", _duplicate_attr, "given twice"),
    "reader-not-utf8": ("cnn_qdq_u8s8_pc", _not_utf8, "not UTF-8"),
    "reader-truncated-data": ("cnn_qdq_u8s8_pc", _truncated_raw, "bytes of data"),
    "reader-empty-raw-data": ("cnn_qdq_u8s8_pc", _empty_raw, "both in raw_data and in int32_data"),
    "reader-undefined-type": ("cnn_qdq_u8s8_pc", _undefined_type, "UNDEFINED"),
    "reader-unknown-type": ("cnn_qdq_u8s8_pc", _unknown_type, "element type 99"),
    "reader-external-data": ("cnn_qdq_u8s8_pc", _external, "external data"),
    "reader-huge-initializer": ("cnn_qdq_u8s8_pc", _huge_initializer, "exceed qnnref's limit"),
    "reader-missing-value": ("cnn_qdq_u8s8_pc", _missing_value, "which no graph input"),
    "reader-cycle": ("cnn_qdq_u8s8_pc", _cycle, "topological order"),
    "reader-ssa": ("cnn_qdq_u8s8_pc", _ssa, "already defined"),
    "reader-opset": ("cnn_qdq_u8s8_pc", _opset, "out of range"),
    "reader-required-attribute": ("cnn_qdq_u8s8_pc", _required, "required attribute 'axis'"),
    "reader-no-output": ("cnn_qdq_u8s8_pc", _no_output, "no (first) output"),
    "reader-input-count": ("cnn_qdq_u8s8_pc", _input_count, "takes 2..3 inputs"),
    "context-absent-input": ("cnn_qdq_u8s8_pc", _absent_input, "absent"),
    "layout-stride-zero": ("cnn_qdq_u8s8_pc", _stride_zero, "attribute 'strides'"),
    "layout-pads-huge": ("cnn_qdq_u8s8_pc", _pads_huge, "attribute 'pads'"),
    "selection-resize-nan": ("cnn2_qdq_u8u8", _resize_nan, "finite float"),
    "selection-resize-inf": ("cnn2_qdq_u8u8", _resize_inf, "output shape"),
    "movement-reshape-float": ("cnn2_qdq_u8u8", _reshape_float, "integers"),
    "activations-clip-vector": ("cnn_qdq_u8s8_pc", _clip_vector, "one number"),
    "quantparams-scale-zero": ("cnn_qdq_u8s8_pc", _scale_zero, "finite and > 0"),
    "quantparams-scale-nan": ("cnn_qdq_u8s8_pc", _scale_nan, "finite and > 0"),
    "quantparams-zero-point-type": ("cnn_qdq_u8s8_pc", _zero_point_wide, "int32"),
    "quantparams-axis": ("cnn_qdq_u8s8_pc", _axis_out_of_range, "out of range"),
    "qoperator-scale-vector": ("cnn_qop_u8s8", _qlinear_scale_vector, "scale"),
    "compute-concat-ranks": ("cnn_qdq_u8s8_pc", _concat_ranks, "different ranks"),
    "quantparams-negative-axis": ("cnn_qdq_u8s8_pc", _blocked_axis, "out of range"),
}


@pytest.mark.parametrize("case", list(REGRESSIONS))
def test_malformed_model_raises_a_validation_error(case):
    """Each mutation is refused with a ValidationError naming what is wrong,
    quickly and without a big allocation (the model is re-serialized, as a
    file would be, so the protobuf path is the real one)."""
    seed, edit, words = REGRESSIONS[case]
    m = proto(seed)
    edit(m)
    data = m.SerializeToString()
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(ValidationError) as info:
            import_onnx(data, profile="onnx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < 10
    assert peak < 64 * 2**20, f"{case}: {peak} bytes allocated"
    msg = str(info.value)
    assert words in msg, msg
    assert "internal error" not in msg


def _growing(op, inits, **attrs):
    """A float model whose constant subgraph ``op`` would make a huge tensor."""
    g = helper.make_graph([helper.make_node(op, [i.name for i in inits], ["c"], **attrs),
                           helper.make_node("Add", ["x", "c"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _i(name, value, dtype=np.int64):
    return numpy_helper.from_array(np.asarray(value, dtype), name)


@pytest.mark.parametrize("model", [
    _growing("ConstantOfShape", [_i("s", [2**15, 2**15])],
             value=numpy_helper.from_array(np.array([1.0], np.float32))),
    _growing("Expand", [_i("v", [1.0], np.float32), _i("s", [2**15, 2**15])]),
    _growing("Tile", [_i("v", [1.0], np.float32), _i("s", [2**30])]),
    _growing("Range", [_i("a", 0, np.float32), _i("b", 1e9, np.float32), _i("d", 1, np.float32)]),
    _growing("Range", [_i("a", 0, np.float32), _i("b", 1, np.float32), _i("d", 0, np.float32)]),
], ids=["ConstantOfShape", "Expand", "Tile", "Range", "Range-delta-0"])
def test_constant_folding_is_bounded_before_it_allocates(model):
    """Folding a constant subgraph used to allocate 4-8 GiB (or be killed):
    the output size is known, and checked, before onnx.reference runs."""
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError, match="fold"):
            import_onnx(model.SerializeToString(), profile="onnx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, peak


@pytest.mark.parametrize("kw", [{"input_shapes": {"x": (1, "a", 8, 8)}}, {"input_shapes": {"x": 5}},
                                {"input_shapes": {"x": (1, 2, -8, 8)}}, {"constants": {"x": "abc"}},
                                {"constants": {"x": np.array([object()])}}])
def test_bad_import_options_are_validation_errors(kw):
    with pytest.raises(ValidationError):
        import_onnx(SEEDS["cnn_qdq_u8s8_pc"], profile="onnx", **kw)


def test_corrupt_bytes_are_a_validation_error():
    """protobuf's DecodeError used to escape import_onnx(bytes)."""
    data = SEEDS["cnn_qdq_u8s8_pc"]
    with pytest.raises(ValidationError, match="not a readable ONNX model"):
        import_onnx(data[: len(data) // 2] + b"\xff" * 9, profile="onnx")


def test_the_backstop_is_an_internal_error_not_a_raw_exception(monkeypatch):
    """An exception the importer did not foresee comes out as a QnnError that
    says "internal error: please report" (the fuzzers fail on it)."""
    from qnnref.onnx import importer

    def boom(*args):
        raise IndexError("boom")
    monkeypatch.setattr(importer, "read_model", boom)
    with pytest.raises(QnnError, match="internal error: please report"):
        import_onnx(SEEDS["mlp_qop_s8s8_pc"], profile="onnx")
