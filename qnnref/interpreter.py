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
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from . import dtypes
from .errors import CrossCheckError, QnnError, RuntimeCheckError, ValidationError
from .graph import Graph, TensorInfo
from .ops import get_op
from .ops.registry import NodeContext, make_context
from .profiles import DEFAULT_PROFILE, get_profile


@dataclass(frozen=True)
class IOSpec:
    """A graph input or output as users see it (``Model.inputs``/``outputs``)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    quant: Any  # qnnref.graph.Quant or None

    def __str__(self) -> str:
        return f"{self.name}: " + TensorInfo(self.name, self.dtype, self.shape, self.quant).describe()

    @property
    def scale(self):
        return None if self.quant is None else self.quant.scale

    @property
    def zero_point(self):
        return None if self.quant is None else self.quant.zero_point_or_zeros()


def validate_graph(graph: Graph, where: str = "model") -> list[NodeContext]:
    """Check a structurally sound graph as a model (ERROR_IF conditions) and
    prepare every node. Returns the node contexts in execution order."""
    if not isinstance(graph.metadata, dict):
        raise ValidationError(f"{where}: metadata must be a dict, got {type(graph.metadata).__name__}")
    profile = get_profile(graph.metadata.get("profile", DEFAULT_PROFILE), where)
    for t in graph.tensors.values():
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


class Model:
    """A validated, runnable model. Create with ``qnnref.load``."""

    def __init__(self, graph: Graph, *, path: str | None = None, digest: str | None = None,
                 source: Any = None, backend: str | None = None, isa: str | None = None,
                 threads: int | None = None):
        self.graph = graph
        self.path = path
        self.digest = digest
        self._source = source            # keeps a memory map alive
        where = path or "model"
        if not isinstance(graph, Graph):
            raise ValidationError(f"{where}: expected a qnnref.Graph, got {type(graph).__name__}")
        graph.check_structure(where)
        self._contexts = validate_graph(graph, where)
        self._ops = [get_op(c.node.op, "") for c in self._contexts]
        self._constants = {name: t.data for name, t in graph.tensors.items() if t.data is not None}
        self._configure(backend, isa, threads, where)

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
        # One entry per node: (kernel, state) or (None, None), and what runs it.
        self._plan: list[tuple[Any, Any]] = []
        self._plan_reason: list[str] = []
        glue = _kernels.load_glue() if self.backend != "reference" else {}
        for ctx in self._contexts:
            kernel = glue.get(ctx.node.op)
            if kernel is None:
                self._plan.append((None, None))
                self._plan_reason.append("reference" if self.backend == "reference"
                                         else "reference (no kernel: numpy data movement)")
                continue
            try:
                _kernels.check_semantics(kernel, ctx)
                state = kernel.prepare(ctx, self.isa)
            except _kernels.Unsupported as e:
                self._plan.append((None, None))
                self._plan_reason.append(f"reference ({e})")
                continue
            except ValidationError as e:
                raise ValidationError(f"{where}: {e}") from None
            self._plan.append((kernel, state))
            self._plan_reason.append(f"kernel ({self.isa})")

    def plan(self) -> list[dict]:
        """How each node runs: ``[{"node", "op", "runs"}]``, where ``runs`` is
        ``"kernel (avx2)"``, ``"kernel (scalar)"`` or ``"reference (why)"``."""
        return [{"node": c.node.name, "op": c.node.op, "runs": r}
                for c, r in zip(self._contexts, self._plan_reason)]

    # -- description ---------------------------------------------------------
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
    def _bind_inputs(self, inputs) -> dict[str, np.ndarray]:
        names = self.graph.inputs
        if isinstance(inputs, np.ndarray) or not isinstance(inputs, Mapping):
            if len(names) != 1:
                raise RuntimeCheckError(f"this model has {len(names)} inputs {names}: "
                                        "pass a dict name -> array")
            inputs = {names[0]: inputs}
        unknown = set(inputs) - set(names)
        if unknown:
            raise RuntimeCheckError(f"unknown input(s) {sorted(unknown)}; model inputs are {names}")
        bound = {}
        for name in names:
            if name not in inputs:
                raise RuntimeCheckError(f"input {name!r} is missing")
            t = self.graph.tensors[name]
            arr = inputs[name]
            if not isinstance(arr, np.ndarray):
                raise RuntimeCheckError(f"input {name!r} must be a numpy array, got {type(arr).__name__}")
            self._check_input(t, arr)
            bound[name] = arr
        return bound

    @staticmethod
    def _check_input(t: TensorInfo, arr: np.ndarray) -> None:
        dt = t.dt
        if arr.dtype != dt.numpy:
            raise RuntimeCheckError(f"input {t.name!r} must have dtype {dt}"
                                    f"{' (held as ' + str(dt.numpy) + ')' if dt.bits == 4 else ''}, "
                                    f"got {arr.dtype}")
        if tuple(arr.shape) != tuple(t.shape):
            raise RuntimeCheckError(f"input {t.name!r} must have shape {list(t.shape)}, got {list(arr.shape)}")
        if not dtypes.check_array(arr, dt):
            raise RuntimeCheckError(f"input {t.name!r} has values outside the {dt} range [{dt.min}, {dt.max}]")

    def run(self, inputs, capture: bool = False, timings: dict | None = None) -> dict[str, np.ndarray]:
        """Run the model.

        ``inputs``: a dict name -> array, or one array when the model has one
        input. Returns a dict output name -> array. With ``capture=True`` the
        dict also holds every intermediate tensor (for per-layer debugging).
        If ``timings`` is a dict, it receives seconds per node name.
        """
        env: dict[str, np.ndarray] = dict(self._constants)
        env.update(self._bind_inputs(inputs))
        tensors = self.graph.tensors
        for ctx, op, (kernel, state) in zip(self._contexts, self._ops, self._plan):
            args = [env[i] if i else None for i in ctx.node.inputs]
            t0 = time.perf_counter() if timings is not None else 0.0
            try:
                if kernel is None:
                    results = op.run(ctx, args)
                elif self.backend == "kernels":
                    results = self._run_kernel(ctx, op, kernel, state, args)
                else:
                    results = self._cross_check(ctx, op, kernel, state, args)
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

    def _run_kernel(self, ctx, op, kernel, state, args):
        from ._kernels import NeedsReference
        try:
            return kernel.run(ctx, state, args, self.isa, self.threads)
        except NeedsReference:
            # A runtime precondition may have failed: the reference raises
            # the specified error (or computes the result if it held).
            return op.run(ctx, args)

    def _cross_check(self, ctx, op, kernel, state, args):
        ref = op.run(ctx, args)
        got = self._run_kernel(ctx, op, kernel, state, args)
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
