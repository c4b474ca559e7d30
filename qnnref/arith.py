"""Exact integer arithmetic: rounding, saturation, accumulators, requantization.

Every operator of qnnref computes through the primitives of this module, so
that the numeric behaviour of a model is decided in one place and written in
spec/arithmetic.md. The names here are the names of the C++ header that the
kernels share (``qnnref/_kernels/include/qnnref/arith.h``).

Conventions
-----------
* Integer inputs are numpy integer arrays; they are widened to int64 before
  any arithmetic, and every bound that keeps int64 from overflowing is
  stated next to the code that relies on it.
* A rounding mode is always an explicit argument, one of ``ROUNDING_MODES``.
  Nothing here has a hidden default rounding.
* Requantization is described by a :class:`Recipe`, a small piece of data.
  Vendor behaviours (semantic profiles) are sets of recipes, not code paths.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from . import dtypes
from .errors import RuntimeCheckError, ValidationError

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# ---------------------------------------------------------------------------
# Rounding modes
# ---------------------------------------------------------------------------

#: The named rounding modes. Each maps a real number v to an integer:
#:   half_to_even         nearest; ties to the even integer (IEEE default, np.rint)
#:   half_away_from_zero  nearest; ties away from zero (C round(), std::round)
#:   half_up              nearest; ties toward +infinity (floor(v + 1/2))
#:   half_down            nearest; ties toward -infinity (ceil(v - 1/2))
#:   floor                toward -infinity
#:   ceil                 toward +infinity
#:   truncate             toward zero (C integer division, float->int cast)
ROUNDING_MODES = ("half_to_even", "half_away_from_zero", "half_up", "half_down",
                  "floor", "ceil", "truncate")


def check_rounding(mode: str, where: str = "") -> str:
    """Return ``mode`` if it is a rounding mode, else raise ValidationError."""
    if mode not in ROUNDING_MODES:
        prefix = f"{where}: " if where else ""
        raise ValidationError(f"{prefix}unknown rounding mode {mode!r} (known: {', '.join(ROUNDING_MODES)})")
    return mode


def round_float(x: np.ndarray, mode: str) -> np.ndarray:
    """Round each float of ``x`` to an integral value (same float dtype) by ``mode``.

    Exact: ``r = rint(x)`` is the nearest integer, and ``x - r`` is computed
    without rounding error (r == 0, or r and x have the same sign and lie
    within a factor 2 of each other: Sterbenz's lemma), so a tie is
    recognised exactly as ``|x - r| == 1/2``; a tie then takes ``floor(x)``
    or ``ceil(x)`` as the mode says, anything else takes r.
    (``floor(x + 0.5)`` would turn 0.49999999999999994 into 1, and
    ``x - floor(x)`` rounds for x in (-1/2, 0): -0.49999999999999994 would
    look like a tie.) The sign of a zero result is the sign of x, as for
    IEEE roundToIntegral (np.rint, np.floor, ...).
    NaN stays NaN and infinities stay infinite; callers decide what they mean.
    """
    x = np.asarray(x)
    if mode == "half_to_even":
        return np.rint(x)
    if mode == "floor":
        return np.floor(x)
    if mode == "ceil":
        return np.ceil(x)
    if mode == "truncate":
        return np.trunc(x)
    r = np.rint(x)                      # nearest; ties to even
    with np.errstate(invalid="ignore"):
        tie = np.abs(x - r) == 0.5      # exact; False for inf and NaN
    if mode == "half_up":
        t = np.ceil(x)
    elif mode == "half_down":
        t = np.floor(x)
    elif mode == "half_away_from_zero":
        t = np.where(x > 0, np.ceil(x), np.floor(x))
    else:
        raise ValidationError(f"unknown rounding mode {mode!r}")
    return np.where(tie, t, r)


def round_quotient(q: np.ndarray, r: np.ndarray, d, negative: np.ndarray, mode: str) -> np.ndarray:
    """Finish an exact integer division n / d (d >= 1) by ``mode``, given the
    floor quotient ``q = floor(n / d)``, the remainder ``r = n - q*d`` in
    [0, d) and ``negative = n < 0``. Returns q or q + 1 (int64).

    The fraction r/d is compared with 1/2 as 2r vs d: exact integers, no
    rounding anywhere. Shared by :func:`rounding_divide_by_pot` and
    :func:`rounding_divide`, so every division rounds by one definition.
    """
    nonzero = r != 0
    above = 2 * r > d                   # the fraction r/d is above one half
    tie = 2 * r == d                    # exactly one half (only for even d)
    if mode == "floor":
        up = np.zeros_like(nonzero)
    elif mode == "ceil":
        up = nonzero
    elif mode == "truncate":
        up = nonzero & negative
    elif mode == "half_up":
        up = above | tie
    elif mode == "half_down":
        up = above
    elif mode == "half_away_from_zero":
        up = above | (tie & ~negative)
    elif mode == "half_to_even":
        up = above | (tie & ((q & 1) == 1))
    else:
        raise ValidationError(f"unknown rounding mode {mode!r}")
    return q + up.astype(np.int64)


def rounding_divide_by_pot(x: np.ndarray, exponent, mode: str) -> np.ndarray:
    """``x / 2**exponent`` rounded to an integer by ``mode``, computed exactly.

    ``x`` is an integer array with |x| < 2**62 (so that no step below can
    overflow int64); ``exponent`` is an int or an int array broadcasting
    against ``x``, each in [0, 62]. Result: int64.

    With ``mode="half_away_from_zero"`` this is gemmlowp's RoundingDivideByPOT;
    with ``"half_up"`` it is TOSA's ``(x + 2**(e-1)) >> e``; with ``"floor"``
    it is an arithmetic right shift.
    """
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    if mode == "half_up":
        # Fast path, same result: floor((x + d/2) / d) for d = 2^e; x + 2^(e-1)
        # cannot overflow because |x| < 2^62 and e <= 62.
        half = np.where(e > 0, np.left_shift(np.int64(1), np.maximum(e - 1, 0)), 0)
        return (x + half) >> e
    q = x >> e                          # floor(x / 2^e)
    r = x - (q << e)                    # remainder, in [0, 2^e)
    return round_quotient(q, r, np.left_shift(np.int64(1), e), x < 0, mode)


def rounding_divide(n: np.ndarray, d, mode: str) -> np.ndarray:
    """``n / d`` rounded to an integer by ``mode``, computed exactly in integers.

    ``n`` is an integer array with |n| < 2^62, ``d`` an integer (or integer
    array broadcasting against ``n``) >= 1. Result: int64. Used where a
    division is by a count (average pooling).
    """
    n = np.asarray(n, dtype=np.int64)
    d = np.asarray(d, dtype=np.int64)
    q = n // d                          # floor(n / d)
    r = n - q * d                       # remainder, in [0, d)
    return round_quotient(q, r, d, n < 0, mode)


# ---------------------------------------------------------------------------
# Saturation
# ---------------------------------------------------------------------------

def saturate(x: np.ndarray, dtype_name: str) -> np.ndarray:
    """Clamp integers to the range of ``dtype_name`` and cast to its in-memory
    numpy dtype (int4 -> int8 holding [-8, 7], uint4 -> uint8 holding [0, 15])."""
    dt = dtypes.get(dtype_name)
    return np.clip(np.asarray(x, dtype=np.int64), dt.min, dt.max).astype(dt.numpy)


def saturate_float_to_int(x: np.ndarray, dtype_name: str) -> np.ndarray:
    """Saturating cast of already-integral floats to an integer dtype.

    +inf and values above the range give the maximum, -inf and values below
    give the minimum. NaN has no integer value: a NaN raises RuntimeCheckError
    (callers name the node).

    The comparison is done in float64, which holds every bound up to int32
    exactly (a float32 clamp would round INT32_MAX up to 2^31). INT64_MAX is
    not a float64: values >= 2^63 are mapped to it explicitly.
    """
    x = np.asarray(x, dtype=np.float64)  # exact for float16/32/64 inputs
    if np.isnan(x).any():
        raise RuntimeCheckError("NaN cannot be converted to an integer")
    dt = dtypes.get(dtype_name)
    hi = float(dt.max) if dt.max < 2**53 else np.nextafter(float(dt.max), 0.0)  # largest float <= max
    v = np.clip(x, float(dt.min), hi).astype(np.int64)
    v = np.where(x > hi, dt.max, v)
    return v.astype(dt.numpy)


# ---------------------------------------------------------------------------
# Accumulators
# ---------------------------------------------------------------------------

def check_accumulator(acc: np.ndarray, what: str = "accumulator") -> np.ndarray:
    """The int32 accumulator contract (spec/arithmetic.md, "Accumulators").

    ``acc`` holds the exact sums (int64). Each must fit int32; then every
    summation order that wraps modulo 2**32 (as SIMD kernels do) ends at the
    same, exact value, because wrap-around addition is exact modulo 2**32
    and the true result lies in the int32 range. If a sum does not fit, the
    result is not defined by qnnref and the reference raises
    RuntimeCheckError (a REQUIRE failure) instead of returning a wrong value.
    """
    acc = np.asarray(acc, dtype=np.int64)
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        bad = int(acc.max()) if acc.max() > INT32_MAX else int(acc.min())
        raise RuntimeCheckError(f"{what} overflows int32 (value {bad}); "
                                "the int32 accumulator contract is broken")
    return acc


# float64 holds every integer of magnitude up to 2^53 exactly.
FLOAT64_EXACT_INT = 2**53


def exact_dot_bound_ok(k: int, max_abs_a: int, max_abs_b: int) -> bool:
    """True when a float64 dot product of length ``k`` of integers bounded by
    ``max_abs_a`` and ``max_abs_b`` is exact: every product, every partial sum
    (in any order, as BLAS may reorder) is an integer of magnitude at most
    k * max_abs_a * max_abs_b, and float64 represents all integers up to 2^53
    exactly, so no rounding happens if that bound is below 2^53."""
    # Python ints: numpy integers would wrap around (or, for abs(int8(-128)), be negative).
    return abs(int(k)) * abs(int(max_abs_a)) * abs(int(max_abs_b)) < FLOAT64_EXACT_INT


INT16_MIN = -(2**15)
INT16_MAX = 2**15 - 1


def pairwise_int16_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The dot products of x86's ``VPMADDUBSW`` (u8 x s8 without VNNI):
    products taken in pairs along K, each pair sum saturated to int16, the
    saturated pairs summed exactly:

        out[..., m, n] = sum_i sat16(a[..., m, 2i] * b[..., 2i, n] + a[..., m, 2i+1] * b[..., 2i+1, n])

    (np.matmul broadcasting; for an odd K the last product is a pair on its
    own, as if K were padded with a zero). ``a`` and ``b`` hold integers
    (any dtype, float64 included) whose pair sums are below 2^53 in
    magnitude; for 8-bit codes they are below 2^17. Result: int64.

    Each pair is a matrix product with K = 2 in float64, exact because every
    value is an integer below 2^53; the loop runs over the K/2 pairs.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    k = a.shape[-1]
    shape = (*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-1])
    total = np.zeros(shape, dtype=np.int64)
    for i in range(0, k, 2):
        pair = np.matmul(a[..., :, i:i + 2], b[..., i:i + 2, :])
        total += np.clip(pair, INT16_MIN, INT16_MAX).astype(np.int64)
    return total


def srdhm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul (gemmlowp; ARM NEON VQRDMULH).

    For int32 a, b: the high 32 bits of 2*a*b, i.e. a*b / 2^31, rounded to
    nearest with ties toward +infinity (half_up: -0.5 -> 0, 0.5 -> 1, as
    VQRDMULH's ``(2*a*b + 2^31) >> 32``; the negative nudge 1 - 2^30 with a
    truncating division does not make ties go away from zero); the single
    overflowing case a == b == INT32_MIN gives INT32_MAX. Exactly:
    ``(a*b + (a*b >= 0 ? 2^30 : 1 - 2^30)) / 2^31`` with C's truncating
    division. |a*b| <= 2^62, so int64 does not overflow.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudged = ab + np.where(ab >= 0, 2**30, 1 - 2**30)
    # C division truncates toward zero; >> floors, so divide the magnitude.
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, high)


# ---------------------------------------------------------------------------
# Requantization recipes
# ---------------------------------------------------------------------------

#: The ways the add operator can compute with a float recipe (Recipe.add_form).
ADD_FORMS = ("real_sum", "ratio_fma")

#: The ways avg_pool2d can compute a window's average (Recipe.average_form).
AVERAGE_FORMS = ("integer_sum", "float_average")


@dataclass(frozen=True)
class Recipe:
    """How a real multiplier is applied to an integer accumulator.

    ``kind="fixed_point"``: the real multiplier m is encoded once as an int32
    ``multiplier`` in [2^30, 2^31) and a ``shift`` with
    m ~= multiplier * 2^(shift - 31) (see :func:`quantize_multiplier`), then

    * ``double_round="none"`` (single rounding): ``round(acc * multiplier / 2^(31 - shift))``
      by ``rounding``, exactly, in int64 (TOSA SINGLE_ROUND with half_up,
      TFLite's TFLITE_SINGLE_ROUNDING build).
    * ``double_round="gemmlowp"``: ``rounding_divide_by_pot(srdhm(acc * 2^max(shift,0),
      multiplier), max(-shift, 0), rounding)`` -- TFLite's default
      MultiplyByQuantizedMultiplier when ``rounding="half_away_from_zero"``.
    * ``double_round="tosa"``: TOSA DOUBLE_ROUND: single rounding with
      ``half_up``, where for total shifts above 31 the rounding constant also
      gets +-2^30 by the sign of acc.

    ``kind="float"``: ``round(float(acc) * float(m))`` by ``rounding``, where
    both conversions and the product are IEEE operations in ``float_dtype``
    (float32 or float64) -- ONNX / ORT / XNNPACK style.

    ``scale_dtype`` says in which float width the real multiplier is formed
    from the tensors' float32 scales, e.g. ``(s_x * s_w) / s_y``: each
    operation rounds to that width (float32: as ORT does; float64: as TFLite
    does before QuantizeMultiplier).

    ``multiplier_rounding`` is the rounding used when ``quantize_multiplier``
    turns the real multiplier into an integer (TFLite: std::round, i.e.
    half_away_from_zero).

    ``zero_point_in_float`` (float recipes only): the output zero point is
    added to the float product, one more IEEE addition in ``float_dtype``,
    *before* rounding (ONNX Runtime's QLinearMul; onnx.reference's
    QLinearMatMul in float64) instead of to the rounded integer. The two
    differ at ties with an odd zero point (1.5 + 1 rounds to 2, round(1.5) + 1
    is 3), and where the addition itself rounds. Honoured by
    :func:`requantize_output`; :func:`apply_requant` refuses such a recipe.

    ``add_form`` (the add operator, float recipes only): ``"real_sum"``
    computes ``(s_a * (a - zp_a) + s_b * (b - zp_b)) / s_y``; ``"ratio_fma"``
    computes ONNX Runtime's x86 QLinearAdd, two float32 fused multiply-adds
    with the ratios s_a / s_y and s_b / s_y (spec/ops/add.md).

    ``average_form`` (the avg_pool2d operator): ``"integer_sum"`` requantizes
    the exact integer sum of a window by s_x / (s_y * count), or averages the
    codes when the quantizations are equal; ``"float_average"`` (float
    recipes only) computes ONNX Runtime's QLinearAveragePool: every tap
    dequantized, summed, divided by the count and by s_y in ``float_dtype``,
    then rounded (spec/ops/avg_pool2d.md).
    """

    kind: str = "fixed_point"
    rounding: str = "half_up"
    double_round: str = "none"
    float_dtype: str = "float32"
    scale_dtype: str = "float64"
    multiplier_rounding: str = "half_away_from_zero"
    zero_point_in_float: bool = False
    add_form: str = "real_sum"
    average_form: str = "integer_sum"

    def __post_init__(self):
        self.check()

    def check(self, where: str = "recipe") -> None:
        if self.kind not in ("fixed_point", "float"):
            raise ValidationError(f"{where}: kind must be 'fixed_point' or 'float', got {self.kind!r}")
        check_rounding(self.rounding, where)
        check_rounding(self.multiplier_rounding, where)
        if self.double_round not in ("none", "gemmlowp", "tosa"):
            raise ValidationError(f"{where}: double_round must be 'none', 'gemmlowp' or 'tosa', "
                                  f"got {self.double_round!r}")
        if self.kind == "float" and self.double_round != "none":
            raise ValidationError(f"{where}: double_round applies only to fixed_point recipes")
        if self.double_round == "tosa" and self.rounding != "half_up":
            raise ValidationError(f"{where}: TOSA double rounding rounds half_up")
        for name in ("float_dtype", "scale_dtype"):
            if getattr(self, name) not in ("float32", "float64"):
                raise ValidationError(f"{where}: {name} must be 'float32' or 'float64'")
        if not isinstance(self.zero_point_in_float, bool):
            raise ValidationError(f"{where}: zero_point_in_float must be true or false")
        if self.zero_point_in_float and self.kind != "float":
            raise ValidationError(f"{where}: zero_point_in_float applies only to float recipes")
        if self.add_form not in ADD_FORMS:
            raise ValidationError(f"{where}: add_form must be one of {', '.join(ADD_FORMS)}, "
                                  f"got {self.add_form!r}")
        if self.add_form == "ratio_fma" and (self.kind != "float" or self.float_dtype != "float32"):
            raise ValidationError(f"{where}: add_form 'ratio_fma' needs a float recipe in float32")
        if self.average_form not in AVERAGE_FORMS:
            raise ValidationError(f"{where}: average_form must be one of {', '.join(AVERAGE_FORMS)}, "
                                  f"got {self.average_form!r}")
        if self.average_form == "float_average" and self.kind != "float":
            raise ValidationError(f"{where}: average_form 'float_average' needs a float recipe")

    def to_dict(self) -> dict:
        d = asdict(self)
        # The later knobs are written only when set, so that every recipe
        # without them has the same JSON object as before they existed.
        for name, default in (("zero_point_in_float", False), ("add_form", "real_sum"),
                              ("average_form", "integer_sum")):
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "recipe") -> "Recipe":
        if not isinstance(d, dict):
            raise ValidationError(f"{where}: a recipe must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValidationError(f"{where}: unknown recipe keys {sorted(unknown)}")
        # Validate with ``where`` (cls(**d) would name only "recipe", not the node).
        r = cls.__new__(cls)
        for f in fields(cls):
            object.__setattr__(r, f.name, d.get(f.name, f.default))
        r.check(where)
        return r


#: Range of the shift of an encoded multiplier: m = multiplier * 2^(shift-31)
#: with shift in [-31, 30], i.e. the total right shift 31 - shift lies in
#: [1, 62], which keeps acc * multiplier + rounding constant below 2^62 + 2^61.
SHIFT_MIN = -31
SHIFT_MAX = 30


def quantize_multiplier(real: np.ndarray, rounding: str = "half_away_from_zero"):
    """Encode positive real multipliers as (int32 multiplier, int shift).

    For each m > 0: write m = q * 2^shift with q in [0.5, 1) (frexp), then
    multiplier = round(q * 2^31) by ``rounding``; if that rounds up to 2^31,
    halve it and increment shift. Then m ~= multiplier * 2^(shift - 31) with
    multiplier in [2^30, 2^31). Both q * 2^31 and the halving are exact in
    float64, so the only rounding is the named one.

    Raises ValidationError if some m is not finite and positive, or needs a
    shift outside [SHIFT_MIN, SHIFT_MAX] (m below 2^-32 or at least 2^30).
    """
    real = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(real)) or not np.all(real > 0):
        raise ValidationError("real multipliers must be finite and > 0")
    q, shift = np.frexp(real)
    m = round_float(np.ldexp(q, 31), rounding).astype(np.int64)
    carry = m == 2**31
    m = np.where(carry, m // 2, m)
    shift = shift.astype(np.int64) + carry
    if shift.size and (shift.min() < SHIFT_MIN or shift.max() > SHIFT_MAX):
        raise ValidationError(
            f"real multiplier out of the representable range [2^-32, 2^30): "
            f"{real.min():.6g} .. {real.max():.6g}")
    return m.astype(np.int32), shift.astype(np.int32)


def multiply_by_quantized_multiplier(acc, multiplier, shift, recipe: Recipe) -> np.ndarray:
    """Apply an encoded multiplier to int32-range integers per a fixed-point
    ``recipe``; returns int64 (not yet offset or clamped).

    REQUIRE: |acc| <= 2^31 (true for every value the accumulator contract
    admits). Then |acc * multiplier| < 2^62 and no int64 step overflows.
    """
    acc = np.asarray(acc, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if recipe.double_round == "gemmlowp":
        left = np.maximum(shift, 0)
        right = np.maximum(-shift, 0)
        scaled = acc << left
        if scaled.size and (scaled.min() < INT32_MIN or scaled.max() > INT32_MAX):
            raise RuntimeCheckError("gemmlowp double rounding: acc * 2^shift overflows int32")
        return rounding_divide_by_pot(srdhm(scaled, multiplier), right, recipe.rounding)
    total = 31 - shift                   # in [1, 62]
    prod = acc * multiplier
    if recipe.double_round == "tosa":
        # TOSA apply_scale_32 with double_round: round = 2^(s-1) +- 2^30 for s > 31.
        bias = np.where(total > 31, np.where(acc >= 0, 2**30, -(2**30)), 0)
        return (prod + bias + (np.int64(1) << (total - 1))) >> total
    return rounding_divide_by_pot(prod, total, recipe.rounding)


def combine_scales(numer: list, denom, scale_dtype: str) -> np.ndarray:
    """The real multiplier ``(numer[0] * numer[1] * ...) / denom`` from float32
    scales, each operation rounded to ``scale_dtype`` (left to right). An
    overflow gives +inf, which no recipe accepts (prepare_requant refuses it)."""
    ft = np.float32 if scale_dtype == "float32" else np.float64
    with np.errstate(over="ignore"):
        m = np.asarray(numer[0], dtype=np.float32).astype(ft)
        for s in numer[1:]:
            m = m * np.asarray(s, dtype=np.float32).astype(ft)
        return (m / np.asarray(denom, dtype=np.float32).astype(ft)).astype(ft)


def fma_float32(a, b, c) -> np.ndarray:
    """``fl32(a * b + c)`` with a single rounding (IEEE fusedMultiplyAdd in
    float32, as x86 ``VFMADD``), for float32 arrays that broadcast.

    Exact: the product of two float32 values is exact in float64 (24 + 24 <
    53 significant bits); the sum ``s = fl64(p + c)`` rounds, but TwoSum gives
    its exact error ``e`` (``s + e == p + c``). Rounding ``s`` to float32 is the
    correctly rounded result of ``p + c`` unless ``s`` lies exactly halfway
    between two float32 values and ``e != 0``: then the exact sum is on the side
    of ``e``, and that neighbour is taken. (If ``s`` is not such a midpoint, ``s``
    and ``p + c`` lie on the same side of every float32 midpoint, since the
    midpoints are float64 values and rounding to float64 is monotonic.)
    Overflow gives +-inf; inputs are finite in every use here.
    """
    a, b, c = np.broadcast_arrays(np.asarray(a, np.float32), np.asarray(b, np.float32),
                                  np.asarray(c, np.float32))
    p = a.astype(np.float64) * b.astype(np.float64)            # exact
    c64 = c.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        s = p + c64
        t = s - p
        e = (p - (s - t)) + (c64 - t)                           # TwoSum: s + e == p + c
        r = s.astype(np.float32)
        r64 = r.astype(np.float64)
        other = np.nextafter(r, np.where(s > r64, np.float32(np.inf), np.float32(-np.inf)))
        midpoint = (s != r64) & (np.abs(s - r64) == np.abs(other.astype(np.float64) - s))
    fix = midpoint & (e != 0)
    toward_e = np.where(e > 0, np.maximum(r, other), np.minimum(r, other))
    return np.where(fix, toward_e, r)


@dataclass(frozen=True)
class RequantParams:
    """A real multiplier prepared for one recipe (done once, at load time)."""

    recipe: Recipe
    real: np.ndarray                    # the real multiplier(s), in scale_dtype
    multiplier: np.ndarray | None       # fixed_point: int32
    shift: np.ndarray | None            # fixed_point: int32

    def reshaped(self, shape) -> "RequantParams":
        """The same parameters reshaped (e.g. per-channel (C,) to (1, C) so
        that they broadcast against an accumulator of shape (M, C))."""
        def rs(a):
            return None if a is None else np.reshape(a, shape) if np.ndim(a) else a
        return RequantParams(self.recipe, rs(self.real), rs(self.multiplier), rs(self.shift))


def prepare_requant(real, recipe: Recipe) -> RequantParams:
    """Prepare real multiplier(s) for ``apply_requant`` under ``recipe``."""
    real = np.asarray(real)
    if recipe.kind == "fixed_point":
        m, s = quantize_multiplier(real, recipe.multiplier_rounding)
        return RequantParams(recipe, real, m, s)
    if not np.all(np.isfinite(real)) or not np.all(real > 0):
        raise ValidationError("real multipliers must be finite and > 0")
    return RequantParams(recipe, real, None, None)


def apply_requant(acc, params: RequantParams) -> np.ndarray:
    """Scale int32-range accumulators by prepared multipliers: int64 result,
    rounded per the recipe, before the output zero point and clamp.

    Float recipes: the int32 accumulator is converted to ``float_dtype``
    (float32 rounds above 2^24, as MLAS does), multiplied by the multiplier
    converted to ``float_dtype`` (one IEEE rounding), rounded to an integral
    value by ``rounding``, and clamped to [-2^40, 2^40] before conversion so
    that huge values saturate later instead of overflowing int64.
    """
    r = params.recipe
    if r.kind == "fixed_point":
        return multiply_by_quantized_multiplier(acc, params.multiplier, params.shift, r)
    if r.zero_point_in_float:
        raise ValidationError("a recipe with zero_point_in_float rounds after adding the zero "
                              "point; this operator adds it after rounding")
    ft = np.float32 if r.float_dtype == "float32" else np.float64
    with np.errstate(over="ignore"):    # an infinite product saturates below
        v = np.asarray(acc, dtype=np.int64).astype(ft) * np.asarray(params.real).astype(ft)
    v = round_float(v, r.rounding)
    return np.clip(v, -(2.0**40), 2.0**40).astype(np.int64)


def requantize_output(acc, params: RequantParams, zero_point, dtype_name: str,
                      act_min=None, act_max=None) -> np.ndarray:
    """The last stage of every compute operator:
    ``clamp(apply_requant(acc) + zero_point, lo, hi)`` cast to ``dtype_name``,
    where [lo, hi] is the dtype's range narrowed by the optional fused
    activation range [act_min, act_max] (in output integer units).

    With a float recipe that has ``zero_point_in_float``, the zero point is
    instead added to the float product before rounding:
    ``clamp(round(fl(fl(fl(acc) * fl(m)) + zero_point)), lo, hi)``."""
    dt = dtypes.get(dtype_name)
    r = params.recipe
    if r.kind == "float" and r.zero_point_in_float:
        ft = np.float32 if r.float_dtype == "float32" else np.float64
        with np.errstate(over="ignore"):    # an infinite value saturates below
            v = np.asarray(acc, dtype=np.int64).astype(ft) * np.asarray(params.real).astype(ft)
            v = v + np.asarray(zero_point, dtype=np.int64).astype(ft)   # exact: |zp| < 2^16
        v = np.clip(round_float(v, r.rounding), -(2.0**40), 2.0**40).astype(np.int64)
    else:
        v = apply_requant(acc, params) + np.asarray(zero_point, dtype=np.int64)
    lo = dt.min if act_min is None else max(dt.min, int(act_min))
    hi = dt.max if act_max is None else min(dt.max, int(act_max))
    return np.clip(v, lo, hi).astype(dt.numpy)


# ---------------------------------------------------------------------------
# Quantize (float -> int)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class QuantizeRecipe:
    """How a float becomes an integer: ``saturate(round(x OP scale) + zp)``.

    ``method="divide"``: x / scale (ONNX QuantizeLinear, TFLite).
    ``method="reciprocal"``: x * (1 / scale), the reciprocal rounded once
    (PyTorch). Both in ``float_dtype`` with IEEE rounding, then ``rounding``.
    """

    method: str = "divide"
    rounding: str = "half_to_even"
    float_dtype: str = "float32"

    def __post_init__(self):
        self.check()

    def check(self, where: str = "quantize recipe") -> None:
        if self.method not in ("divide", "reciprocal"):
            raise ValidationError(f"{where}: method must be 'divide' or 'reciprocal', got {self.method!r}")
        check_rounding(self.rounding, where)
        if self.float_dtype not in ("float32", "float64"):
            raise ValidationError(f"{where}: float_dtype must be 'float32' or 'float64'")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "quantize recipe") -> "QuantizeRecipe":
        if not isinstance(d, dict):
            raise ValidationError(f"{where}: must be a JSON object")
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValidationError(f"{where}: unknown keys {sorted(unknown)}")
        r = cls.__new__(cls)             # validated with ``where``, as Recipe.from_dict
        for f in fields(cls):
            object.__setattr__(r, f.name, d.get(f.name, f.default))
        r.check(where)
        return r


def quantize_values(x, scale, zero_point, dtype_name: str, recipe: QuantizeRecipe) -> np.ndarray:
    """``saturate(round(x OP scale) + zero_point)`` per ``recipe``; ``scale``
    and ``zero_point`` broadcast against ``x``. NaN raises RuntimeCheckError;
    +-inf saturate."""
    ft = np.float32 if recipe.float_dtype == "float32" else np.float64
    xf = np.asarray(x).astype(ft)
    s = np.asarray(scale, dtype=np.float32).astype(ft)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if recipe.method == "divide":
            v = xf / s
        else:
            v = xf * (ft(1) / s)
    v = round_float(v, recipe.rounding)
    if np.isnan(v).any():
        raise RuntimeCheckError("NaN cannot be quantized")
    v = np.clip(v, -(2.0**40), 2.0**40).astype(np.int64) + np.asarray(zero_point, dtype=np.int64)
    return saturate(v, dtype_name)


def dequantize_values(q, scale, zero_point) -> np.ndarray:
    """``float32((q - zero_point) * scale)``: the integer difference is exact
    (int64, so no input dtype can wrap), converted to float32 (exact for
    |q - zp| < 2^24, true for every dtype up to int16), times the float32
    scale: one IEEE float32 rounding (an overflow gives +-inf, as
    spec/ops/dequantize.md says: not a warning)."""
    d = np.asarray(q, dtype=np.int64) - np.asarray(zero_point, dtype=np.int64)
    with np.errstate(over="ignore"):
        return d.astype(np.float32) * np.asarray(scale, dtype=np.float32)
