"""Shared test helpers: seeded random generators, edge-value sets,
hypothesis strategies, the recipes every compute operator is tested under,
the spec-page check, and builders of one-node models. The exact oracles are
in tests/oracles.py."""
from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

from qnnref import GraphBuilder, Recipe, dtypes
from qnnref.profiles import PROFILES

import vendor_cpu

ROOT = Path(__file__).resolve().parents[1]


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """$QNNREF_TEST_VENDOR_CPU (tests/vendor_cpu.py): hide CPU features from
    every ONNX Runtime of this run, before any test module imports it. Last,
    after pytest's faulthandler: the CPUID shim's SIGSEGV handler must be
    the one installed (faulthandler's would turn a masked CPUID into a crash)."""
    try:
        vendor_cpu.apply()
    except RuntimeError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_report_header(config):
    cpu = vendor_cpu.requested()
    if cpu != "native":
        return f"vendor runtimes see: {cpu} ({vendor_cpu.ENV}; features hidden from CPUID)"
    return None
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def edge_values_int32() -> np.ndarray:
    """gemmlowp's edge values: 2^i + {-2..2} and their negatives for every i,
    INT32_MIN/MAX +- k, clipped to int32 and deduplicated."""
    vals = {0, 1, -1, 2, -2, INT32_MIN, INT32_MAX}
    for i in range(32):
        for d in (-2, -1, 0, 1, 2):
            vals.add(2**i + d)
            vals.add(-(2**i) + d)
    for k in range(8):
        vals.add(INT32_MIN + k)
        vals.add(INT32_MAX - k)
    return np.array(sorted(v for v in vals if INT32_MIN <= v <= INT32_MAX), dtype=np.int64)


def all_values(dtype_name: str) -> np.ndarray:
    """Every value of a small integer dtype, in its in-memory numpy dtype."""
    dt = dtypes.get(dtype_name)
    return np.arange(dt.min, dt.max + 1).astype(dt.numpy)


def random_ints(rng: np.random.Generator, dtype_name: str, shape, lo=None, hi=None) -> np.ndarray:
    dt = dtypes.get(dtype_name)
    lo = dt.min if lo is None else lo
    hi = dt.max if hi is None else hi
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dt.numpy)


def random_values(rng: np.random.Generator, dtype_name: str, shape, kind: str) -> np.ndarray:
    """Values of a dtype: uniform over its range ("random") or only its two
    extremes ("extremes")."""
    dt = dtypes.get(dtype_name)
    if kind == "extremes":
        return rng.choice([dt.min, dt.max], size=shape).astype(dt.numpy)
    return random_ints(rng, dtype_name, shape)


def random_zero_point(rng: np.random.Generator, dtype_name: str, kind: str, n=None):
    """A zero point of a dtype ("min", "max", "zero" or "random"); with n,
    n of them (per-channel)."""
    dt = dtypes.get(dtype_name)
    pick = {"min": dt.min, "max": dt.max, "zero": 0 if dt.min <= 0 else dt.min}
    if kind in pick:
        z = pick[kind]
        return z if n is None else np.full(n, z)
    return int(rng.integers(dt.min, dt.max, endpoint=True)) if n is None else \
        rng.integers(dt.min, dt.max, size=n, endpoint=True)


def float32_scales(min_exp: int = -12, max_exp: int = 2):
    """A hypothesis strategy: float32 scales 2^e * (1 + f), e in [min_exp, max_exp], f in [0, 1)."""
    return st.builds(lambda e, f: float(np.float32(2.0**e * (1 + f))), st.integers(min_exp, max_exp),
                     st.floats(0, 1, exclude_max=True))


#: operand shapes of the elementwise binary operators: equal, broadcast both ways, scalar
BROADCAST_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 4)), ((1,), (2, 2)), ((2, 3, 1), (3, 2)),
                    ((), (4,))]


@pytest.fixture
def rng():
    """A seeded generator, so failures reproduce."""
    return np.random.default_rng(20261126)


#: Every profile's requantization recipe, plus recipes no profile uses yet
#: (node-level ``recipe`` overrides).
RECIPES = {name: p.requant for name, p in PROFILES.items()}
RECIPES.update({
    "tosa-double-round": Recipe(kind="fixed_point", rounding="half_up", double_round="tosa"),
    "fixed-half-to-even-f32": Recipe(kind="fixed_point", rounding="half_to_even", scale_dtype="float32"),
    "float64-half-away": Recipe(kind="float", rounding="half_away_from_zero", float_dtype="float64",
                                scale_dtype="float64"),
})


