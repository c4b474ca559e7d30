"""mean: the average over some axes of a quantized tensor (also global average pool).

``y = saturate(round(sum(x - zp_x) * s_x / (s_y * N)) + zp_y)`` where N is
the number of elements averaged; the sum is exact (int32 accumulator
contract) and the scaling and rounding are the node's recipe. Global average
pooling of an NHWC tensor is ``mean`` over axes [1, 2].
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..arith import RequantParams, check_accumulator, prepare_requant, requantize_output
from ..errors import ValidationError
from .registry import REQUIRED, Attr, Op, Slot, register
from ._common import scale, zero_point

DTYPES = dtypes.QUANT_DTYPES


def mean_multiplier(s_x, s_y, count: int, scale_dtype: str) -> np.ndarray:
    """The real multiplier ``s_x / (s_y * count)`` from float32 scales, each
    operation rounded to ``scale_dtype`` (float64: ``s_y * count`` is exact
    for count < 2^29, so the result is s_x / (s_y * count) correctly rounded;
    float32: as ONNX Runtime's QLinearGlobalAveragePool forms it). An
    overflow gives +inf, which no recipe accepts (prepare_requant refuses it)."""
    ft = np.float32 if scale_dtype == "float32" else np.float64
    sx = np.asarray(s_x, dtype=np.float32).astype(ft)
    sy = np.asarray(s_y, dtype=np.float32).astype(ft)
    with np.errstate(over="ignore"):
        return (sx / (sy * ft(count))).astype(ft)


def mean(x: np.ndarray, axes: tuple[int, ...], keepdims: bool, x_zero_point: int,
         params: RequantParams, y_zero_point: int, y_dtype: str) -> np.ndarray:
    # Step 1: the exact sum of (x - zp_x) over the axes, in int64.
    acc = (x.astype(np.int64) - x_zero_point).sum(axis=axes, keepdims=keepdims)
    # Step 2: REQUIRE every sum to fit int32 (the accumulator contract).
    acc = check_accumulator(acc, "mean sum")
    # Step 3: scale by s_x / (s_y * N) and round, both as the recipe says
    # (params was prepared from that multiplier); add the output zero point;
    # saturate to the output dtype.
    return requantize_output(acc, params, y_zero_point, y_dtype)


def normalize_axes(ctx, axes, rank: int) -> tuple[int, ...]:
    """Axes in [0, rank), sorted; ERROR_IF empty, out of [-rank, rank), or repeated."""
    if not axes:
        raise ctx.error("attribute 'axes' must list at least one axis")
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise ctx.error(f"axis {a} is out of range for rank {rank} (allowed: [{-rank}, {rank}))")
        out.append(a % rank)
    if len(set(out)) != len(out):
        raise ctx.error(f"attribute 'axes' {list(axes)} names an axis twice")
    return tuple(sorted(out))


@register
class Mean(Op):
    name = "mean"
    inputs = (Slot("x", doc="quantized tensor"),)
    outputs = (Slot("y", doc="quantized tensor, the dtype of x"),)
    attrs = (
        Attr("axes", "ints", REQUIRED, "axes to average over; negative counts from the end"),
        Attr("keepdims", "bool", True, "keep the reduced axes with length 1"),
    )

    def infer(self, ctx):
        x = ctx.input(0)
        ctx.require_dtype(x, DTYPES, "input x")
        rank = len(x.shape)
        if rank < 1:
            raise ctx.error("input x must have rank >= 1")
        axes = normalize_axes(ctx, ctx.attrs["axes"], rank)
        count = math.prod(x.shape[a] for a in axes)      # exact: Python integers
        if count == 0:
            raise ctx.error(f"the averaged axes {list(axes)} of shape {list(x.shape)} hold no element")
        if ctx.attrs["keepdims"]:
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return [(x.dtype, shape)]

    def prepare(self, ctx):
        x = ctx.inputs[0]
        qx = ctx.require_quant(x, "input x")
        qy = ctx.out_quant()
        axes = normalize_axes(ctx, ctx.attrs["axes"], len(x.shape))
        count = math.prod(x.shape[a] for a in axes)      # exact: Python integers
        real = mean_multiplier(scale(qx), scale(qy), count, ctx.recipe.scale_dtype)
        try:
            params = prepare_requant(real, ctx.recipe)
        except ValidationError as e:
            raise ctx.error(f"multiplier s_x / (s_y * {count}): {e}") from None
        ctx.prepared.update(axes=axes, params=params, x_zp=int(zero_point(qx)), y_zp=int(zero_point(qy)))

    def run(self, ctx, args):
        p = ctx.prepared
        return [mean(args[0], p["axes"], ctx.attrs["keepdims"], p["x_zp"], p["params"], p["y_zp"],
                     ctx.outputs[0].dtype)]
