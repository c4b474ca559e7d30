"""Backends (kernels / reference / cross-check), their environment
overrides, kernels_info(), Model.plan(), and the interpreter's handling of
kernels that defer to the reference or disagree with it."""
from __future__ import annotations

import numpy as np
import pytest

import qnnref
from qnnref import GraphBuilder, _kernels
from qnnref.interpreter import Model

BUILT = _kernels.available()


def clamp_graph():
    b = GraphBuilder()
    x = b.input("x", "int8", (2, 5), scale=0.5, zero_point=1)
    y = b.node("clamp", [x], {"min": -3, "max": 4}, name="c", scale=0.5, zero_point=1)
    b.output(y)
    return b.graph()


X = np.arange(-5, 5, dtype=np.int8).reshape(2, 5)


class FakeKernel(_kernels.Kernel):
    """A kernel for clamp whose behaviour the test chooses."""

    op = "clamp"

    def __init__(self, mode):
        self.mode = mode

    def prepare(self, ctx, isa):
        if self.mode == "unsupported":
            raise _kernels.Unsupported("not this node")
        return {"isa": isa}

    def run(self, ctx, state, args, isa, threads):
        if self.mode == "defer":
            raise _kernels.NeedsReference()
        y = np.clip(args[0], -3, 4)
        if self.mode == "wrong":
            y = y.copy()
            y[1, 2] += 1
        return [y]


@pytest.fixture
def fake_kernel(monkeypatch):
    if not BUILT:
        pytest.skip("the C++ kernels are not built")

    def install(mode):
        glue = dict(_kernels.load_glue())
        glue["clamp"] = FakeKernel(mode)
        monkeypatch.setattr(_kernels, "load_glue", lambda: glue)
    return install


def test_reference_backend_always_works():
    m = Model(clamp_graph(), backend="reference")
    assert m.backend == "reference" and m.isa is None
    assert np.array_equal(m.run(X)["c" if False else m.outputs[0].name], np.clip(X, -3, 4))
    assert m.plan() == [{"node": "c", "op": "clamp", "runs": "reference"}]


def test_unknown_backend_and_isa_are_errors():
    with pytest.raises(qnnref.QnnError, match="unknown backend"):
        Model(clamp_graph(), backend="fast")
    if BUILT:
        with pytest.raises(qnnref.QnnError, match="unknown ISA"):
            Model(clamp_graph(), backend="kernels", isa="neon")


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2", 10**6])
def test_bad_thread_counts_are_errors(threads):
    with pytest.raises(qnnref.QnnError, match="threads"):
        Model(clamp_graph(), backend="reference", threads=threads)


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("QNNREF_BACKEND", "reference")
    assert Model(clamp_graph()).backend == "reference"
    monkeypatch.setenv("QNNREF_BACKEND", "nonsense")
    with pytest.raises(qnnref.QnnError, match="nonsense"):
        Model(clamp_graph())
    # an explicit argument beats the environment
    assert Model(clamp_graph(), backend="reference").backend == "reference"
    monkeypatch.delenv("QNNREF_BACKEND")
    monkeypatch.setenv("QNNREF_THREADS", "3")
    assert Model(clamp_graph(), backend="reference").threads == 3
    monkeypatch.setenv("QNNREF_THREADS", "many")
    with pytest.raises(qnnref.QnnError, match="QNNREF_THREADS"):
        Model(clamp_graph(), backend="reference")


@pytest.mark.skipif(not BUILT, reason="the C++ kernels are not built")
def test_isa_override(monkeypatch):
    monkeypatch.setenv("QNNREF_ISA", "scalar")
    m = Model(clamp_graph(), backend="kernels")
    assert m.isa == "scalar"
    monkeypatch.setenv("QNNREF_ISA", "sse9")
    with pytest.raises(qnnref.QnnError, match="sse9"):
        Model(clamp_graph(), backend="kernels")
    info = qnnref.kernels_info()          # reports the bad override instead of raising
    assert info["isa"] is None and "sse9" in info["error"]


def test_kernels_info_keys():
    info = qnnref.kernels_info()
    assert {"built", "isa", "available_isas", "default_backend", "operators"} <= set(info)
    if info["built"]:
        assert info["isa"] in info["available_isas"]
        assert "scalar" in info["available_isas"]
        assert info["default_backend"] in ("kernels", "reference", "cross-check")
    else:
        assert info["default_backend"] == "reference"


