"""Exact oracles for the float32 operators' tests: IEEE binary32 operations
emulated with Fractions (every result the exact rational, rounded once to the
nearest float32, ties to even), and the dot products, convolutions and
functions built from them in the order the spec pages state."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

F32_MAX = Fraction(float(np.finfo(np.float32).max))


def round_f32(v: Fraction) -> np.float32:
    """The rational ``v`` rounded to the nearest float32, ties to even
    (overflow: +-inf). Candidates are the float32 nearest to float(v) and its
    two neighbours; the nearest by exact distance wins."""
    if abs(v) >= F32_MAX + (F32_MAX - Fraction(float(np.nextafter(np.float32(F32_MAX), np.float32(0))))) / 2:
        return np.float32(np.inf if v > 0 else -np.inf)
    with np.errstate(over="ignore"):
        c = np.float32(float(v))
    cands = {c, np.nextafter(c, np.float32(np.inf)), np.nextafter(c, np.float32(-np.inf))}
    cands = [x for x in cands if np.isfinite(x)]
    best = min(abs(Fraction(float(x)) - v) for x in cands)
    near = [x for x in cands if abs(Fraction(float(x)) - v) == best]
    if len(near) == 1:
        return np.float32(near[0])
    even = [x for x in near if int(np.array(x, np.float32).view(np.int32)) % 2 == 0]
    return np.float32(even[0])


def fr(x) -> Fraction:
    return Fraction(float(x))


def fma(a, b, c) -> np.float32:
    """float32 fused multiply-add: one rounding of the exact a * b + c. An
    exact zero is -0.0 only when the product is a negative zero and c = -0.0."""
    product = fr(a) * fr(b)
    v = product + fr(c)
    if v == 0:
        negative_product = np.signbit(np.float32(a)) != np.signbit(np.float32(b))
        both_negative_zeros = product == 0 and negative_product and np.signbit(np.float32(c))
        return np.float32(-0.0) if both_negative_zeros else np.float32(0.0)
    return round_f32(v)


def add(a, b) -> np.float32:
    r = round_f32(fr(a) + fr(b))
    if r == 0 and np.signbit(np.float32(a)) and np.signbit(np.float32(b)):
        return np.float32(-0.0)
    return r


def blocked_dot(xs, ws, k_block: int) -> np.float32:
    """The float32 dot product of the spec: FMA chains over blocks of
    ``k_block`` terms from +0.0, block sums added in order."""
    k = len(xs)
    block = k if k_block == 0 else k_block
    total = None
    for start in range(0, k, max(block, 1)):
        s = np.float32(0.0)
        for t in range(start, min(k, start + block)):
            s = fma(xs[t], ws[t], s)
        total = s if total is None else add(total, s)
    return np.float32(0.0) if total is None else total
