"""The spec and the code agree: every operator has a spec page and every
page an operator; every pseudocode block marked as source equals that source."""
from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from qnnref.ops import operator_names

ROOT = Path(__file__).resolve().parents[2]
SPEC_OPS = ROOT / "spec" / "ops"
TESTS_OPS = ROOT / "tests" / "ops"
MARKER = re.compile(r"<!-- source: (\S+) (\S+) -->\n```python\n(.*?)```", re.S)


def spec_pages() -> set[str]:
    return {p.stem for p in SPEC_OPS.glob("*.md") if not p.stem.startswith("_")}


def test_every_operator_has_a_spec_page():
    missing = set(operator_names()) - spec_pages()
    assert not missing, f"operators without spec/ops/NAME.md: {sorted(missing)}"


def test_every_spec_page_has_an_operator():
    orphans = spec_pages() - set(operator_names())
    assert not orphans, f"spec pages without an operator: {sorted(orphans)}"


def test_every_operator_has_its_test_file():
    missing = [n for n in operator_names() if not (TESTS_OPS / f"test_{n}.py").exists()]
    assert not missing, f"operators without tests/ops/test_NAME.py: {missing}"


def test_every_operator_page_includes_its_reference_source():
    for name in operator_names():
        text = (SPEC_OPS / f"{name}.md").read_text()
        files = {m.group(1) for m in MARKER.finditer(text)}
        assert f"qnnref/ops/{name}.py" in files, f"spec/ops/{name}.md has no pseudocode from qnnref/ops/{name}.py"


def _blocks():
    for page in sorted((ROOT / "spec").rglob("*.md")):
        for m in MARKER.finditer(page.read_text()):
            yield pytest.param(page, m.group(1), m.group(2), m.group(3),
                               id=f"{page.relative_to(ROOT)}:{m.group(2)}")


@pytest.mark.parametrize("page,file,func,block", list(_blocks()))
def test_spec_pseudocode_is_the_reference_source(page, file, func, block):
    module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
    obj = module
    for part in func.split("."):
        obj = getattr(obj, part)
    source = inspect.getsource(obj)
    assert block == source, (f"{page.name}: the block for {file} {func} differs from the code; "
                             "copy the function's source into the spec verbatim")
