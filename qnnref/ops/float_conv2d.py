"""float_conv2d: 2-D convolution in float32, NHWC activations, OHWI weights.

``y[n, oh, ow, co] = sum_{c, kh, kw} x_pad[n, oh*sh + kh*dh, ow*sw + kw*dw, g*Cg + c]
* w[co, kh, kw, c] + bias[co]`` with ``g = co // (C_out / groups)`` and
``Cg = C_in / groups``, ``x_pad`` being ``x`` padded with +0.0.

Every rounding is specified: each dot product is a chain of float32 fused
multiply-adds over the terms in (c, kh, kw) order -- input channel slowest,
kernel column fastest, the order of ONNX's OIHW weights -- cut into blocks of
``k_block`` terms whose sums are added in float32, then one float32 addition
of the bias (:func:`qnnref.ops._float.blocked_fma_dot`). This is how ONNX
Runtime's CPU provider computes a float Conv whose weights are not constant
(im2col + MLAS SGEMM), with ``k_block`` from MLAS's blocking rule (the ONNX
importer sets it; spec/ops/float_conv2d.md). With ``channel_block = B`` the
terms are summed per block of B input channels instead, each block's terms in
(kh, kw, c) order: MLAS's NCHWc convolution of constant weights (B is the
NCHWc block of the MLAS kernel family: 8 for AVX2/FMA3, 16 for AVX-512F).
"""
from __future__ import annotations

import numpy as np

from ._float import FLOAT, K_BLOCK_DOC, blocked_fma_dot, check_k_block, require_unquantized
from .conv2d import check_geometry, im2col, output_size
from .registry import Attr, Op, Slot, register


def float_conv2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, strides, dilations, pads,
                 groups: int, k_block: int, channel_block: int = 0) -> np.ndarray:
    n, h, wd, c_in = x.shape
    c_out, kh, kw, cg = w.shape
    top, left, bottom, right = pads
    oh = output_size(h, kh, strides[0], dilations[0], top, bottom)
    ow = output_size(wd, kw, strides[1], dilations[1], left, right)
    # Step 1: pad x with +0.0 (a padded tap is the term 0.0 * w).
    x_pad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    # Step 2: split the channels into groups: [groups, N, H + top + bottom, W + left + right, Cg].
    x_g = np.ascontiguousarray(x_pad.reshape(n, *x_pad.shape[1:3], groups, cg).transpose(3, 0, 1, 2, 4))
    patches = im2col(x_g, kh, kw, oh, ow, strides, dilations)          # [g, N, OH, OW, KH, KW, Cg]
    w_g = w.reshape(groups, c_out // groups, kh, kw, cg)               # [g, C_out/groups, KH, KW, Cg]
    if channel_block == 0:
        # Step 3: order each receptive field's terms as (c, kh, kw):
        # [groups, N*OH*OW, Cg*KH*KW], and the weights the same way:
        # [groups, C_out/groups, Cg*KH*KW].
        terms = patches.transpose(0, 1, 2, 3, 6, 4, 5).reshape(groups, n * oh * ow, cg * kh * kw)
        w_terms = w_g.transpose(0, 1, 4, 2, 3).reshape(groups, c_out // groups, cg * kh * kw)
        block = k_block
    else:
        # Step 3 (channel blocks): cut the channels into blocks of
        # channel_block (the last one padded with +0.0 channels, whose terms
        # are 0.0 * 0.0), order the terms as (channel block, kh, kw, c), and
        # make each channel block one block of the sum.
        nb = -(-cg // channel_block)
        extra = nb * channel_block - cg
        patches = np.pad(patches, [(0, 0)] * 6 + [(0, extra)])
        w_g = np.pad(w_g, [(0, 0)] * 4 + [(0, extra)])
        terms = patches.reshape(groups, n, oh, ow, kh, kw, nb, channel_block).transpose(0, 1, 2, 3, 6, 4, 5, 7)
        terms = terms.reshape(groups, n * oh * ow, nb * kh * kw * channel_block)
        w_terms = w_g.reshape(groups, c_out // groups, kh, kw, nb, channel_block).transpose(0, 1, 4, 2, 3, 5)
        w_terms = w_terms.reshape(groups, c_out // groups, nb * kh * kw * channel_block)
        block = kh * kw * channel_block
    # Step 4: every dot product as blocked float32 FMA chains:
    # [groups, N*OH*OW, C_out/groups]; output channel co = g * (C_out/groups) + j.
    acc = blocked_fma_dot(terms, w_terms, block)
    y = acc.transpose(1, 0, 2).reshape(n, oh, ow, c_out)
    # Step 5: add the bias, one float32 addition per output.
    if bias is not None:
        y = y + bias
    return y


@register
class FloatConv2D(Op):
    name = "float_conv2d"
    inputs = (Slot("x", doc="float32 activations [N, H, W, C_in] (NHWC)"),
              Slot("w", doc="float32 weights [C_out, KH, KW, C_in/groups] (OHWI)"),
              Slot("bias", optional=True, doc="float32 [C_out], added after the sum"))
    outputs = (Slot("y", doc="float32 [N, OH, OW, C_out]"),)
    attrs = (Attr("strides", "ints", [1, 1], "[sh, sw], each >= 1"),
             Attr("dilations", "ints", [1, 1], "[dh, dw], each >= 1"),
             Attr("pads", "ints", [0, 0, 0, 0], "[top, left, bottom, right], each >= 0"),
             Attr("groups", "int", 1, "number of groups; C_in and C_out are multiples of it"),
             Attr("k_block", "int", 0, K_BLOCK_DOC),
             Attr("channel_block", "int", 0, "0: terms in (c, kh, kw) order; B > 0: in channel blocks of B "
                  "(each one partial sum, its terms in (kh, kw, c) order; k_block must be 0)"))

    def infer(self, ctx):
        x, w = ctx.input(0), ctx.input(1)
        ctx.require_dtype(x, FLOAT, "input x")
        ctx.require_dtype(w, FLOAT, "weight w")
        check_k_block(ctx)
        channel_block = ctx.attrs["channel_block"]
        if channel_block < 0 or (channel_block > 0 and ctx.attrs["k_block"] != 0):
            raise ctx.error(f"attribute channel_block must be >= 0, and k_block 0 when it is not 0; got "
                            f"channel_block {channel_block}, k_block {ctx.attrs['k_block']}")
        n, oh, ow, c_out = check_geometry(ctx, x, w, float_macs=True)
        bias = ctx.inputs[2] if len(ctx.inputs) > 2 else None
        if bias is not None:
            ctx.require_dtype(bias, FLOAT, "bias")
            if tuple(bias.shape) != (c_out,):
                raise ctx.error(f"bias {bias.name!r} must have shape [{c_out}] (C_out), got {list(bias.shape)}")
        return [("float32", (n, oh, ow, c_out))]

    def prepare(self, ctx):
        for t, role in zip([*ctx.inputs, ctx.outputs[0]], ("input x", "weight w", "bias", "output")):
            require_unquantized(ctx, t, role)
        a = ctx.attrs
        ctx.prepared["geometry"] = (list(a["strides"]), list(a["dilations"]), list(a["pads"]), a["groups"],
                                    a["k_block"], a["channel_block"])

    def run(self, ctx, args):
        bias = args[2] if len(args) > 2 else None
        with np.errstate(over="ignore", invalid="ignore"):      # +-inf and NaN are IEEE results
            return [float_conv2d(args[0], args[1], bias, *ctx.prepared["geometry"])]
