"""add: elementwise sum of two quantized tensors, numpy broadcasting.

``real_y = s_a * (a - zp_a) + s_b * (b - zp_b)``, then
``y = saturate(round(real_y / s_y) + zp_y)``, clamped to the optional fused
activation range.

Fixed-point recipes use the TFLite / gemmlowp scheme: both inputs are
shifted left by ``left_shift`` bits (20 for 8-bit inputs, 15 for int16),
each is brought to the common scale ``twice_max / 2^left_shift`` (with
``twice_max = 2 * max(s_a, s_b)``) by the multiplier ``s_i / twice_max``,
the two integers are summed exactly, and the sum is requantized by
``twice_max / (2^left_shift * s_y)``. Every rounding is the recipe's.

Float recipes with ``add_form = "real_sum"`` compute
``(s_a * (a - zp_a) + s_b * (b - zp_b)) / s_y`` in the recipe's float width,
in that order (the formula of com.microsoft.QLinearAdd's documentation), then
round by the recipe's rounding. ``add_form = "ratio_fma"`` is what ONNX
Runtime's x86 kernel computes: two float32 fused multiply-adds of the codes
with the ratios ``s_a / s_y`` and ``s_b / s_y`` onto a constant that holds
the zero points (spec/ops/add.md, spec/profiles/ort-cpu-x86.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..arith import (
    RequantParams,
    apply_requant,
    combine_scales,
    fma_float32,
    prepare_requant,
    requantize_output,
    round_float,
)
from ..errors import ValidationError
from ._common import ACT_ATTRS_DOC, act_range, scale, zero_point
from .registry import Attr, Op, Slot, register

DTYPES = ("int8", "uint8", "int16")

#: Bits by which the fixed-point scheme shifts the inputs left: the most
#: that keeps (x - zp) * 2^left_shift, the rescaled inputs and their sum in
#: int32 (see spec/ops/add.md, "Precision").
LEFT_SHIFT = {"int8": 20, "uint8": 20, "int16": 15}


@dataclass(frozen=True)
class AddParams:
    """The fixed-point scheme's parameters, prepared once at load time."""

    left_shift: int
    a: RequantParams          # s_a / twice_max, at most 1/2
    b: RequantParams          # s_b / twice_max, at most 1/2
    out: RequantParams        # twice_max / (2^left_shift * s_y)


def add_fixed_point(a: np.ndarray, a_zero_point, b: np.ndarray, b_zero_point,
                    params: AddParams, y_zero_point, y_dtype: str,
                    act_min=None, act_max=None) -> np.ndarray:
    # Step 1: remove the zero points and shift left, exactly:
    # |x - zp| < 2^16 and |x - zp| * 2^left_shift < 2^31 for every input dtype.
    a_shifted = (a.astype(np.int64) - a_zero_point) << params.left_shift
    b_shifted = (b.astype(np.int64) - b_zero_point) << params.left_shift
    # Step 2: bring each input to the common scale twice_max / 2^left_shift:
    # multiply by s_i / twice_max (<= 1/2) and round, as the recipe says.
    a_scaled = apply_requant(a_shifted, params.a)
    b_scaled = apply_requant(b_shifted, params.b)
    # Step 3: the exact sum, with numpy broadcasting; |sum| < 2^31.
    acc = a_scaled + b_scaled
    # Step 4: scale by twice_max / (2^left_shift * s_y) and round as the recipe
    # says, add zp_y, clamp to the fused activation range and the output dtype.
    return requantize_output(acc, params.out, y_zero_point, y_dtype, act_min, act_max)


