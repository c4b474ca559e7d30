"""Kernel glue for matmul: weights prepacked once for the packed integer
GEMM of include/qnnref/gemm.h (scalar and AVX2), batches walked in C++.

The helpers :func:`pack_weights` and :func:`check_accumulator_bound` are
shared with conv2d.py.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from . import ISA_CODES, Kernel, NeedsReference, Unsupported, _ext, register_kernel
from ._common import DTYPE_CODES, pack_requant

INT32_MAX = 2**31 - 1
GEMM_PAIRS, GEMM_NIBBLES = 0, 1   # GemmFormat of gemm.h
GEMM_NR = 16                      # columns per packed panel


def max_centered(dtype_name: str, zero_points) -> int:
    """max |v - zp| over every value v of the dtype and every zero point zp."""
    dt = dtypes.get(dtype_name)
    zp = np.asarray(zero_points, np.int64).reshape(-1)
    return int(max(np.abs(dt.min - zp).max(), np.abs(dt.max - zp).max()))


def check_zero_points(dtype_name: str, zero_points, what: str) -> None:
    """The kernels store a - zp_a, b - zp_b and zp + offsets in int16 / bytes:
    zero points must lie in their dtype's range (the graph checks guarantee
    it; this keeps the C++ preconditions local)."""
    dt = dtypes.get(dtype_name)
    zp = np.asarray(zero_points).reshape(-1)
    if zp.size and (int(zp.min()) < dt.min or int(zp.max()) > dt.max):
        raise Unsupported(f"zero point of {what} outside the {dtype_name} range")


def check_accumulator_bound(a_max: int, column_bound: int, what: str) -> None:
    """The kernel sums int32 with wrap-around, which is exact when every
    true sum_k (a - zp_a)(b - zp_b) fits int32 (the bias is added after, in
    int64, and checked at run time). |sum| <= a_max * column_bound, where
    a_max = max |a - zp_a| over a's dtype and column_bound = max over
    columns of sum_k |b - zp_b|. If that bound is not below 2^31, the node
    runs on the reference."""
    if a_max * column_bound > INT32_MAX:
        raise Unsupported(f"the int32 accumulator bound cannot be proven: max |a - zp_a| = {a_max} "
                          f"times {what} = {column_bound} exceeds 2^31 - 1")


class PackedWeights:
    """A stack of packed [K, N] matrices (gemm.h): data [count, bytes],
    row_coef and col_term [count, N rounded up to 16], any_row_coef, and
    column_bound = max over matrices and columns of sum_k |B[k, n] - zp_b[n]|."""

    __slots__ = ("format", "data", "row_coef", "col_term", "any_row_coef", "column_bound")


def pack_weights(mats: np.ndarray, b_dtype: str, k: int, n: int, stride_k: int, stride_n: int,
                 zero_points: np.ndarray, a_dtype: str, zp_a: int) -> PackedWeights:
    """Pack ``mats`` (C-contiguous [count, ...]; matrix i holds B[k, n] at
    element k * stride_k + n * stride_n of mats[i]) with ``zero_points``
    [count, 1 or n] (int32)."""
    fmt = GEMM_NIBBLES if b_dtype == "int4" else GEMM_PAIRS
    count = mats.shape[0]
    pw = PackedWeights()
    pw.format = fmt
    pw.data = np.empty((count, _ext.gemm_packed_size(fmt, k, n)), np.uint8)
    n_pad = -(-n // GEMM_NR) * GEMM_NR
    pw.row_coef = np.empty((count, n_pad), np.int32)
    pw.col_term = np.empty((count, n_pad), np.int32)
    pw.column_bound = 0
    for i in range(count):
        bound = _ext.gemm_pack(DTYPE_CODES[b_dtype], mats[i], stride_k, stride_n, k, n, zero_points[i],
                               DTYPE_CODES[a_dtype], zp_a, pw.data[i], pw.row_coef[i], pw.col_term[i])
        pw.column_bound = max(pw.column_bound, bound)
    pw.any_row_coef = int(np.any(pw.row_coef))
    return pw


def int4_in_range(b: np.ndarray) -> bool:
    """A runtime int4 operand must hold values in [-8, 7] (the packing keeps 4 bits)."""
    return b.size == 0 or (int(b.min()) >= -8 and int(b.max()) <= 7)


class MatmulState:
    __slots__ = ("a_code", "zp_a", "m", "k", "n", "a_index", "b_index", "b_dtype", "a_dtype", "zp_b",
                 "packed", "bias", "bias_runtime", "requant", "out_shape", "out_numpy", "out_code", "empty")


@register_kernel
class MatMulKernel(Kernel):
    op = "matmul"

    def prepare(self, ctx, isa):
        p = ctx.prepared
        a_t, b_t, y_t = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
        bias_t = ctx.inputs[2] if len(ctx.inputs) > 2 else None
        *a_batch, m, k = a_t.shape
        *b_batch, _, n = b_t.shape
        batch = tuple(y_t.shape[:-2])
        s = MatmulState()
        s.out_shape = tuple(y_t.shape)
        s.out_numpy = dtypes.get(y_t.dtype).numpy
        s.out_code = DTYPE_CODES[y_t.dtype]
        s.empty = math.prod(s.out_shape) == 0
        if s.empty:
            return s
        if k == 0:
            raise Unsupported("K = 0 (the output is the requantized bias)")
        s.a_dtype, s.b_dtype = a_t.dtype, b_t.dtype
        s.a_code = DTYPE_CODES[a_t.dtype]
        s.zp_a = int(np.asarray(p["a_zp"]).reshape(-1)[0])
        zp_b = np.asarray(p["b_zp"]).reshape(-1)
        s.zp_b = np.ascontiguousarray(zp_b, dtype=np.int32).reshape(1, -1)
        s.m, s.k, s.n = m, k, n
        check_zero_points(a_t.dtype, s.zp_a, "a")
        check_zero_points(b_t.dtype, zp_b, "b")
        a_max = max_centered(a_t.dtype, s.zp_a)
        if b_t.data is not None:
            mats = np.ascontiguousarray(np.asarray(b_t.data).reshape(-1, k, n))
            s.packed = pack_weights(mats, b_t.dtype, k, n, n, 1, np.broadcast_to(s.zp_b, (len(mats), zp_b.size)),
                                    a_t.dtype, s.zp_a)
            check_accumulator_bound(a_max, s.packed.column_bound, "max_n sum_k |b - zp_b|")
        else:
            check_accumulator_bound(a_max, k * max_centered(b_t.dtype, zp_b), "K * max |b - zp_b|")
            s.packed = None
        if not b_batch:
            # one GEMM: every batch of a is more rows
            s.m = math.prod(a_batch) * m
            s.a_index = np.zeros(1, np.int64)
            s.b_index = np.zeros(1, np.int64)
        else:
            # np.matmul broadcasting: output batch i uses a[a_index[i]] and b[b_index[i]]
            s.a_index = np.ascontiguousarray(np.broadcast_to(
                np.arange(math.prod(a_batch)).reshape(a_batch), batch).reshape(-1), dtype=np.int64)
            s.b_index = np.ascontiguousarray(np.broadcast_to(
                np.arange(math.prod(b_batch)).reshape(b_batch), batch).reshape(-1), dtype=np.int64)
        s.bias_runtime = bias_t is not None and bias_t.data is None
        s.bias = (np.ascontiguousarray(bias_t.data, dtype=np.int32)
                  if bias_t is not None and bias_t.data is not None else None)
        s.requant = pack_requant(p["params"], p["y_zp"], y_t.dtype, *p["act"])
        return s

    def run(self, ctx, state, args, isa, threads):
        s = state
        if s.empty:
            return [np.empty(s.out_shape, s.out_numpy)]
        a = np.ascontiguousarray(args[0])
        packed = s.packed
        if packed is None:
            # runtime weights: packed per call
            b = np.ascontiguousarray(args[1]).reshape(-1, s.k, s.n)
            if s.b_dtype == "int4" and not int4_in_range(b):
                raise NeedsReference
            packed = pack_weights(b, s.b_dtype, s.k, s.n, s.n, 1, np.broadcast_to(s.zp_b, (len(b), s.zp_b.shape[1])),
                                  s.a_dtype, s.zp_a)
        bias = np.ascontiguousarray(args[2], dtype=np.int32) if s.bias_runtime else s.bias
        out = np.empty(s.out_shape, s.out_numpy)
        status = _ext.matmul_run(ISA_CODES[isa], a, s.a_code, s.zp_a, s.m, s.k, s.n, s.a_index, s.b_index,
                                 packed.format, packed.data, packed.row_coef, packed.col_term,
                                 packed.any_row_coef, bias, out, s.out_code, s.requant, threads)
        if status:
            raise NeedsReference
        return [out]
