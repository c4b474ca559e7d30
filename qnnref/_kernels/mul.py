"""Kernel glue for mul: (a - zp_a) * (b - zp_b) in int32 (exact: mul.py
bounds it at load time), then requantize_row; broadcasts as add's."""
from __future__ import annotations

import numpy as np

from . import Kernel, _ext, register_kernel
from ._common import pack_requant
from .add import prepare_binary, run_binary
from .requantize import check_float_pack


@register_kernel
class MulKernel(Kernel):
    """Every recipe; the broadcasts of add.operand_pattern."""

    op = "mul"

    def prepare(self, ctx, isa):
        s = prepare_binary(ctx)
        p = ctx.prepared
        with np.errstate(over="ignore"):     # a float32 overflow is refused just below
            s.pack = pack_requant(p["params"], s.y_zp, ctx.outputs[0].dtype, *p["act"])
        check_float_pack(s.pack)
        return s

    def run(self, ctx, state, args, isa, threads):
        return run_binary(_ext.mul_run, state, args, isa, threads, "mul")
