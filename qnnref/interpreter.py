"""The interpreter: validates a whole graph once, then runs it node by node.

``Model`` is what ``qnnref.load`` returns. Validation (every node's dtypes,
shapes, attributes and quantization parameters) happens in the constructor,
before anything runs, and all per-node preparation (requantization
multipliers, ...) is done there once.

Backends (``backend=``, or ``$QNNREF_BACKEND``):

* ``reference``: every node runs its numpy reference (qnnref/ops/NAME.py);
* ``kernels`` (the default when the extension is built): nodes with a C++
  kernel run it (qnnref/_kernels/), prepacked at load time; the others
  (data movement, or a node the kernel does not cover: ``Model.plan()`` says
  why) run the reference;
* ``cross-check``: both, node by node; the first node whose outputs differ
  raises CrossCheckError with a short diff report.
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from . import batch as _batch
from . import dtypes
from .errors import CrossCheckError, QnnError, RuntimeCheckError, ValidationError
from .graph import Graph, TensorInfo, freeze, leading_symbol
from .ops import get_op
from .ops.registry import NodeContext, make_context
from .profiles import DEFAULT_PROFILE, get_profile


@dataclass(frozen=True)
class IOSpec:
    """A graph input or output as users see it (``Model.inputs``/``outputs``)."""

    name: str
    dtype: str
    shape: tuple  # ints; a model with a symbolic batch has its name (e.g. "N") first
    quant: Any  # qnnref.graph.Quant or None

    @property
    def batch_symbol(self) -> str | None:
        """The symbolic batch (e.g. ``"N"``) this tensor starts with, or None."""
        return leading_symbol(self.shape)

    def __str__(self) -> str:
        return f"{self.name}: " + TensorInfo(self.name, self.dtype, self.shape, self.quant).describe()

    @property
    def scale(self):
        return None if self.quant is None else self.quant.scale

    @property
    def zero_point(self):
        return None if self.quant is None else self.quant.zero_point_or_zeros()


def validate_graph(graph: Graph, where: str = "model", only: set[str] | None = None) -> list[NodeContext]:
    """Check a structurally sound, concrete graph as a model (ERROR_IF
    conditions) and prepare every node. Returns the node contexts in
    execution order. ``only``: check just these tensors (the others were
    checked before: a new batch size re-checks only its batched tensors)."""
    if not isinstance(graph.metadata, dict):
        raise ValidationError(f"{where}: metadata must be a dict, got {type(graph.metadata).__name__}")
    profile = get_profile(graph.metadata.get("profile", DEFAULT_PROFILE), where)
    for t in graph.tensors.values():
        if only is None or t.name in only:
            t.check(f"{where}: tensor {t.name!r}")
    contexts = []
    for node in graph.nodes:
        try:
            ctx = make_context(node, graph.tensors, profile)
            op = get_op(node.op, ctx.where())
            inferred = op.infer(ctx)
            for (dtype, shape), name in zip(inferred, node.outputs):
                t = graph.tensors[name]
                if t.dtype != dtype or tuple(t.shape) != tuple(shape):
                    raise ctx.error(f"output {name!r} is declared {t.dtype}{list(t.shape)} "
                                    f"but the operator produces {dtype}{list(shape)}")
            op.prepare(ctx)
        except ValidationError as e:
            # operators name the node; the message also names the file
            raise ValidationError(f"{where}: {e}") from None
        contexts.append(ctx)
    return contexts


def _io(tensors) -> tuple:
    """(numpy dtype, shape) of each tensor (None for an absent slot), as a
    tuple of plain values: what a kernel's preparation relied on."""
    return tuple(None if t is None else (np.dtype(t.dt.numpy), tuple(int(d) for d in t.shape)) for t in tensors)


def _objects(ctx) -> tuple:
    """A node's tensor objects with their dtype and shape objects. While all
    are the same objects, :func:`_io` gives what it gave (a dtype string and
    a tuple of ints cannot change in place), so a kernel call compares these
    identities first and rebuilds ``_io`` only when one changed."""
    return tuple(None if t is None else (t, t.dtype, t.shape) for t in (*ctx.inputs, *ctx.outputs))


