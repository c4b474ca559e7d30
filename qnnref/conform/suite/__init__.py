"""The built-in conformance suite: seeded, generated ONNX cases.

Each :class:`Case` is one small ONNX model (a single operator, a QDQ
pattern, or a small graph) plus its input arrays. Case ``i`` of operator
group ``op`` is generated from its own random generator, seeded by
``(seed, crc32(op), i)``: the same seed always gives the same bytes, and a
smaller suite (``--cases``, ``--ops``) is a subset of the full one.

What the generators vary (spec/conformance.md lists it per operator):

* dtypes: u8/s8 activations, s8/u8 weights (u8s8, u8u8, s8s8 and, for the
  integer-output operators, s8u8), 16-bit and 4-bit types where ONNX
  Runtime takes them (QuantizeLinear / DequantizeLinear, DQ of int4 weights);
* shapes and geometry: sizes not multiples of any vector width, 1x1 and
  odd kernels, strides, dilations, pads, groups and depthwise, batches,
  broadcasting;
* zero points (random, at the ends of the range, middle, zero), scales
  (random, powers of two), per-tensor and per-channel weights, bias;
* value regimes (:data:`REGIMES`): random, narrow, ``saturate`` (all-255
  activations against +-127 weights: the u8 x s8 int16 pair overflow),
  ``extremes``, ``ties`` (power-of-two scales: exact .5 requantization
  ties), ``large_acc`` (accumulators above 2^24, where float32 is no longer
  exact), ``zero``.
"""
from __future__ import annotations

import zlib

import numpy as np

from .data import QRANGE, REGIMES, Case  # noqa: F401  (the suite's public names)
from .elementwise import (
    gen_qlinearadd,
    gen_qlinearaveragepool,
    gen_qlinearconcat,
    gen_qlinearglobalaveragepool,
    gen_qlinearleakyrelu,
    gen_qlinearmul,
    gen_qlinearsigmoid,
)
from .graphs import gen_batch_graph, gen_graph
from .linear import (
    gen_convinteger,
    gen_matmulinteger,
    gen_qgemm,
    gen_qlinearconv,
    gen_qlinearmatmul,
)
from .qdq import (
    gen_dequantizelinear,
    gen_dynamic,
    gen_qdq_add,
    gen_qdq_conv,
    gen_qdq_matmul,
    gen_qdq_s8_input,
    gen_quantizelinear,
)

# ---------------------------------------------------------------------------
# The registry of report rows and the suite
# ---------------------------------------------------------------------------

#: report row -> (generator, number of cases in the full built-in suite)
GENERATORS: dict[str, tuple] = {
    "QLinearConv": (gen_qlinearconv, 260),
    "QLinearMatMul": (gen_qlinearmatmul, 200),
    "MatMulInteger": (gen_matmulinteger, 140),
    "ConvInteger": (gen_convinteger, 100),
    "QGemm": (gen_qgemm, 140),
    "QLinearAdd": (gen_qlinearadd, 120),
    "QLinearMul": (gen_qlinearmul, 100),
    "QLinearAveragePool": (gen_qlinearaveragepool, 110),
    "QLinearGlobalAveragePool": (gen_qlinearglobalaveragepool, 60),
    "QLinearConcat": (gen_qlinearconcat, 80),
    "QLinearSigmoid": (gen_qlinearsigmoid, 50),
    "QLinearLeakyRelu": (gen_qlinearleakyrelu, 60),
    "QuantizeLinear": (gen_quantizelinear, 130),
    "DequantizeLinear": (gen_dequantizelinear, 90),
    "QDQ Conv": (gen_qdq_conv, 140),
    "QDQ MatMul": (gen_qdq_matmul, 120),
    "QDQ Add": (gen_qdq_add, 80),
    "QDQ s8 float input": (gen_qdq_s8_input, 45),
    "graph": (gen_graph, 120),
    "graph (batch N)": (gen_batch_graph, 40),
    "Dynamic": (gen_dynamic, 80),
}

FULL_SUITE_SIZE = sum(n for _, n in GENERATORS.values())


def case_rng(seed: int, op: str, index: int) -> np.random.Generator:
    """The generator of case ``index`` of ``op``: independent of every other case."""
    return np.random.default_rng([seed, zlib.crc32(op.encode()), index])


def make_case(op: str, index: int, seed: int = 0) -> Case:
    gen, _ = GENERATORS[op]
    fields = gen(case_rng(seed, op, index), index)
    fields["tags"] = tuple(fields.get("tags", ()))
    return Case(id=f"{op}/{index:04d}", op=op, seed=(seed, op, index), builtin=True, **fields)


def counts(total: int | None = None, ops=None) -> dict[str, int]:
    """Cases per row: the full suite, or ``total`` shared in proportion
    (at least one per row asked for)."""
    rows = {op: n for op, (_, n) in GENERATORS.items() if ops is None or op in ops}
    if total is None:
        return rows
    full = sum(rows.values())
    out = {op: max(1, int(total * n // full)) for op, n in rows.items()}
    # give what rounding left over to the largest rows first
    for op in sorted(rows, key=lambda o: -rows[o]):
        if sum(out.values()) >= total:
            break
        out[op] += 1
    return out


def builtin_suite(seed: int = 0, total: int | None = None, ops=None):
    """Yield the built-in suite's cases, row by row (cases of a row in index order)."""
    if ops is not None:
        unknown = [o for o in ops if o not in GENERATORS]
        if unknown:
            raise ValueError(f"unknown operator(s) {unknown}; the suite has: {', '.join(GENERATORS)}")
    for op, n in counts(total, ops).items():
        for index in range(n):
            yield make_case(op, index, seed)
