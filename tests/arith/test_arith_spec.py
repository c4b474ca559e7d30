"""spec/arithmetic.md agrees with the code: included source, tables, anchors."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from qnnref import arith
from qnnref.profiles import PROFILES

from oracles import ROUNDING_TABLE, TABLE_INPUTS

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "spec" / "arithmetic.md"
MARKER = re.compile(r"<!-- source: (\S+) (\S+) -->\n```python\n(.*?)```", re.S)

#: functions the page must include verbatim
REQUIRED_SOURCES = ("round_float", "rounding_divide_by_pot", "saturate_float_to_int", "check_accumulator",
                    "exact_dot_bound_ok", "srdhm", "quantize_multiplier", "multiply_by_quantized_multiplier",
                    "apply_requant", "requantize_output", "quantize_values", "dequantize_values")


@pytest.fixture(scope="module")
def text() -> str:
    return PAGE.read_text()


def test_page_includes_the_key_functions_verbatim(text):
    blocks = {m.group(2): m.group(3) for m in MARKER.finditer(text) if m.group(1) == "qnnref/arith.py"}
    missing = [f for f in REQUIRED_SOURCES if f not in blocks]
    assert not missing, f"spec/arithmetic.md lacks source blocks for {missing}"
    for name, block in blocks.items():
        assert block == inspect.getsource(getattr(arith, name)), (
            f"spec/arithmetic.md: the block for {name} differs from qnnref/arith.py; copy it verbatim")


def _table_rows(text: str, first_header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def test_rounding_table(text):
    rows = _table_rows(text, "mode")
    table = {r[0].strip("`"): tuple(int(v) for v in r[2:8]) for r in rows}
    assert table == ROUNDING_TABLE
    head = next(line for line in text.splitlines() if line.startswith("| mode |"))
    assert [c.strip() for c in head.strip("|").split("|")][2:8] == [str(v) for v in TABLE_INPUTS]
    assert list(table) == list(arith.ROUNDING_MODES)


def profile_row(p) -> str:
    """The row of the profiles table for ``p``; '—' for fields the kind ignores."""
    r, q = p.requant, p.quantize
    fixed = r.kind == "fixed_point"
    cells = [f"`{p.name}`", r.kind, r.rounding,
             r.double_round if fixed else "—",
             "—" if fixed else r.float_dtype,
             r.scale_dtype,
             r.multiplier_rounding if fixed else "—",
             f"{q.method}, {q.rounding}, {q.float_dtype}",
             "yes" if p.pairwise_int16_saturation else "no"]
    return "| " + " | ".join(cells) + " |"


def test_profiles_table_lists_every_profile(text):
    in_table = {r[0].strip("`") for r in _table_rows(text, "profile")}
    for p in PROFILES.values():
        assert profile_row(p) in text, (f"spec/arithmetic.md, 'Semantic profiles': add or fix the row\n"
                                        f"{profile_row(p)}")
    stale = in_table - set(PROFILES)
    assert not stale, f"spec/arithmetic.md lists profiles that do not exist: {sorted(stale)}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def test_anchors_used_anywhere_exist(text):
    anchors = {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}
    used = set(re.findall(r"\]\(#([\w\-]+)\)", text))
    for page in list((ROOT / "spec").rglob("*.md")) + list((ROOT / "qnnref").rglob("*.py")):
        used |= set(re.findall(r"arithmetic\.md#([\w\-]+)", page.read_text()))
    assert {"rounding-modes", "requantization-recipes", "accumulators"} <= anchors
    assert not used - anchors, f"links to missing sections of spec/arithmetic.md: {sorted(used - anchors)}"


def test_equations_are_numbered_once_in_order(text):
    numbers = [int(n) for n in re.findall(r"^    \S.*\((\d+)\)$", text, re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 15, numbers
