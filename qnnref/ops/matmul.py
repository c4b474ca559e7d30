"""matmul: quantized matrix product (also fully-connected).

``y = saturate(round((s_a * s_b / s_y) * acc) + zp_y)`` with the exact
integer accumulator ``acc[..., m, n] = sum_k (a[..., m, k] - zp_a) *
(b[..., k, n] - zp_b[n]) + bias[n]``. ``b`` is a 2-D weight [K, N] or a
batch [..., K, N] that broadcasts against ``a`` like ``np.matmul``; it is
quantized per tensor or per output column (axis -1). The accumulator must
fit int32 (spec/arithmetic.md, "Accumulators"); the rounding is the model's
requantization recipe. With output dtype int32 the output *is* the
accumulator: no requantization (ONNX's MatMulInteger; the output is
unquantized, or quantized at ``s_a * s_b`` with zero point 0).

The products are computed with float64 BLAS, which is exact here (see
:func:`exact_matmul`); the helpers :func:`centered` and :func:`exact_matmul`
are shared with conv2d.

A profile may ask for *pairwise int16 saturation* (x86 ``VPMADDUBSW``, ONNX
Runtime on CPUs without VNNI): for uint8 ``a`` and int8 ``b`` the raw codes
are multiplied, summed in pairs along K and each pair saturated to int16
before the zero points are corrected (:func:`pairwise_int16_accumulator`;
spec/arithmetic.md, "Pairwise int16 saturation").

In int32-output mode only, the zero point of ``a`` may instead be a run-time
input (``a_zero_point``, a scalar of a's dtype): ONNX Runtime's dynamic
quantization computes it per inference (DynamicQuantizeLinear ->
MatMulInteger). ``a`` is then unquantized and no scale is involved: the
accumulator is the same exact sum with that zero point.
"""
from __future__ import annotations

import math

import numpy as np

from .. import graph as _graph
from ..arith import (INT32_MAX, INT32_MIN, RequantParams, check_accumulator, combine_scales,
                     exact_dot_bound_ok, pairwise_int16_matmul, prepare_requant, requantize_output)
from ..errors import ValidationError
from ._common import ACT_ATTRS_DOC, act_range, scale, zero_point
from .registry import Attr, Op, Slot, register

A_DTYPES = ("int8", "uint8")
B_DTYPES = ("int8", "int4", "uint8")
OUT_DTYPES = ("int8", "uint8", "int16", "int32")


def centered(q: np.ndarray, zero_point) -> np.ndarray:
    """``q - zero_point`` as a float64 array (``zero_point`` broadcasts against ``q``).

    Exact: both are integers of at most 16 bits, so the difference is an
    integer below 2^17 in magnitude, and float64 holds every integer up to 2^53.
    """
    return np.asarray(q, dtype=np.float64) - np.asarray(zero_point, dtype=np.float64)


def max_abs(x: np.ndarray) -> int:
    """The largest magnitude in an integer-valued array (0 when empty)."""
    return int(max(x.max(initial=0), -x.min(initial=0)))


def exact_matmul(a_c: np.ndarray, b_c: np.ndarray) -> np.ndarray:
    """The exact integer product ``a_c @ b_c`` (np.matmul broadcasting) as int64.

    ``a_c`` and ``b_c`` are float64 arrays holding integers (see :func:`centered`).
    """
    k = a_c.shape[-1]
    max_a, max_b = max_abs(a_c), max_abs(b_c)
    if exact_dot_bound_ok(k, max_a, max_b):
        # Every product and every partial sum, in whatever order BLAS adds
        # them, is an integer of magnitude <= k * max_a * max_b < 2^53, and
        # float64 represents those exactly: BLAS rounds nothing.
        return np.matmul(a_c, b_c).astype(np.int64)
    # Otherwise multiply in int64 (no BLAS; slow, never reached for real
    # models). Exact while k * max_a * max_b < 2^63: with 8-bit operands,
    # max_a, max_b <= 255, so for every k below 2^47.
    return np.matmul(a_c.astype(np.int64), b_c.astype(np.int64))


