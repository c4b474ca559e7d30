"""How an operator is defined and found.

Each operator lives in ``qnnref/ops/NAME.py`` and has two layers:

1. **The reference function(s)**: plain numpy code with explicit arguments
   (arrays, zero points, prepared multipliers, attributes). This is what a
   learner reads, what spec/ops/NAME.md's pseudocode mirrors, and what the
   tests call directly.
2. **An ``Op`` subclass registered with ``@register``** that binds the
   function to a graph node: it declares input slots and attributes,
   ``infer``s output dtypes and shapes, ``prepare``s everything that does not
   depend on input values (validating quantization parameters, forming
   requantization multipliers) once at load time, and ``run``s the function.

Errors: ``infer`` and ``prepare`` raise ValidationError (the spec's
ERROR_IF: the model is invalid); ``run`` raises RuntimeCheckError (the
spec's REQUIRE: a precondition on input values failed). Use ``ctx.error`` and
``ctx.runtime_error`` so that messages name the node.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .. import dtypes
from .. import graph as _graph
from ..arith import QuantizeRecipe, Recipe
from ..errors import RuntimeCheckError, ValidationError
from ..graph import Node, Quant, TensorInfo
from ..profiles import Profile

REQUIRED = object()


@dataclass(frozen=True)
class Slot:
    """An input or output position of an operator."""

    name: str
    optional: bool = False
    doc: str = ""


#: attribute kinds and the Python types a JSON value may have for each
ATTR_KINDS = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "ints": (list,),
    "floats": (list,),
    "dict": (dict,),
}


#: The range of every integer attribute (kinds int and ints): int32
#: (spec/format.md, "Limits"). Every legal value lies in it (dimensions,
#: strides, pads, axes, clamp bounds, zero points and fill values of the
#: integer dtypes), so anything beyond is refused when the model is loaded,
#: before any value could reach the C++ kernels' int32/int64 parameters.
ATTR_INT_MIN, ATTR_INT_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class Attr:
    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""


@dataclass
class NodeContext:
    """Everything an operator knows about one node of one graph."""

    node: Node
    inputs: list[TensorInfo | None]          # per input slot; None when absent
    outputs: list[TensorInfo | None]         # declared outputs (None while building)
    attrs: dict[str, Any]                    # validated, defaults filled
    profile: Profile
    prepared: dict[str, Any] = field(default_factory=dict)

    # -- errors -----------------------------------------------------------
    def where(self) -> str:
        return f"node {self.node.name!r} ({self.node.op})"

    def error(self, msg: str) -> ValidationError:
        return ValidationError(f"{self.where()}: {msg}")

    def runtime_error(self, msg: str) -> RuntimeCheckError:
        return RuntimeCheckError(f"{self.where()}: {msg}")

    # -- recipes ----------------------------------------------------------
    @property
    def recipe(self) -> Recipe:
        """The requantization recipe: the node's ``recipe`` attribute if it
        has one, else the model profile's for this operator."""
        r = self.node.attrs.get("recipe")
        if r is None:
            return self.profile.recipe_for(self.node.op)
        return Recipe.from_dict(r, f"{self.where()}: attribute 'recipe'")

    @property
    def quantize_recipe(self) -> QuantizeRecipe:
        r = self.node.attrs.get("quantize_recipe")
        if r is None:
            return self.profile.quantize
        return QuantizeRecipe.from_dict(r, f"{self.where()}: attribute 'quantize_recipe'")

    # -- common checks ----------------------------------------------------
    def input(self, i: int) -> TensorInfo:
        t = self.inputs[i]
        if t is None:
            raise self.error(f"input {i} is required")
        return t

    def check_size(self, count: int, what: str) -> None:
        """ERROR_IF a working array of ``count`` elements would exceed the
        model size limit (qnnref.graph.MAX_TENSOR_ELEMENTS)."""
        _graph.check_element_count(count, f"{self.where()}: {what}")

    def check_work(self, work: int, what: str) -> None:
        """ERROR_IF the node's reference would cost more than the node work
        limit (qnnref.graph.MAX_NODE_WORK); ``what`` says what was counted."""
        _graph.check_node_work(work, f"{self.where()}: {what}")

    def require_dtype(self, t: TensorInfo, allowed, role: str) -> None:
        if t.dtype not in allowed:
            raise self.error(f"{role} {t.name!r} has dtype {t.dtype}; allowed: {', '.join(allowed)}")

    def require_quant(self, t: TensorInfo, role: str, granularity=("per-tensor",), axis=None) -> Quant:
        """The quantization of ``t``, which must exist and be of an allowed
        granularity (and, for per-axis, on ``axis``)."""
        if t.quant is None:
            raise self.error(f"{role} {t.name!r} must be quantized")
        q = t.quant
        if q.granularity not in granularity:
            raise self.error(f"{role} {t.name!r}: {q.granularity} quantization is not supported "
                             f"here (allowed: {', '.join(granularity)})")
        if q.granularity == "per-axis" and axis is not None and q.axis != axis:
            raise self.error(f"{role} {t.name!r}: per-axis quantization must be on axis {axis}, got {q.axis}")
        return q

    def out_quant(self, i: int = 0, granularity=("per-tensor",)) -> Quant:
        t = self.outputs[i]
        if t is None:
            raise self.error(f"output {i} is not declared")
        return self.require_quant(t, "output", granularity)


