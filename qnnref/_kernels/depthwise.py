"""Depthwise conv2d: the glue of the kernel in include/qnnref/depthwise.h.

Not a registered Kernel: the conv2d Kernel (qnnref/_kernels/conv2d.py) calls
:func:`prepare` for every conv2d node and, when the node is depthwise, uses
:func:`run` to compute it.

The kernel computes, for every output pixel and channel c,
``acc = bias[c] + sum_t (x_t[c] - zp_x) * (w[c, t] - zp_w[c])`` over the
KH*KW taps t inside the input (padded taps contribute 0), exactly in int32,
then requantizes the row of accumulators. Prepacked at load time:

* ``taps``: ``w - zp_w`` as int16 ``[KH*KW, C]``, channels innermost (both ISAs);
* ``pairs``: the same taps for AVX2, interleaved two taps at a time (see
  :func:`pack_pairs`), and ``bias_zx`` = ``bias - zp_x * sum_t taps[t]``.

A channel multiplier M = C_out / C_in > 1 is handled by repeating each input
channel M times (``np.repeat``) before the call, so that output channel co
reads channel co of the repeated input, as it reads channel co // M of x.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from . import ISA_CODES, NeedsReference, Unsupported, _ext
from ._common import DTYPE_CODES, pack_requant

INT32_MAX = 2**31 - 1
#: channels per packed AVX2 block (two 256-bit registers of interleaved int16 pairs)
PAIR_BLOCK = 16


class DepthwiseState:
    """What prepare computed once for a depthwise node."""

    __slots__ = ("multiplier", "channels", "kernel", "x_zp", "x_dtype", "y_dtype", "taps", "pairs",
                 "tap_bound", "bias", "bias_zx", "pack", "geometry")


def pack_pairs(taps: np.ndarray) -> np.ndarray:
    """The AVX2 layout of ``taps`` [T, C] (int16): taps padded with zeros to
    an even count 2P and channels to a multiple of 16, then for each block of
    16 channels and each pair of taps (2p, 2p+1), the 32 values
    ``[w[2p, c], w[2p+1, c] for c in the block]``: ``[C/16, P, 16, 2]``.
    One 256-bit load holds channels 0-7 of a pair, the next one channels 8-15;
    _mm256_madd_epi16 against the two taps' inputs, interleaved the same way,
    gives both taps' products summed per channel."""
    t, c = taps.shape
    p = (t + 1) // 2
    blocks = -(-c // PAIR_BLOCK)
    padded = np.zeros((2 * p, blocks * PAIR_BLOCK), np.int16)
    padded[:t, :c] = taps
    packed = padded.reshape(p, 2, blocks, PAIR_BLOCK).transpose(2, 0, 3, 1)
    return np.ascontiguousarray(packed).reshape(-1)


def prepare(ctx, isa: str) -> DepthwiseState:
    """Validate and prepack a conv2d node for the depthwise kernel; raise
    Unsupported when it is not depthwise or not covered."""
    if _ext is None:
        raise Unsupported("the kernels are not built")
    p = ctx.prepared
    strides, dilations, pads, groups = p["geometry"]
    x_info, w_info = ctx.inputs[0], ctx.inputs[1]
    c_in = x_info.shape[3]
    c_out, kh, kw, cg = w_info.shape
    if groups != c_in or cg != 1:
        raise Unsupported(f"not depthwise (groups = {groups}, C_in = {c_in})")
    if w_info.data is None:
        raise Unsupported("depthwise weights that are not a constant")
    if x_info.dtype not in ("int8", "uint8"):
        raise Unsupported(f"input dtype {x_info.dtype}")
    if p["y_dtype"] not in ("int8", "uint8", "int16"):
        raise Unsupported(f"output dtype {p['y_dtype']}")
    s = DepthwiseState()
    s.multiplier = c_out // c_in
    s.channels = c_out
    s.kernel = (kh, kw)
    s.x_dtype = x_info.dtype
    s.y_dtype = p["y_dtype"]
    s.x_zp = int(np.asarray(p["x_zp"]).reshape(-1)[0])
    # Step 1: w - zp_w as [KH*KW, C_out], channels innermost. |w - zp_w| <= 255 for
    # 8-bit weights and zero points: exact in int16.
    zw = np.broadcast_to(np.asarray(p["w_zp"], np.int64).reshape(-1), (c_out,))
    w_c = w_info.data.astype(np.int64).reshape(c_out, kh * kw) - zw[:, None]
    if np.abs(w_c).max() > 255:
        raise Unsupported("weights minus zero point beyond [-255, 255]")
    s.taps = np.ascontiguousarray(w_c.T.astype(np.int16))
    s.pairs = pack_pairs(s.taps)
    # Step 2: the accumulator bound. Per channel, |sum_t (x - zp_x) * taps[t]|
    # <= max|x - zp_x| * sum_t |taps[t]| = tap_bound; with |bias| <= INT32_MAX
    # - tap_bound, every partial sum, in any order, fits int32, and so does
    # bias_zx (|zp_x| <= max|x - zp_x| for a zero point in x's range).
    dt = dtypes.get(s.x_dtype)
    max_dx = max(abs(s.x_zp - dt.min), abs(dt.max - s.x_zp))
    s.tap_bound = max_dx * np.abs(w_c).sum(axis=1)
    if s.tap_bound.max() > INT32_MAX:
        raise Unsupported("the accumulator may overflow int32 for some input")
    bias_info = ctx.inputs[2] if len(ctx.inputs) > 2 else None
    if bias_info is None:
        s.bias, s.bias_zx = _bias_arrays(s, np.zeros(c_out, np.int64))
    elif bias_info.data is not None:
        s.bias, s.bias_zx = _bias_arrays(s, bias_info.data)
        if s.bias is None:
            raise Unsupported("bias + the products may overflow int32 for some input")
    else:
        s.bias = s.bias_zx = None      # a bias input: checked at each run
    # Step 3: the requantization, per output channel or per tensor.
    act_min, act_max = p["act"]
    s.pack = pack_requant(p["params"], p["y_zp"], s.y_dtype, act_min, act_max)
    n, h, w = x_info.shape[:3]
    s.geometry = (h, w, c_out, kh, kw, *strides, *dilations, pads[0], pads[1])
    return s


def _bias_arrays(s: DepthwiseState, bias: np.ndarray):
    """(bias, bias_zx) as int32 arrays, or (None, None) when the bound of
    prepare does not hold with this bias (the int32 accumulator might overflow)."""
    b = np.asarray(bias, np.int64).reshape(-1)
    if np.any(np.abs(b) + s.tap_bound > INT32_MAX):
        return None, None
    bias_zx = b - s.x_zp * s.taps.astype(np.int64).sum(axis=0)   # |bias_zx| <= INT32_MAX (see prepare)
    return np.ascontiguousarray(b, np.int32), np.ascontiguousarray(bias_zx, np.int32)


def run(ctx, state: DepthwiseState, args, isa: str, threads: int) -> list[np.ndarray]:
    """The conv2d output y (NHWC, dtype y_dtype), computed by the kernel."""
    s = state
    x = args[0]
    n = x.shape[0]
    h, w, c, kh, kw, sh, sw, dh, dw, top, left = s.geometry
    oh, ow = ctx.outputs[0].shape[1:3]
    y = np.empty((n, oh, ow, c), dtypes.get(s.y_dtype).numpy)
    if y.size == 0:
        return [y]
    bias, bias_zx = s.bias, s.bias_zx
    if bias is None:
        # a bias input: the accumulator bound must hold for its values
        bias, bias_zx = _bias_arrays(s, args[2])
        if bias is None:
            raise NeedsReference()
    if s.multiplier > 1:
        x = np.repeat(x, s.multiplier, axis=3)       # channel co of the result is channel co // M of x
    x = np.ascontiguousarray(x)
    geometry = (n, h, w, c, kh, kw, sh, sw, dh, dw, top, left, oh, ow, DTYPE_CODES[s.x_dtype], s.x_zp,
                DTYPE_CODES[s.y_dtype])
    status = _ext.depthwise_conv2d_run(ISA_CODES[isa], geometry, s.taps.reshape(-1), bias, s.pairs, bias_zx,
                                       s.pack, threads, x, y)
    if status != 0:
        raise NeedsReference()
    return [y]