def pairwise_int16_accumulator(a: np.ndarray, a_zero_point, b: np.ndarray, b_zero_point) -> np.ndarray:
    """``sum_k (a - zp_a) * (b - zp_b)`` as x86 ``VPMADDUBSW`` computes it (int64).

    The kernel multiplies the raw codes (u8 ``a``, s8 ``b``), adds the products
    in pairs (k = 2i, 2i+1), saturates each pair to int16, and sums the pairs
    in int32; the zero points are corrected afterwards, exactly, with the row
    sums of ``a`` and the column sums of ``b`` (the expansion of the product):

        acc = sum_i sat16(a_2i * b_2i + a_2i+1 * b_2i+1) - zp_b * sum_k a_k - zp_a * sum_k b_k + K * zp_a * zp_b

    ``a`` is [..., M, K], ``b`` is [..., K, N]; ``zp_a`` is a scalar and
    ``zp_b`` a scalar or one value per column (it broadcasts against [..., 1, N]).
    """
    k = a.shape[-1]
    zp_a = np.asarray(a_zero_point, dtype=np.int64)
    zp_b = np.asarray(b_zero_point, dtype=np.int64)
    pairs = pairwise_int16_matmul(a, b)
    a_row_sums = np.sum(a, axis=-1, dtype=np.int64)[..., :, None]      # [..., M, 1]
    b_col_sums = np.sum(b, axis=-2, dtype=np.int64)[..., None, :]      # [..., 1, N]
    return pairs - zp_b * a_row_sums - zp_a * b_col_sums + k * zp_a * zp_b


def s8_as_u8(a: np.ndarray, a_zero_point):
    """int8 codes and zero point as the uint8 codes ``a + 128`` and ``zp + 128``
    (ONNX Runtime's int8 -> uint8 rewrite of QDQ activations on x86): the
    same values, ``(a + 128) - (zp + 128) = a - zp`` exactly, but the kernel
    multiplies the shifted codes, so pairwise int16 saturation sees those."""
    return (a.astype(np.int16) + 128).astype(np.uint8), np.asarray(a_zero_point, dtype=np.int64) + 128


def accumulator_output(acc: np.ndarray, act_min=None, act_max=None) -> np.ndarray:
    """The int32 output of matmul / conv2d with output dtype int32: the
    accumulator itself (already checked to fit int32), clamped to the fused
    activation range if one is given."""
    lo = INT32_MIN if act_min is None else act_min
    hi = INT32_MAX if act_max is None else act_max
    return np.clip(acc, lo, hi).astype(np.int32)


def matmul(a: np.ndarray, a_zero_point, b: np.ndarray, b_zero_point, bias: np.ndarray | None,
           params: RequantParams | None, y_zero_point, y_dtype: str, act_min=None, act_max=None,
           b_centered: np.ndarray | None = None, pairwise_int16: bool = False) -> np.ndarray:
    if pairwise_int16:
        # Steps 1-2 as x86 VPMADDUBSW computes them (u8 a, s8 b, a profile
        # without VNNI): raw products summed in pairs along K, each pair
        # saturated to int16, then the zero points corrected exactly. int8 a
        # (s8_activations_as_u8) is multiplied as the uint8 codes a + 128.
        if a.dtype == np.int8:
            a, a_zero_point = s8_as_u8(a, a_zero_point)
        acc = pairwise_int16_accumulator(a, a_zero_point, b, b_zero_point)
    else:
        # Step 1: remove the zero points (exact). zp_b is a scalar or one value per
        # column n; b - zp_b of a constant b is computed once at load time and
        # passed in as b_centered.
        a_c = centered(a, a_zero_point)
        if b_centered is None:
            b_centered = centered(b, b_zero_point)
        # Step 2: the exact integer accumulator, sum_k (a - zp_a)[..., m, k] * (b - zp_b)[..., k, n].
        acc = exact_matmul(a_c, b_centered)
    # Step 3: add the int32 bias (one value per column n), exactly.
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    # Step 4: the int32 accumulator contract: every exact sum must fit int32.
    acc = check_accumulator(acc)
    if y_dtype == "int32":
        # Step 5 (int32 output, ONNX's MatMulInteger): the accumulator itself.
        return accumulator_output(acc, act_min, act_max)
    # Step 5: scale by s_a * s_b[n] / s_y and round as the recipe says, add
    # zp_y, clamp to the fused activation range and the output dtype.
    return requantize_output(acc, params, y_zero_point, y_dtype, act_min, act_max)


