"""Kernel glue for quantize: every QuantizeRecipe (divide / reciprocal,
float32 / float64, every rounding mode), per-tensor, per-axis and blocked
output quantization (the expanded parameters, read as add's broadcast
operands). A NaN input makes the kernel defer to the reference, which
raises its RuntimeCheckError."""
from __future__ import annotations

import numpy as np

from . import ISA_CODES, Kernel, NeedsReference, Unsupported, _ext, register_kernel
from ._common import DTYPE_CODES, FLOAT_DTYPE_CODES, rounding_code
from .add import operand_pattern
from .requantize import contiguous, per_axis, row_tiling


class _State:
    __slots__ = ("mid", "inner", "factor_f32", "factor_f64", "zp", "params", "dtype", "numpy")


@register_kernel
class QuantizeKernel(Kernel):
    op = "quantize"

    def prepare(self, ctx, isa):
        y = ctx.outputs[0]
        p = ctx.prepared
        scale, zp = np.asarray(p["scale"], np.float32), np.asarray(p["zero_point"], np.int32)
        pattern = operand_pattern(scale.shape, y.shape)
        if pattern is None or operand_pattern(zp.shape, y.shape) != pattern:
            raise Unsupported("quantization parameters that do not broadcast as one axis block")
        mid, inner = pattern
        tile = row_tiling(mid, inner)
        recipe = ctx.quantize_recipe
        ft = np.float32 if recipe.float_dtype == "float32" else np.float64
        s = per_axis(scale, mid, tile).astype(ft)
        with np.errstate(over="ignore", divide="ignore"):
            factor = s if recipe.method == "divide" else ft(1) / s   # the reciprocal is finite (quantize.py)
            st = _State()
            st.factor_f32 = np.ascontiguousarray(factor, np.float32)  # only the recipe's width is read
            st.factor_f64 = np.ascontiguousarray(factor, np.float64)
        st.mid, st.inner = mid * tile, inner
        st.zp = per_axis(zp, mid, tile, np.int32)
        dt = y.dt
        st.params = (int(recipe.method == "reciprocal"), rounding_code(recipe.rounding),
                     FLOAT_DTYPE_CODES[recipe.float_dtype], dt.min, dt.max)
        st.dtype, st.numpy = DTYPE_CODES[y.dtype], dt.numpy
        return st

    def run(self, ctx, state, args, isa, threads):
        x = contiguous(args[0], np.float32)   # float16 -> float32 is exact
        y = np.empty(x.shape, state.numpy)
        if x.size == 0:
            return [y]
        if _ext.quantize_run(ISA_CODES[isa], x.reshape(-1), state, y, threads):
            raise NeedsReference("quantize: NaN input")
        return [y]
