"""What the Python side of every kernel shares: dtype codes and the
requantization parameters packed for C++ (``Requant`` in include/qnnref/common.h).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..arith import ROUNDING_MODES, RequantParams

#: DType codes of include/qnnref/common.h
DTYPE_CODES = {"int8": 0, "uint8": 1, "int16": 2, "int32": 3, "int4": 4, "uint4": 5}

KIND_CODES = {"fixed_point": 0, "float": 1}
DOUBLE_ROUND_CODES = {"none": 0, "gemmlowp": 1, "tosa": 2}
FLOAT_DTYPE_CODES = {"float32": 0, "float64": 1}


def rounding_code(mode: str) -> int:
    return ROUNDING_MODES.index(mode)


class RequantPack:
    """A RequantParams flattened into contiguous arrays for C++, with the
    output zero point and the clamp range [lo, hi] (dtype range narrowed by
    the fused activation). ``per_channel``: arrays have one value per output
    channel; else one value for all."""

    __slots__ = ("kind", "rounding", "double_round", "float_dtype", "per_channel", "channels",
                 "multiplier", "shift", "real_f32", "real_f64", "zero_point", "lo", "hi")

    def __repr__(self):
        return (f"RequantPack(kind={self.kind}, rounding={self.rounding}, per_channel={self.per_channel}, "
                f"channels={self.channels}, zp={self.zero_point}, lo={self.lo}, hi={self.hi})")


def pack_requant(params: RequantParams, zero_point, dtype_name: str, act_min=None,
                 act_max=None) -> RequantPack:
    """Pack ``params`` (scalar or 1-D per-channel) for C++; ``zero_point`` is
    the output's per-tensor zero point."""
    r = params.recipe
    real = np.asarray(params.real).reshape(-1)
    p = RequantPack()
    p.kind = KIND_CODES[r.kind]
    p.rounding = rounding_code(r.rounding)
    p.double_round = DOUBLE_ROUND_CODES[r.double_round]
    p.float_dtype = FLOAT_DTYPE_CODES[r.float_dtype]
    p.per_channel = int(np.ndim(params.real) > 0 and real.size > 1)
    p.channels = real.size
    if params.multiplier is not None:
        p.multiplier = np.ascontiguousarray(np.asarray(params.multiplier).reshape(-1), dtype=np.int32)
        p.shift = np.ascontiguousarray(np.asarray(params.shift).reshape(-1), dtype=np.int32)
    else:
        p.multiplier = np.zeros(real.size, np.int32)
        p.shift = np.zeros(real.size, np.int32)
    # the recipe converts the real multiplier (held in scale_dtype) to float_dtype
    p.real_f32 = np.ascontiguousarray(real.astype(np.float32))
    p.real_f64 = np.ascontiguousarray(real.astype(np.float64))
    zp = np.asarray(zero_point).reshape(-1)
    if zp.size != 1:
        raise ValueError("pack_requant: the output zero point must be per tensor")
    p.zero_point = int(zp[0])
    dt = dtypes.get(dtype_name)
    p.lo = dt.min if act_min is None else max(dt.min, int(act_min))
    p.hi = dt.max if act_max is None else min(dt.max, int(act_max))
    return p