def check_bias(ctx, index: int, n: int, what: str) -> None:
    """ERROR_IF checks of an optional int32 bias input of length ``n`` (at
    ``index``) at infer time: dtype and shape. Shared with conv2d."""
    bias = ctx.inputs[index] if len(ctx.inputs) > index else None
    if bias is None:
        return
    ctx.require_dtype(bias, ("int32",), "bias")
    if tuple(bias.shape) != (n,):
        raise ctx.error(f"bias {bias.name!r} must have shape [{n}] ({what}), got {list(bias.shape)}")


def check_bias_quant(ctx, index: int) -> None:
    """A bias may be quantized (its scale is informational: it is interpreted
    at s_a * s_b); if so, every zero point must be 0. Shared with conv2d."""
    bias = ctx.inputs[index] if len(ctx.inputs) > index else None
    if bias is None or bias.quant is None:
        return
    q = ctx.require_quant(bias, "bias", ("per-tensor", "per-axis"), axis=0)
    if np.any(zero_point(q)):
        raise ctx.error(f"bias {bias.name!r} must have zero point 0")


def check_runtime_zero_point(ctx, index: int, x, dtype: str, what: str) -> bool:
    """ERROR_IF checks of an optional run-time zero point of ``x`` (input
    ``index``) at infer time: a scalar of x's dtype, allowed only when the
    output is the int32 accumulator (no scale is involved, so the zero point
    is the only parameter of x). Returns whether it is present. Shared with conv2d."""
    z = ctx.inputs[index] if len(ctx.inputs) > index else None
    if z is None:
        return False
    ctx.require_dtype(z, (x.dtype,), f"{what} zero point")
    if tuple(z.shape) != ():
        raise ctx.error(f"{what} zero point {z.name!r} must be a scalar (shape []), got {list(z.shape)}")
    if dtype != "int32":
        raise ctx.error(f"a run-time {what} zero point is allowed only with output dtype int32 (the "
                        f"accumulator), got {dtype}")
    return True


def prepare_runtime_zero_point(ctx, index: int, what: str) -> None:
    """prepare of a node with a run-time zero point of its input 0: that input
    and the zero point are unquantized (the zero point is the value of the
    second), and the int32 output is the plain accumulator: unquantized, or
    quantized with scale 1 and zero point 0 (which ``dequantize`` turns into
    float32 exactly as a cast). Shared with conv2d."""
    for t, role in ((ctx.inputs[0], f"input {what}"), (ctx.inputs[index], f"{what} zero point")):
        if t.quant is not None:
            raise ctx.error(f"{role} {t.name!r} must not be quantized: the zero point of {what} is the "
                            "run-time input")
    y = ctx.outputs[0]
    if y.quant is not None:
        q = ctx.require_quant(y, "int32 output")
        if np.any(zero_point(q)) or not np.all(scale(q) == np.float32(1)):
            raise ctx.error(f"int32 output {y.name!r} with a run-time {what} zero point is the plain "
                            f"accumulator: unquantized, or scale 1 with zero point 0 (got {y.describe()})")


def zero_point_arg(args: list, index: int, prepared):
    """The zero point of input 0: the run-time input ``index`` if present
    (int64 scalar), else the prepared constant one."""
    z = args[index] if len(args) > index else None
    return prepared if z is None else np.int64(z)


