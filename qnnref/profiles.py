"""Semantic profiles: named sets of arithmetic recipes.

A model names its profile in its metadata (``metadata["profile"]``); every
operator that rounds takes its recipe from there, unless the node carries its
own ``recipe`` attribute (a Recipe as a JSON object). A profile is data: a new
vendor behaviour is a new entry here, not a new code path in the operators.

Profiles that emulate a vendor (``onnx``, ``ort-cpu-x86``, ``tflite-...``,
``tosa-...``) are added together with the conformance tests that prove them;
the profiles below are defined by their recipes alone.
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
    #: with int16 saturation before int32 accumulation (x86 VPMADDUBSW)
    pairwise_int16_saturation: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


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


def get_profile(name: str, where: str = "model") -> Profile:
    if not isinstance(name, str) or name not in PROFILES:
        raise ValidationError(f"{where}: unknown semantic profile {name!r} "
                              f"(known: {', '.join(sorted(PROFILES))})")
    return PROFILES[name]
