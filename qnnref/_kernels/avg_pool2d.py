"""Kernel glue for avg_pool2d (include/qnnref/avg_pool2d.h)."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..arith import ROUNDING_MODES
from . import ISA_CODES, Kernel, NeedsReference, Unsupported, _ext, register_kernel
from ._common import DTYPE_CODES, RequantPack, pack_requant
from .max_pool2d import clamp_range, pool_geometry

POOL_DTYPES = ("int4", "uint4", "int8", "uint8", "int16")


def pack_by_count(params_by_count: dict, y_zero_point: int, y_dtype: str, act) -> tuple[np.ndarray, RequantPack]:
    """The ascending counts and one RequantPack whose arrays hold each count's
    multiplier at the count's position (C++ offsets its pointers by it)."""
    counts = sorted(params_by_count)
    packs = [pack_requant(params_by_count[c], y_zero_point, y_dtype, *act) for c in counts]
    p = packs[0]
    for name in ("multiplier", "shift", "real_f32", "real_f64"):
        setattr(p, name, np.ascontiguousarray(np.concatenate([getattr(q, name) for q in packs])))
    p.per_channel = 0
    p.channels = len(counts)
    return np.asarray(counts, dtype=np.int64), p


class AvgPoolState:
    __slots__ = (
        "counts",
        "dtype",
        "dtype_code",
        "geo",
        "hi",
        "include_pad",
        "lo",
        "out_shape",
        "pack",
        "rounding",
        "x_zp",
    )


@register_kernel
class AvgPool2dKernel(Kernel):
    op = "avg_pool2d"

    def prepare(self, ctx, isa):
        x, y = ctx.inputs[0], ctx.outputs[0]
        a, prep = ctx.attrs, ctx.prepared
        if x.dtype not in POOL_DTYPES:
            raise Unsupported(f"dtype {x.dtype}")
        dt = dtypes.get(x.dtype)
        s = AvgPoolState()
        s.geo = pool_geometry(ctx)
        kh, kw = s.geo[6], s.geo[7]
        # The bound of avg_pool2d.h: every window sum fits int32, so the
        # reference's REQUIRE cannot fail and int32 sums are exact.
        if kh * kw * (dt.max - dt.min) >= 2**31:
            raise Unsupported(f"a {kh}x{kw} window of {x.dtype} may overflow the int32 window sum")
        s.x_zp = prep["x_zp"]
        if not dt.min <= s.x_zp <= dt.max:
            raise Unsupported(f"input zero point {s.x_zp} outside the {x.dtype} range")
        s.dtype = dt.numpy
        s.dtype_code = DTYPE_CODES[x.dtype]
        s.include_pad = bool(a["count_include_pad"])
        s.rounding = ROUNDING_MODES.index(a["rounding"])
        s.lo, s.hi = clamp_range(y.dtype, prep["act"])
        if prep["params_by_count"] is None:
            s.counts, s.pack = np.zeros(1, np.int64), None
        else:
            s.counts, s.pack = pack_by_count(prep["params_by_count"], prep["y_zp"], y.dtype, prep["act"])
        s.out_shape = tuple(y.shape)
        return s

    def run(self, ctx, state, args, isa, threads):
        x = np.ascontiguousarray(args[0])
        y = np.empty(state.out_shape, dtype=state.dtype)
        if y.size:
            status = _ext.avg_pool2d_run(ISA_CODES[isa], x, y, state.geo, state.dtype_code, state.include_pad,
                                         state.x_zp, state.rounding, state.lo, state.hi, state.counts,
                                         state.pack, threads)
            if status:
                raise NeedsReference("avg_pool2d: gemmlowp requantization overflow")
        return [y]
