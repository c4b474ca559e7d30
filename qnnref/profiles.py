"""Semantic profiles: named sets of arithmetic recipes.

A model names its profile in its metadata (``metadata["profile"]``); every
operator that rounds takes its recipe from there, unless the node carries its
own ``recipe`` attribute (a Recipe as a JSON object). A profile is data: a new
vendor behaviour is a new entry here, not a new code path in the operators.

Profiles that emulate a vendor (``onnx``, ``ort-cpu-x86``, ``tflite-...``,
``tosa-...``) are added together with the conformance tests that prove them
(spec/profiles/); the first three below are defined by their recipes alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .arith import QuantizeRecipe, Recipe
from .errors import ValidationError


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    requant: Recipe                       # matmul, conv2d, requantize, add, mul, pools, mean, concat
    quantize: QuantizeRecipe              # float -> int
    #: whether products of u8 activations and s8 weights are summed pairwise
    #: with int16 saturation before int32 accumulation (x86 VPMADDUBSW;
    #: matmul and conv2d, spec/arithmetic.md "Pairwise int16 saturation")
    pairwise_int16_saturation: bool = False
    #: with pairwise_int16_saturation: conv2d nodes with one input and one
    #: output channel per group (depthwise, channel multiplier 1) still sum
    #: exactly (ONNX Runtime runs them on a direct depthwise kernel)
    pairwise_exempt_depthwise: bool = False
    #: recipes for particular operators, overriding ``requant`` for them
    #: (a node's own ``recipe`` attribute overrides both)
    op_recipes: dict[str, Recipe] = field(default_factory=dict)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def recipe_for(self, op: str) -> Recipe:
        """The requantization recipe of operator ``op`` under this profile."""
        return self.op_recipes.get(op, self.requant)


PROFILES: dict[str, Profile] = {}


def register(p: Profile) -> Profile:
    PROFILES[p.name] = p
    return p


DEFAULT_PROFILE = "qnnref"

register(Profile(
    name="qnnref",
    description="qnnref's native semantics: fixed-point requantization with one "
                "rounding step, ties toward +infinity (TOSA SINGLE_ROUND style); "
                "the multiplier formed in float64 and encoded with ties away from zero; "
                "quantize divides in float32 and rounds half to even.",
    requant=Recipe(kind="fixed_point", rounding="half_up", double_round="none",
                   scale_dtype="float64", multiplier_rounding="half_away_from_zero"),
    quantize=QuantizeRecipe(method="divide", rounding="half_to_even", float_dtype="float32"),
))

register(Profile(
    name="fixed-point-double-round",
    description="gemmlowp-style requantization: SaturatingRoundingDoublingHighMul "
                "then a rounding right shift with ties away from zero (two rounding steps).",
    requant=Recipe(kind="fixed_point", rounding="half_away_from_zero", double_round="gemmlowp",
                   scale_dtype="float64", multiplier_rounding="half_away_from_zero"),
    quantize=QuantizeRecipe(method="divide", rounding="half_away_from_zero", float_dtype="float32"),
))

register(Profile(
    name="float32-half-to-even",
    description="float requantization: float32(acc) * float32(multiplier), one float32 "
                "rounding, then round half to even; the multiplier formed in float32.",
    requant=Recipe(kind="float", rounding="half_to_even", float_dtype="float32",
                   scale_dtype="float32"),
    quantize=QuantizeRecipe(method="divide", rounding="half_to_even", float_dtype="float32"),
))


# ---------------------------------------------------------------------------
# Vendor profiles (spec/profiles/*.md; tests/profiles/ prove them)
# ---------------------------------------------------------------------------

#: ONNX as written (spec/profiles/onnx.md): float requantization with the
#: multiplier formed from the float32 scales in float32 (onnx.reference) and
#: applied in float64, rounded half to even, then the zero point added.
_ONNX_REQUANT = Recipe(kind="float", rounding="half_to_even", float_dtype="float64",
                       scale_dtype="float32")

register(Profile(
    name="onnx",
    description="The ONNX operator specifications as written: y = saturate(round(acc * m) + zp) "
                "with m = s_a * s_b / s_y formed in float32 from the float32 scales (as "
                "onnx.reference does) and the product acc * m in float64, rounded half to even; "
                "QuantizeLinear divides in float32 (the scale's type) and rounds half to even.",
    requant=_ONNX_REQUANT,
    quantize=QuantizeRecipe(method="divide", rounding="half_to_even", float_dtype="float32"),
))

#: ONNX Runtime 1.32, CPU execution provider, x86-64 (spec/profiles/ort-cpu-x86.md):
#: MLAS requantizes float32(acc) * float32((s_a * s_b) / s_y), half to even,
#: then adds the zero point (QLinearConv, QLinearMatMul, QGemm).
_ORT_REQUANT = Recipe(kind="float", rounding="half_to_even", float_dtype="float32",
                      scale_dtype="float32")
_ORT_OP_RECIPES = {
    # com.microsoft.QLinearAdd (MLAS, AVX2/AVX-512): two float32 FMAs with s_a/s_y, s_b/s_y
    "add": Recipe(kind="float", rounding="half_to_even", float_dtype="float32",
                  scale_dtype="float32", add_form="ratio_fma"),
    # com.microsoft.QLinearMul: fl32(fl32(acc) * m) + zp, rounded after the zero point
    "mul": Recipe(kind="float", rounding="half_to_even", float_dtype="float32",
                  scale_dtype="float32", zero_point_in_float=True),
    # com.microsoft.QLinearAveragePool: the taps dequantized to float32, summed,
    # divided by the count, then nearbyintf(avg / s_y + zp) -- equal scales too
    "avg_pool2d": Recipe(kind="float", rounding="half_to_even", float_dtype="float32",
                         scale_dtype="float32", zero_point_in_float=True, average_form="float_average"),
}
_ORT_QUANTIZE = QuantizeRecipe(method="divide", rounding="half_to_even", float_dtype="float32")

register(Profile(
    name="ort-cpu-x86",
    description="ONNX Runtime 1.32 CPU provider on x86-64 with AVX2 (or AVX-512) but no VNNI: "
                "MLAS float32 requantization, half to even; u8 x s8 products summed in pairs "
                "saturated to int16 (VPMADDUBSW), except depthwise convolutions; QLinearAdd and "
                "QLinearMul in their own float32 forms.",
    requant=_ORT_REQUANT,
    quantize=_ORT_QUANTIZE,
    pairwise_int16_saturation=True,
    pairwise_exempt_depthwise=True,
    op_recipes=_ORT_OP_RECIPES,
))

register(Profile(
    name="ort-cpu-x86-vnni",
    description="ort-cpu-x86 on a CPU with AVX-VNNI, AVX512-VNNI or AMX-INT8: the same "
                "arithmetic, but u8 x s8 products accumulate exactly (VPDPBUSD / TDPBUSD).",
    requant=_ORT_REQUANT,
    quantize=_ORT_QUANTIZE,
    op_recipes=_ORT_OP_RECIPES,
))


def get_profile(name: str, where: str = "model") -> Profile:
    if not isinstance(name, str) or name not in PROFILES:
        raise ValidationError(f"{where}: unknown semantic profile {name!r} "
                              f"(known: {', '.join(sorted(PROFILES))})")
    return PROFILES[name]
