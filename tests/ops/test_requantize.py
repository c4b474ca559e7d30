"""requantize: the spec's worked example, every profile against a Python-int
oracle (random cases and every int8 input), per-axis parameters, and the
ERROR_IF conditions."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from conftest import all_values
from hypothesis import given, settings
from hypothesis import strategies as st

import qnnref
from qnnref import GraphBuilder, Recipe
from qnnref.arith import combine_scales, prepare_requant
from qnnref.ops.requantize import requantize
from qnnref.profiles import PROFILES

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
RANGES = {"int4": (-8, 7), "uint4": (0, 15), "int8": (-128, 127), "uint8": (0, 255),
          "int16": (-(2**15), 2**15 - 1), "int32": (INT32_MIN, INT32_MAX)}
NP = {"int4": np.int8, "uint4": np.uint8, "int8": np.int8, "uint8": np.uint8,
      "int16": np.int16, "int32": np.int32}


# ---------------------------------------------------------------------------
# Oracle: Python integers and Fractions only (no qnnref.arith)
# ---------------------------------------------------------------------------

def round_frac(v: Fraction, mode: str) -> int:
    """Round a Fraction to an integer by a named rounding mode."""
    f = math.floor(v)
    r = v - f
    if mode == "floor":
        return f
    if mode == "ceil":
        return f + (r > 0)
    if mode == "truncate":
        return f + (r > 0 and v < 0)
    if r != Fraction(1, 2):
        return f + (r > Fraction(1, 2))
    return {"half_up": f + 1, "half_down": f, "half_away_from_zero": f + (v > 0),
            "half_to_even": f + (f % 2)}[mode]


def encode(real: float, mode: str) -> tuple[int, int]:
    """real ~= m * 2^(shift - 31), m in [2^30, 2^31)."""
    q, e = math.frexp(real)
    m = round_frac(Fraction(q) * 2**31, mode)
    if m == 2**31:
        m, e = m // 2, e + 1
    return m, e


def py_srdhm(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    n = a * b + (2**30 if a * b >= 0 else 1 - 2**30)
    q = abs(n) // 2**31                       # C division truncates toward zero
    return q if n >= 0 else -q


def py_apply(acc: int, real, recipe: Recipe) -> int:
    """One accumulator through one recipe. Raises OverflowError where the
    recipe's REQUIRE fails (gemmlowp: acc * 2^shift beyond int32)."""
    if recipe.kind == "float":
        ft = np.float32 if recipe.float_dtype == "float32" else np.float64
        v = float(ft(acc) * ft(real))
        if math.isinf(v):
            return 2**40 if v > 0 else -(2**40)
        return max(-(2**40), min(2**40, round_frac(Fraction(v), recipe.rounding)))
    m, sh = encode(float(real), recipe.multiplier_rounding)
    if recipe.double_round == "gemmlowp":
        x = acc * 2**max(sh, 0)
        if not INT32_MIN <= x <= INT32_MAX:
            raise OverflowError
        return round_frac(Fraction(py_srdhm(x, m), 2**max(-sh, 0)), recipe.rounding)
    total = 31 - sh
    if recipe.double_round == "tosa":
        bias = (2**30 if acc >= 0 else -(2**30)) if total > 31 else 0
        return (acc * m + bias + 2**(total - 1)) >> total
    return round_frac(Fraction(acc * m, 2**total), recipe.rounding)


def py_real(s_num: list, s_den, scale_dtype: str):
    """(s_num[0] * s_num[1] * ...) / s_den from float32 scales, in scale_dtype."""
    ft = np.float32 if scale_dtype == "float32" else np.float64
    m = ft(np.float32(s_num[0]))
    for s in s_num[1:]:
        m = ft(m * ft(np.float32(s)))
    return ft(m / ft(np.float32(s_den)))


def py_requantize(x: int, zp_x: int, real, recipe: Recipe, zp_y: int, dtype: str) -> int:
    lo, hi = RANGES[dtype]
    return max(lo, min(hi, py_apply(x - zp_x, real, recipe) + zp_y))


# Every profile, plus recipes no profile uses yet (node-level overrides).
RECIPES = {name: p.requant for name, p in PROFILES.items()}
RECIPES.update({
    "tosa-double-round": Recipe(kind="fixed_point", rounding="half_up", double_round="tosa"),
    "fixed-half-to-even-f32": Recipe(kind="fixed_point", rounding="half_to_even", scale_dtype="float32"),
    "float64-half-away": Recipe(kind="float", rounding="half_away_from_zero", float_dtype="float64",
                                scale_dtype="float64"),
    "fixed-floor-mult-half-even": Recipe(kind="fixed_point", rounding="floor",
                                         multiplier_rounding="half_to_even"),
})


