"""Kernel glue for softmax (include/qnnref/softmax.h)."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ops.softmax import MAX_AXIS_LENGTH
from . import ISA_CODES, Kernel, Unsupported, _ext, register_kernel


class SoftmaxState:
    __slots__ = ("axis", "dtype", "exp_table", "out_shape", "params", "x_signed")


@register_kernel
class SoftmaxKernel(Kernel):
    op = "softmax"

    def prepare(self, ctx, isa):
        x, y = ctx.inputs[0], ctx.outputs[0]
        prep = ctx.prepared
        if x.dtype not in ("int8", "uint8") or y.dtype != x.dtype:
            raise Unsupported(f"dtypes {x.dtype} -> {y.dtype}")
        sp = prep["params"]
        # What the C++ code relies on (prepare_softmax guarantees it; checked anyway).
        ok = (2**30 <= sp.input_multiplier < 2**31 and 1 <= sp.input_left_shift <= 31
              and -(2**31) <= sp.diff_min <= 0 and 2**30 <= sp.output_multiplier < 2**31
              and -31 <= sp.output_shift <= 30 and 1 <= x.shape[prep["axis"]] <= MAX_AXIS_LENGTH)
        if not ok:
            raise Unsupported(f"softmax parameters out of the kernel's range: {sp}")
        dt = dtypes.get(y.dtype)
        s = SoftmaxState()
        s.axis = prep["axis"]
        s.x_signed = x.dtype == "int8"
        s.dtype = dt.numpy
        s.params = (sp.input_multiplier, sp.input_left_shift, sp.diff_min, sp.output_multiplier,
                    sp.output_shift, prep["y_zp"], dt.min, dt.max)
        # The exponential of every difference 0, -1, ..., -255 (softmax.h).
        s.exp_table = _ext.softmax_exp_table_run(sp.input_multiplier, sp.input_left_shift, sp.diff_min)
        s.out_shape = tuple(y.shape)
        return s

    def run(self, ctx, state, args, isa, threads):
        x = args[0]
        moved = state.axis != x.ndim - 1
        if moved:                       # the kernel normalizes along the last axis
            x = np.moveaxis(x, state.axis, -1)
        x = np.ascontiguousarray(x)
        y = np.empty(x.shape, dtype=state.dtype)
        if y.size:
            depth = x.shape[-1]
            _ext.softmax_run(ISA_CODES[isa], x, y, y.size // depth, depth, state.x_signed, state.params,
                             state.exp_table, threads)
        return [np.moveaxis(y, -1, state.axis) if moved else y]
