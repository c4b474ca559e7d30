"""Helpers shared by operator modules: quantization parameters as arrays,
the fused activation range, and shape checks."""
from __future__ import annotations

import numpy as np

from ..graph import Quant, TensorInfo

#: attributes of compute operators that fuse a clamp into requantization
ACT_ATTRS_DOC = "fused activation range, in output integer units (inclusive)"


def zero_point(q: Quant) -> np.ndarray:
    """Zero point(s) as int32 (zeros when symmetric)."""
    return q.zero_point_or_zeros()


def scale(q: Quant) -> np.ndarray:
    return q.scale.astype(np.float32)


def act_range(ctx) -> tuple[int | None, int | None]:
    """The node's fused activation range (act_min, act_max), checked to be
    a non-empty sub-range of the output dtype."""
    lo, hi = ctx.attrs.get("act_min"), ctx.attrs.get("act_max")
    out = ctx.outputs[0]
    if out is not None:
        dt = out.dt
        if lo is not None and not dt.min <= lo <= dt.max:
            raise ctx.error(f"act_min {lo} is outside the {dt} range")
        if hi is not None and not dt.min <= hi <= dt.max:
            raise ctx.error(f"act_max {hi} is outside the {dt} range")
    if lo is not None and hi is not None and lo > hi:
        raise ctx.error(f"act_min {lo} > act_max {hi}")
    return lo, hi


def same_quant(a: TensorInfo, b: TensorInfo) -> bool:
    """True when two tensors have identical dtype and quantization parameters."""
    if a.dtype != b.dtype:
        return False
    qa, qb = a.quant, b.quant
    if qa is None or qb is None:
        return qa is None and qb is None
    if (qa.axis, qa.block_size) != (qb.axis, qb.block_size):
        return False
    return (np.array_equal(qa.scale, qb.scale) and qa.scale.dtype == qb.scale.dtype
            and np.array_equal(qa.zero_point_or_zeros(), qb.zero_point_or_zeros()))