def build(x_dtype, shape, s_x, zp_x, y_dtype, s_y, zp_y, recipe: Recipe | None = None,
          profile="qnnref", x_axis=None, y_axis=None, name="rq"):
    b = GraphBuilder(profile=profile)
    x = b.input("x", x_dtype, shape, scale=s_x, zero_point=zp_x, axis=x_axis)
    attrs = {"dtype": y_dtype}
    if recipe is not None:
        attrs["recipe"] = recipe.to_dict()
    y = b.node("requantize", [x], attrs, scale=s_y, zero_point=zp_y, axis=y_axis, name=name)
    b.output(y)
    return b.build(), y


# ---------------------------------------------------------------------------
# Worked example (spec/ops/requantize.md)
# ---------------------------------------------------------------------------

def test_worked_example():
    model, y = build("int8", (4,), 0.5, 1, "uint8", 0.25, 128)
    out = model.run(np.array([1, 3, -128, 127], np.int8))[y]
    assert out.dtype == np.uint8
    assert out.tolist() == [128, 132, 0, 255]


def test_worked_example_multiplier_encoding():
    params = prepare_requant(combine_scales([np.float32(0.5)], np.float32(0.25), "float64"),
                             PROFILES["qnnref"].requant)
    assert (int(params.multiplier), int(params.shift)) == (2**30, 2)


# ---------------------------------------------------------------------------
# Property tests against the oracle, per recipe
# ---------------------------------------------------------------------------

def scales():
    """Float32 scales from 2^-12 to 2^4 with random mantissas."""
    return st.builds(lambda e, f: float(np.float32(2.0**e * (1 + f))),
                     st.integers(-12, 3), st.floats(0, 1, exclude_max=True))


@pytest.mark.parametrize("recipe_name", sorted(RECIPES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_matches_python_int_oracle(recipe_name, data):
    recipe = RECIPES[recipe_name]
    x_dtype = data.draw(st.sampled_from(["int4", "uint4", "int8", "uint8", "int16", "int32"]))
    y_dtype = data.draw(st.sampled_from(["int4", "uint4", "int8", "uint8", "int16"]))
    s_x, s_y = data.draw(scales()), data.draw(scales())
    lo, hi = RANGES[x_dtype]
    zp_x = data.draw(st.integers(lo, hi)) if x_dtype != "int32" else 0
    zp_y = data.draw(st.integers(*RANGES[y_dtype]))
    if x_dtype == "int32":       # keep x - zp_x within the recipes' int32 contract
        lo, hi = -(2**24), 2**24
    xs = data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=16))
    model, y = build(x_dtype, (len(xs),), s_x, zp_x, y_dtype, s_y, zp_y, recipe)
    real = py_real([s_x], s_y, recipe.scale_dtype)
    try:
        want = [py_requantize(v, zp_x, real, recipe, zp_y, y_dtype) for v in xs]
    except OverflowError:
        with pytest.raises(qnnref.RuntimeCheckError, match="'rq'"):
            model.run(np.array(xs, NP[x_dtype]))
        return
    got = model.run(np.array(xs, NP[x_dtype]))[y]
    assert got.dtype == NP[y_dtype]
    assert got.tolist() == want


@pytest.mark.parametrize("recipe_name", sorted(RECIPES))
@pytest.mark.parametrize("s_x,zp_x,s_y,zp_y,y_dtype", [
    (0.5, 1, 0.25, 128, "uint8"),            # the worked example
    (0.0123, -7, 0.0456, 3, "int8"),         # ratio < 1, inexact
    (0.1, 0, 0.1 / 3, -128, "int8"),         # ratio ~3, many ties under some roundings
    (1 / 255, 100, 1 / 127, 0, "int16"),
    (0.02, -128, 0.02, 127, "int8"),         # ratio 1, extreme zero points
])
def test_every_int8_input(recipe_name, s_x, zp_x, s_y, zp_y, y_dtype):
    recipe = RECIPES[recipe_name]
    x = all_values("int8")
    model, y = build("int8", (256,), s_x, zp_x, y_dtype, s_y, zp_y, recipe)
    real = py_real([s_x], s_y, recipe.scale_dtype)
    want = [py_requantize(int(v), zp_x, real, recipe, zp_y, y_dtype) for v in x]
    assert model.run(x)[y].tolist() == want


