"""The built-in suite generator: deterministic, seeded per case, big enough,
valid ONNX, and what ONNX Runtime accepts."""
from __future__ import annotations

import numpy as np
import pytest

from qnnref.conform import suite

from .conftest import needs_onnx, needs_ort

pytestmark = needs_onnx


def _same(a, b) -> bool:
    return (a.model == b.model and a.tags == b.tags and a.session_config == b.session_config
            and a.inputs.keys() == b.inputs.keys()
            and all(a.inputs[k].dtype == b.inputs[k].dtype and np.array_equal(a.inputs[k], b.inputs[k])
                    for k in a.inputs))


def test_full_suite_has_at_least_2000_cases_over_every_row():
    n = suite.counts()
    assert sum(n.values()) == suite.FULL_SUITE_SIZE >= 2000
    for row in ("QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger", "QGemm", "QLinearAdd",
                "QLinearMul", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearConcat",
                "QLinearSigmoid", "QLinearLeakyRelu", "QuantizeLinear", "DequantizeLinear",
                "QDQ Conv", "QDQ MatMul", "QDQ Add", "graph"):
        assert n[row] >= 50


@pytest.mark.parametrize("op", list(suite.GENERATORS))
def test_generation_is_deterministic_per_case(op):
    for i in (0, 1, 5, 13):
        a, b = suite.make_case(op, i, seed=3), suite.make_case(op, i, seed=3)
        assert _same(a, b)
    assert not _same(suite.make_case(op, 2, seed=3), suite.make_case(op, 2, seed=4))


def test_a_smaller_suite_is_a_subset_of_the_full_one():
    small = {c.id: c for c in suite.builtin_suite(seed=1, total=60)}
    assert len(small) == 60
    assert len({c.op for c in small.values()}) == len(suite.GENERATORS)   # every row once at least
    for cid in ("QLinearConv/0002", "graph/0000", "QDQ Add/0001"):
        op, i = cid.split("/")
        assert _same(small[cid], suite.make_case(op, int(i), seed=1))
    only = list(suite.builtin_suite(seed=1, total=10, ops=["QGemm", "QDQ Conv"]))
    assert {c.op for c in only} == {"QGemm", "QDQ Conv"} and len(only) == 10
    with pytest.raises(ValueError, match="unknown operator"):
        list(suite.builtin_suite(ops=["Conv"]))


def test_cases_cover_the_edges_the_issue_asks_for():
    cases = list(suite.builtin_suite(seed=0, total=600))
    tags = {t for c in cases for t in c.tags}
    for t in ("u8s8", "u8u8", "s8s8", "per-channel", "per-tensor", "saturate", "ties", "large_acc",
              "extremes", "bias", "s4", "u4", "blocked", "per-axis", "x64quantprecision",
              "channels_last", "float-output", "all-256-values", "float-island"):
        assert t in tags or any(t in tag for tag in tags), t
    # all-255 activations against +-127 weights
    sat = [c for c in cases if c.op == "QLinearConv" and "saturate" in c.tags and "u8s8" in c.tags]
    assert sat and all(np.all(c.inputs["x"] == 255) for c in sat)


def test_every_model_is_valid_onnx():
    import onnx
    for c in suite.builtin_suite(seed=0, total=300):
        onnx.checker.check_model(onnx.load_from_string(c.model))


@needs_ort
def test_onnx_runtime_runs_the_suite_with_few_refusals():
    import onnxruntime as ort
    refused = []
    for c in suite.builtin_suite(seed=0, total=400):
        so = ort.SessionOptions()
        so.log_severity_level = 4
        for k, v in c.session_config.items():
            so.add_session_config_entry(k, v)
        try:
            out = ort.InferenceSession(c.model, so, providers=["CPUExecutionProvider"]).run(None, c.inputs)
        except Exception as e:
            refused.append((c.id, str(e)[:80]))
            continue
        assert all(o.size > 0 for o in out), c.id
    assert len(refused) <= 4, refused


def test_batch_graphs_have_a_symbolic_batch_and_run_above_batch_1():
    """The "graph (batch N)" row: the graphs of "graph" with x: ['N', C, H, W],
    at batches 2-4; qnnref imports each once with the batch kept."""
    import onnx
    from qnnref.conform.engine import import_plan
    n = suite.counts()["graph (batch N)"]
    batches = set()
    for i in range(n):
        c = suite.make_case("graph (batch N)", i)
        x = onnx.load_from_string(c.model).graph.input[0]
        assert x.type.tensor_type.shape.dim[0].dim_param == "N" == c.batch_symbol
        assert c.inputs["x"].shape[0] == c.batch > 1 and c.batch_inputs == ("x",)
        blob, shapes, kept = import_plan(c)
        assert blob == c.model and shapes is None and kept
        batches.add(c.batch)
    assert batches == {2, 3, 4}
    templates = {suite.make_case("graph (batch N)", i).tags[0] for i in range(8)}
    assert templates == {suite.make_case("graph", i).tags[0] for i in range(8)}
