"""Helpers shared by the float32 operators (float_conv2d, float_matmul,
float_elementwise, float_softmax): the blocked fused-multiply-add dot
product, and the checks every float operator makes."""
from __future__ import annotations

import numpy as np

from ..arith import fma_float32

#: the float dtypes of the float operators' inputs and outputs
FLOAT = ("float32",)

K_BLOCK_DOC = ("terms per partial sum of each dot product (0: one partial sum of all terms); "
               "see the Precision section of the operator's spec page")


def blocked_fma_dot(a: np.ndarray, b: np.ndarray, k_block: int) -> np.ndarray:
    # a: float32 [..., P, K], b: float32 [..., Q, K] (the same K terms, in the
    # order they are summed); the result is float32 [..., P, Q] with
    # result[..., p, q] = sum over t of a[..., p, t] * b[..., q, t], computed as:
    # Step 1: cut the K terms into consecutive blocks of k_block terms (the
    # last one shorter; k_block = 0: one block of all K terms).
    # Step 2: per block, start from +0.0 and add the terms one by one, in
    # order, each with one float32 fused multiply-add: s = fl32(a * b + s).
    # Step 3: add the block sums in order, one float32 addition each:
    # total = fl32(total + s). (No terms: +0.0.)
    k = a.shape[-1]
    block = k if k_block == 0 else k_block
    total = np.zeros((*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-2]), np.float32)
    for start in range(0, k, max(block, 1)):
        s = np.zeros_like(total)
        for t in range(start, min(k, start + block)):
            s = fma_float32(a[..., :, t, None], b[..., None, :, t], s)
        total = s if start == 0 else total + s
    return total


def check_k_block(ctx) -> int:
    """The ``k_block`` attribute, >= 0."""
    k_block = ctx.attrs["k_block"]
    if k_block < 0:
        raise ctx.error(f"attribute k_block must be >= 0, got {k_block}")
    return k_block


def require_unquantized(ctx, t, role: str) -> None:
    """Float tensors carry no quantization."""
    if t is not None and t.quant is not None:
        raise ctx.error(f"{role} {t.name!r} is a float tensor and cannot be quantized")