def test_ties_follow_the_recipe_rounding():
    # multiplier exactly 1/2: x - zp_x = 2k + 1 lands on a tie.
    x = np.arange(-7, 8, 2, dtype=np.int8)                        # -7, -5, ..., 7
    half = [int(v) / 2 for v in x]
    expected = {
        "half_up": [math.floor(v + 0.5) for v in half],
        "half_down": [math.ceil(v - 0.5) for v in half],
        "half_away_from_zero": [int(math.copysign(math.floor(abs(v) + 0.5), v)) for v in half],
        "half_to_even": [round(v) for v in half],                 # Python rounds half to even
        "floor": [math.floor(v) for v in half],
        "ceil": [math.ceil(v) for v in half],
        "truncate": [math.trunc(v) for v in half],
    }
    for mode, want in expected.items():
        model, y = build("int8", (len(x),), 0.5, 0, "int8", 1.0, 0, Recipe(rounding=mode))
        assert model.run(x)[y].tolist() == want, mode


# ---------------------------------------------------------------------------
# Per-axis
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("recipe_name", ["qnnref", "fixed-point-double-round", "float32-half-to-even"])
@pytest.mark.parametrize("x_axis,y_axis", [(1, None), (None, 1), (1, 1), (0, None)])
def test_per_axis(recipe_name, x_axis, y_axis, rng):
    recipe = RECIPES[recipe_name]
    shape = (3, 4)
    s_x = rng.uniform(0.01, 0.2, size=shape[x_axis]) if x_axis is not None else 0.05
    zp_x = rng.integers(-20, 20, size=shape[x_axis]) if x_axis is not None else 3
    s_y = rng.uniform(0.01, 0.2, size=shape[y_axis]) if y_axis is not None else 0.07
    zp_y = rng.integers(-20, 20, size=shape[y_axis]) if y_axis is not None else -4
    x = rng.integers(-128, 128, size=shape).astype(np.int8)
    model, y = build("int8", shape, s_x, zp_x, "int8", s_y, zp_y, recipe, x_axis=x_axis, y_axis=y_axis)
    got = model.run(x)[y]

    def pick(v, axis, i, j):
        if axis is None:
            return v
        return v[(i, j)[axis]]

    for i in range(shape[0]):
        for j in range(shape[1]):
            real = py_real([pick(s_x, x_axis, i, j)], pick(s_y, y_axis, i, j), recipe.scale_dtype)
            want = py_requantize(int(x[i, j]), int(pick(zp_x, x_axis, i, j)), real, recipe,
                                 int(pick(zp_y, y_axis, i, j)), "int8")
            assert got[i, j] == want, (i, j)


def test_reference_function_directly():
    # the function of the spec's pseudocode, with prepared parameters
    params = prepare_requant(np.float64(2.0), PROFILES["qnnref"].requant)
    y = requantize(np.array([1, 3, -128, 127], np.int8), np.int64(1), params, np.int64(128), "uint8")
    assert y.tolist() == [128, 132, 0, 255]


# ---------------------------------------------------------------------------
# ERROR_IF
# ---------------------------------------------------------------------------

def test_error_unquantized_input():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,))
    with pytest.raises(qnnref.ValidationError, match="'bad'.*must be quantized"):
        b.node("requantize", [x], {"dtype": "int8"}, scale=0.1, name="bad")


def test_error_different_axes():
    b = GraphBuilder()
    x = b.input("x", "int8", (2, 3), scale=[0.1, 0.2], zero_point=0, axis=0)
    with pytest.raises(qnnref.ValidationError, match="'bad'.*different axes"):
        b.node("requantize", [x], {"dtype": "int8"}, scale=[0.1, 0.2, 0.3], axis=1, name="bad")


def test_error_bad_output_dtype():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="'bad'.*dtype"):
        b.node("requantize", [x], {"dtype": "int32"}, scale=0.1, name="bad")


def test_error_multiplier_out_of_range():
    b = GraphBuilder()
    x = b.input("x", "int8", (2,), scale=2.0**10)
    with pytest.raises(qnnref.ValidationError, match="'bad'.*multiplier"):
        b.node("requantize", [x], {"dtype": "int8"}, scale=2.0**-25, name="bad")
