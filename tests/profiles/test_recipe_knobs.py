"""The recipe knobs and primitives the vendor profiles added to qnnref.arith:
``fma_float32``, ``Recipe.zero_point_in_float``, ``Recipe.add_form``,
``Recipe.average_form``, and the profiles' per-operator recipes. (That they reproduce ONNX Runtime is
test_ort_profile.py; here: their definitions, against exact oracles.)"""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from qnnref import GraphBuilder, Recipe, ValidationError
from qnnref.arith import apply_requant, fma_float32, prepare_requant, requantize_output
from qnnref.profiles import PROFILES

F32 = np.float32


def round_to_f32(v: Fraction) -> np.float32:
    """The float32 nearest to the rational v, ties to even (normal range)."""
    f = F32(float(v))                      # within one float32 step of v
    best = None
    for c in (np.nextafter(f, F32(-np.inf)), f, np.nextafter(f, F32(np.inf))):
        d = abs(Fraction(float(c)) - v)
        key = (d, int(np.array(c, F32).view(np.int32)) & 1)
        if best is None or key < best[0]:
            best = (key, c)
    return best[1]


def test_fma_float32_is_correctly_rounded():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(3000).astype(F32)
    b = rng.standard_normal(3000).astype(F32)
    c = (rng.standard_normal(3000) * np.exp2(rng.integers(-30, 30, 3000))).astype(F32)
    # cases built to sit on a float32 midpoint after one float64 rounding:
    # a*b = 1 + 2^-23 + 2^-24 (a midpoint) + tiny, c cancels nothing
    a2 = np.array([1 + 2.0**-12] * 4, F32)
    b2 = np.array([1 + 2.0**-12] * 4, F32)                     # a*b = 1 + 2^-11 + 2^-24
    c2 = np.array([2.0**-40, -(2.0**-40), 0.0, 2.0**-60], F32)
    got = fma_float32(np.concatenate([a, a2]), np.concatenate([b, b2]), np.concatenate([c, c2]))
    for x, y, z, g in zip(np.concatenate([a, a2]), np.concatenate([b, b2]), np.concatenate([c, c2]), got):
        want = round_to_f32(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))
        assert g == want, (x, y, z, g, want)
    # the midpoint cases: ties to even without c, decided by the sign of c with it
    assert got[-4] == F32(1 + 2.0**-11 + 2.0**-23) and got[-3] == F32(1 + 2.0**-11)
    assert got[-2] == F32(1 + 2.0**-11)                           # exact tie: even


def test_fma_differs_from_two_roundings():
    # fl32(fl32(a*b) + c) rounds twice; a fused multiply-add once
    a, b, c = F32(1 + 2.0**-12), F32(1 + 2.0**-12), F32(-1)
    assert fma_float32(a, b, c) == F32(2.0**-11 + 2.0**-24)
    assert F32(a * b) + c == F32(2.0**-11)


def test_zero_point_in_float_rounds_after_the_zero_point():
    r = Recipe(kind="float", rounding="half_to_even", float_dtype="float32", scale_dtype="float32",
               zero_point_in_float=True)
    p = prepare_requant(F32(0.5), r)
    # 0.5 + 1 = 1.5 -> 2; round(0.5) + 1 = 1
    assert requantize_output(np.array([1, 3, -1]), p, 1, "int8").tolist() == [2, 2, 0]
    p0 = prepare_requant(F32(0.5), Recipe(kind="float", rounding="half_to_even", float_dtype="float32",
                                          scale_dtype="float32"))
    assert requantize_output(np.array([1, 3, -1]), p0, 1, "int8").tolist() == [1, 3, 1]
    # the float32 addition itself rounds: 33.49999237 + 116 is 149.5 in float32
    p1 = prepare_requant(F32(33.49999237060547), r)
    assert requantize_output(np.array([1]), p1, 116, "uint8").tolist() == [150]
    with pytest.raises(ValidationError, match="zero_point_in_float"):
        apply_requant(np.array([1]), p)


@pytest.mark.parametrize("bad, match", [
    (dict(kind="fixed_point", zero_point_in_float=True), "only to float recipes"),
    (dict(kind="float", zero_point_in_float="yes"), "true or false"),
    (dict(kind="float", add_form="fma"), "add_form must be"),
    (dict(kind="float", float_dtype="float64", add_form="ratio_fma"), "float32"),
    (dict(kind="fixed_point", add_form="ratio_fma"), "float32"),
    (dict(kind="float", average_form="float_sum"), "average_form must be"),
    (dict(kind="fixed_point", average_form="float_average"), "needs a float recipe"),
])
def test_invalid_knobs(bad, match):
    with pytest.raises(ValidationError, match=match):
        Recipe.from_dict(bad)


def test_the_knobs_are_written_only_when_set():
    for knob in ("add_form", "zero_point_in_float", "average_form"):
        assert knob not in Recipe().to_dict()
    r = Recipe(kind="float", zero_point_in_float=True, add_form="ratio_fma", average_form="float_average")
    d = json.loads(json.dumps(r.to_dict()))
    assert d["zero_point_in_float"] is True and d["add_form"] == "ratio_fma"
    assert d["average_form"] == "float_average"
    assert Recipe.from_dict(d) == r


def test_profiles_give_add_and_mul_their_own_recipes():
    for name in ("ort-cpu-x86", "ort-cpu-x86-vnni"):
        p = PROFILES[name]
        assert p.recipe_for("add").add_form == "ratio_fma"
        assert p.recipe_for("mul").zero_point_in_float
        pool = p.recipe_for("avg_pool2d")
        assert pool.average_form == "float_average" and pool.zero_point_in_float
        assert p.recipe_for("mean") == p.requant           # QLinearGlobalAveragePool: integer sum
        assert p.recipe_for("matmul") == p.requant and not p.requant.zero_point_in_float
    assert PROFILES["ort-cpu-x86"].pairwise_int16_saturation
    assert not PROFILES["ort-cpu-x86-vnni"].pairwise_int16_saturation
    assert PROFILES["onnx"].recipe_for("mul") == PROFILES["onnx"].requant
    assert PROFILES["onnx"].recipe_for("avg_pool2d").average_form == "integer_sum"


def test_a_node_recipe_overrides_the_profiles_operator_recipe():
    """mul under ort-cpu-x86 rounds after the zero point; a node recipe
    without the knob rounds first."""
    def mul_model(recipe=None):
        g = GraphBuilder(profile="ort-cpu-x86")
        a = g.input("a", "uint8", (1,), scale=1.0, zero_point=0)
        b = g.input("b", "uint8", (1,), scale=1.0, zero_point=0)
        g.output(g.node("mul", [a, b], {"recipe": recipe} if recipe else None, scale=2.0, zero_point=1))
        return g.build(backend="reference")
    one = np.array([1], np.uint8)
    assert next(iter(mul_model().run({"a": one, "b": one}).values())).tolist() == [2]        # round(1.5)
    plain = PROFILES["ort-cpu-x86"].requant.to_dict()
    assert next(iter(mul_model(plain).run({"a": one, "b": one}).values())).tolist() == [1]   # round(0.5) + 1
