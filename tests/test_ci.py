"""The README's set-up is the whole set-up: its two commands are what CI runs,
as written, with nothing installed between them, and the ``test`` extra
brings every package the tests use (before, .ci/run installed onnx,
onnxruntime and qonnx between the two commands, hiding that the README's
second command failed on a fresh machine)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_CMD = re.compile(r"^python3 -m venv \.venv && .*$", re.M)


def readme_commands() -> list[str]:
    return README_CMD.findall((ROOT / "README.md").read_text())


def test_the_readme_has_the_two_setup_commands():
    cmds = readme_commands()
    assert len(cmds) == 2, cmds
    assert cmds[0].endswith("&& pip install . && qnnref demo")
    assert cmds[1].endswith('&& pip install -e ".[test]" && python -m pytest -q')


def test_ci_runs_the_readme_commands_with_nothing_installed_before_or_between():
    script = (ROOT / ".ci" / "run").read_text()
    code = [line.strip() for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]
    # the commands are taken from the README itself, so they cannot drift apart
    assert any("grep -E '^python3 -m venv \\.venv && ' README.md" in line for line in code)
    assert any(line.startswith('bash -c "${readme_cmds[$i]}"') for line in code)
    # nothing is installed before the README's commands or between them (one
    # loop runs both); extra passes after them may set up what they need
    loop = next(i for i, line in enumerate(code) if line.startswith('bash -c "${readme_cmds[$i]}"'))
    installs = [line for line in code[:loop + 2] if re.search(r"\b(pip3?|uv|conda)\b.*\binstall\b", line)]
    assert not installs, f".ci/run installs packages before or between the README's commands: {installs}"
    assert code[loop - 2].startswith("for i in 0 1; do") and code[loop + 1] == "done"


def test_ci_runs_the_vendor_tests_as_on_an_avx2_cpu_or_says_why_not():
    script = (ROOT / ".ci" / "run").read_text()
    assert "QNNREF_TEST_VENDOR_CPU=avx2 run_pytest -q tests/onnx_import tests/profiles tests/conform" in script
    assert 'why=$(python tests/vendor_cpu.py avx2)' in script and "skipped: $why" in script


def _extra(name: str) -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(rf"^{name}\s*=\s*\[(.*?)\]", text, re.M | re.S)
    assert m, f"no optional-dependencies entry {name!r} in pyproject.toml"
    return [re.split(r"[<>=!~\[ ]", s.strip().strip('"'))[0] for s in m.group(1).split(",") if s.strip()]


def test_the_test_extra_brings_what_the_tests_import():
    assert {"pytest", "hypothesis", "pytest-benchmark", "onnx", "onnxruntime", "qonnx"} <= set(_extra("test"))
