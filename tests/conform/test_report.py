"""Comparison, aggregation, the JSON report's schema, the table, exit codes."""
from __future__ import annotations

import json

import numpy as np

from qnnref.conform.compare import (FLOAT_RTOL, HIST_LABELS, compare_outputs, diff_tensor,
                                    histogram)
from qnnref.conform.engine import OursResult
from qnnref.conform.harness import CaseResult
from qnnref.conform.report import SCHEMA, Report


def test_histogram_bins():
    d = np.array([0, 0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 64, 65, 256, 257, 32000])
    assert dict(zip(HIST_LABELS, histogram(d))) == {
        "0": 2, "1": 1, "2": 1, "3-4": 2, "5-8": 2, "9-16": 2, "17-64": 2, "65-256": 2, ">256": 2}


def test_integer_diff_in_steps():
    v = np.array([0, 255, 10, 7], np.uint8)
    o = np.array([0, 240, 11, 7], np.uint8)
    d = diff_tensor("y", v, o)
    assert (d.differing, d.min_diff, d.max_diff, d.within_bound) == (2, 1, 15, False)
    assert d.summary() == "2 of 4 outputs differ by 1\u201315 steps"
    assert diff_tensor("y", v, v).exact
    assert diff_tensor("y", v, o[:3]).problem.startswith("shape")
    assert not diff_tensor("y", v, None).within_bound
    assert diff_tensor("y", np.array([5], np.int8), np.array([6], np.int8), max_steps=1).within_bound


def test_dequantized_float_outputs_are_also_measured_in_steps():
    scale = np.array([0.5, 0.25], np.float32).reshape(2, 1)
    v = np.array([[1.0, 1.5], [0.25, 0.5]], np.float32)
    o = v + scale                                  # one step everywhere
    d = diff_tensor("f", v, o, max_steps=1, step=scale)
    assert d.within_bound and d.max_steps == 1.0
    assert not diff_tensor("f", v, o, max_steps=0, step=scale).within_bound
    assert not diff_tensor("f", v, v + 2 * scale, max_steps=1, step=scale).within_bound


def test_float_diff_within_the_documented_bound():
    v = np.array([1.0, -2.0, 0.0, np.nan], np.float32)
    close = np.array([1.0 + 4 * 2.0**-23, -2.0, 0.0, np.nan], np.float32)   # 4 ulp
    far = np.array([1.0 + 2.0**-16, -2.0, 0.0, np.nan], np.float32)
    assert diff_tensor("f", v, v).exact
    d = diff_tensor("f", v, close)
    assert d.kind == "float" and not d.exact and d.within_bound and d.max_rel <= FLOAT_RTOL
    assert not diff_tensor("f", v, far).within_bound


def _result(cid, op, kind, statuses, vendor="ok", diff=0):
    r = CaseResult(cid, op, ("t",), vendor, kind=kind if vendor == "ok" else None)
    if vendor != "ok":
        return r
    for p, st in statuses.items():
        out = np.zeros(4, np.uint8)
        ours = OursResult(p, outputs={"y": out + (diff if st == "differs" else 0)})
        if st == "unsupported":
            ours.error, ours.stage, ours.refused = "no such op", "import", True
        if st == "error":
            ours.error, ours.stage = "boom", "run"
        r.outcomes[p] = compare_outputs(p, p, {"y": out}, ours, 1 if kind == "float" else 0)
    return r


def _report(results, strict=False, allow_unsupported=False):
    return Report(results, ["a", "b"], meta={"suite": "test", "seconds": 1.0}, strict=strict,
                  allow_unsupported=allow_unsupported)


def _on_purpose(r, why="documented"):
    """``r`` as a built-in case whose refusals are documented ones."""
    r.builtin = True
    if r.vendor_status == "refused":
        r.vendor_documented = why
    for o in r.outcomes.values():
        if o.status == "unsupported":
            o.documented = why
    return r


def test_exit_codes():
    ok = _result("X/0", "X", "integer", {"a": "exact", "b": "differs"}, diff=3)
    assert _report([ok]).exit_code() == 0                          # b is not the expected profile
    # a case that was not compared fails the run, unless allowed
    for name, status in (("refused", "vendor-refused"), ("unsupported", "unsupported")):
        nc = (_result("X/1", "X", "integer", {}, vendor="refused") if name == "refused" else
              _result("X/2", "X", "integer", {"a": "unsupported", "b": "unsupported"}))
        assert nc.coverage("a") == status
        rep = _report([ok, nc])
        assert rep.exit_code() == 1 and [r.id for r in rep.failures()] == [nc.id]
        assert _report([ok, nc], allow_unsupported=True).exit_code() == 0
        # a built-in case refused on purpose (documented) passes, except under --strict
        _on_purpose(nc)
        assert nc.coverage("a") == "refused-on-purpose"
        assert _report([ok, nc]).exit_code() == 0
        assert _report([ok, nc], strict=True).exit_code() == 1
    for bad in (_result("X/3", "X", "integer", {"a": "differs", "b": "exact"}, diff=1),
                _result("X/4", "X", "integer", {"a": "error", "b": "exact"}),
                _result("X/5", "X", "integer", {}, vendor="crashed"),
                _result("X/6", "X", "integer", {}, vendor="hung")):
        rep = _report([ok, bad], allow_unsupported=True)
        assert rep.exit_code() == 1 and [r.id for r in rep.failures()] == [bad.id]