def add_float(a: np.ndarray, a_zero_point, a_scale, b: np.ndarray, b_zero_point, b_scale,
              y_scale, y_zero_point, y_dtype: str, float_dtype: str, rounding: str,
              act_min=None, act_max=None) -> np.ndarray:
    ft = np.float32 if float_dtype == "float32" else np.float64
    # Step 1: each input's real value: the exact difference x - zp (|x - zp| < 2^17,
    # exact in float32) times the float32 scale, one IEEE rounding in float_dtype.
    a_real = (a.astype(np.int64) - a_zero_point).astype(ft) * ft(a_scale)
    b_real = (b.astype(np.int64) - b_zero_point).astype(ft) * ft(b_scale)
    # Step 2: their sum (with numpy broadcasting), then divided by s_y: two more
    # IEEE roundings in float_dtype, in this order. Overflow gives +-inf.
    v = (a_real + b_real) / ft(y_scale)
    # Step 3: round to an integer by the recipe's rounding, add zp_y, clamp to
    # the fused activation range and the output dtype (+-inf saturate).
    v = np.clip(round_float(v, rounding), -(2.0**40), 2.0**40).astype(np.int64) + y_zero_point
    dt = dtypes.get(y_dtype)
    lo = dt.min if act_min is None else max(dt.min, act_min)
    hi = dt.max if act_max is None else min(dt.max, act_max)
    return np.clip(v, lo, hi).astype(dt.numpy)


def add_ratio_fma(a: np.ndarray, a_zero_point, a_scale, b: np.ndarray, b_zero_point, b_scale,
                  y_scale, y_zero_point, y_dtype: str, rounding: str,
                  act_min=None, act_max=None) -> np.ndarray:
    f32 = np.float32
    # Step 1 (once per node): the ratios r_a = s_a / s_y and r_b = s_b / s_y, and
    # the constant part zp_y - (r_a * zp_a + r_b * zp_b) with a fused
    # multiply-add, every operation rounded to float32.
    r_a = f32(f32(a_scale) / f32(y_scale))
    r_b = f32(f32(b_scale) / f32(y_scale))
    fixed = f32(f32(y_zero_point) - fma_float32(r_a, f32(a_zero_point), f32(r_b * f32(b_zero_point))))
    # Step 2: y = fma(a, r_a, fma(b, r_b, fixed)) on the codes themselves (exact
    # in float32), each fused multiply-add rounded once, with numpy broadcasting.
    v = fma_float32(a.astype(f32), r_a, fma_float32(b.astype(f32), r_b, fixed))
    # Step 3: round to an integer by the recipe's rounding (the zero point is
    # already in v), clamp to the fused activation range and the output dtype.
    v = np.clip(round_float(v, rounding), -(2.0**40), 2.0**40).astype(np.int64)
    dt = dtypes.get(y_dtype)
    lo = dt.min if act_min is None else max(dt.min, act_min)
    hi = dt.max if act_max is None else min(dt.max, act_max)
    return np.clip(v, lo, hi).astype(dt.numpy)


def max_abs_centered(dtype_name: str, zp: int) -> int:
    """The largest |x - zp| over every value x of ``dtype_name``."""
    dt = dtypes.get(dtype_name)
    return max(zp - dt.min, dt.max - zp)


class BinaryOp(Op):
    """What add and mul share: two quantized inputs of one dtype that
    broadcast, a per-tensor quantized output, a fused activation range."""

    inputs = (Slot("a", doc="quantized tensor"), Slot("b", doc="quantized tensor"))
    outputs = (Slot("y", doc="quantized tensor, the broadcast shape of a and b"),)
    attrs = (Attr("act_min", "int", None, ACT_ATTRS_DOC),
             Attr("act_max", "int", None, ACT_ATTRS_DOC))

    def infer(self, ctx):
        return infer_binary(ctx)

    def prepare_common(self, ctx):
        """Check the three quantizations; store the activation range and the
        zero points (int64) in ctx.prepared; return (qa, qb, qy)."""
        qa = ctx.require_quant(ctx.inputs[0], "input a")
        qb = ctx.require_quant(ctx.inputs[1], "input b")
        qy = ctx.out_quant(0)
        p = ctx.prepared
        p["act"] = act_range(ctx)
        p["a_zp"], p["b_zp"], p["y_zp"] = (zero_point(q).astype(np.int64) for q in (qa, qb, qy))
        return qa, qb, qy


