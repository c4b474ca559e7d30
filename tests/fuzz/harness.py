"""Running fuzzed models under guards: warnings as errors, a hard timeout,
a peak-allocation bound, a lowered model size limit; only QnnError may escape."""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import tracemalloc
import warnings

import numpy as np
from hypothesis import HealthCheck, settings
from qnnref import Model, QnnError, dtypes
from qnnref import format as qformat
from qnnref import graph as qgraph
from qnnref.graph import Graph

EXAMPLES = int(os.environ.get("QNNREF_FUZZ_EXAMPLES", 0))
FUZZ = settings(max_examples=EXAMPLES or 1000, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

#: While fuzzing, the model size limit is lowered so that any mutation that
#: would make a big tensor must be refused rather than run slowly.
FUZZ_LIMIT = 20_000
#: Likewise the node work limit (qnnref.graph.MAX_NODE_WORK; 2^30 units is
#: about a second of reference work per node), so that a mutation that
#: would make a node slow must be refused at load, well within TIMEOUT.
FUZZ_WORK_LIMIT = 2**30
#: Peak bytes any one example may allocate (the seeds need well under 1 MB).
PEAK_BYTES = 64 * 2**20
#: Seconds any one example may take before it counts as a hang.
TIMEOUT = 10



# ---------------------------------------------------------------------------
# Running a model on valid random inputs
# ---------------------------------------------------------------------------

def random_input(spec, rng: np.random.Generator, small_indices: float = 0.7) -> np.ndarray:
    """Random valid values for a model input; 32/64-bit integers (indices)
    are small with probability ``small_indices``, else anywhere in range."""
    dt = dtypes.get(spec.dtype)
    shape = tuple(2 if isinstance(d, str) else d for d in spec.shape)    # a symbolic batch: 2 items
    if dt.is_int:
        if dt.bits >= 32 and rng.random() < small_indices:
            lo, hi = -8, 8                      # index-like values, mostly in range
        else:
            lo, hi = dt.min, dt.max
        return np.asarray(rng.integers(lo, hi, shape, endpoint=True, dtype=np.int64), dt.numpy)
    scale = float(rng.choice([1.0, 100.0, 1e30]))
    with np.errstate(over="ignore"):             # float16: 1e30 is inf
        return np.asarray(rng.standard_normal(shape) * scale, dt.numpy)


def run_on_random_inputs(model: Model, rng: np.random.Generator):
    inputs = {s.name: random_input(s, rng, small_indices=1.0) for s in model.inputs}
    return inputs, model.run(inputs, capture=True)


# ---------------------------------------------------------------------------
# Guards: hangs, big allocations, warnings
# ---------------------------------------------------------------------------

@contextlib.contextmanager
def hard_timeout(seconds: int):
    """Raise TimeoutError in the main thread after ``seconds`` (POSIX)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"example took more than {seconds} s (a hang?)")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def size_limit(n: int, work: int | None = None):
    """Lower the model size limit (qnnref.graph.MAX_TENSOR_ELEMENTS) and,
    with ``work``, the node work limit (qnnref.graph.MAX_NODE_WORK)."""
    old = qgraph.MAX_TENSOR_ELEMENTS, qgraph.MAX_NODE_WORK
    qgraph.MAX_TENSOR_ELEMENTS = n
    if work is not None:
        qgraph.MAX_NODE_WORK = work
    try:
        yield
    finally:
        qgraph.MAX_TENSOR_ELEMENTS, qgraph.MAX_NODE_WORK = old


@contextlib.contextmanager
def guarded():
    """Warnings are errors, one example may not hang or allocate much."""
    tracemalloc.start()
    try:
        with warnings.catch_warnings(), hard_timeout(TIMEOUT), size_limit(FUZZ_LIMIT, FUZZ_WORK_LIMIT):
            warnings.simplefilter("error")
            yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES, f"an example allocated {peak} bytes"


def load_and_run(graph: Graph, seed: int = 0):
    """Model(graph) then run on random inputs; only QnnError may escape.
    Returns (model, inputs, outputs) or None when a QnnError was raised."""
    try:
        model = Model(graph)
    except QnnError:
        return None
    rng = np.random.default_rng(seed)
    inputs = {s.name: random_input(s, rng) for s in model.inputs}
    for s in model.inputs + model.outputs:
        assert qgraph.element_count(s.shape) <= qgraph.MAX_TENSOR_ELEMENTS
    try:
        outputs = model.run(inputs, capture=True)
    except QnnError as e:
        assert "node" in str(e) or "input" in str(e), str(e)
        return model, inputs, None
    for name, arr in outputs.items():
        t = graph.tensors[name]
        shape = tuple(2 if isinstance(d, str) else d for d in t.shape)     # a symbolic batch: 2 items
        assert arr.dtype == dtypes.get(t.dtype).numpy and arr.shape == shape
    return model, inputs, outputs

def write_or_none(graph: Graph):
    """to_bytes, or None when the writer refuses the graph (a QnnError)."""
    try:
        return qformat.to_bytes(graph)
    except QnnError:
        return None
