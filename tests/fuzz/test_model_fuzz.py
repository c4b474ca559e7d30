"""Fuzzing the model-validation layer: semantically bad graphs.

tests/format/test_format_fuzz.py fuzzes the bytes of a .qnn file. Here every
graph is well formed as a file, but its meaning is mutated: attribute values
and kinds, operator names, input wiring, tensor dtypes, shapes and
quantization, constant data, metadata. Whatever the mutation:

* ``qnnref.Model(graph)`` (and ``qnnref.load`` of the same graph written to
  bytes) either succeeds or raises a ``qnnref.QnnError``;
* a model that loads runs on valid random inputs (per ``Model.inputs``) or
  raises a ``qnnref.QnnError``;
* nothing else escapes: no TypeError, IndexError, ValueError, OverflowError,
  MemoryError, AssertionError (an operator breaking its own output contract),
  no numpy warning (they are errors here), no hang (a hard per-example
  timeout), no huge allocation (a tracemalloc peak bound).

Two generators:

* seed models that together use every registered operator, mutated one to
  three times, then, half of the time, "fixed up": every node's output dtype
  and shape re-inferred, so that mutated attributes get past the
  declared-shape check and reach ``prepare`` and ``run``; now and then the
  containers get wrong Python types (graphs built in memory);
* one node of a random operator on plausible random inputs (the operator's
  dtypes, ranks, geometry, quantization with sometimes extreme scales and
  zero points), sometimes mutated.

While fuzzing, the model size limit (qnnref.graph.MAX_TENSOR_ELEMENTS) is
lowered to FUZZ_LIMIT, so that every big tensor must be refused, not run.
Below the fuzzers: each bug they found as a small regression example. The
size limit and the command line are tested in test_fuzz_limits.py and
test_cli_fuzz.py; seeds.py, harness.py and strategies.py hold the pieces.

``QNNREF_FUZZ_EXAMPLES=20000 python -m pytest tests/fuzz`` fuzzes for longer.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import qnnref
from hypothesis import given, settings
from hypothesis import strategies as st
from qnnref import Model, QnnError, ValidationError
from qnnref import format as qformat
from qnnref.graph import Graph, Node, Quant, TensorInfo
from qnnref.ops import operator_names

from .harness import (
    EXAMPLES,
    FUZZ,
    guarded,
    load_and_run,
    run_on_random_inputs,
    write_or_none,
)
from .seeds import SEED_GRAPHS, f32
from .strategies import mutated_graphs, single_node_graphs


def test_seeds_are_valid_and_use_every_operator():
    used = set()
    for name, g in SEED_GRAPHS.items():
        m = Model(copy.deepcopy(g))
        run_on_random_inputs(m, np.random.default_rng(0))
        used |= {n.op for n in g.nodes}
    assert used == set(operator_names()), f"operators without a seed: {set(operator_names()) - used}"



# ---------------------------------------------------------------------------
# The fuzz tests
# ---------------------------------------------------------------------------

@FUZZ
@given(mutated_graphs(), st.integers(0, 2**32 - 1))
def test_mutated_models_load_and_run_or_raise_qnn_errors(graph, seed):
    with guarded():
        load_and_run(graph, seed)


@FUZZ
@given(single_node_graphs(), st.integers(0, 2**32 - 1))
def test_random_single_node_models_load_and_run_or_raise_qnn_errors(graph, seed):
    with guarded():
        load_and_run(graph, seed)




@settings(FUZZ, max_examples=EXAMPLES or 300)
@given(mutated_graphs(), st.integers(0, 2**32 - 1))
def test_mutated_models_round_trip_through_bytes(graph, seed):
    """A model that loads in memory writes, reads back and gives the same
    bits; a graph refused in memory is refused when read from a file too."""
    with guarded():
        result = load_and_run(copy.deepcopy(graph), seed)
        data = write_or_none(graph)
        if data is None:
            assert result is None, "a model that validates must be writable"
            return
        try:
            loaded = qformat.from_bytes(data, name="fuzz.qnn")
        except QnnError:
            assert result is None, "a model that validates must be readable once written"
            return
        again = load_and_run(loaded.graph, seed)
        assert (result is None) == (again is None)
        if result is not None and result[2] is not None:
            assert again[2] is not None
            for name, arr in result[2].items():
                assert np.array_equal(arr, again[2][name], equal_nan=arr.dtype.kind == "f"), name


# ---------------------------------------------------------------------------
# Regressions: what the fuzzers found, each as a small example
# ---------------------------------------------------------------------------

def _edit(seed: str, fn):
    def make():
        g = copy.deepcopy(SEED_GRAPHS[seed])
        fn(g)
        return g
    return make


def _node(g: Graph, name: str) -> Node:
    return next(n for n in g.nodes if n.name == name)


def _requantize_int32_zero_point(g: Graph):
    acc = g.tensors["acc"]
    acc.quant = Quant(f32(2.0**-18 * (2 - 2.0**-23)), np.array(-(2**31), np.int32))
    acc.data = np.array([[2**31 - 1, 0, -(2**31)]], np.int32)
    _node(g, "rq_int32").attrs["dtype"] = "int16"
    g.tensors["rq_int32_out"] = TensorInfo("rq_int32_out", "int16", (1, 3), Quant(f32(1.0)))


def _one_huge_block(g: Graph):
    q = g.tensors["q4"].quant
    g.tensors["q4"].quant = Quant(q.scale[:, :, :1].copy(), q.zero_point[:, :, :1].copy(), 2, 2**40)


REGRESSIONS = {
    # np.prod(..., dtype=int64) raised OverflowError on a huge length (now
    # refused earlier: integer attributes are int32, spec/format.md "Limits")
    "reshape-huge-length": (_edit("elementwise", lambda g: _node(g, "reshape").attrs.update(shape=[2**64, -1])),
                            "'reshape'.*'shape'.*outside the integer attribute range"),
    "reshape-int32-length": (_edit("elementwise", lambda g: _node(g, "reshape").attrs.update(shape=[2**31 - 1, -1])),
                             "'reshape'.*cannot reshape"),
    # in-memory constants whose data disagree with the declared dtype or
    # shape reached the operators (ValueError, AssertionError at run)
    "constant-data-shape": (_edit("float_recipe", lambda g: setattr(g.tensors["w"], "data",
                                                                    g.tensors["w"].data[:3])),
                            "tensor 'w': constant data must be a numpy int8 array of shape \\[4, 5\\]"),
    "constant-data-dtype": (_edit("elementwise", lambda g: setattr(g.tensors["lut"], "data",
                                                                   g.tensors["lut"].data.astype(np.float32))),
                            "tensor 'lut': constant data must be a numpy int8 array"),
    "constant-data-range": (_edit("cnn", lambda g: setattr(g.tensors["w4"], "data",
                                                           np.full((6, 5), 100, np.int8))),
                            "'w4'.*outside the int4 range"),
    # (s_a * s_b) / s_y overflowing float: a RuntimeWarning escaped
    "multiplier-overflow": (_edit("float_recipe", lambda g: setattr(g.tensors["a"], "quant",
                                                                    Quant(f32(3e38)))),
                            "'bmm'.*multiplier"),
    # x - zp_x of an int32 requantize input exceeded int32: int64 wrapped, a
    # silent wrong answer (-32768 for 32767.998)
    "requantize-int32-zero-point": (_edit("quantize", _requantize_int32_zero_point),
                                    "'rq_int32'.*int32: its zero point must be 0"),
    # accepted in memory, refused by the file reader
    "block-size-beyond-file-limit": (_edit("quantize", _one_huge_block),
                                     "tensor 'q4': block_size must be an integer in"),
    # float(2**1100) raised OverflowError
    "float-attribute-huge-int": (_edit("cnn", lambda g: _node(g, "softmax").attrs.update(beta=2**1100)),
                                 "'softmax'.*'beta' must be of kind float"),
    # wrong Python types in a graph built in memory: TypeError, AttributeError
    "op-not-a-string": (_edit("cnn", lambda g: setattr(_node(g, "conv"), "op", ["conv2d"])),
                        "node 'conv': name and op must be strings"),
    "metadata-not-a-dict": (_edit("cnn", lambda g: setattr(g, "metadata", ["qnnref"])),
                            "metadata must be a dict"),
    "shape-not-integers": (_edit("cnn", lambda g: setattr(g.tensors["x"], "shape", (1, "6", 6, 4))),
                           "tensor 'x': shape must be a tuple of integers"),
    "shape-negative": (_edit("cnn", lambda g: setattr(g.tensors["x"], "shape", (1, -6, 6, 4))),
                       "tensor 'x': shape .* outside"),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regressions(name):
    make, message = REGRESSIONS[name]
    graph = make()
    with guarded(), pytest.raises(QnnError, match=message):
        Model(graph)


def test_node_errors_name_the_file(tmp_path):
    g = copy.deepcopy(SEED_GRAPHS["cnn"])
    _node(g, "conv").attrs["strides"] = [0, 1]
    path = tmp_path / "bad.qnn"
    path.write_bytes(qformat.to_bytes(g))
    with pytest.raises(ValidationError, match=f"^{path}: node 'conv' \\(conv2d\\): attribute strides"):
        qnnref.load(path)
