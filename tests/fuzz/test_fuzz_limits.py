"""The model size limit (qnnref.graph.MAX_TENSOR_ELEMENTS): big tensors,
padding and pooling windows are refused at load time, before allocating."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from qnnref import GraphBuilder, Model, ValidationError
from qnnref import graph as qgraph

from .harness import guarded
from .seeds import SEED_GRAPHS

# ---------------------------------------------------------------------------
# The size limit
# ---------------------------------------------------------------------------

def test_declared_tensors_beyond_the_limit_are_refused():
    limit = qgraph.MAX_TENSOR_ELEMENTS
    assert limit == 2**28
    b = GraphBuilder()
    x = b.input("x", "int8", (1, 1, 1, 1), scale=0.5)
    b.output(b.node("pad", [x], {"pads": [0, 0, 0, 0, 0, 2**14 - 1, 2**14 - 1, 0]}, scale=0.5, name="pad"))
    g = b.graph()
    Model(g)                                              # 2^28 elements: accepted (not run)
    g.nodes[0].attrs["pads"][5] += 1
    g.tensors[g.outputs[0]].shape = (1, 2**14 + 1, 2**14, 1)
    with pytest.raises(ValidationError, match=r"pad_out.*268451840 elements.*limit"):
        Model(g)
    g.tensors["x"].shape = (2**31 - 1, 2**31 - 1)
    with pytest.raises(ValidationError, match="'x'.*elements.*limit"):
        Model(g)


def test_padding_far_beyond_the_input_is_refused_without_allocating():
    """conv2d with huge pads and strides: the output is tiny but the padded
    input (which the reference materializes) is not."""
    b = GraphBuilder()
    x = b.input("x", "int8", (1, 2, 2, 1), scale=0.5)
    w = b.constant("w", np.ones((1, 1, 1, 1), np.int8), scale=0.5)
    with guarded(), pytest.raises(ValidationError, match="'conv'.*padded input.*limit"):
        b.node("conv2d", [x, w], {"pads": [2**20, 2**20, 0, 0], "strides": [2**20, 2**20]},
               scale=1.0, name="conv")


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_huge_pool_windows_are_refused_quickly(op):
    """A kernel of 2^40 taps with as much padding: refused at load time,
    without enumerating the window's taps."""
    g = copy.deepcopy(SEED_GRAPHS["cnn"])
    node = next(n for n in g.nodes if n.op == op)
    node.attrs.update(kernel=[2**40, 1], pads=[2**40, 0, 2**40, 0], strides=[2**40, 1])
    with guarded(), pytest.raises(ValidationError, match=f"'{node.name}'"):
        Model(g)
