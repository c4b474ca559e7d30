"""The built-in suite's documented refusals (suite/refusals.py): each entry
still happens in its row (no stale excuses), matching is by side, row and
message, and spec/conformance.md lists every entry."""
from __future__ import annotations

import os

import pytest

from qnnref.conform import suite
from qnnref.conform.suite.refusals import DOCUMENTED, documented_refusal

from .conftest import needs_importer, needs_ort

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "spec", "conformance.md")


def test_matching_is_by_side_row_and_message():
    msg = "node 'quantize' (QuantizeLinear): zero point of type uint16, which qnnref does not have"
    assert documented_refusal("qnnref", "QuantizeLinear", msg) is not None
    assert documented_refusal("qnnref", "QDQ Conv", msg) is None                 # another row
    assert documented_refusal("onnxruntime", "QuantizeLinear", msg) is None      # another side
    assert documented_refusal("qnnref", "QuantizeLinear", "zero point of type int8") is None


def test_every_entry_is_in_the_spec():
    text = open(SPEC, encoding="utf-8").read()
    for r in DOCUMENTED:
        side = "ONNX Runtime" if r.side == "onnxruntime" else "qnnref"
        rows = [ln for ln in text.splitlines() if ln.startswith(f"| {side} | {r.row} |")]
        assert rows, f"spec/conformance.md does not list the {side} refusal in row {r.row}"


SEEDS = (0, 1, 2, 3)


def _cases(row):
    for seed in SEEDS:                  # some refusals are rare: a few seeds of the row
        yield from suite.builtin_suite(seed, ops=[row])


def _first_refusal(entry):
    """The first case of the entry's row refused with its message, or None."""
    if entry.side == "qnnref":
        from qnnref.errors import QnnError
        from qnnref.onnx import import_onnx
        for case in _cases(entry.row):
            try:
                import_onnx(case.model, profile="onnx")
            except QnnError as e:
                if documented_refusal("qnnref", entry.row, str(e)) is entry:
                    return case
        return None
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 4
    for case in _cases(entry.row):
        try:
            ort.InferenceSession(case.model, so, providers=["CPUExecutionProvider"]).run(None, case.inputs)
        except Exception as e:
            if documented_refusal("onnxruntime", entry.row, f"{type(e).__name__}: {e}") is entry:
                return case
    return None


@needs_ort
@needs_importer
@pytest.mark.parametrize("entry", DOCUMENTED, ids=lambda r: f"{r.side}-{r.row}-{r.pattern[:24]}")
def test_each_documented_refusal_still_happens(entry):
    assert _first_refusal(entry) is not None, (
        f"no {entry.row} case is refused by {entry.side} with /{entry.pattern}/ any more: "
        "remove the entry (suite/refusals.py, spec/conformance.md)")
