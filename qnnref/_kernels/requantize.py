"""Kernel glue for requantize (and helpers the elementwise glue shares).

The kernel (include/qnnref/requantize.h ``requantize_tensor``) subtracts the
input zero point into an int32 buffer and ends with ``requantize_row``, per
tensor or per axis. Parameters along an axis are described by ``(mid,
inner)``: element f of the flat tensor uses parameter ``(f // inner) % mid``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..arith import RequantParams
from . import ISA_CODES, Kernel, NeedsReference, Unsupported, _ext, register_kernel
from ._common import DTYPE_CODES, pack_requant

#: a row of per-element parameters shorter than this is tiled (repeated) so
#: that the kernels see long rows (the pattern is periodic, so this is exact)
MIN_ROW = 256


def axis_segments(shape, axis) -> tuple[int, int]:
    """(mid, inner) of parameters along ``axis`` of ``shape`` (None: per tensor)."""
    if axis is None:
        return 1, 1
    return int(shape[axis]), int(math.prod(shape[axis + 1:]))


def row_tiling(mid: int, inner: int) -> int:
    """How many times to repeat a per-element parameter row (inner == 1)."""
    return -(-MIN_ROW // mid) if inner == 1 and 1 < mid < MIN_ROW else 1


def per_axis(a, mid: int, tile: int = 1, dtype=None) -> np.ndarray:
    """A scalar or a per-axis array as ``mid`` contiguous values, repeated ``tile`` times."""
    v = np.broadcast_to(np.asarray(a).reshape(-1), (mid,))
    return np.ascontiguousarray(np.tile(v, tile), dtype=dtype)


def check_float_pack(pack) -> None:
    """A float32 recipe needs multipliers that are finite in float32 (the
    reference would multiply 0 by inf: NaN, which has no integer value)."""
    if pack.kind == 1 and pack.float_dtype == 0 and not np.all(np.isfinite(pack.real_f32)):
        raise Unsupported("a real multiplier overflows float32")


def centered_fits_int32(dtype_name: str, zero_points) -> bool:
    """True when x - zp fits int32 for every value x of the dtype."""
    dt = dtypes.get(dtype_name)
    zp = np.asarray(zero_points, np.int64)
    return bool(dt.min - zp.max() >= -(2**31) and dt.max - zp.min() <= 2**31 - 1)


class _State:
    __slots__ = ("pack", "mid", "inner", "x_zp", "y_zp", "x_code", "y_code", "y_numpy")


@register_kernel
class RequantizeKernel(Kernel):
    """Per tensor and per axis; falls back for per-axis output zero points
    that differ along the innermost axis."""

    op = "requantize"

    def prepare(self, ctx, isa):
        x, y = ctx.inputs[0], ctx.outputs[0]
        p = ctx.prepared
        params: RequantParams = p["params"]
        axis = x.quant.axis if x.quant.axis is not None else y.quant.axis
        mid, inner = axis_segments(x.shape, axis)
        y_zp_all = per_axis(p["y_zp"], mid, dtype=np.int64)
        if inner == 1 and mid > 1 and np.any(y_zp_all != y_zp_all[0]):
            raise Unsupported("per-axis output zero points that differ along the innermost axis")
        x_zp_all = per_axis(p["x_zp"], mid, dtype=np.int64)
        if not centered_fits_int32(x.dtype, x_zp_all):
            raise Unsupported("x - zero point does not fit int32")
        tile = row_tiling(mid, inner)
        flat = RequantParams(params.recipe, per_axis(params.real, mid, tile),
                             None if params.multiplier is None else per_axis(params.multiplier, mid, tile),
                             None if params.shift is None else per_axis(params.shift, mid, tile))
        s = _State()
        with np.errstate(over="ignore"):     # a float32 overflow is refused just below
            s.pack = pack_requant(flat, int(y_zp_all[0]), y.dtype)
        check_float_pack(s.pack)
        s.mid, s.inner = mid * tile, inner
        s.x_zp = per_axis(x_zp_all, mid, tile, np.int32)
        s.y_zp = per_axis(y_zp_all, mid, tile, np.int32)
        s.x_code, s.y_code = DTYPE_CODES[x.dtype], DTYPE_CODES[y.dtype]
        s.y_numpy = y.dt.numpy
        return s

    def run(self, ctx, state, args, isa, threads):
        x = np.ascontiguousarray(args[0])
        y = np.empty(x.shape, state.y_numpy)
        if x.size == 0:
            return [y]
        st = _ext.requantize_tensor_run(ISA_CODES[isa], x, state.x_code, state.mid, state.inner, state.x_zp,
                                        state.y_zp, state.pack, state.y_code, y, threads)
        if st:
            raise NeedsReference("requantize: a REQUIRE may have failed")
        return [y]
