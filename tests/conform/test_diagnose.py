"""The diagnosis: first diverging node, its statistics, and the attribution
to the u8 x s8 int16 saturation -- with a vendor whose outputs we make up,
and an engine (onnx.reference) that saturates when the profile says so."""
from __future__ import annotations

import numpy as np

from qnnref.conform.harness import Settings, evaluate
from qnnref.conform.onnxgraph import OnnxGraph
from qnnref.conform.runner import VendorResult
from qnnref.conform.suite import Case

from .conftest import needs_onnx
from .fakes import ReferenceEngine, saturating_matmul_integer

pytestmark = needs_onnx
EXACT = "float32-half-to-even"        # a registered profile without saturation


def _two_node_case(rng):
    """a (u8) -> QLinearMatMul -> t1 (u8) -> MatMulInteger(t1, w s8) -> y (int32)."""
    g = OnnxGraph()
    a = rng.integers(0, 256, (3, 16)).astype(np.uint8)
    g.input("a", "uint8", a.shape)
    g.const("b1", rng.integers(0, 256, (16, 8)), "uint8")
    for name, v, t in (("a_s", 0.02, "float32"), ("a_z", 7, "uint8"), ("b1_s", 0.01, "float32"),
                       ("b1_z", 120, "uint8"), ("t_s", 0.05, "float32"), ("t_z", 0, "uint8")):
        g.const(name, v, t)
    g.node("QLinearMatMul", ["a", "a_s", "a_z", "b1", "b1_s", "b1_z", "t_s", "t_z"], "t1", name="mm1")
    w = np.where(rng.random((8, 4)) < 0.5, -127, 127)
    g.const("w", w, "int8")
    g.node("MatMulInteger", ["t1", "w"], "y", name="mm2")
    g.output("y", "int32", (3, 4))
    return Case("graph/0", "graph", g.model_bytes(), {"a": a})


def _vendor_from(case, saturate_second: bool, perturb_first: bool = False):
    """What a vendor would return: the reference, with MatMulInteger saturating."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    values = ReferenceEvaluator(onnx.load_from_string(case.model)).run(None, case.inputs, intermediate=True)
    t1 = values["t1"].copy()
    if perturb_first:
        t1[0, 0] ^= 1
    y = saturating_matmul_integer(t1, values["w"]) if saturate_second else values["y"]
    return VendorResult("ok", outputs={"y": y}, intermediates={"t1": t1}, probe_consistent=True)


def test_saturation_is_found_and_named():
    rng = np.random.default_rng(0)
    case = _two_node_case(rng)
    vendor = _vendor_from(case, saturate_second=True)
    r = evaluate(case, vendor, Settings(profiles=[EXACT]), ReferenceEngine())
    o = r.outcomes[EXACT]
    assert o.status == "differs"
    dg = o.diagnosis
    assert dg["node"] == "mm2" and dg["op"] == "MatMulInteger" and dg["tensor"] == "y"
    assert "u8\u00d7s8 int16 saturation" in dg["explained_by"] and dg["hypothesis_explains_case"]
    assert dg["message"].startswith("node mm2 (MatMulInteger): ")
    assert "outputs differ by" in dg["message"] and dg["message"].endswith("pairwise_int16_saturation=True)")
    stats = {s["name"]: s for s in dg["inputs"]}
    assert stats["t1"]["dtype"] == "uint8" and stats["w"]["dtype"] == "int8"
    assert stats["w"]["min"] == -127 and stats["w"]["max"] == 127


def test_under_a_saturating_profile_the_case_is_explained_and_no_diagnosis_runs():
    from qnnref.conform.engine import profile_variant
    rng = np.random.default_rng(0)
    case = _two_node_case(rng)
    vendor = _vendor_from(case, saturate_second=True)
    sat = profile_variant(EXACT, {"pairwise_int16_saturation": True})
    engine = ReferenceEngine()
    r = evaluate(case, vendor, Settings(profiles=[sat, EXACT]), engine)
    assert r.outcomes[sat].status == "exact" and r.outcomes[sat].diagnosis is None
    assert r.outcomes[EXACT].status == "differs"
    # the exact profile's diagnosis names the saturation and the other profile
    assert "saturation" in r.outcomes[EXACT].diagnosis["explained_by"]


def test_first_diverging_node_comes_from_the_intermediates():
    rng = np.random.default_rng(1)
    case = _two_node_case(rng)
    vendor = _vendor_from(case, saturate_second=False, perturb_first=True)
    vendor.outputs["y"] = vendor.outputs["y"] + 1              # and the output differs too
    r = evaluate(case, vendor, Settings(profiles=[EXACT]), ReferenceEngine())
    dg = r.outcomes[EXACT].diagnosis
    assert dg["node"] == "mm1" and dg["tensor"] == "t1" and dg["differing"] == 1
    assert dg["explained_by"] is None and "no profile tried explains it" in dg["message"]
    # intermediates that exposing changed are not trusted: the output is the first divergence
    vendor.probe_consistent = False
    dg = evaluate(case, vendor, Settings(profiles=[EXACT]), ReferenceEngine()).outcomes[EXACT].diagnosis
    assert dg["node"] == "mm2" and "not used" in dg["note"]


def test_engine_refusal_is_unsupported_not_a_difference():
    case = _two_node_case(np.random.default_rng(2))
    vendor = _vendor_from(case, saturate_second=False)
    r = evaluate(case, vendor, Settings(profiles=[EXACT]), ReferenceEngine(fail_ops={"MatMulInteger"}))
    assert r.outcomes[EXACT].status == "unsupported" and r.coverage(EXACT) == "unsupported"
    assert r.outcomes[EXACT].diagnosis is None
    # not compared: a failure, unless allowed
    assert not r.conforms(EXACT) and r.conforms(EXACT, allow_unsupported=True)