def test_kernels_backend_needs_the_extension(monkeypatch):
    monkeypatch.setattr(_kernels, "_ext", None)
    monkeypatch.delenv("QNNREF_BACKEND", raising=False)
    assert Model(clamp_graph()).backend == "reference"
    with pytest.raises(qnnref.QnnError, match="not built"):
        Model(clamp_graph(), backend="kernels")


def test_kernel_runs_and_plan_says_so(fake_kernel):
    fake_kernel("ok")
    m = Model(clamp_graph(), backend="kernels", isa="scalar")
    assert m.plan()[0]["runs"] == "kernel (scalar)"
    assert np.array_equal(m.run(X)[m.outputs[0].name], np.clip(X, -3, 4))


def test_unsupported_node_runs_on_the_reference(fake_kernel):
    fake_kernel("unsupported")
    m = Model(clamp_graph(), backend="kernels")
    assert m.plan()[0]["runs"] == "reference (not this node)"
    assert np.array_equal(m.run(X)[m.outputs[0].name], np.clip(X, -3, 4))


def test_needs_reference_reruns_the_reference(fake_kernel):
    fake_kernel("defer")
    m = Model(clamp_graph(), backend="kernels")
    assert np.array_equal(m.run(X)[m.outputs[0].name], np.clip(X, -3, 4))


def test_cross_check_reports_the_first_differing_node(fake_kernel):
    fake_kernel("wrong")
    m = Model(clamp_graph(), backend="cross-check", isa="scalar", threads=2)
    with pytest.raises(qnnref.CrossCheckError) as e:
        m.run(X)
    msg = str(e.value)
    for part in ("node 'c' (clamp)", "1 of 10 elements differ", "[1, 2]", "kernel 3", "reference 2",
                 "scalar", "2 thread"):
        assert part in msg, (part, msg)
    # the kernels backend alone does not check
    Model(clamp_graph(), backend="kernels").run(X)


def test_cross_check_passes_when_equal(fake_kernel):
    fake_kernel("ok")
    m = Model(clamp_graph(), backend="cross-check")
    assert np.array_equal(m.run(X)[m.outputs[0].name], np.clip(X, -3, 4))


def test_load_passes_backend_options(tmp_path):
    path = tmp_path / "m.qnn"
    qnnref.save(clamp_graph(), path)
    m = qnnref.load(path, backend="reference", threads=2)
    assert (m.backend, m.threads) == ("reference", 2)


def test_cli_backend_options_and_kernels_command(capsys):
    from qnnref.cli import main
    assert main(["demo", "--limit", "3", "--backend", "reference"]) == 0
    assert "reference backend" in capsys.readouterr().out
    assert main(["demo", "--limit", "3", "--threads", "0"]) == 1
    assert "threads" in capsys.readouterr().err
    assert main(["kernels"]) == 0
    out = capsys.readouterr().out
    assert "available_isas" in out and "default_backend" in out
    assert main(["inspect", qnnref.bundled_model("digits")]) == 0
    assert "execution plan" in capsys.readouterr().out


@pytest.mark.skipif(not BUILT, reason="the C++ kernels are not built")
def test_semantics_a_kernel_lacks_send_the_node_to_the_reference():
    """A profile feature the kernel does not implement (here ORT's pairwise
    int16 saturation, and a float recipe adding the zero point before
    rounding) must never be silently ignored."""
    from qnnref.arith import Recipe
    b = GraphBuilder(profile="ort-cpu-x86")
    x = b.input("x", "uint8", (4, 8), scale=0.5, zero_point=3)
    w = b.constant("w", np.full((8, 5), 127, np.int8), scale=0.25)
    y = b.node("matmul", [x, w], {}, name="mm", scale=64.0, zero_point=128)
    b.output(y)
    m = Model(b.graph(), backend="kernels")
    runs = m.plan()[0]["runs"]
    assert not runs.startswith("kernel")
    if "matmul" in _kernels.load_glue():
        assert "pairwise int16 saturation" in runs
    xs = np.full((4, 8), 255, np.uint8)
    assert np.array_equal(m.run(xs)[y], Model(b.graph(), backend="reference").run(xs)[y])
    b = GraphBuilder()
    x = b.input("x", "int8", (3, 4), scale=0.5, zero_point=1)
    r = Recipe(kind="float", rounding="half_to_even", zero_point_in_float=True).to_dict()
    b.output(b.node("requantize", [x], {"dtype": "int8", "recipe": r}, name="rq", scale=0.25, zero_point=3))
    m = Model(b.graph(), backend="kernels")
    assert "zero point before rounding" in m.plan()[0]["runs"]
