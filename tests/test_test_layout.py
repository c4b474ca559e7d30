"""No directory of the test suite takes the name of a module the tests, or the
libraries they use, import: ``tests/onnx`` stood in for the onnx package (and
fooled the skip checks when onnx was absent), ``tests/packaging`` for the
packaging module that onnxruntime imports."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _top_level_names_installed() -> set[str]:
    names = set(sys.stdlib_module_names)
    for dist in importlib.metadata.distributions():
        if (dist.metadata["Name"] or "").lower() == "qnnref":
            # our own: an editable install's qnnref.egg-info in the checkout lists
            # every source file (SOURCES.txt), spec/*.md too; its module is qnnref
            continue
        top = dist.read_text("top_level.txt")
        if top:
            names.update(line.strip() for line in top.splitlines() if line.strip())
        for f in dist.files or ():
            part = f.parts[0] if f.parts else ""
            if not part or part.endswith((".dist-info", ".egg-info", ".data", ".pth")) or part == "..":
                continue
            if len(f.parts) == 1:            # a top-level file is a module only if Python imports it
                if f.suffix in (".py", ".so", ".pyd"):
                    names.add(part.split(".")[0])
            elif f.suffix in (".py", ".so", ".pyd"):  # a directory with Python code in it: a package
                names.add(part)
    return names


def test_no_test_directory_is_named_like_an_importable_module():
    taken = _top_level_names_installed() | {"qnnref", "onnx", "onnxruntime", "qonnx", "packaging", "numpy",
                                            "hypothesis", "pytest", "build"}
    clashes = sorted(d.name for d in TESTS.iterdir() if d.is_dir() and d.name in taken)
    assert not clashes, f"tests/{clashes[0]} would stand in for the module of that name: rename it"