def assert_spec_shows_the_source(op: str, names: list[str]) -> None:
    """spec/ops/OP.md shows exactly the functions ``names`` of
    qnnref/ops/OP.py as pseudocode, in that order, each verbatim."""
    text = (ROOT / "spec" / "ops" / f"{op}.md").read_text()
    blocks = re.findall(rf"<!-- source: qnnref/ops/{op}\.py (\w+) -->\n```python\n(.*?)```", text, re.S)
    assert [name for name, _ in blocks] == names
    module = importlib.import_module(f"qnnref.ops.{op}")
    for name, code in blocks:
        assert code == inspect.getsource(getattr(module, name))


# ---------------------------------------------------------------------------
# One-node models
# ---------------------------------------------------------------------------

SAME = object()         # "as the input", for the output's quantization


def node_attrs(recipe: Recipe | None = None, act=(None, None), **attrs) -> dict:
    """Node attributes, the unset ones (None) left out: ``recipe`` becomes
    its dict, ``act`` = (act_min, act_max) the fused activation range, a
    tuple a list."""
    attrs.update(recipe=None if recipe is None else recipe.to_dict(), act_min=act[0], act_max=act[1])
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items() if v is not None}


def unary_model(op, x_shape, attrs=None, dtype="int8", scale=None, zp=None, axis=None,
                out_scale=SAME, out_zp=SAME, out_axis=SAME, name=None, profile="qnnref"):
    """A model of one ``op`` node on the graph input "x"; its output is
    quantized like x unless out_scale / out_zp / out_axis say otherwise."""
    b = GraphBuilder(profile=profile)
    x = b.input("x", dtype, x_shape, scale=scale, zero_point=zp, axis=axis)
    y = b.node(op, [x], attrs, name=name, scale=scale if out_scale is SAME else out_scale,
               zero_point=zp if out_zp is SAME else out_zp, axis=axis if out_axis is SAME else out_axis)
    b.output(y)
    return b.build()


def binary_model(op, dtype, a_shape, b_shape, qa, qb, qy, recipe=None, profile="qnnref",
                 act=(None, None), name=None):
    """(model, output name) of one elementwise ``op`` node on the graph
    inputs "a" and "b"; qa, qb, qy are (scale, zero point) pairs."""
    b = GraphBuilder(profile=profile)
    x1 = b.input("a", dtype, a_shape, scale=qa[0], zero_point=qa[1])
    x2 = b.input("b", dtype, b_shape, scale=qb[0], zero_point=qb[1])
    y = b.node(op, [x1, x2], node_attrs(recipe, act), scale=qy[0], zero_point=qy[1], name=name)
    b.output(y)
    return b.build(), y


def weights_node(op, x, w, bias=None, bias_q=None, attrs=None, out_q=None, *, name):
    """Add one ``op`` node (matmul, conv2d) to a fresh GraphBuilder, for the
    ERROR_IF tests: x = (name, dtype, shape, quant) is a graph input, w the
    same for constant zero weights, bias an optional constant. A quant of
    None is the default (x: scale 0.1, zero point 0; w: scale 0.1; output:
    scale 0.5, zero point 0), {} unquantized. Returns the output's name."""
    g = GraphBuilder()
    (x_name, x_dtype, x_shape, x_q), (w_name, w_dtype, w_shape, w_q) = x, w
    ins = [g.input(x_name, x_dtype, x_shape, **({"scale": 0.1, "zero_point": 0} if x_q is None else x_q)),
           g.constant(w_name, np.zeros(w_shape, dtypes.get(w_dtype).numpy), dtype=w_dtype,
                      **({"scale": 0.1} if w_q is None else w_q))]
    if bias is not None:
        ins.append(g.constant("bias", bias, **(bias_q or {})))
    out_q = {"scale": 0.5, "zero_point": 0} if out_q is None else out_q
    return g.node(op, ins, attrs or {}, name=name, **out_q)


def run1(model, *arrays) -> np.ndarray:
    """The one output of ``model`` run on ``arrays``, one for each of its
    graph inputs, in order."""
    assert len(arrays) == len(model.inputs)
    (y,) = model.run({i.name: a for i, a in zip(model.inputs, arrays)}).values()
    return y


# The kernel-test helpers of tests/kernels/conftest.py, importable as
# ``from conftest import ...`` from tests/kernels (a package, so that its
# test modules may share basenames with tests/ops: kernels.test_matmul).
from kernels.conftest import assert_all_backends_agree, kernel_models, needs_kernels  # noqa: E402,F401
