"""float_elementwise: one float32 function applied element by element.

``function`` names it: binary ``add``, ``sub``, ``mul``, ``div``, ``min``,
``max`` (numpy broadcasting of ``a`` and ``b``); unary ``relu``, ``clip``
(bounds ``min`` / ``max``), ``neg``, ``abs``, ``sqrt``, ``exp``,
``sigmoid``, ``tanh`` (``a`` only). The first group are single IEEE
float32 operations, so every IEEE runtime computes the same bits; ``exp``,
``sigmoid`` and ``tanh`` are evaluated in float64 and rounded once to
float32 (spec/ops/float_elementwise.md says how far a runtime's own
approximation may be).
"""
from __future__ import annotations

import numpy as np

from ._float import FLOAT, require_unquantized
from .registry import REQUIRED, Attr, Op, Slot, register

#: one IEEE float32 operation (correctly rounded; exact for neg, abs, min,
#: max, relu, clip)
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
          "min": np.minimum, "max": np.maximum}
UNARY_EXACT = ("relu", "clip", "neg", "abs", "sqrt")
#: evaluated in float64, rounded once to float32
UNARY_FLOAT64 = ("exp", "sigmoid", "tanh")
FUNCTIONS = (*BINARY, *UNARY_EXACT, *UNARY_FLOAT64)


def float_elementwise(function: str, a: np.ndarray, b: np.ndarray | None, lo: float, hi: float) -> np.ndarray:
    # a, b: float32 arrays; lo, hi: float32 bounds of clip (-inf / +inf when absent).
    if function in BINARY:
        # Step 1 (binary): one IEEE float32 operation per element, rounded to
        # nearest even; a and b broadcast. min / max propagate NaN.
        return BINARY[function](a, b).astype(np.float32)
    if function == "relu":
        return np.maximum(a, np.float32(0))          # max(a, +0.0); NaN stays NaN
    if function == "clip":
        return np.minimum(np.maximum(a, lo), hi)     # raise to lo, then cut at hi
    if function == "neg":
        return -a
    if function == "abs":
        return np.abs(a)
    if function == "sqrt":
        return np.sqrt(a)                            # IEEE sqrt, correctly rounded; NaN below 0
    # Step 1 (exp, sigmoid, tanh): the function of the exact float64 value of
    # a, evaluated in float64 (numpy's libm, error below 1 float64 ulp), then
    # rounded once to float32.
    a64 = a.astype(np.float64)
    if function == "exp":
        r = np.exp(a64)
    elif function == "sigmoid":
        r = 1.0 / (1.0 + np.exp(-a64))
    else:
        r = np.tanh(a64)
    return r.astype(np.float32)


@register
class FloatElementwise(Op):
    name = "float_elementwise"
    inputs = (Slot("a", doc="float32 tensor"),
              Slot("b", optional=True, doc="float32 tensor (binary functions); broadcasts with a"))
    outputs = (Slot("y", doc="float32, the broadcast shape of a and b"),)
    attrs = (Attr("function", "str", REQUIRED, f"one of {', '.join(FUNCTIONS)}"),
             Attr("min", "float", None, "clip: lower bound (inclusive; none: -inf)"),
             Attr("max", "float", None, "clip: upper bound (inclusive; none: +inf)"))

    def infer(self, ctx):
        f = ctx.attrs["function"]
        if f not in FUNCTIONS:
            raise ctx.error(f"attribute function must be one of {', '.join(FUNCTIONS)}, got {f!r}")
        a = ctx.input(0)
        ctx.require_dtype(a, FLOAT, "input a")
        b = ctx.inputs[1] if len(ctx.inputs) > 1 else None
        if f in BINARY:
            if b is None:
                raise ctx.error(f"function {f!r} takes two inputs")
            ctx.require_dtype(b, FLOAT, "input b")
            try:
                shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
            except ValueError:
                raise ctx.error(f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from None
        else:
            if b is not None:
                raise ctx.error(f"function {f!r} takes one input")
            shape = tuple(a.shape)
        lo, hi = ctx.attrs["min"], ctx.attrs["max"]
        if f != "clip" and (lo is not None or hi is not None):
            raise ctx.error(f"attributes min and max belong to function 'clip', not {f!r}")
        with np.errstate(over="ignore"):      # a bound beyond float32 becomes inf, refused below
            bounds = [np.float32(v) if v is not None else None for v in (lo, hi)]
        for name, v, raw in (("min", bounds[0], lo), ("max", bounds[1], hi)):
            if v is not None and (np.isnan(v) or float(v) != float(raw)):
                raise ctx.error(f"attribute {name} = {raw!r} is not a float32 value")
        if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
            raise ctx.error(f"clip min {lo} > max {hi}")
        ctx.check_size(int(np.prod(shape, dtype=object)), "the output")
        return [("float32", shape)]

    def prepare(self, ctx):
        for t, role in zip([*ctx.inputs, ctx.outputs[0]], ("input a", "input b", "output")):
            require_unquantized(ctx, t, role)
        lo, hi = ctx.attrs["min"], ctx.attrs["max"]
        ctx.prepared["bounds"] = (np.float32(-np.inf if lo is None else lo), np.float32(np.inf if hi is None else hi))

    def run(self, ctx, args):
        b = args[1] if len(args) > 1 else None
        with np.errstate(all="ignore"):                # +-inf and NaN are IEEE results
            y = float_elementwise(ctx.attrs["function"], args[0], b, *ctx.prepared["bounds"])
        return [np.asarray(y, np.float32).reshape(ctx.outputs[0].shape)]