def check_out_dtype(ctx, default: str) -> str:
    dtype = ctx.attrs["dtype"] if ctx.attrs["dtype"] is not None else default
    if dtype not in OUT_DTYPES:
        raise ctx.error(f"attribute dtype must be one of {', '.join(OUT_DTYPES)}, got {dtype!r}")
    return dtype


#: the node attribute that overrides the profile's pairwise int16 saturation
PAIRWISE_ATTR = Attr("pairwise_int16_saturation", "bool", None,
                     "sum u8 x s8 products in int16-saturated pairs (true) or exactly (false); "
                     "default: as the profile says")

#: the node attribute for ONNX Runtime's int8 -> uint8 rewrite of QDQ activations
S8_AS_U8_ATTR = Attr("s8_activations_as_u8", "bool", False,
                     "with pairwise int16 saturation: int8 activations are multiplied as the uint8 codes "
                     "x + 128 (zero point + 128) and saturate as u8 x s8 (ONNX Runtime's QDQ int8 -> uint8 "
                     "rewrite on x86)")


def pairwise_int16_applies(ctx, a_dtype: str, b_dtype: str, depthwise: bool = False) -> bool:
    """Whether this node sums its products pairwise with int16 saturation:
    the node's ``pairwise_int16_saturation`` attribute if set, else the
    profile's flag (which may exempt depthwise convolutions); only ever for
    uint8 activations with int8 weights (the operand types of VPMADDUBSW), or
    int8 activations that the node says are computed as uint8 ``x + 128``
    (``s8_activations_as_u8``)."""
    flag = ctx.attrs.get("pairwise_int16_saturation")
    if flag is None:
        p = ctx.profile
        flag = p.pairwise_int16_saturation and not (depthwise and p.pairwise_exempt_depthwise)
    as_u8 = a_dtype == "uint8" or (a_dtype == "int8" and bool(ctx.attrs.get("s8_activations_as_u8")))
    return bool(flag) and as_u8 and b_dtype == "int8"


def check_int32_output_quant(ctx, s_in, s_w, axis: int) -> None:
    """An int32 output (the accumulator) is unquantized, or quantized at the
    accumulator's own scale: ``fl32(s_in * s_w)`` (one value, or one per
    output channel on ``axis``) with zero point 0. Shared with conv2d."""
    y = ctx.outputs[0]
    if y.quant is None:
        return
    granularity = ("per-axis",) if np.ndim(s_w) else ("per-tensor",)
    q = ctx.require_quant(y, "int32 output", granularity, axis=axis)
    want = combine_scales([s_in, s_w], np.float32(1), "float32")
    if np.any(zero_point(q)) or not np.array_equal(scale(q), want):
        raise ctx.error(f"int32 output {y.name!r} is the accumulator: unquantized, or quantized at "
                        f"s_in * s_w = {want.tolist()} with zero point 0 (got {y.describe()})")


def prepare_params(ctx, s_in, s_w, s_y, what: str) -> RequantParams:
    """The requantization parameters of s_in * s_w / s_y, prepared once."""
    real = combine_scales([s_in, s_w], s_y, ctx.recipe.scale_dtype)
    try:
        return prepare_requant(real, ctx.recipe)
    except ValidationError as e:
        raise ctx.error(f"multiplier {what}: {e}") from None


