"""max_pool2d: the maximum over each 2-D window of an NHWC tensor.

Exact by construction: the output is one of the window's input values (then
optionally clamped), no arithmetic on values. Padded taps are excluded, never
compared, so they can never win. The pool geometry helpers here are shared
with avg_pool2d.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .. import graph as _graph
from .registry import REQUIRED, Attr, Op, Slot, register
from ._common import ACT_ATTRS_DOC, act_range, same_quant

DTYPES = dtypes.QUANT_DTYPES

GEOMETRY_ATTRS = (
    Attr("kernel", "ints", REQUIRED, "[kh, kw], window size"),
    Attr("strides", "ints", [1, 1], "[sh, sw]; default [1, 1] (ONNX's default, not PyTorch's = kernel)"),
    Attr("dilations", "ints", [1, 1], "[dh, dw]"),
    Attr("pads", "ints", [0, 0, 0, 0], "[top, left, bottom, right], taps outside the input"),
)
ACT_ATTRS = (
    Attr("act_min", "int", None, ACT_ATTRS_DOC),
    Attr("act_max", "int", None, ACT_ATTRS_DOC),
)


def max_pool2d(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
               dilations: tuple[int, int], pads: tuple[int, int, int, int],
               act_min: int | None, act_max: int | None) -> np.ndarray:
    N, H, W, C = x.shape
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    pad_top, pad_left, pad_bottom, pad_right = pads
    # Step 1: output size (no ceil mode): the windows that fit in the padded input.
    OH = (H + pad_top + pad_bottom - ((kh - 1) * dh + 1)) // sh + 1
    OW = (W + pad_left + pad_right - ((kw - 1) * dw + 1)) // sw + 1
    y = np.empty((N, OH, OW, C), dtype=x.dtype)
    for oh in range(OH):
        for ow in range(OW):
            # Step 2: the window's taps that lie inside the input. Padded taps
            # are left out, so they never win (as if they were -infinity).
            # Validation guarantees at least one row and one column.
            # (window_taps: the oh * sh - pad_top + i * dh, i in [0, kh), that
            # lie in [0, H), found without enumerating all kh of them).
            rows = list(window_taps(oh, sh, pad_top, kh, dh, H))
            cols = list(window_taps(ow, sw, pad_left, kw, dw, W))
            window = x[:, rows][:, :, cols]            # (N, len(rows), len(cols), C)
            # Step 3: the maximum, per batch and channel.
            y[:, oh, ow, :] = window.max(axis=(1, 2))
    # Step 4: the fused activation range, in output integer units.
    if act_min is not None:
        y = np.maximum(y, np.asarray(act_min, dtype=x.dtype))
    if act_max is not None:
        y = np.minimum(y, np.asarray(act_max, dtype=x.dtype))
    return y


# ---------------------------------------------------------------------------
# Pool geometry validation (shared with avg_pool2d)
# ---------------------------------------------------------------------------

def window_taps(o: int, stride: int, pad: int, k: int, dilation: int, size: int) -> range:
    """Input indices of the taps of output position ``o`` that lie inside [0, size):
    the ``o * stride - pad + i * dilation`` for i in [0, k) that are in range,
    found in O(1) (``k`` may be huge in an invalid model)."""
    start = o * stride - pad
    first = max(0, -(start // dilation))                 # smallest i with start + i * dilation >= 0
    last = min(k - 1, (size - 1 - start) // dilation)    # largest i with start + i * dilation < size
    return range(start + first * dilation, start + max(last + 1, first) * dilation, dilation)


def check_pool_geometry(ctx, shape) -> tuple[int, int]:
    """Validate the geometry attributes against an NHWC input shape; return (OH, OW).

    ERROR_IF: rank != 4; kernel, strides, dilations not 2 positive ints; pads
    not 4 non-negative ints; an output size < 1; a window with no tap inside
    the input (it would see only padding); more taps in all windows than the
    model size limit."""
    if len(shape) != 4:
        raise ctx.error(f"input must be NHWC (rank 4), got shape {list(shape)}")
    a = ctx.attrs
    for name, n, lo in (("kernel", 2, 1), ("strides", 2, 1), ("dilations", 2, 1), ("pads", 4, 0)):
        v = a[name]
        if len(v) != n or any(e < lo for e in v):
            raise ctx.error(f"attribute {name!r} must be {n} ints >= {lo}, got {v}")
    (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["strides"], a["dilations"]
    pt, pl, pb, pr = a["pads"]
    _, H, W, _ = shape
    OH = (H + pt + pb - ((kh - 1) * dh + 1)) // sh + 1
    OW = (W + pl + pr - ((kw - 1) * dw + 1)) // sw + 1
    if OH < 1 or OW < 1:
        raise ctx.error(f"the window ({kh}x{kw}, dilations {[dh, dw]}) does not fit the padded "
                        f"input {H}x{W} with pads {a['pads']}: output size {OH}x{OW}")
    # The reference visits every tap of every window (N*C counted as at least
    # 1: it loops over the windows even when there are none).
    ctx.check_size(max(shape[0] * shape[3], 1) * OH * OW * kh * kw,
                   "the taps of all pooling windows (N*OH*OW*KH*KW*C)")
    # The node work limit, before anything loops over the windows: the
    # reference visits every tap and runs one Python iteration per window
    # (avg_pool2d's float form loops over the KH*KW taps instead: it checks
    # that too).
    windows = OH * OW
    ctx.check_work(_graph.TAP_WORK * max(shape[0] * shape[3], 1) * windows * kh * kw
                   + _graph.LOOP_WORK * windows, f"the {windows} pooling windows of {kh}x{kw} taps")
    for o in range(OH):
        if not window_taps(o, sh, pt, kh, dh, H):
            raise ctx.error(f"output row {o} has a window made only of padding "
                            f"(pads {a['pads']}, kernel {a['kernel']}, dilations {a['dilations']})")
    for o in range(OW):
        if not window_taps(o, sw, pl, kw, dw, W):
            raise ctx.error(f"output column {o} has a window made only of padding "
                            f"(pads {a['pads']}, kernel {a['kernel']}, dilations {a['dilations']})")
    return OH, OW


@register
class MaxPool2d(Op):
    name = "max_pool2d"
    inputs = (Slot("x", doc="quantized NHWC tensor"),)
    outputs = (Slot("y", doc="NHWC tensor, same dtype and quantization as x"),)
    attrs = GEOMETRY_ATTRS + ACT_ATTRS

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, DTYPES, "input x")
        OH, OW = check_pool_geometry(ctx, x.shape)
        return [(x.dtype, (x.shape[0], OH, OW, x.shape[3]))]

    def prepare(self, ctx):
        x, y = ctx.inputs[0], ctx.outputs[0]
        ctx.require_quant(x, "input x", ("per-tensor", "per-axis"), axis=3)
        if not same_quant(x, y):
            raise ctx.error("output must have the dtype and quantization of input x "
                            f"(x: {x.describe()}, y: {y.describe()})")
        ctx.prepared["act"] = act_range(ctx)

    def run(self, ctx, args):
        a = ctx.attrs
        act_min, act_max = ctx.prepared["act"]
        return [max_pool2d(args[0], tuple(a["kernel"]), tuple(a["strides"]), tuple(a["dilations"]),
                           tuple(a["pads"]), act_min, act_max)]
