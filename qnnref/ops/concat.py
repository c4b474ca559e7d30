"""concat: join tensors along one axis, each brought into the output's quantization.

An input whose dtype and quantization equal the output's is copied unchanged
(exact). Any other input is requantized into the output's quantization
through the node's recipe, with the real multiplier s_i / s_y, exactly as the
requantize operator does. The copy is only a shortcut: a multiplier of
exactly 1.0 with equal zero points is the identity under every recipe.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .. import graph as _graph
from ..arith import RequantParams, combine_scales, prepare_requant, requantize_output
from ..errors import ValidationError
from .registry import Attr, Op, Slot, register
from ._common import same_quant, scale, zero_point

DTYPES = tuple(dtypes.DTYPES)


def concat(xs: list[np.ndarray], axis: int, x_zero_points: list[int | None],
           params: list[RequantParams | None], y_zero_point: int | None, y_dtype: str) -> np.ndarray:
    parts = []
    for x, x_zero_point, p in zip(xs, x_zero_points, params):
        if p is None:
            # Step 1a: the input has the output's dtype and quantization (or
            # neither is quantized): its values are copied unchanged.
            parts.append(x)
        else:
            # Step 1b: requantize the input into the output's quantization:
            # (x - zp_i) scaled by s_i / s_y and rounded as the recipe says,
            # plus zp_y, saturated to the output dtype.
            acc = x.astype(np.int64) - x_zero_point
            parts.append(requantize_output(acc, p, y_zero_point, y_dtype))
    # Step 2: join the parts along the axis, in input order.
    return np.concatenate(parts, axis=axis)


@register
class Concat(Op):
    name = "concat"
    inputs = (Slot("inputs", doc="one or more tensors (variadic)"),)
    outputs = (Slot("y", doc="the inputs joined along axis"),)
    variadic = True
    attrs = (Attr("axis", "int", 0, "the axis to join along; negative counts from the end"),)

    def infer(self, ctx):
        xs = [ctx.input(i) for i in range(len(ctx.inputs))]
        # the node work limit: the reference (and validation) loop over the inputs
        ctx.check_work(_graph.LOOP_WORK * len(xs), f"the loop over its {len(xs)} inputs")
        first = xs[0]
        rank = len(first.shape)
        if rank < 1:
            raise ctx.error("inputs must have rank >= 1")
        axis = ctx.attrs["axis"]
        if not -rank <= axis < rank:
            raise ctx.error(f"axis {axis} is out of range for rank {rank} (allowed: [{-rank}, {rank}))")
        axis %= rank
        for i, x in enumerate(xs):
            ctx.require_dtype(x, DTYPES, f"input {i}")
            if x.dtype != first.dtype:
                raise ctx.error(f"input {i} {x.name!r} has dtype {x.dtype}, input 0 has {first.dtype}; "
                                "all inputs must share one dtype")
            if len(x.shape) != rank or any(d != e for k, (d, e) in enumerate(zip(x.shape, first.shape))
                                           if k != axis):
                raise ctx.error(f"input {i} {x.name!r} has shape {list(x.shape)}, incompatible with input 0's "
                                f"{list(first.shape)} (only axis {axis} may differ)")
        shape = list(first.shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        return [(first.dtype, tuple(shape))]

    def prepare(self, ctx):
        xs, y = list(ctx.inputs), ctx.outputs[0]
        p = ctx.prepared
        p["axis"] = ctx.attrs["axis"] % len(y.shape)
        if all(x.quant is None for x in xs) and y.quant is None:
            p.update(x_zps=[None] * len(xs), params=[None] * len(xs), y_zp=None)
            return
        qy = ctx.out_quant()
        x_zps, params = [], []
        for i, x in enumerate(xs):
            qx = ctx.require_quant(x, f"input {i}")
            ctx.require_dtype(x, dtypes.QUANT_DTYPES, f"quantized input {i}")
            x_zps.append(int(zero_point(qx)))
            if same_quant(x, y):
                params.append(None)
                continue
            real = combine_scales([scale(qx)], scale(qy), ctx.recipe.scale_dtype)
            try:
                params.append(prepare_requant(real, ctx.recipe))
            except ValidationError as e:
                raise ctx.error(f"input {i}: multiplier s_{i} / s_y: {e}") from None
        p.update(x_zps=x_zps, params=params, y_zp=int(zero_point(qy)))

    def run(self, ctx, args):
        p = ctx.prepared
        return [concat(args, p["axis"], p["x_zps"], p["params"], p["y_zp"], ctx.outputs[0].dtype)]
