"""Helpers for the kernel tests: run one graph on every backend, ISA and
thread count, and assert the outputs are bit-identical (np.array_equal).

Each kernel test module builds small graphs (tests/conftest.py's helpers or
qnnref.GraphBuilder) and calls :func:`assert_all_backends_agree`.
"""
from __future__ import annotations

import numpy as np
import pytest

import qnnref
from qnnref import _kernels
from qnnref.interpreter import Model

BUILT = _kernels.available()
ISAS = _kernels.available_isas()
THREADS = (1, 2, 3)

needs_kernels = pytest.mark.skipif(not BUILT, reason="the C++ kernels are not built "
                                   "(pip install . builds them)")


def kernel_models(graph, threads=THREADS):
    """(label, Model) for every ISA x thread count, backend kernels."""
    for isa in ISAS:
        for t in threads:
            yield f"{isa}/{t}t", Model(graph, backend="kernels", isa=isa, threads=t)


def assert_all_backends_agree(model_or_graph, inputs, *, expect_kernel: bool | str = True,
                              threads=THREADS) -> dict[str, np.ndarray]:
    """Run ``inputs`` (a dict, or one array) on the reference and on the
    kernels under every ISA and thread count; every output must be equal
    (np.array_equal, same dtype). ``expect_kernel``: True if every node with
    a kernel must run it (not fall back to the reference); a string: the
    op name whose nodes must run a kernel. Returns the reference outputs.

    If the reference raises a QnnError, every kernel run must raise the same
    error class (the kernels defer to the reference for REQUIRE failures)."""
    graph = model_or_graph.graph if isinstance(model_or_graph, Model) else model_or_graph
    ref_model = Model(graph, backend="reference")
    try:
        ref = ref_model.run(inputs)
    except qnnref.QnnError as e:
        for label, m in kernel_models(graph, threads):
            with pytest.raises(type(e)):
                m.run(inputs)
        return {}
    for label, m in kernel_models(graph, threads):
        if expect_kernel:
            for row in m.plan():
                wanted = row["op"] in _kernels.KERNELS if expect_kernel is True else row["op"] == expect_kernel
                if wanted:
                    assert row["runs"].startswith("kernel"), f"{label}: {row}"
        got = m.run(inputs)
        for name, r in ref.items():
            g = got[name]
            assert g.dtype == r.dtype and g.shape == r.shape, (label, name, g.dtype, g.shape, r.dtype, r.shape)
            if not np.array_equal(g, r):
                bad = np.argwhere(g != r)
                first = tuple(bad[0])
                raise AssertionError(f"{label}: output {name!r}: {len(bad)} of {r.size} differ; first at "
                                     f"{list(first)}: kernel {g[first]}, reference {r[first]}")
    return ref