def test_counts_per_output_sample_and_element():
    """Per model and output: samples identical / within the bound / outside it,
    and the same per element (the auditor's "356 identical, 4 within")."""
    v = {"y": np.array([1.0, 2.0, 3.0], np.float32), "q": np.array([5, 6], np.uint8)}
    rs = []
    for i, (dy, dq) in enumerate([(0, 0)] * 5 + [(2.0**-22, 1)] * 3 + [(0.5, 2)]):
        ours = OursResult("a", outputs={"y": v["y"] + np.float32(dy) * np.array([0, 1, 0], np.float32),
                                        "q": (v["q"] + np.array([dq, 0])).astype(np.uint8)})
        r = CaseResult(f"m.onnx/s[{i}]", "m.onnx", (), "ok", kind="float", step_bound=1)
        r.outcomes["a"] = compare_outputs("a", "a", v, ours, 1)
        rs.append(r)
    rep = Report(rs, ["a"])
    out = rep.rows["m.onnx"]["profiles"]["a"]["outputs"]
    assert out["y"] == {"kind": "float", "samples": 9, "identical": 5, "within_bound": 3, "outside": 1,
                        "elements": 27, "identical_elements": 23, "within_bound_elements": 3,
                        "outside_elements": 1}
    assert out["q"] == {"kind": "int", "samples": 9, "identical": 5, "within_bound": 3, "outside": 1,
                        "elements": 18, "identical_elements": 14, "within_bound_elements": 3,
                        "outside_elements": 1}
    text = rep.render()
    assert "output 'y': 9 samples: 5 identical, 3 within the float bound, 1 outside it" in text
    assert "27 elements: 23 identical, 3 within, 1 outside" in text
    doc = json.loads(json.dumps(rep.to_json()))
    assert doc["operators"]["m.onnx"]["profiles"]["a"]["outputs"]["y"]["within_bound"] == 3
    assert doc["exit_code"] == 1 and doc["totals"]["failures"] == 1


def test_float_cases_are_not_in_the_exact_figures():
    rs = [_result("X/0", "X", "integer", {"a": "exact", "b": "exact"}),
          _result("X/1", "X", "float", {"a": "differs", "b": "exact"}, diff=1),     # 1 step: within bound
          _result("X/2", "X", "float", {"a": "differs", "b": "exact"}, diff=2)]
    rep = _report(rs)
    row = rep.rows["X"]["profiles"]["a"]
    assert row["integer"]["cases"] == 1 and row["integer"]["exact_pct"] == 100.0
    assert row["float"] == {"cases": 2, "identical": 0, "within_bound": 1, "max_abs": 0.0, "max_steps": 2}
    assert rep.exit_code() == 1


def test_json_schema_and_table():
    rs = [_result("QLinearConv/0000", "QLinearConv", "integer", {"a": "exact", "b": "differs"}, diff=15),
          _result("QLinearConv/0001", "QLinearConv", "integer", {"a": "exact", "b": "exact"}),
          _result("QGemm/0000", "QGemm", "float", {"a": "exact", "b": "unsupported"}),
          _on_purpose(_result("QGemm/0001", "QGemm", "integer", {}, vendor="refused"))]
    rep = _report(rs)
    doc = json.loads(json.dumps(rep.to_json()))
    assert doc["schema"] == SCHEMA
    for key in ("profiles", "expected_profile", "machine_overrides", "bounds", "histogram_bins", "totals",
                "exit_code", "operators", "diagnosis", "cases", "suite", "seconds", "strict",
                "allow_unsupported"):
        assert key in doc, key
    assert doc["expected_profile"] == "a" and doc["exit_code"] == 0
    assert doc["totals"] == {"cases": 4, "ok": 3, "refused": 1, "crashed": 0, "hung": 0, "error": 0,
                             "compared": 3, "refused_on_purpose": 1, "unsupported": 0, "vendor_refused": 0,
                             "integer_cases": 2, "float_cases": 1, "failures": 0}
    conv = doc["operators"]["QLinearConv"]
    assert conv["cases"] == 2 and conv["integer_cases"] == 2
    b = conv["profiles"]["b"]["integer"]
    assert (b["cases"], b["exact"], b["exact_pct"], b["max_diff"]) == (2, 1, 50.0, 15)
    assert b["histogram"] == {"0": 4, "1": 0, "2": 0, "3-4": 0, "5-8": 0, "9-16": 4, "17-64": 0,
                              "65-256": 0, ">256": 0}
    assert doc["operators"]["QGemm"]["profiles"]["b"]["unsupported"] == 1
    assert [g["op"] for g in doc["diagnosis"]["b"]] == ["QGemm", "QLinearConv"] or \
        [g["op"] for g in doc["diagnosis"]["b"]] == ["QLinearConv", "QGemm"]
    assert {c["id"] for c in doc["cases"]} == {r.id for r in rs}
    text = rep.render()
    assert "QLinearConv" in text and "| a" in text and "| b" in text and text.splitlines()[-1].startswith("PASS")
    assert "9-16:4" in text
