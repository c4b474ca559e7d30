"""Every integer attribute is range-checked in Python before anything can
reach the C++ kernels (spec/format.md, "Limits": integer attributes are
int32). A huge stride used to reach Cython as a Python int and raise
OverflowError from conv2d.pxi; now every out-of-range value of every
integer attribute of every operator is a ValidationError naming the node
and the attribute, found at load time. Values inside int32 either are
refused the same way (a ValidationError) or give a model that runs."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import qnnref
from qnnref import QnnError, ValidationError
from qnnref.ops.registry import ATTR_INT_MAX, ATTR_INT_MIN, OPS

from tests.fuzz.harness import random_input
from tests.fuzz.seeds import SEEDS

#: beyond int32: always refused
HUGE = [ATTR_INT_MAX + 1, ATTR_INT_MIN - 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30]
#: inside int32 but extreme: refused by the operator's own checks, or legal
EXTREME = [ATTR_INT_MAX, ATTR_INT_MIN, 2**30, -(2**30), 65536, -1, 0]


def backends():
    return ["reference", "kernels"] if qnnref.kernels_info()["built"] else ["reference"]


def integer_attribute_sites():
    """(seed, node name, attribute, index or None) for every int / ints
    attribute of every node of the fuzz seeds (declared ones too, when the
    node leaves them at their default)."""
    sites = []
    for seed_name, make in SEEDS.items():
        for node in make().nodes:
            for a in OPS[node.op].attrs:
                if a.kind == "int":
                    sites.append((seed_name, node.name, a.name, None))
                elif a.kind == "ints":
                    value = node.attrs.get(a.name, a.default)
                    if isinstance(value, list) and value:
                        sites.extend((seed_name, node.name, a.name, i) for i in sorted({0, len(value) - 1}))
    return sites


SITES = integer_attribute_sites()


def op_of(seed: str, node_name: str) -> str:
    return next(n.op for n in SEEDS[seed]().nodes if n.name == node_name)


def test_the_seeds_cover_every_integer_attribute():
    covered = {(op_of(s, n), a) for s, n, a, _ in SITES}
    declared = {(op.name, a.name) for op in OPS.values() for a in op.attrs if a.kind in ("int", "ints")}
    assert not declared - covered, f"integer attributes no seed node exercises: {sorted(declared - covered)}"


def mutated(seed: str, node_name: str, attr: str, index, value):
    graph = copy.deepcopy(SEEDS[seed]())
    node = next(n for n in graph.nodes if n.name == node_name)
    if index is None:
        node.attrs[attr] = value
    else:
        decl = next(a for a in OPS[node.op].attrs if a.name == attr)
        v = list(node.attrs.get(attr, decl.default))
        v[index] = value
        node.attrs[attr] = v
    return graph, node


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("seed,node_name,attr,index", SITES)
def test_out_of_int32_attributes_are_refused_at_load(seed, node_name, attr, index, value):
    graph, node = mutated(seed, node_name, attr, index, value)
    with pytest.raises(ValidationError) as e:
        qnnref.Model(graph, backend="reference")
    assert repr(node.name) in str(e.value) and repr(attr) in str(e.value), str(e.value)


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("value", EXTREME)
@pytest.mark.parametrize("seed,node_name,attr,index", SITES)
def test_extreme_int32_attributes_are_refused_or_run(seed, node_name, attr, index, value, backend):
    graph, node = mutated(seed, node_name, attr, index, value)
    try:
        model = qnnref.Model(graph, backend=backend)
    except ValidationError as e:
        assert repr(node.name) in str(e), str(e)
        return
    rng = np.random.default_rng(0)
    inputs = {s.name: random_input(s, rng) for s in model.inputs}
    try:
        model.run(inputs)
    except QnnError:
        pass                                   # a REQUIRE failure is a qnnref error too


@pytest.mark.parametrize("stride", [2**31, 2**40, 2**63, 2**70])
@pytest.mark.parametrize("backend", backends())
def test_huge_conv_stride_is_a_validation_error_not_overflow(stride, backend):
    """The regression of issue 8: a huge stride reached conv2d.pxi as a
    Python int (OverflowError). The largest legal stride runs."""
    def build(s):
        b = qnnref.GraphBuilder()
        x = b.input("x", "int8", (1, 4, 4, 2), scale=0.1, zero_point=0)
        w = b.constant("w", np.ones((3, 2, 2, 2), np.int8), scale=0.1, zero_point=0)
        b.output(b.node("conv2d", [x, w], {"strides": [s, 1]}, scale=0.5, zero_point=0, name="conv"))
        return b.build(backend=backend)
    with pytest.raises(ValidationError, match=r"node 'conv'.*'strides'"):
        build(stride)
    y = build(ATTR_INT_MAX).run(np.ones((1, 4, 4, 2), np.int8))
    assert next(iter(y.values())).shape == (1, 1, 3, 3)
