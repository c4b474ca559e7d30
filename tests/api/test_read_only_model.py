"""A loaded Model cannot be changed behind its kernels' back (issue 8): its
graph is a private read-only copy, and every kernel call checks its arrays
against what the kernel was prepared for, before any C++ runs.

The regression: changing ``model.graph.tensors[...].shape`` after ``load``
made the C++ depthwise conv read past the caller's array (ASan:
heap-buffer-overflow in depthwise_avx2.cpp)."""
from __future__ import annotations

import numpy as np
import pytest

import qnnref
from qnnref import _kernels
from qnnref.errors import QnnError, ReadOnlyError, RuntimeCheckError

BACKENDS = ["reference"] + (["kernels", "cross-check"] if _kernels.available() else [])


def depthwise(rng, batch=1):
    b = qnnref.GraphBuilder(profile="qnnref")
    x = b.input("x", "int8", (batch, 6, 6, 4), scale=0.05, zero_point=0)
    w = b.constant("w", rng.integers(-127, 128, (4, 3, 3, 1)).astype(np.int8), scale=np.full(4, 0.01, np.float32),
                   axis=0)
    y = b.node("conv2d", [x, w], {"groups": 4, "pads": [1, 1, 1, 1]}, scale=0.1, zero_point=0, name="dw")
    b.output(y)
    return b.graph()


@pytest.fixture
def saved(rng, tmp_path):
    path = tmp_path / "dw.qnn"
    qnnref.save(depthwise(rng), path)
    return path


@pytest.mark.parametrize("mutate", [
    lambda g: setattr(g.tensors["x"], "shape", (1, 60, 60, 4)),
    lambda g: setattr(g.tensors["dw_out"], "shape", (1, 60, 60, 4)),
    lambda g: g.nodes[0].attrs.__setitem__("pads", [9, 9, 9, 9]),
    lambda g: g.nodes[0].attrs["pads"].__setitem__(0, 9),
    lambda g: g.nodes[0].attrs["pads"].append(9),
    lambda g: setattr(g.nodes[0], "inputs", ["x", "x"]),
    lambda g: g.tensors.__setitem__("x", g.tensors["w"]),
    lambda g: g.tensors.pop("x"),
    lambda g: g.nodes.append(g.nodes[0]),
    lambda g: g.inputs.clear(),
    lambda g: setattr(g.tensors["x"].quant, "scale", np.float32(9)),
    lambda g: setattr(g, "nodes", []),
    lambda g: g.metadata.__setitem__("profile", "onnx"),
], ids=["input-shape", "output-shape", "attr", "attr-item", "attr-append", "node-inputs", "tensor-table",
        "tensor-pop", "nodes", "inputs", "quant", "graph", "metadata"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_graph_of_a_loaded_model_is_read_only(rng, saved, mutate, backend):
    model = qnnref.load(saved, backend=backend)
    x = rng.integers(-128, 128, (1, 6, 6, 4)).astype(np.int8)
    before = model.run(x)["dw_out"]
    with pytest.raises(ReadOnlyError, match="read-only"):
        mutate(model.graph)
    assert isinstance(ReadOnlyError("x"), QnnError)
    assert np.array_equal(model.run(x)["dw_out"], before)


def test_constant_arrays_are_read_only(saved):
    model = qnnref.load(saved)
    w = model.graph.tensors["w"].data
    with pytest.raises(ValueError):
        w[0, 0, 0, 0] = 1
    with pytest.raises(ValueError):
        w.flags.writeable = True


def test_the_callers_graph_and_arrays_do_not_reach_the_model(rng):
    g = depthwise(rng)
    model = qnnref.Model(g)
    x = rng.integers(-128, 128, (1, 6, 6, 4)).astype(np.int8)
    before = model.run(x)["dw_out"]
    g.tensors["w"].data[...] = 0                      # the caller's own array
    g.tensors["x"].shape = (1, 60, 60, 4)
    g.nodes[0].attrs["pads"] = [0, 0, 0, 0]
    assert np.array_equal(model.run(x)["dw_out"], before)


def test_a_copy_is_editable_and_builds_a_new_model(saved):
    model = qnnref.load(saved)
    g = model.graph.copy()
    g.nodes[0].attrs["pads"] = [0, 0, 0, 0]
    g.tensors["dw_out"].shape = (1, 4, 4, 4)
    other = qnnref.Model(g)
    assert other.run(np.zeros((1, 6, 6, 4), np.int8))["dw_out"].shape == (1, 4, 4, 4)
    assert model.graph.nodes[0].attrs["pads"] == [1, 1, 1, 1]
    import copy
    assert copy.deepcopy(model.graph.nodes[0].attrs) == {"groups": 4, "pads": [1, 1, 1, 1]}
    deep = copy.deepcopy(model.graph)                   # a deep copy is mutable too
    deep.tensors["x"].shape = (1, 6, 6, 4)
    deep.tensors["w"].data[...] = 0
    deep.nodes[0].attrs["pads"][0] = 1
    assert not deep.frozen and model.graph.frozen and model.graph.tensors["w"].data.any()
    qnnref.Model(deep)


@pytest.mark.skipif(not _kernels.available(), reason="the kernels are not built")
@pytest.mark.parametrize("isa", _kernels.available_isas())
def test_kernel_calls_check_arrays_against_the_prepared_shapes(saved, isa):
    """Even a change that bypasses the read-only graph (object.__setattr__)
    or a wrong array handed to a kernel never reaches C++."""
    model = qnnref.load(saved, backend="kernels", isa=isa)
    b = model._for_batch(1)
    (ctx,), ((kernel, state),), (expect,) = b.contexts, b.plan, b.expect
    assert kernel is not None
    big = np.zeros((1, 60, 60, 4), np.int8)
    with pytest.raises(RuntimeCheckError, match="prepared for"):
        model._run_kernel(ctx, None, kernel, state, [big, ctx.inputs[1].data], expect)
    with pytest.raises(RuntimeCheckError, match="prepared for"):
        model._run_kernel(ctx, None, kernel, state, [big[:, :6, :6].astype(np.uint8), ctx.inputs[1].data],
                          expect)
    object.__setattr__(ctx.outputs[0], "shape", (1, 60, 60, 4))      # the mutation, forced
    object.__setattr__(ctx.inputs[0], "shape", (1, 60, 60, 4))
    with pytest.raises(RuntimeCheckError, match="changed after its kernel was prepared"):
        model.run(big)
