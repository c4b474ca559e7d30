"""qnnref._kernels: the fast C++ kernels (scalar and AVX2) and their glue.

Layout, per operator NAME (one name, four places: spec/ops/NAME.md,
qnnref/ops/NAME.py, here, tests/kernels/test_NAME.py):

* ``include/qnnref/NAME.h``: the C++ entry points, one per ISA with the same
  signature (``qnnref::scalar::...``, ``qnnref::avx2::...``) and a dispatcher
  taking the ISA as an explicit argument;
* ``src/NAME_scalar.cpp`` and ``src/NAME_avx2.cpp``: the kernels, each ISA in
  its own translation unit with its own flags (setup.py);
* ``NAME.pxi``: thin Cython bindings (included by ``_ext.pyx``; nogil);
* ``NAME.py``: the glue: a :class:`Kernel` registered for the operator, which
  prepacks constant weights once at load time (``prepare``) and calls the
  binding (``run``).

Shared arithmetic is in ``include/qnnref/arith.h`` (names as in
qnnref/arith.py) and ``include/qnnref/common.h``.

The extension is optional: when it is not built, ``available()`` is False
and models run on the reference backend.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Any

from ..errors import QnnError

#: why the kernels are unavailable when the compiled module is not there at all
NOT_BUILT = ("the C++ kernels were not built (no compiled qnnref._kernels._ext): reinstall with `pip install .` "
             "without QNNREF_NO_KERNELS (a C++17 compiler is needed); the reference backend works without them")

try:
    from . import _ext  # noqa: F401
    _IMPORT_ERROR: str | None = None
except ImportError as e:
    _ext = None
    # `from . import _ext` on a missing module says "partially initialized module ... (most likely
    # due to a circular import)", which misleads: say whether it is missing or failed to load
    if importlib.util.find_spec(f"{__name__}._ext") is None:
        _IMPORT_ERROR = NOT_BUILT
    else:   # built, but cannot be loaded (e.g. built for another numpy or Python)
        _IMPORT_ERROR = (f"the compiled C++ kernels are there but cannot be loaded ({e}); rebuild them "
                         "with `pip install .`")

ISAS = ("scalar", "avx2")
ISA_CODES = {"scalar": 0, "avx2": 1}
BACKENDS = ("kernels", "reference", "cross-check")


class Unsupported(Exception):
    """Raised by Kernel.prepare: this node runs on the reference (the message says why)."""


class NeedsReference(Exception):
    """Raised by Kernel.run: a runtime precondition may have failed; the
    interpreter reruns the node on the reference, which raises the specified
    error (or returns the same result when the precondition held)."""


class Kernel:
    """Glue between an operator and its C++ kernel (one instance per operator).

    ``prepare(ctx, isa)`` runs once per node at load time, after the
    operator's own ``prepare`` (so ``ctx.prepared`` is filled): it validates
    everything the C++ code relies on, prepacks constant weights and returns
    a state object; it raises :class:`Unsupported` for nodes the kernel does
    not cover. ``run(ctx, state, args, isa, threads)`` returns the outputs.
    """

    op: str = ""
    #: semantics beyond the basic recipes that this kernel implements (see
    #: :func:`check_semantics`); a node needing one it lacks runs on the reference
    semantics: frozenset = frozenset()

    def prepare(self, ctx, isa: str) -> Any:
        raise NotImplementedError

    def run(self, ctx, state, args, isa: str, threads: int):
        raise NotImplementedError


KERNELS: dict[str, Kernel] = {}


#: Semantics that a kernel must declare in ``Kernel.semantics`` before it is
#: given a node that needs them (each name: why a node needs it).
SEMANTICS = {
    "pairwise_int16": "pairwise int16 saturation of u8 x s8 products (x86 VPMADDUBSW)",
    "zero_point_in_float": "a float recipe that adds the output zero point before rounding",
    "add_form": "a float add computed in ORT's ratio/fma form",
    "int32_output": "a matmul / conv2d whose int32 output is the accumulator itself (no requantization)",
    "runtime_zero_point": "a matmul / conv2d whose input zero point is a run-time input",
    "average_form": "an average pool computed in ORT's float form (dequantized taps summed in float)",
}


def needed_semantics(ctx) -> set[str]:
    """The SEMANTICS a node needs, from its prepared values and its recipe."""
    need = set()
    if ctx.prepared.get("pairwise_int16"):
        need.add("pairwise_int16")
    if ctx.node.op in ("matmul", "conv2d") and ctx.outputs[0].dtype == "int32":
        need.add("int32_output")
    if ctx.node.op in ("matmul", "conv2d") and len(ctx.node.inputs) > 3 and ctx.node.inputs[3]:
        need.add("runtime_zero_point")
    try:
        recipe = ctx.recipe
    except Exception:  # an operator without a recipe attribute
        return need
    if getattr(recipe, "zero_point_in_float", False):
        need.add("zero_point_in_float")
    if getattr(recipe, "add_form", "real_sum") != "real_sum" and ctx.node.op == "add":
        need.add("add_form")
    if getattr(recipe, "average_form", "integer_sum") != "integer_sum" and ctx.node.op == "avg_pool2d":
        need.add("average_form")
    return need


def check_semantics(kernel: "Kernel", ctx) -> None:
    """Raise Unsupported when the node needs semantics the kernel lacks: a
    profile feature added to the reference is never silently ignored by a
    kernel written before it."""
    missing = needed_semantics(ctx) - set(kernel.semantics)
    if missing:
        raise Unsupported("the kernel does not implement " + "; ".join(SEMANTICS[m] for m in sorted(missing)))


def register_kernel(cls):
    if cls.op in KERNELS:
        raise RuntimeError(f"kernel for {cls.op!r} registered twice")
    KERNELS[cls.op] = cls()
    return cls


def available() -> bool:
    """True when the compiled extension is importable."""
    return _ext is not None


def available_isas() -> list[str]:
    if _ext is None:
        return []
    return ["scalar", "avx2"] if _ext.has_avx2() else ["scalar"]


def best_isa() -> str:
    return available_isas()[-1] if available() else "scalar"


def resolve_isa(isa: str | None = None) -> str:
    """The ISA to run with: ``isa`` if given, else ``$QNNREF_ISA``, else the
    best this CPU supports. Asking for one the CPU lacks is an error."""
    chosen = isa if isa is not None else os.environ.get("QNNREF_ISA") or best_isa()
    if chosen not in ISAS:
        raise QnnError(f"unknown ISA {chosen!r} (QNNREF_ISA / isa=): known are {', '.join(ISAS)}")
    if available() and chosen not in available_isas():
        raise QnnError(f"ISA {chosen!r} is not supported by this CPU (available: {', '.join(available_isas())})")
    return chosen


def resolve_backend(backend: str | None = None) -> str:
    """The backend: ``backend`` if given, else ``$QNNREF_BACKEND``, else
    ``kernels`` when built, else ``reference``."""
    chosen = backend if backend is not None else os.environ.get("QNNREF_BACKEND") or (
        "kernels" if available() else "reference")
    if chosen not in BACKENDS:
        raise QnnError(f"unknown backend {chosen!r}: known are {', '.join(BACKENDS)}")
    if chosen != "reference" and not available():
        raise QnnError(f"backend {chosen!r} needs the C++ kernels: {_IMPORT_ERROR or NOT_BUILT}")
    return chosen


def load_glue() -> dict[str, Kernel]:
    """Import every operator's glue module (registering its Kernel)."""
    if _ext is not None and not KERNELS:
        from . import (add, avg_pool2d, clamp, conv2d, dequantize, matmul, max_pool2d,  # noqa: F401
                       mean, mul, quantize, requantize, softmax, table)
    return KERNELS


def kernels_info() -> dict:
    """What the kernels backend can do here: ``built``, ``isa`` (in use by
    default), ``available_isas``, ``default_backend``, ``operators`` (with a
    kernel) and, when not built, ``error``."""
    info: dict[str, Any] = {
        "built": available(),
        "available_isas": available_isas(),
        "isa": None,
        "default_backend": None,
        "operators": sorted(load_glue()),
    }
    try:
        info["default_backend"] = resolve_backend()
        info["isa"] = resolve_isa() if available() else None
    except QnnError as e:   # a bad QNNREF_BACKEND / QNNREF_ISA: say so instead of failing
        info["error"] = str(e)
    if not available():
        info["error"] = _IMPORT_ERROR
    return info
