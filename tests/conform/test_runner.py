"""The ONNX Runtime worker: crashes and hangs are results, the run goes on,
results come back in order."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from qnnref.conform import suite
from qnnref.conform.runner import OrtRunner, VendorUnavailable

from .conftest import needs_ort

pytestmark = needs_ort


def _cases(n=12):
    return list(suite.builtin_suite(seed=5, total=n * 2))[:n]


def test_worker_survives_crash_hang_exit_and_error():
    cases = _cases(12)
    hooks = {2: "crash", 5: "hang", 6: "exit", 9: "error"}
    for i, h in hooks.items():
        cases[i] = dataclasses.replace(cases[i], hook=h)
    runner = OrtRunner(timeout=2.0, window=4)
    got = list(runner.run(cases))
    assert [c.id for c, _ in got] == [c.id for c in cases]           # all, in order
    status = {i: r.status for i, (_, r) in enumerate(got)}
    assert status[2] == "crashed" and "SIGABRT" in got[2][1].message
    assert status[5] == "hung" and "2 s" in got[5][1].message
    assert status[6] == "crashed" and "status 7" in got[6][1].message
    assert status[9] == "error" and "test hook" in got[9][1].message
    for i in set(range(12)) - set(hooks):
        assert status[i] in ("ok", "refused"), (i, got[i][1].message)
    assert runner.restarts == 3
    # the cases after a crash ran in a fresh worker and still give outputs
    assert got[3][1].status == "ok" and got[3][1].outputs


def test_results_match_an_in_process_session():
    import onnxruntime as ort
    cases = [c for c in _cases(8)]
    for case, res in OrtRunner(timeout=30).run(cases):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 4
        for k, v in case.session_config.items():
            so.add_session_config_entry(k, v)
        want = ort.InferenceSession(case.model, so, providers=["CPUExecutionProvider"]).run(None, case.inputs)
        assert res.status == "ok"
        for w, g in zip(want, res.outputs.values()):
            assert np.array_equal(w, g)


def test_intermediates_and_float_detection():
    graphs = [suite.make_case("graph", 0), suite.make_case("QDQ Conv", 3)]   # QOperator CNN; s8s8 QDQ conv
    (g, rg), (q, rq) = OrtRunner(timeout=30).run(graphs)
    assert rg.status == "ok" and rg.probe_consistent
    assert set(rg.intermediates) == {"conv_1_out", "maxpool_2_out", "conv_3_out", "gap_4_out", "flatten_5_out"}
    assert rq.status == "ok" and rq.vendor_ops is not None
    # ONNX Runtime leaves s8 x s8 QDQ convolutions in float on x86 (no QLinearConv fusion)
    assert "s8s8" in q.tags and rq.float_nodes


def test_refusal_is_a_result_not_an_error():
    case = suite.make_case("DequantizeLinear", 44)      # block_size on a 1-block axis: ORT refuses
    (_, res), = OrtRunner(timeout=30).run([case])
    assert res.status == "refused" and "block_size" in res.message


def test_worker_that_cannot_start_is_reported(tmp_path):
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\nexit 3\n")
    fake_python.chmod(0o755)
    with pytest.raises(VendorUnavailable, match="could not start"):
        list(OrtRunner(python=str(fake_python), startup_timeout=10).run(_cases(1)))
