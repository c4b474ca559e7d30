"""Speed of the C++ kernels backend (pytest-benchmark), per ISA, single thread.

Run:  python -m pytest benchmarks/bench_kernels.py --benchmark-only
      (add --benchmark-json OUT to keep the numbers; compare.py is the
      one-table comparison with the vendors)

Not part of the test run (pyproject: testpaths = ["tests"]). The cases are
compare.py's (benchmarks/_cases.py). Each one is validated before it is
timed: the reference output equals an independent int64 oracle, and the
kernels output equals the reference output bit for bit. A case is skipped,
with the reason, when the kernels are not built, when the ISA is not
available, or when its node has no kernel yet (it would time the reference).
GOPS = 2 * MACs / median seconds, in the saved report's extra_info.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qnnref  # noqa: E402
from _cases import CASES, digits_input, make_data, model_ops, oracle_output, qnnref_graph  # noqa: E402

INFO = qnnref.kernels_info()
ISAS = ("avx2", "scalar")
OP_CASES = [(c.name, v) for c in CASES.values() if c.kind != "model" for v in c.variants]


def require_kernels(isa):
    """Skip, with the reason, unless the kernels are built for ``isa``."""
    if not INFO["built"]:
        pytest.skip(f"kernels not built: {INFO.get('error')}")
    if isa not in INFO["available_isas"]:
        pytest.skip(f"ISA {isa} not available on this CPU")


def record(benchmark, ops, model):
    benchmark.extra_info["plan"] = [p["runs"] for p in model.plan()]
    if benchmark.stats is not None and ops:
        benchmark.extra_info["GOPS"] = ops / benchmark.stats["median"] / 1e9


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case,variant", OP_CASES, ids=[f"{c}-{v}" for c, v in OP_CASES])
def test_operator(benchmark, case, variant, isa):
    require_kernels(isa)
    data = make_data(CASES[case], variant)
    graph = qnnref_graph(data)
    model = qnnref.Model(graph, backend="kernels", isa=isa, threads=1)
    runs = model.plan()[0]["runs"]
    if not runs.startswith("kernel"):
        pytest.skip(f"no kernel for this node: {runs}")
    reference = qnnref.Model(graph, backend="reference").run(data["x"])["y"]
    assert np.array_equal(reference, oracle_output(data)), "reference != int64 oracle"
    assert np.array_equal(model.run(data["x"])["y"], reference), f"kernels ({isa}) != reference"
    benchmark(model.run, data["x"])
    record(benchmark, CASES[case].ops, model)


@pytest.mark.parametrize("isa", ISAS)
def test_bundled_digits(benchmark, isa):
    require_kernels(isa)
    path = qnnref.bundled_model("digits")
    model = qnnref.load(path, backend="kernels", isa=isa, threads=1)
    reference = qnnref.load(path, backend="reference")
    for i in range(8):
        x = digits_input(reference, i)
        want, got = reference.run(x), model.run(x)
        assert all(np.array_equal(got[k], want[k]) for k in want), f"kernels ({isa}) != reference, image {i}"
    x = digits_input(reference, 0)
    benchmark(model.run, x)
    record(benchmark, model_ops(model.graph), model)
