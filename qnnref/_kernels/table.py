"""Kernel glue for table (include/qnnref/table.h)."""
from __future__ import annotations

import numpy as np

from . import ISA_CODES, Kernel, Unsupported, _ext, register_kernel


class TableState:
    __slots__ = ("dtype", "lut_bytes", "out_shape", "x_signed")


@register_kernel
class TableKernel(Kernel):
    op = "table"

    def prepare(self, ctx, isa):
        x, t, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
        if x.dtype not in ("int8", "uint8") or t.dtype not in ("int8", "uint8"):
            raise Unsupported(f"dtypes {x.dtype} -> {t.dtype}")
        s = TableState()
        s.x_signed = x.dtype == "int8"
        s.dtype = t.dt.numpy
        # The table is the node's constant input: args[1] at run time holds the
        # same data; it is read once here, as its 256 bytes.
        lut = np.asarray(t.data).reshape(-1)
        if lut.shape != (256,) or lut.dtype != s.dtype:
            raise Unsupported(f"table of shape {lut.shape} and dtype {lut.dtype}")
        s.lut_bytes = np.ascontiguousarray(lut).view(np.uint8).copy()
        s.out_shape = tuple(y.shape)
        return s

    def run(self, ctx, state, args, isa, threads):
        x = np.ascontiguousarray(args[0])
        y = np.empty(state.out_shape, dtype=state.dtype)
        if y.size:
            _ext.table_run(ISA_CODES[isa], x, y, state.x_signed, state.lut_bytes, threads)
        return [y]
