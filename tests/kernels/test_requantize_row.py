"""requantize_row, the output stage of every kernel: scalar and AVX2 against
qnnref.arith.requantize_output, bit for bit, for every recipe kind, rounding
mode, output dtype, zero point and clamp range, per tensor and per channel,
on gemmlowp's edge accumulators, ties and random values, with every shift of
the encoded multiplier."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_kernels
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnref import Recipe, dtypes
from qnnref import _kernels
from qnnref.arith import ROUNDING_MODES, SHIFT_MAX, SHIFT_MIN, RequantParams, requantize_output
from qnnref.errors import RuntimeCheckError

pytestmark = needs_kernels

if _kernels.available():
    from qnnref._kernels._common import DTYPE_CODES, pack_requant
    from qnnref._kernels._ext import requantize_row_test

ISAS = _kernels.available_isas()
OUT_DTYPES = ("int8", "uint8", "int16", "int32", "int4", "uint4")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def edge_accumulators() -> np.ndarray:
    """gemmlowp's edge values (as tests/conftest.py edge_values_int32:
    +-2^i + {-2..2}, INT32_MIN/MAX +- k) and more ties: +-(2^i + 2^(i-1)) + {-1, 0, 1}."""
    vals = {0, 1, -1, 2, -2, INT32_MIN, INT32_MAX}
    for i in range(32):
        for d in (-2, -1, 0, 1, 2):
            vals.update({2**i + d, -(2**i) + d})
    for k in range(8):
        vals.update({INT32_MIN + k, INT32_MAX - k})
    for i in range(1, 32):
        for d in (-1, 0, 1):
            vals.update({2**i + 2**(i - 1) + d, -(2**i + 2**(i - 1)) + d})
    return np.array(sorted(v for v in vals if INT32_MIN <= v <= INT32_MAX), dtype=np.int64)


ALL_RECIPES = (
    [Recipe(kind="fixed_point", rounding=m) for m in ROUNDING_MODES]
    + [Recipe(kind="fixed_point", rounding=m, double_round="gemmlowp") for m in ROUNDING_MODES]
    + [Recipe(kind="fixed_point", rounding="half_up", double_round="tosa")]
    + [Recipe(kind="float", rounding=m, float_dtype="float32") for m in ROUNDING_MODES]
    + [Recipe(kind="float", rounding=m, float_dtype="float64") for m in ROUNDING_MODES]
)


def recipe_id(r: Recipe) -> str:
    return f"{r.kind}-{r.double_round if r.kind == 'fixed_point' else r.float_dtype}-{r.rounding}"


def make_params(recipe: Recipe, rng, n: int, shifts=None, power_of_two=False) -> RequantParams:
    """n random multipliers (n = 1: per tensor, a 0-d array). Fixed point:
    M in [2^30, 2^31) (or 2^30, which makes ties) and every shift; float:
    real multipliers from 2^-40 to 2^40 (products beyond float32 included)."""
    if recipe.kind == "fixed_point":
        if shifts is None:
            shifts = rng.integers(SHIFT_MIN, SHIFT_MAX, size=n, endpoint=True)
        if power_of_two:
            mult = np.full(n, 2**30)
        else:
            mult = rng.integers(2**30, 2**31 - 1, size=n, endpoint=True)
            mult[: min(n, 2)] = [2**31 - 1, 2**30][: min(n, 2)]
        shifts = np.asarray(shifts, np.int64)
        real = mult.astype(np.float64) * np.exp2(shifts - 31.0)
        arrays = (real, mult.astype(np.int32), shifts.astype(np.int32))
    else:
        if power_of_two:
            real = np.exp2(rng.integers(-30, 4, size=n).astype(np.float64))     # ties
        else:
            real = np.exp2(rng.uniform(-40, 40, size=n))
        arrays = (real, None, None)
    if n == 1:
        arrays = tuple(None if a is None else a.reshape(()) for a in arrays)
    return RequantParams(recipe, *arrays)


def reference(acc, params: RequantParams, zp, dtype, act):
    """requantize_output, or None when it raises the REQUIRE failure."""
    try:
        return requantize_output(acc, params, zp, dtype, *act)
    except RuntimeCheckError:
        return None


def check_row(acc, params: RequantParams, zp, dtype, act=(None, None), ch0=0):
    """One requantize_row call per ISA over acc (channels ch0 + i) against
    the reference; returns the reference output (None if it raised)."""
    acc = np.asarray(acc, np.int64)
    n = acc.size
    per_channel = np.ndim(params.real) > 0
    if per_channel:   # the reference sees one parameter per element
        sl = slice(ch0, ch0 + n)
        ref_params = RequantParams(params.recipe, params.real[sl],
                                   None if params.multiplier is None else params.multiplier[sl],
                                   None if params.shift is None else params.shift[sl])
    else:
        ref_params = params
    want = reference(acc, ref_params, zp, dtype, act)
    pack = pack_requant(params, zp, dtype, *act)
    acc32 = np.ascontiguousarray(acc, dtype=np.int32)
    for isa in ISAS:
        got, status = requantize_row_test(_kernels.ISA_CODES[isa], acc32, pack, ch0, DTYPE_CODES[dtype])
        if want is None:
            assert status == 1, (isa, "the reference raised; the kernel must ask for it")
            continue
        assert status == 0, isa
        assert got.dtype == want.dtype
        if not np.array_equal(got, want):
            bad = np.flatnonzero(got != want)
            i = int(bad[0])
            c = ch0 + i if per_channel else 0
            detail = (f"M={params.multiplier.reshape(-1)[c]}, shift={params.shift.reshape(-1)[c]}"
                      if params.multiplier is not None else f"real={params.real.reshape(-1)[c]!r}")
            raise AssertionError(f"{isa}: {len(bad)} of {n} differ; first acc={acc[i]} ({detail}, zp={zp}, "
                                 f"{dtype}, act={act}): kernel {got[i]}, reference {want[i]}")
    return want


def gemmlowp_safe(acc, params: RequantParams, ch0=0):
    """acc clipped so that acc * 2^max(shift, 0) fits int32 (per element)."""
    left = np.maximum(np.asarray(params.shift, np.int64).reshape(-1), 0)
    if left.size > 1:
        left = left[ch0: ch0 + acc.size]
    return np.clip(acc, -(2**31 >> left), (2**31 - 1) >> left)


def accumulators(rng, n_random=700):
    acc = np.concatenate([edge_accumulators(), rng.integers(INT32_MIN, INT32_MAX, n_random, endpoint=True),
                          rng.integers(-3000, 3000, n_random)])
    return rng.permutation(acc)


def zero_point_cases(dtype):
    dt = dtypes.get(dtype)
    return sorted({dt.min, dt.max, 0 if dt.min <= 0 else dt.min, (dt.min + dt.max) // 2})


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=recipe_id)
def test_per_channel_every_shift(recipe, rng):
    """Per-channel: one long row whose channels cycle through every shift, at
    a misaligned first channel; every output dtype and extreme zero point."""
    acc = accumulators(rng)
    ch0 = 3
    shifts = np.resize(np.arange(SHIFT_MIN, SHIFT_MAX + 1), ch0 + acc.size)
    params = make_params(recipe, rng, ch0 + acc.size, shifts=rng.permutation(shifts))
    if recipe.double_round == "gemmlowp":
        check_row(acc, params, 0, "int8", ch0=ch0)          # the REQUIRE fails somewhere
        acc = gemmlowp_safe(acc, params, ch0)
    for dtype in OUT_DTYPES:
        for zp in zero_point_cases(dtype):
            assert check_row(acc, params, zp, dtype, ch0=ch0) is not None


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=recipe_id)
def test_per_tensor_every_shift(recipe, rng):
    """Per tensor: every shift (float: random multipliers), int8 and int32
    outputs, a fused activation range."""
    acc = accumulators(rng, 200)
    shifts = range(SHIFT_MIN, SHIFT_MAX + 1) if recipe.kind == "fixed_point" else range(40)
    for i, shift in enumerate(shifts):
        params = make_params(recipe, rng, 1, shifts=[shift])
        a = gemmlowp_safe(acc, params) if recipe.double_round == "gemmlowp" else acc
        dtype = ("int8", "int32", "uint8", "int16")[i % 4]
        dt = dtypes.get(dtype)
        act = (None, None) if i % 3 else (dt.min // 2, dt.max // 3)
        check_row(a, params, int(rng.integers(dt.min, dt.max, endpoint=True)), dtype, act)


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=recipe_id)
@pytest.mark.parametrize("per_channel", [False, True])
def test_ties(recipe, per_channel, rng):
    """Multipliers that are powers of two make exact ties for many edge
    accumulators: every rounding mode decides them."""
    acc = edge_accumulators()
    for shift in range(SHIFT_MIN, SHIFT_MAX + 1, 3):
        n = acc.size if per_channel else 1
        params = make_params(recipe, rng, n, shifts=np.full(n, shift), power_of_two=True)
        a = gemmlowp_safe(acc, params) if recipe.double_round == "gemmlowp" else acc
        check_row(a, params, 0, "int32")
        check_row(a, params, -5, "int16")


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=recipe_id)
def test_int32_output_extreme_zero_points(recipe, rng):
    """int32 outputs with zero points at +-2^31 and clamp ranges that make
    lo - zp and hi - zp leave the int32 range (the kernels must not wrap)."""
    acc = accumulators(rng, 100)
    params = make_params(recipe, rng, 1, shifts=[rng.integers(-3, 3)])
    if recipe.double_round == "gemmlowp":
        acc = gemmlowp_safe(acc, params)
    for zp, act in [(INT32_MIN, (None, None)), (INT32_MAX, (None, None)), (INT32_MIN, (5, None)),
                    (INT32_MAX, (None, -5)), (INT32_MIN, (INT32_MAX - 1, None)), (-7, (-100, 100)),
                    (INT32_MAX, (INT32_MIN, INT32_MIN + 3))]:
        check_row(acc, params, zp, "int32", act)


@pytest.mark.parametrize("per_channel", [False, True])
def test_gemmlowp_overflow_detected_at_every_position(per_channel, rng):
    """The REQUIRE (acc * 2^shift fits int32) fails at one element only, at
    each position of a row in turn: every ISA reports it (status 1)."""
    recipe = Recipe(kind="fixed_point", rounding="half_away_from_zero", double_round="gemmlowp")
    n = 37
    params = make_params(recipe, rng, n if per_channel else 1, shifts=np.full(n if per_channel else 1, 4))
    for pos in range(n):
        acc = np.full(n, 2**26 - 1, np.int64)          # 2^26 * 2^4 = 2^30 fits
        acc[pos] = 2**27 if pos % 2 else -(2**27) - 1   # 2^31 does not, nor -2^31 - 16
        assert check_row(acc, params, 0, "int8") is None


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 15, 16, 17, 31, 33])
def test_short_rows(n, rng):
    for recipe in ALL_RECIPES:
        acc = rng.integers(-2**20, 2**20, n)
        params = make_params(recipe, rng, 4 + n, shifts=rng.integers(-20, 0, 4 + n))
        check_row(acc, params, 3, "int8", ch0=4)
        check_row(acc, make_params(recipe, rng, 1, shifts=[-10]), -3, "uint4")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ALL_RECIPES), st.sampled_from(OUT_DTYPES), st.integers(SHIFT_MIN, SHIFT_MAX),
       st.integers(2**30, 2**31 - 1), st.data())
def test_property(recipe, dtype, shift, mult, data):
    dt = dtypes.get(dtype)
    acc = np.array(data.draw(st.lists(st.integers(INT32_MIN, INT32_MAX), min_size=8, max_size=40)), np.int64)
    zp = data.draw(st.integers(dt.min, dt.max))
    real = np.float64(mult) * 2.0 ** (shift - 31)
    if recipe.kind == "fixed_point":
        params = RequantParams(recipe, np.asarray(real), np.asarray(mult, np.int32), np.asarray(shift, np.int32))
    else:
        params = RequantParams(recipe, np.asarray(real), None, None)
    check_row(acc, params, zp, dtype)


@pytest.mark.skipif("avx2" not in ISAS, reason="no AVX2")
def test_speed_hot_path_reported(rng, capsys):
    """Not a pass/fail bound: prints G elements/s of the hot recipes (pytest -s)."""
    import time
    acc = rng.integers(-2**24, 2**24, 1 << 20).astype(np.int32)
    for recipe in (Recipe(), Recipe(kind="float", rounding="half_to_even")):
        params = make_params(recipe, rng, 1, shifts=[-8])
        pack = pack_requant(params, 3, "int8")
        for isa in ISAS:
            requantize_row_test(_kernels.ISA_CODES[isa], acc, pack, 0, DTYPE_CODES["int8"])
            t = time.perf_counter()
            for _ in range(5):
                requantize_row_test(_kernels.ISA_CODES[isa], acc, pack, 0, DTYPE_CODES["int8"])
            dt = (time.perf_counter() - t) / 5
            with capsys.disabled():
                print(f"\n  requantize_row {recipe_id(recipe)} {isa}: {acc.size / dt / 1e9:.2f} G elements/s")
