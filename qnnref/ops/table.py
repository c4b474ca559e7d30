"""table: 8-bit lookup table, ``y = table[x - dtype_min(x)]``.

The table is a constant of the model: 256 integers of the output dtype. What
its entries mean (e.g. sigmoid of the input's reals, quantized at the
output's scale) is fixed when the model is built -- see :func:`make_table`
-- so running a table is exact integer indexing, whatever libm built it.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import dtypes
from ..arith import check_rounding, round_float, saturate
from ..errors import ValidationError
from ._common import same_quant
from .registry import Op, Slot, register

IN_DTYPES = ("int8", "uint8")
TABLE_DTYPES = ("int8", "uint8")
TABLE_SIZE = 256


def table(x: np.ndarray, x_dtype: str, lut: np.ndarray) -> np.ndarray:
    # Step 1: the index of each input value, x - dtype_min(x), in [0, 255]
    # (x + 128 for int8, x itself for uint8).
    index = x.astype(np.int64) - dtypes.get(x_dtype).min
    # Step 2: look the index up; the result has the table's dtype.
    return lut[index]


# ---------------------------------------------------------------------------
# Building tables (model-building helper; not used when running)
# ---------------------------------------------------------------------------

def _erf(v: np.ndarray) -> np.ndarray:
    return np.array([math.erf(float(t)) for t in v.ravel()], dtype=np.float64).reshape(v.shape)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-v))


#: The named functions of make_table, on float64 arrays.
TABLE_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "hard_swish": lambda v: v * np.clip(v + 3.0, 0.0, 6.0) / 6.0,
    "gelu": lambda v: 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0))),
    "exp": np.exp,
}


def make_table(fn, in_dtype: str, in_scale: float, in_zero_point: int, out_dtype: str,
               out_scale: float, out_zero_point: int, rounding: str = "half_away_from_zero") -> np.ndarray:
    """The 256-entry table of ``fn`` for the ``table`` operator:

    ``lut[i] = saturate(round(fn(s_in * (q - zp_in)) / s_out) + zp_out)`` for
    the input values ``q = dtype_min(in_dtype) + i``, in float64: the scales are
    rounded to float32 (as stored in a model), ``s_in * (q - zp_in)`` is exact,
    ``fn`` is evaluated in float64 (libm: its last bit may differ between
    platforms), the division by ``s_out`` is one IEEE rounding, and ``round`` is
    the named arith rounding mode (default: ties away from zero, like TFLite's
    LUTPopulate). ``+-inf`` saturate; NaN is an error.

    ``fn`` is one of ``TABLE_FUNCTIONS`` (``"sigmoid"``, ``"tanh"``,
    ``"hard_swish"``, ``"gelu"`` (the erf form), ``"exp"``) or a Python callable
    taking and returning a float64 array.
    """
    check_rounding(rounding, "make_table")
    if in_dtype not in IN_DTYPES:
        raise ValidationError(f"make_table: in_dtype must be one of {', '.join(IN_DTYPES)}, got {in_dtype!r}")
    if out_dtype not in TABLE_DTYPES:
        raise ValidationError(f"make_table: out_dtype must be one of {', '.join(TABLE_DTYPES)}, got {out_dtype!r}")
    if isinstance(fn, str):
        if fn not in TABLE_FUNCTIONS:
            raise ValidationError(f"make_table: unknown function {fn!r} (known: {', '.join(TABLE_FUNCTIONS)})")
        fn = TABLE_FUNCTIONS[fn]
    elif not callable(fn):
        raise ValidationError("make_table: fn must be a function name or a callable")
    s_in, s_out = np.float64(np.float32(in_scale)), np.float64(np.float32(out_scale))
    if not (np.isfinite(s_in) and s_in > 0 and np.isfinite(s_out) and s_out > 0):
        raise ValidationError("make_table: scales must be finite and > 0 (as float32)")
    dt_in = dtypes.get(in_dtype)
    q = np.arange(dt_in.min, dt_in.max + 1, dtype=np.int64)
    real_in = s_in * (q - int(in_zero_point)).astype(np.float64)
    with np.errstate(over="ignore"):                  # overflow to +-inf saturates
        real_out = np.asarray(fn(real_in), dtype=np.float64)
    if real_out.shape != (TABLE_SIZE,):
        raise ValidationError(f"make_table: fn returned shape {real_out.shape}, expected ({TABLE_SIZE},)")
    if np.isnan(real_out).any():
        raise ValidationError("make_table: fn returned NaN")
    with np.errstate(over="ignore"):
        v = round_float(real_out / s_out, rounding)
    v = np.clip(v, -(2.0**40), 2.0**40).astype(np.int64) + int(out_zero_point)
    return saturate(v, out_dtype)


@register
class Table(Op):
    name = "table"
    inputs = (Slot("x", doc="int8 or uint8 tensor"),
              Slot("table", doc="constant int8 or uint8 tensor of shape (256,)"))
    outputs = (Slot("y", doc="tensor of the table's dtype, the shape of x"),)

    def infer(self, ctx):
        x, t = ctx.input(0), ctx.input(1)
        ctx.require_dtype(x, IN_DTYPES, "input x")
        ctx.require_dtype(t, TABLE_DTYPES, "table")
        if tuple(t.shape) != (TABLE_SIZE,):
            raise ctx.error(f"table {t.name!r} must have shape [{TABLE_SIZE}], got {list(t.shape)}")
        if not t.is_constant:
            raise ctx.error(f"table {t.name!r} must be a constant tensor")
        return [(t.dtype, x.shape)]

    def prepare(self, ctx):
        t, y = ctx.inputs[1], ctx.outputs[0]
        if t.quant is not None and y.quant is not None and not same_quant(t, y):
            raise ctx.error(f"table {t.name!r} is quantized ({t.describe()}) differently "
                            f"from the output {y.name!r} ({y.describe()})")

    def run(self, ctx, args):
        return [table(args[0], ctx.inputs[0].dtype, args[1])]
