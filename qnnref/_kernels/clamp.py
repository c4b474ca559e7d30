"""Kernel glue for clamp: every integer dtype."""
from __future__ import annotations

import numpy as np

from . import ISA_CODES, Kernel, _ext, register_kernel
from ._common import DTYPE_CODES
from .requantize import contiguous


@register_kernel
class ClampKernel(Kernel):
    op = "clamp"

    def prepare(self, ctx, isa):
        p = ctx.prepared
        return DTYPE_CODES[ctx.inputs[0].dtype], int(p["lo"]), int(p["hi"])

    def run(self, ctx, state, args, isa, threads):
        dtype, lo, hi = state
        x = contiguous(args[0])
        y = np.empty_like(x)
        if x.size:
            _ext.clamp_run(ISA_CODES[isa], x, dtype, lo, hi, y, threads)
        return [y]