class Op:
    """Base class of every operator (see the module docstring)."""

    name: ClassVar[str]
    inputs: ClassVar[tuple[Slot, ...]] = ()
    outputs: ClassVar[tuple[Slot, ...]] = (Slot("y"),)
    attrs: ClassVar[tuple[Attr, ...]] = ()
    variadic: ClassVar[bool] = False      # last input slot repeats (concat)

    def infer(self, ctx: NodeContext) -> list[tuple[str, tuple[int, ...]]]:
        """Validate inputs and attributes; return (dtype, shape) per output."""
        raise NotImplementedError

    def prepare(self, ctx: NodeContext) -> None:
        """Validate output quantization and precompute into ``ctx.prepared``."""

    def run(self, ctx: NodeContext, args: list[np.ndarray | None]) -> list[np.ndarray]:
        raise NotImplementedError


OPS: dict[str, Op] = {}

#: attributes every operator accepts (recipe overrides)
COMMON_ATTRS = (
    Attr("recipe", "dict", None, "requantization recipe overriding the profile's"),
    Attr("quantize_recipe", "dict", None, "quantize recipe overriding the profile's"),
)


def register(cls):
    """Class decorator: instantiate and register an operator under ``cls.name``."""
    if cls.name in OPS:
        raise RuntimeError(f"operator {cls.name!r} registered twice")
    OPS[cls.name] = cls()
    return cls


def get_op(name: str, where: str) -> Op:
    if not isinstance(name, str) or name not in OPS:
        raise ValidationError(f"{where}: unknown operator {name!r}")
    return OPS[name]


def _is_float64(v) -> bool:
    """True when the number ``v`` converts to a float64 (a JSON integer beyond
    ~1.8e308 does not). Ranges, finiteness included, are the operators' to check."""
    try:
        float(v)
    except OverflowError:
        return False
    return True


def check_attrs(op: Op, node: Node, where: str) -> dict[str, Any]:
    """Type-check a node's attributes against the op's declaration and fill
    defaults. Unknown or missing attributes are ValidationErrors."""
    if not isinstance(node.attrs, dict):
        raise ValidationError(f"{where}: attributes must be an object")
    decl = {a.name: a for a in (*op.attrs, *COMMON_ATTRS)}
    unknown = set(node.attrs) - set(decl)
    if unknown:
        raise ValidationError(f"{where}: unknown attribute(s) {sorted(unknown, key=str)} "
                              f"(known: {sorted(decl)})")
    out = {}
    for name, a in decl.items():
        if name in node.attrs:
            v = node.attrs[name]
            ok = isinstance(v, ATTR_KINDS[a.kind]) and not (a.kind in ("int", "float") and isinstance(v, bool))
            if a.kind == "ints" and ok:
                ok = all(isinstance(e, int) and not isinstance(e, bool) for e in v)
            if a.kind == "floats" and ok:
                ok = all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in v)
            if a.kind in ("float", "floats") and ok:
                ok = all(_is_float64(e) for e in (v if a.kind == "floats" else [v]))
            if a.default is None and v is None:
                ok = True
            if not ok:
                raise ValidationError(f"{where}: attribute {name!r} must be of kind {a.kind}, got {v!r}")
            if a.kind in ("int", "ints") and v is not None:
                bad = [e for e in (v if a.kind == "ints" else [v]) if not ATTR_INT_MIN <= e <= ATTR_INT_MAX]
                if bad:
                    raise ValidationError(f"{where}: attribute {name!r} value {bad[0]} is outside the integer "
                                          f"attribute range [{ATTR_INT_MIN}, {ATTR_INT_MAX}] (int32)")
            out[name] = v
        elif a.default is REQUIRED:
            raise ValidationError(f"{where}: attribute {name!r} is required")
        else:
            out[name] = a.default
    return out


def make_context(node: Node, tensors: dict[str, TensorInfo], profile: Profile,
                 with_outputs: bool = True) -> NodeContext:
    """Build the NodeContext of ``node``: resolve input/output slots and check
    attributes (counts and kinds)."""
    where = f"node {node.name!r} ({node.op})"
    op = get_op(node.op, where)
    n_in = len(node.inputs)
    n_slots = len(op.inputs)
    if op.variadic:
        if n_in < n_slots:
            raise ValidationError(f"{where}: needs at least {n_slots} input(s), got {n_in}")
    elif n_in > n_slots:
        raise ValidationError(f"{where}: takes at most {n_slots} input(s), got {n_in}")
    ins: list[TensorInfo | None] = []
    for i in range(max(n_in, n_slots)):
        slot = op.inputs[min(i, n_slots - 1)] if n_slots else None
        name = node.inputs[i] if i < n_in else ""
        if name == "":
            if slot is not None and not slot.optional:
                raise ValidationError(f"{where}: required input {slot.name!r} is missing")
            ins.append(None)
        else:
            ins.append(tensors[name])
    if len(node.outputs) != len(op.outputs):
        raise ValidationError(f"{where}: has {len(op.outputs)} output(s), got {len(node.outputs)}")
    outs = [tensors.get(o) if with_outputs else None for o in node.outputs]
    attrs = check_attrs(op, node, where)
    ctx = NodeContext(node, ins, outs, attrs, profile)
    # validate recipe overrides early
    _ = ctx.recipe, ctx.quantize_recipe
    return ctx


def input_dtype(arr: np.ndarray, t: TensorInfo) -> bool:
    return dtypes.check_array(arr, t.dt)