@register
class MatMul(Op):
    name = "matmul"
    inputs = (Slot("a", doc="quantized activations [..., M, K]"),
              Slot("b", doc="quantized weights [K, N] or [..., K, N]"),
              Slot("bias", optional=True, doc="int32 [N], added to the accumulator"),
              Slot("a_zero_point", optional=True,
                   doc="scalar of a's dtype: the zero point of a, computed at run time (output dtype "
                       "int32 only; a is then unquantized)"))
    outputs = (Slot("y", doc="quantized [..., M, N]; int32: the accumulator"),)
    attrs = (Attr("dtype", "str", None, "output dtype (default: the dtype of a); int32: the accumulator"),
             Attr("act_min", "int", None, ACT_ATTRS_DOC),
             Attr("act_max", "int", None, ACT_ATTRS_DOC),
             PAIRWISE_ATTR, S8_AS_U8_ATTR)

    def infer(self, ctx):
        a, b = ctx.input(0), ctx.input(1)
        ctx.require_dtype(a, A_DTYPES, "input a")
        ctx.require_dtype(b, B_DTYPES, "input b")
        if len(a.shape) < 2:
            raise ctx.error(f"input a {a.name!r} must have rank >= 2 ([..., M, K]), got {list(a.shape)}")
        if len(b.shape) < 2:
            raise ctx.error(f"input b {b.name!r} must have rank >= 2 ([K, N] or [..., K, N]), "
                            f"got {list(b.shape)}")
        (m, k), (kb, n) = a.shape[-2:], b.shape[-2:]
        if k != kb:
            raise ctx.error(f"inner dimensions differ: a {a.name!r} has K = {k} ({list(a.shape)}), "
                            f"b {b.name!r} has K = {kb} ({list(b.shape)})")
        try:
            batch = np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
        except ValueError:
            raise ctx.error(f"batch dimensions of a {list(a.shape)} and b {list(b.shape)} "
                            "do not broadcast") from None
        # the node work limit: B*M*N*K multiply-adds (B the broadcast batch),
        # and a Python loop over the K/2 pairs with pairwise int16
        macs = math.prod(batch) * m * n * k
        ctx.check_work(_graph.INT_MAC_WORK * macs + _graph.LOOP_WORK * k,
                       f"the {macs} multiply-adds (B*M*N*K)")
        check_bias(ctx, 2, n, "N, the last dimension of b")
        dtype = check_out_dtype(ctx, a.dtype)
        check_runtime_zero_point(ctx, 3, a, dtype, "a")
        return [(dtype, (*batch, m, n))]

    def prepare(self, ctx):
        a, b, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
        runtime_zp = ctx.inputs[3] is not None
        if runtime_zp:
            prepare_runtime_zero_point(ctx, 3, "a")
        qa = None if runtime_zp else ctx.require_quant(a, "input a")
        qb = ctx.require_quant(b, "input b", ("per-tensor", "per-axis"), axis=len(b.shape) - 1)
        check_bias_quant(ctx, 2)
        p = ctx.prepared
        p["act"] = act_range(ctx)
        p["pairwise_int16"] = pairwise_int16_applies(ctx, a.dtype, b.dtype)
        if runtime_zp:
            # the accumulator with the run-time zero point of a (see run)
            p["params"] = None
            p["y_zp"] = np.int64(0)
        elif y.dtype == "int32":
            # the output is the accumulator: no multiplier, no output zero point
            check_int32_output_quant(ctx, scale(qa), scale(qb), len(y.shape) - 1)
            p["params"] = None
            p["y_zp"] = np.int64(0)
        else:
            qy = ctx.out_quant(0)
            # per-column values have shape (N,) and broadcast on the last axis of [..., M, N]
            p["params"] = prepare_params(ctx, scale(qa), scale(qb), scale(qy), "s_a * s_b / s_y")
            p["y_zp"] = zero_point(qy).astype(np.int64)
        p["a_zp"] = None if runtime_zp else zero_point(qa).astype(np.int64)
        p["b_zp"] = zero_point(qb).astype(np.int64)
        # b - zp_b of a constant b (float64, 8 bytes per weight) is built on
        # the first reference run, not here: the kernels backend never needs it.
        p["b_centered"] = None
        p["y_dtype"] = y.dtype

    def run(self, ctx, args):
        p = ctx.prepared
        a, b = args[0], args[1]
        bias = args[2] if len(args) > 2 else None
        if p["b_centered"] is None and ctx.inputs[1].data is not None and not p["pairwise_int16"]:
            p["b_centered"] = centered(b, p["b_zp"])
        a_zp = zero_point_arg(args, 3, p["a_zp"])
        y = matmul(a, a_zp, b, p["b_zp"], bias, p["params"], p["y_zp"], p["y_dtype"],
                   *p["act"], b_centered=p["b_centered"], pairwise_int16=p["pairwise_int16"])
        return [y]
