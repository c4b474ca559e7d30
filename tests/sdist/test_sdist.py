"""The sdist is complete: built from a copy of this tree, it holds everything
the build needs, and ``pip install``-ed into a fresh virtual environment it
gives working C++ kernels and a working demo.

(This directory is tests/sdist, not tests/packaging: a test package named
``packaging`` stands in for the real ``packaging`` module, which onnxruntime
and build import.)

Slow (a full build of the kernels, one to two minutes), so it runs once per
CI run: it is skipped in CI's cross-check passes (``QNNREF_BACKEND`` set),
which re-run the whole suite to compare backends, not to test packaging. It
skips with the reason when ``build``, ``venv`` or a C++ compiler is missing.
The build fetches its build requirements (setuptools, Cython, numpy) from the
package index, as ``pip install`` does.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAME = "qnnref-0.1.0"

#: what the build needs (and what a reader of the sdist needs), relative to the sdist's root
REQUIRED = ["setup.py", "pyproject.toml", "MANIFEST.in", "LICENSE", "README.md", "CHANGELOG.md",
            "qnnref/py.typed", "qnnref/_kernels/_ext.pyx", "qnnref/conform/cpuidmask.c",
            "qnnref/data/digits.qnn", "qnnref/data/digits_test.npz", "spec/format.md"]
#: every file of these kinds in the tree must be in the sdist
REQUIRED_GLOBS = ["qnnref/_kernels/*.pxi", "qnnref/_kernels/include/qnnref/*.h", "qnnref/_kernels/src/*.cpp",
                  "qnnref/**/*.py", "spec/**/*.md"]


def _why_not() -> str | None:
    if os.environ.get("QNNREF_BACKEND"):
        return "packaging is tested once per CI run, not again in the QNNREF_BACKEND cross-check passes"
    if importlib.util.find_spec("build") is None:
        return "the 'build' package is not installed (pip install -e '.[test]' brings it)"
    if importlib.util.find_spec("ensurepip") is None:
        return "this Python has no ensurepip, so venv cannot make an environment with pip"
    cxx = (sysconfig.get_config_var("CXX") or "c++").split()[0]
    if shutil.which(cxx) is None and shutil.which("c++") is None:
        return f"no C++ compiler ({cxx}) to build the kernels"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")

_IGNORE = shutil.ignore_patterns(".git", ".ci-venv", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                 "*.so", "_ext.cpp", ".pytest_cache", ".hypothesis", ".benchmarks")


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QNNREF_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=900, **kw)
    assert p.returncode == 0, (f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n"
                               f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    """``python -m build --sdist`` on a copy of the tree (the build must not write into the checkout)."""
    work = tmp_path_factory.mktemp("sdist")
    src = work / "src"
    shutil.copytree(ROOT, src, ignore=_IGNORE)
    shutil.rmtree(src / "tests", ignore_errors=True)   # not part of the sdist; saves copying
    _run([sys.executable, "-m", "build", "--sdist", "--outdir", work / "dist", src], cwd=work)
    (path,) = (work / "dist").glob("*.tar.gz")
    return path


def test_sdist_holds_everything_the_build_needs(sdist):
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    missing = [f for f in REQUIRED if f not in names]
    for pattern in REQUIRED_GLOBS:
        missing += [str(p.relative_to(ROOT)) for p in ROOT.glob(pattern)
                    if "__pycache__" not in p.parts and str(p.relative_to(ROOT)) not in names]
    assert not missing, f"missing from {sdist.name}: {missing}"
    # sources only: no compiled extension, no generated C++, no test suite
    assert not [n for n in names if n.endswith(".so") or n == "qnnref/_kernels/_ext.cpp" or n.startswith("tests/")]


def test_sdist_metadata_has_the_licence_and_urls(sdist):
    with tarfile.open(sdist) as tar:
        pkg_info = tar.extractfile(f"{NAME}/PKG-INFO").read().decode()
    for line in ("License-Expression: Apache-2.0", "License-File: LICENSE",
                 "Project-URL: Source, https://github.com/qnnref/qnnref", "Classifier: Typing :: Typed"):
        assert line in pkg_info, line


def test_sdist_installs_in_a_fresh_venv_with_working_kernels(sdist, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    py = venv / "bin" / "python"
    _run([py, "-m", "pip", "install", "--quiet", sdist], cwd=tmp_path)
    # run from tmp_path, so the qnnref imported is the installed one, not this checkout
    check = ("import json, qnnref; info = qnnref.kernels_info(); print(qnnref.__file__); "
             "print(json.dumps(info))")
    out = _run([py, "-c", check], cwd=tmp_path).stdout
    where, info = out.splitlines()[0], json.loads(out.splitlines()[1])
    assert where.startswith(str(venv)), where
    assert info["built"] and info["default_backend"] == "kernels" and "conv2d" in info["operators"], info
    installed = Path(where).parent
    assert (installed / "py.typed").is_file()
    assert not list(installed.glob("_kernels/*.pyx")) and not (installed / "_kernels" / "src").exists()
    demo = _run([venv / "bin" / "qnnref", "demo", "--limit", "20", "--isa", "scalar"], cwd=tmp_path).stdout
    assert "int8  accuracy" in demo and "/20, measured now)" in demo, demo
    assert "kernels backend, scalar" in demo, demo
    licence = _run([py, "-c", "from importlib.metadata import metadata as m; print(m('qnnref')['License-Expression'])"],
                   cwd=tmp_path).stdout.strip()
    assert licence == "Apache-2.0"