def _same_objects(ctx, objects) -> bool:
    tensors = (*ctx.inputs, *ctx.outputs)
    return len(tensors) == len(objects) and all(
        t is None if o is None else (t is o[0] and t.dtype is o[1] and t.shape is o[2])
        for t, o in zip(tensors, objects))


class _Batch:
    """What a Model prepared for one batch size: the concrete graph, its node
    contexts and, per node, the kernel and its prepared state (or None)."""

    __slots__ = ("batch", "graph", "contexts", "plan", "reasons", "expect")

    def __init__(self, batch, graph, contexts):
        self.batch, self.graph, self.contexts = batch, graph, contexts
        self.plan: list[tuple[Any, Any]] = []
        self.reasons: list[str] = []
        #: per node, what its kernel was prepared for: ((dtype, shape) per input
        #: slot or None, (dtype, shape) per output, the tensor objects they were
        #: read from, see _objects); None for reference nodes
        self.expect: list[Any] = []


class Model:
    """A validated, runnable model. Create with ``qnnref.load``.

    The Model owns a read-only copy of the graph (``Model.graph``): changing
    it raises ReadOnlyError, so nothing changes behind the prepared kernels.
    A model with a symbolic batch (``Model.batch_symbol``) runs at any batch
    size; each size is validated and prepared when first met and kept in a
    small cache (the ``BATCH_CACHE`` most recently used sizes)."""

    #: how many batch sizes a Model keeps prepared (least recently used dropped)
    BATCH_CACHE = 4

    def __init__(self, graph: Graph, *, path: str | None = None, digest: str | None = None,
                 source: Any = None, backend: str | None = None, isa: str | None = None,
                 threads: int | None = None):
        self.path = path
        self.digest = digest
        self._source = source            # the private copy of the file the constants view
        where = path or "model"
        if not isinstance(graph, Graph):
            raise ValidationError(f"{where}: expected a qnnref.Graph, got {type(graph).__name__}")
        graph.check_structure(where)
        graph = freeze(graph)            # the Model's own, read-only copy
        self._graph = graph
        self._where = where
        self.batch_symbol = _batch.model_symbol(graph, where)
        self._symbolic = _batch.symbolic_names(graph)
        first = _batch.instantiate(graph, 1, self._symbolic) if self.batch_symbol else graph
        self._contexts = validate_graph(first, where)
        if self.batch_symbol:
            _batch.check_per_item(graph, self._contexts, where)
            try:   # every shape follows the batch as declared (the batch-2 graph validates)
                validate_graph(_batch.instantiate(graph, 2, self._symbolic), where, self._symbolic)
            except ValidationError as e:
                raise ValidationError(f"{e} (at batch 2 of the symbolic batch {self.batch_symbol!r})") from None
        self._ops = [get_op(c.node.op, "") for c in self._contexts]
        self._constants = {name: t.data for name, t in graph.tensors.items() if t.data is not None}
        self._lock = threading.Lock()
        self._batches: OrderedDict[int, _Batch] = OrderedDict()
        self._configure(backend, isa, threads, where)
        self._batches[1] = self._prepare(_Batch(1, first, self._contexts))

    # -- backends --------------------------------------------------------------
    def _configure(self, backend, isa, threads, where) -> None:
        from . import _kernels
        self.backend = _kernels.resolve_backend(backend)
        self.isa = _kernels.resolve_isa(isa) if self.backend != "reference" else None
        if threads is None:
            env = os.environ.get("QNNREF_THREADS", "1")
            try:
                threads = int(env)
            except ValueError:
                raise QnnError(f"QNNREF_THREADS must be an integer, got {env!r}") from None
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 256:
            raise QnnError(f"threads must be an integer in [1, 256], got {threads!r}")
        self.threads = threads

    def _prepare(self, b: _Batch) -> _Batch:
        """Choose and prepare, per node, the kernel (or the reference) for
        one batch size: one entry per node, (kernel, state) or (None, None)."""
        from . import _kernels
        glue = _kernels.load_glue() if self.backend != "reference" else {}
        for ctx in b.contexts:
            kernel = glue.get(ctx.node.op)
            if kernel is None:
                b.plan.append((None, None))
                b.reasons.append("reference" if self.backend == "reference"
                                 else "reference (no kernel: numpy data movement)")
                b.expect.append(None)
                continue
            try:
                _kernels.check_semantics(kernel, ctx)
                state = kernel.prepare(ctx, self.isa)
            except _kernels.Unsupported as e:
                b.plan.append((None, None))
                b.reasons.append(f"reference ({e})")
                b.expect.append(None)
                continue
            except ValidationError as e:
                raise ValidationError(f"{self._where}: {e}") from None
            b.plan.append((kernel, state))
            b.reasons.append(f"kernel ({self.isa})")
            b.expect.append((_io(ctx.inputs), _io(ctx.outputs), _objects(ctx)))
        return b

    def _for_batch(self, n: int) -> _Batch:
        """The prepared state for batch size ``n``: from the cache, or
        validated (size limits at this batch, before allocating) and prepared."""
        with self._lock:
            b = self._batches.get(n)
            if b is not None:
                self._batches.move_to_end(n)
                return b
        try:
            graph = _batch.instantiate(self.graph, n, self._symbolic)
            b = self._prepare(_Batch(n, graph, validate_graph(graph, self._where, self._symbolic)))
        except ValidationError as e:
            raise RuntimeCheckError(f"inputs of batch size {n} (the symbolic batch {self.batch_symbol!r}): "
                                    f"{e}") from None
        with self._lock:
            self._batches[n] = b
            while len(self._batches) > max(1, int(self.BATCH_CACHE)):
                self._batches.popitem(last=False)
        return b

    def _described_batch(self) -> _Batch:
        """The prepared batch that plan() describes: batch 1, else the oldest cached."""
        return self._batches[1] if 1 in self._batches else next(iter(self._batches.values()))

    @property
    def _plan(self) -> list[tuple[Any, Any]]:
        return self._described_batch().plan

    @property
    def _plan_reason(self) -> list[str]:
        return self._described_batch().reasons

    def concrete_graph(self, batch: int = 1) -> Graph:
        """The graph at a fixed batch size (the symbol replaced by ``batch``
        in every shape; the graph itself for a static model), read-only."""
        if not self.batch_symbol:
            return self.graph
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise QnnError(f"batch must be an integer >= 1, got {batch!r}")
        return freeze(self._for_batch(batch).graph)

    def prepared_batches(self) -> list[int]:
        """The batch sizes prepared now (least recently used first)."""
        with self._lock:
            return list(self._batches)

    def plan(self) -> list[dict]:
        """How each node runs: ``[{"node", "op", "runs"}]``, where ``runs`` is
        ``"kernel (avx2)"``, ``"kernel (scalar)"`` or ``"reference (why)"``."""
        return [{"node": c.node.name, "op": c.node.op, "runs": r}
                for c, r in zip(self._contexts, self._plan_reason)]

    # -- description ---------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The model's graph, read-only (``graph.copy()`` gives one to edit).
        With a symbolic batch, its batched shapes start with the symbol."""
        return self._graph

    def _spec(self, name: str) -> IOSpec:
        t = self.graph.tensors[name]
        return IOSpec(t.name, t.dtype, tuple(t.shape), t.quant)

    @property
    def inputs(self) -> list[IOSpec]:
        return [self._spec(n) for n in self.graph.inputs]

    @property
    def outputs(self) -> list[IOSpec]:
        return [self._spec(n) for n in self.graph.outputs]

    @property
    def metadata(self) -> dict:
        return self.graph.metadata

    @property
    def profile(self) -> str:
        return self.graph.metadata.get("profile", DEFAULT_PROFILE)

    def __repr__(self) -> str:
        return (f"<qnnref.Model {self.path or '(in memory)'}: {len(self.graph.nodes)} nodes, "
                f"inputs {[i.name for i in self.inputs]}, outputs {[o.name for o in self.outputs]}>")

    # -- float <-> integer at the edges -----------------------------------------
    def quantize(self, name: str, x: np.ndarray) -> np.ndarray:
        """Quantize floats for the model input (or any quantized tensor)
        ``name``, with its parameters and the model profile's quantize recipe."""
        from .arith import quantize_values
        t = self._quantized(name)
        s, zp = t.quant.expanded(t.shape)
        return quantize_values(np.asarray(x, np.float32), s, zp, t.dtype, get_profile(self.profile).quantize)

    def dequantize(self, name: str, q: np.ndarray) -> np.ndarray:
        """Real values (float32) of integers ``q`` of the tensor ``name``."""
        from .arith import dequantize_values
        t = self._quantized(name)
        s, zp = t.quant.expanded(t.shape)
        return dequantize_values(q, s, zp)

    def _quantized(self, name: str) -> TensorInfo:
        t = self.graph.tensors.get(name)
        if t is None:
            raise RuntimeCheckError(f"no tensor named {name!r}")
        if t.quant is None:
            raise RuntimeCheckError(f"tensor {name!r} is not quantized")
        return t

    # -- running --------------------------------------------------------------
    def _bind_inputs(self, inputs) -> tuple[dict[str, np.ndarray], int]:
        """The inputs by name, checked, and the batch size they give (1 for a static model)."""
        names = self.graph.inputs
        if isinstance(inputs, np.ndarray) or not isinstance(inputs, Mapping):
            if len(names) != 1:
                raise RuntimeCheckError(f"this model has {len(names)} inputs {list(names)}: "
                                        "pass a dict name -> array")
            inputs = {names[0]: inputs}
        unknown = set(inputs) - set(names)
        if unknown:
            raise RuntimeCheckError(f"unknown input(s) {sorted(map(str, unknown))}; model inputs are {list(names)}")
        bound = {}
        batch, batch_from = None, None
        for name in names:
            if name not in inputs:
                raise RuntimeCheckError(f"input {name!r} is missing")
            t = self.graph.tensors[name]
            arr = inputs[name]
            if not isinstance(arr, np.ndarray):
                raise RuntimeCheckError(f"input {name!r} must be a numpy array, got {type(arr).__name__}")
            n = self._check_input(t, arr)
            if n is not None:
                if batch is not None and n != batch:
                    raise RuntimeCheckError(f"inputs {batch_from!r} and {name!r} give two batch sizes, "
                                            f"{batch} and {n}, for the symbolic batch {self.batch_symbol!r}")
                batch, batch_from = n, name
            bound[name] = arr
        return bound, 1 if batch is None else batch

    @staticmethod
    def _check_input(t: TensorInfo, arr: np.ndarray) -> int | None:
        """Check one input array; returns its batch size when ``t`` has the
        symbolic batch, else None."""
        dt = t.dt
        if arr.dtype != dt.numpy:
            raise RuntimeCheckError(f"input {t.name!r} must have dtype {dt}"
                                    f"{' (held as ' + str(dt.numpy) + ')' if dt.bits == 4 else ''}, "
                                    f"got {arr.dtype}")
        symbol = leading_symbol(t.shape)
        if symbol is None:
            if tuple(arr.shape) != tuple(t.shape):
                raise RuntimeCheckError(f"input {t.name!r} must have shape {list(t.shape)}, got {list(arr.shape)}")
            batch = None
        else:
            if arr.ndim != len(t.shape) or tuple(arr.shape[1:]) != tuple(t.shape[1:]) or arr.shape[0] < 1:
                raise RuntimeCheckError(f"input {t.name!r} must have shape {list(t.shape)} with "
                                        f"{symbol} >= 1, got {list(arr.shape)}")
            batch = int(arr.shape[0])
        if not dtypes.check_array(arr, dt):
            raise RuntimeCheckError(f"input {t.name!r} has values outside the {dt} range [{dt.min}, {dt.max}]")
        return batch

    def run(self, inputs, capture: bool = False, timings: dict | None = None) -> dict[str, np.ndarray]:
        """Run the model.

        ``inputs``: a dict name -> array, or one array when the model has one
        input. Returns a dict output name -> array. With ``capture=True`` the
        dict also holds every intermediate tensor (for per-layer debugging).
        If ``timings`` is a dict, it receives seconds per node name. A model
        with a symbolic batch takes any batch size n >= 1 (the same n for
        every batched input); each item gets the bits it gets at batch 1.
        """
        env: dict[str, np.ndarray] = dict(self._constants)
        bound, n = self._bind_inputs(inputs)
        env.update(bound)
        b = self._batches[1] if n == 1 and not self.batch_symbol else self._for_batch(n)
        tensors = b.graph.tensors
        for ctx, op, (kernel, state), expect in zip(b.contexts, self._ops, b.plan, b.expect):
            args = [env[i] if i else None for i in ctx.node.inputs]
            t0 = time.perf_counter() if timings is not None else 0.0
            try:
                if kernel is None:
                    results = op.run(ctx, args)
                elif self.backend == "kernels":
                    results = self._run_kernel(ctx, op, kernel, state, args, expect)
                else:
                    results = self._cross_check(ctx, op, kernel, state, args, expect)
            except QnnError as e:
                if ctx.where() in str(e):
                    raise
                raise type(e)(f"{ctx.where()}: {e}") from None
            if timings is not None:
                timings[ctx.node.name] = time.perf_counter() - t0
            for name, value in zip(ctx.node.outputs, results):
                t = tensors[name]
                if value.dtype != t.dt.numpy or value.shape != tuple(t.shape):
                    # an operator broke its own contract: a bug in qnnref, not in the model
                    raise AssertionError(f"{ctx.where()}: produced {value.dtype}{list(value.shape)} for "
                                         f"{name!r}, declared {t.dtype}{list(t.shape)}")
                env[name] = value
        if capture:
            return {k: v for k, v in env.items() if not tensors[k].is_constant}
        return {name: env[name] for name in self.graph.outputs}

    @staticmethod
    def _check_args(ctx, args, expect) -> None:
        """Before any C++ call: every array, and every tensor the kernel reads
        its sizes from, is what the kernel was prepared for (``expect``,
        recorded at preparation). The C++ code relies on it; a mismatch is a
        RuntimeCheckError, never a read or write out of bounds."""
        ins, outs, objects = expect
        if not _same_objects(ctx, objects) and (_io(ctx.inputs) != ins or _io(ctx.outputs) != outs):
            raise ctx.runtime_error("the node's tensors changed after its kernel was prepared")
        for i, (want, arr) in enumerate(zip(ins, args)):
            if want is None:
                if arr is not None:
                    raise ctx.runtime_error(f"input {i} was prepared absent but is given")
                continue
            if not isinstance(arr, np.ndarray) or (arr.dtype, tuple(arr.shape)) != want:
                got = f"{arr.dtype}{list(arr.shape)}" if isinstance(arr, np.ndarray) else type(arr).__name__
                raise ctx.runtime_error(f"input {ctx.node.inputs[i]!r} is {got}, but the kernel was "
                                        f"prepared for {want[0]}{list(want[1])}")

    def _run_kernel(self, ctx, op, kernel, state, args, expect):
        from ._kernels import NeedsReference
        self._check_args(ctx, args, expect)
        try:
            return kernel.run(ctx, state, args, self.isa, self.threads)
        except NeedsReference:
            # A runtime precondition may have failed: the reference raises
            # the specified error (or computes the result if it held).
            return op.run(ctx, args)

    def _cross_check(self, ctx, op, kernel, state, args, expect):
        ref = op.run(ctx, args)
        got = self._run_kernel(ctx, op, kernel, state, args, expect)
        for name, r, k in zip(ctx.node.outputs, ref, got):
            if r.dtype != k.dtype or r.shape != k.shape:
                raise CrossCheckError(f"{ctx.where()}: output {name!r}: the kernel ({self.isa}) gave "
                                      f"{k.dtype}{list(k.shape)}, the reference {r.dtype}{list(r.shape)}")
            if not np.array_equal(r, k):
                diff = np.argwhere(r != k)
                first = tuple(int(i) for i in diff[0])
                raise CrossCheckError(
                    f"{ctx.where()}: output {name!r}: {len(diff)} of {r.size} elements differ between "
                    f"the kernel ({self.isa}, {self.threads} thread(s)) and the reference; first at index "
                    f"{list(first)}: kernel {k[first]}, reference {r[first]}")
        return ref
