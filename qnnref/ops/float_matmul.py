"""float_matmul: matrix product in float32 (MatMul, Gemm), with an optional bias.

``y[..., m, n] = sum_k a[..., m, k] * b[..., k, n] + bias[n]``, ``a`` and
``b`` broadcasting like ``np.matmul``. Every rounding is specified: each dot
product is a chain of float32 fused multiply-adds in k order, cut into blocks
of ``k_block`` terms whose sums are added in float32
(:func:`qnnref.ops._float.blocked_fma_dot`); the bias is added once after the
sum (``bias_first = false``, as ONNX Runtime's Conv) or is the starting value
the block sums are added to (``bias_first = true``, as its Gemm). This is
MLAS's SGEMM with the importer choosing ``k_block`` (spec/ops/float_matmul.md).
"""
from __future__ import annotations

import math

import numpy as np

from .. import graph as _graph
from ._float import FLOAT, K_BLOCK_DOC, blocked_fma_dot, check_k_block, require_unquantized
from .registry import Attr, Op, Slot, register


def float_matmul(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None, k_block: int,
                 bias_first: bool) -> np.ndarray:
    # Step 1: the dot products of a's rows and b's columns as blocked float32
    # FMA chains in k order (b's columns as rows: [..., N, K]).
    sums = blocked_fma_dot(a, np.swapaxes(b, -1, -2), k_block)
    if bias is None:
        return sums
    if not bias_first:
        # Step 2a: one float32 addition of the bias to each finished sum.
        return sums + bias
    # Step 2b (bias_first): the bias is the starting value, and every block
    # sum is added to it in order: recompute the chain of additions.
    k = a.shape[-1]
    block = k if k_block == 0 else k_block
    total = np.broadcast_to(bias, sums.shape).astype(np.float32)
    b_rows = np.swapaxes(b, -1, -2)
    for start in range(0, k, max(block, 1)):
        total = total + blocked_fma_dot(a[..., start:start + block], b_rows[..., start:start + block], 0)
    return total


@register
class FloatMatMul(Op):
    name = "float_matmul"
    inputs = (Slot("a", doc="float32 [..., M, K]"),
              Slot("b", doc="float32 [K, N] or [..., K, N]"),
              Slot("bias", optional=True, doc="float32 [N]"))
    outputs = (Slot("y", doc="float32 [..., M, N]"),)
    attrs = (Attr("k_block", "int", 0, K_BLOCK_DOC),
             Attr("bias_first", "bool", False, "the bias is the starting value of the sum (else added after it)"))

    def infer(self, ctx):
        a, b = ctx.input(0), ctx.input(1)
        ctx.require_dtype(a, FLOAT, "input a")
        ctx.require_dtype(b, FLOAT, "input b")
        if len(a.shape) < 2 or len(b.shape) < 2:
            raise ctx.error(f"inputs must have rank >= 2, got a {list(a.shape)} and b {list(b.shape)}")
        (m, k), (kb, n) = a.shape[-2:], b.shape[-2:]
        if k != kb:
            raise ctx.error(f"inner dimensions differ: a {a.name!r} has K = {k} ({list(a.shape)}), "
                            f"b {b.name!r} has K = {kb} ({list(b.shape)})")
        try:
            batch = np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
        except ValueError:
            raise ctx.error(f"batch dimensions of a {list(a.shape)} and b {list(b.shape)} "
                            "do not broadcast") from None
        check_k_block(ctx)
        # the node work limit: B*M*N*K float32 FMAs; the dot products loop over the K terms and K blocks
        macs = math.prod(batch) * m * n * k
        ctx.check_work(_graph.FLOAT_MAC_WORK * macs + _graph.LOOP_WORK * 2 * k,
                       f"the {macs} multiply-adds (B*M*N*K)")
        bias = ctx.inputs[2] if len(ctx.inputs) > 2 else None
        if bias is not None:
            ctx.require_dtype(bias, FLOAT, "bias")
            if tuple(bias.shape) != (n,):
                raise ctx.error(f"bias {bias.name!r} must have shape [{n}] (N), got {list(bias.shape)}")
        return [("float32", (*batch, m, n))]

    def prepare(self, ctx):
        for t, role in zip([*ctx.inputs, ctx.outputs[0]], ("input a", "input b", "bias", "output")):
            require_unquantized(ctx, t, role)

    def run(self, ctx, args):
        bias = args[2] if len(args) > 2 else None
        with np.errstate(over="ignore", invalid="ignore"):      # +-inf and NaN are IEEE results
            return [float_matmul(args[0], args[1], bias, ctx.attrs["k_block"], ctx.attrs["bias_first"])]
