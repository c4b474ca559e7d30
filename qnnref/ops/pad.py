"""pad: extend a tensor at the start and end of each axis.

Exact by construction: no arithmetic. Every output value is an input value
or the constant ``value`` (default: the input zero point, i.e. real 0).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .registry import REQUIRED, Attr, Op, Slot, register
from ._common import same_quant, zero_point

DTYPES = tuple(n for n, d in dtypes.DTYPES.items() if d.is_int)
MODES = ("constant", "edge", "reflect")


def pad(x: np.ndarray, pads: tuple[int, ...], mode: str, value: int) -> np.ndarray:
    rank = x.ndim
    # Step 1: pads is ONNX-ordered [begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}].
    begin, end = pads[:rank], pads[rank:]
    out_shape = tuple(begin[i] + x.shape[i] + end[i] for i in range(rank))
    if mode == "constant":
        # Step 2 (constant): every new element is `value`, in integer units;
        # x sits at offset `begin`.
        y = np.full(out_shape, value, dtype=x.dtype)
        y[tuple(slice(begin[i], begin[i] + x.shape[i]) for i in range(rank))] = x
        return y
    # Step 2 (edge, reflect): along each axis, output position o reads input
    # position src(o - begin), where for t = o - begin and D = the axis length
    #   edge:    src(t) = clamp(t, 0, D - 1)          [a b c d] -> [a a | a b c d | d d]
    #   reflect: src(t) = -t for t < 0, 2(D - 1) - t for t >= D, else t
    #                                                  [a b c d] -> [c b | a b c d | c b]
    # (reflect mirrors about the first and last element without repeating them;
    # validation guarantees begin, end < D so one reflection suffices).
    index = []
    for i in range(rank):
        t = np.arange(out_shape[i]) - begin[i]
        D = x.shape[i]
        if mode == "edge":
            src = np.clip(t, 0, D - 1)
        else:
            src = np.where(t < 0, -t, np.where(t >= D, 2 * (D - 1) - t, t))
        index.append(src)
    # Step 3: y[o_0, ..., o_{r-1}] = x[src_0(o_0), ..., src_{r-1}(o_{r-1})].
    return x[np.ix_(*index)]


@register
class Pad(Op):
    name = "pad"
    inputs = (Slot("x", doc="integer tensor, quantized per-tensor or not quantized"),)
    outputs = (Slot("y", doc="padded tensor, same dtype and quantization"),)
    attrs = (
        Attr("pads", "ints", REQUIRED, "[begin_0..begin_{r-1}, end_0..end_{r-1}] (ONNX order), each >= 0"),
        Attr("mode", "str", "constant", "constant, edge or reflect"),
        Attr("value", "int", None, "constant mode: the fill value in integer units; default zp_x (real 0)"),
    )

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, DTYPES, "input x")
        a = ctx.attrs
        rank = len(x.shape)
        if rank < 1:
            raise ctx.error("input x must have rank >= 1")
        pads = a["pads"]
        if len(pads) != 2 * rank:
            raise ctx.error(f"attribute 'pads' must have 2 * rank = {2 * rank} entries, got {len(pads)}")
        if any(p < 0 for p in pads):
            raise ctx.error(f"attribute 'pads' {pads}: entries must be >= 0 (no cropping)")
        if a["mode"] not in MODES:
            raise ctx.error(f"attribute 'mode' must be one of {', '.join(MODES)}, got {a['mode']!r}")
        if a["value"] is not None and a["mode"] != "constant":
            raise ctx.error(f"attribute 'value' applies only to mode 'constant', not {a['mode']!r}")
        for i, d in enumerate(x.shape):
            b, e = pads[i], pads[rank + i]
            if a["mode"] == "edge" and d == 0 and (b or e):
                raise ctx.error(f"mode 'edge' cannot pad axis {i} of length 0")
            if a["mode"] == "reflect" and (b or e) and not (b < d and e < d):
                raise ctx.error(f"mode 'reflect' needs pads < the axis length: axis {i} has length {d}, "
                                f"pads ({b}, {e})")
        if a["value"] is not None and not x.dt.min <= a["value"] <= x.dt.max:
            raise ctx.error(f"attribute 'value' {a['value']} is outside the {x.dtype} range")
        out_shape = tuple(d + pads[i] + pads[rank + i] for i, d in enumerate(x.shape))
        if a["mode"] != "constant":
            # edge and reflect build one index array per axis, of the output's
            # length along it (long even when another axis makes y empty)
            ctx.check_size(sum(out_shape), "the per-axis index arrays (mode edge / reflect)")
        return [(x.dtype, out_shape)]

    def prepare(self, ctx):
        x, y = ctx.inputs[0], ctx.outputs[0]
        if x.quant is not None:
            ctx.require_quant(x, "input x")
        if not same_quant(x, y):
            raise ctx.error("output must have the dtype and quantization of input x "
                            f"(x: {x.describe()}, y: {y.describe()})")
        v = ctx.attrs["value"]
        if v is None:
            v = int(zero_point(x.quant)) if x.quant is not None else 0
        ctx.prepared["value"] = v

    def run(self, ctx, args):
        a = ctx.attrs
        return [pad(args[0], tuple(a["pads"]), a["mode"], ctx.prepared["value"])]