@register
class Add(BinaryOp):
    name = "add"

    def prepare(self, ctx):
        a, b = ctx.inputs[0], ctx.inputs[1]
        qa, qb, qy = self.prepare_common(ctx)
        recipe = ctx.recipe
        s_a, s_b, s_y = scale(qa), scale(qb), scale(qy)
        p = ctx.prepared
        if recipe.kind == "float" and recipe.add_form == "ratio_fma":
            # The ratios and the constant part must be finite (no inf - inf later).
            with np.errstate(over="ignore", invalid="ignore"):
                r_a, r_b = np.float32(s_a) / np.float32(s_y), np.float32(s_b) / np.float32(s_y)
                big = (abs(r_a) * np.float32(max_abs_centered(a.dtype, 0))
                       + abs(r_b) * np.float32(max_abs_centered(b.dtype, 0))
                       + abs(r_a * np.float32(p["a_zp"])) + abs(r_b * np.float32(p["b_zp"])))
            if not np.isfinite(big):
                raise ctx.error(f"scales s_a={float(s_a):g}, s_b={float(s_b):g}, s_y={float(s_y):g}: "
                                "the ratios s / s_y overflow float32 (add_form 'ratio_fma')")
            p["scales"] = (s_a, s_b, s_y)
            return
        if recipe.kind == "float":
            # (x - zp) * s_x must be finite, or inf - inf could make a NaN.
            ft = np.float32 if recipe.float_dtype == "float32" else np.float64
            for t, s, zp in ((a, s_a, p["a_zp"]), (b, s_b, p["b_zp"])):
                with np.errstate(over="ignore"):
                    big = ft(max_abs_centered(t.dtype, int(zp))) * ft(s)
                if not np.isfinite(big):
                    raise ctx.error(f"scale of {t.name!r} is too large: (x - zp) * s overflows "
                                    f"{recipe.float_dtype}")
            p["scales"] = (s_a, s_b, s_y)
            return
        left_shift = LEFT_SHIFT[a.dtype]
        # twice_max is exact in float32 (a doubling) unless it overflows, in
        # which case a multiplier below is 0 and refused.
        with np.errstate(over="ignore"):
            twice_max = np.float32(2) * np.maximum(s_a, s_b)
            out_denom = np.float32(2.0**left_shift) * s_y      # exact unless it overflows
        try:
            pa = prepare_requant(combine_scales([s_a], twice_max, recipe.scale_dtype), recipe)
            pb = prepare_requant(combine_scales([s_b], twice_max, recipe.scale_dtype), recipe)
            po = prepare_requant(combine_scales([twice_max], out_denom, recipe.scale_dtype), recipe)
        except ValidationError as e:
            raise ctx.error(f"scales s_a={float(s_a):g}, s_b={float(s_b):g}, s_y={float(s_y):g}: {e}") from None
        p["params"] = AddParams(left_shift, pa, pb, po)

    def run(self, ctx, args):
        p = ctx.prepared
        a, b = args
        act_min, act_max = p["act"]
        y_dtype = ctx.outputs[0].dtype
        if ctx.recipe.kind == "float" and ctx.recipe.add_form == "ratio_fma":
            s_a, s_b, s_y = p["scales"]
            return [add_ratio_fma(a, p["a_zp"], s_a, b, p["b_zp"], s_b, s_y, p["y_zp"], y_dtype,
                                  ctx.recipe.rounding, act_min, act_max)]
        if ctx.recipe.kind == "float":
            s_a, s_b, s_y = p["scales"]
            r = ctx.recipe
            with np.errstate(over="ignore"):          # overflow to +-inf saturates
                return [add_float(a, p["a_zp"], s_a, b, p["b_zp"], s_b, s_y, p["y_zp"], y_dtype,
                                  r.float_dtype, r.rounding, act_min, act_max)]
        return [add_fixed_point(a, p["a_zp"], b, p["b_zp"], p["params"], p["y_zp"], y_dtype,
                                act_min, act_max)]


def infer_binary(ctx):
    """Shared by add and mul: a and b of one dtype among DTYPES, numpy
    broadcasting; the output has their dtype and the broadcast shape."""
    a, b = ctx.input(0), ctx.input(1)
    ctx.require_dtype(a, DTYPES, "input a")
    if b.dtype != a.dtype:
        raise ctx.error(f"inputs a {a.name!r} ({a.dtype}) and b {b.name!r} ({b.dtype}) "
                        "must have the same dtype")
    try:
        shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError:
        raise ctx.error(f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from None
    return [(a.dtype, tuple(shape))]
