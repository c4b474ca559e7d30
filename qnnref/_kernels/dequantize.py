"""Kernel glue for dequantize: per-tensor, per-axis and blocked input
quantization (the expanded parameters, read as add's broadcast operands)."""
from __future__ import annotations

import numpy as np

from . import ISA_CODES, Kernel, Unsupported, _ext, register_kernel
from ._common import DTYPE_CODES
from .add import operand_pattern
from .requantize import centered_fits_int32, contiguous, per_axis, row_tiling


class _State:
    __slots__ = ("mid", "inner", "scale", "zp", "dtype")


@register_kernel
class DequantizeKernel(Kernel):
    op = "dequantize"

    def prepare(self, ctx, isa):
        x = ctx.inputs[0]
        p = ctx.prepared
        scale, zp = np.asarray(p["scale"], np.float32), np.asarray(p["zero_point"], np.int32)
        pattern = operand_pattern(scale.shape, x.shape)
        if pattern is None or operand_pattern(zp.shape, x.shape) != pattern:
            raise Unsupported("quantization parameters that do not broadcast as one axis block")
        if not centered_fits_int32(x.dtype, zp):
            raise Unsupported("x - zero point does not fit int32")
        mid, inner = pattern
        tile = row_tiling(mid, inner)
        st = _State()
        st.mid, st.inner = mid * tile, inner
        st.scale = per_axis(scale, mid, tile, np.float32)
        st.zp = per_axis(zp, mid, tile, np.int32)
        st.dtype = DTYPE_CODES[x.dtype]
        return st

    def run(self, ctx, state, args, isa, threads):
        x = contiguous(args[0])
        y = np.empty(x.shape, np.float32)
        if x.size:
            _ext.dequantize_run(ISA_CODES[isa], x, state, y.reshape(-1), threads)
        return [y]
