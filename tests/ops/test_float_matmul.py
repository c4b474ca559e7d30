"""float_matmul: the worked example, shapes / k_block / bias order against a
Fraction oracle that follows the spec's operation order, batch broadcasting,
ERROR_IF. (Bit-exactness against ONNX Runtime: tests/onnx_import/test_float_ops.py.)"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from float_oracle import add, blocked_dot, fma

import qnnref
from qnnref import GraphBuilder
from qnnref.ops.float_matmul import float_matmul

F32 = np.float32


def oracle(a, b, bias, k_block, bias_first):
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, (*batch, *a.shape[-2:]))
    b = np.broadcast_to(b, (*batch, *b.shape[-2:]))
    m, k = a.shape[-2:]
    n = b.shape[-1]
    y = np.zeros((*batch, m, n), F32)
    block = k if k_block == 0 else k_block
    for idx in itertools.product(*(range(d) for d in batch)):
        for i, j in itertools.product(range(m), range(n)):
            xs, ws = list(a[idx][i]), list(b[idx][:, j])
            if bias is None:
                y[idx][i, j] = blocked_dot(xs, ws, k_block)
            elif not bias_first:
                y[idx][i, j] = add(blocked_dot(xs, ws, k_block), bias[j])
            else:
                total = bias[j]
                for start in range(0, k, block):
                    s = F32(0)
                    for t in range(start, min(k, start + block)):
                        s = fma(xs[t], ws[t], s)
                    total = add(total, s)
                y[idx][i, j] = total
    return y


def test_worked_example():
    a = np.array([[-1, 1 + 2**-12]], F32)
    b = np.array([[1], [1 + 2**-12]], F32)
    assert float_matmul(a, b, None, 0, False).item() == 2**-11 + 2**-24
    one = np.array([1], F32)
    assert float_matmul(a, b, one, 0, False).item() == 1 + 2**-11
    assert float_matmul(a, b, one, 0, True).item() == 1 + 2**-11
    assert float_matmul(a, b, one, 1, True).item() == 1 + 2**-11


@pytest.mark.parametrize("a_shape,b_shape", [((3, 7), (7, 4)), ((2, 1, 2, 5), (3, 5, 2)), ((1, 9), (9, 1))])
@pytest.mark.parametrize("k_block", [0, 1, 2, 4])
def test_against_oracle(a_shape, b_shape, k_block):
    rng = np.random.default_rng(hash((a_shape, k_block)) % 2**32)
    a = (rng.standard_normal(a_shape) * 2.0 ** rng.integers(-20, 1, a_shape)).astype(F32)
    b = rng.standard_normal(b_shape).astype(F32)
    bias = rng.standard_normal(b_shape[-1]).astype(F32)
    for bi, first in ((None, False), (bias, False), (bias, True)):
        got = float_matmul(a, b, bi, k_block, first)
        np.testing.assert_array_equal(got.view(np.int32), oracle(a, b, bi, k_block, first).view(np.int32))


def test_bias_order_matters():
    """bias_first adds each block sum to the bias: with a large bias, small
    block sums are absorbed one by one."""
    a = np.array([[2**-24, 2**-24]], F32)
    b = np.ones((2, 1), F32)
    bias = np.array([1], F32)
    assert float_matmul(a, b, bias, 1, True).item() == 1.0                    # 1 + 2^-24 -> 1, twice
    assert float_matmul(a, b, bias, 1, False).item() == 1 + 2**-23            # 2^-23 first, then + 1


def test_model_path_and_runtime_b():
    rng = np.random.default_rng(2)
    a, w = rng.standard_normal((2, 3, 6)).astype(F32), rng.standard_normal((6, 5)).astype(F32)
    g = GraphBuilder()
    ai = g.input("a", "float32", a.shape)
    y = g.node("float_matmul", [ai, g.constant("w", w), g.constant("c", np.ones(5, F32))],
               {"k_block": 4, "bias_first": True})
    g.output(y)
    np.testing.assert_array_equal(g.build().run({"a": a})[y], float_matmul(a, w, np.ones(5, F32), 4, True))
    g = GraphBuilder()
    ai, bi = g.input("a", "float32", a.shape), g.input("b", "float32", w.shape)
    y = g.node("float_matmul", [ai, bi])
    g.output(y)
    np.testing.assert_array_equal(g.build().run({"a": a, "b": w})[y], float_matmul(a, w, None, 0, False))


@pytest.mark.parametrize("a_shape,b_shape,bias,attrs,pattern", [
    ((2, 3), (4, 5), None, {}, "inner dimensions differ"),
    ((3,), (3, 5), None, {}, "rank >= 2"),
    ((2, 2, 3), (3, 3, 5), None, {}, "do not broadcast"),
    ((2, 3), (3, 5), (4,), {}, r"shape \[5\]"),
    ((2, 3), (3, 5), None, {"k_block": -2}, "k_block must be >= 0"),
    ((2, 3), (3, 5), None, {"bias_first": 1}, "kind bool"),
])
def test_errors(a_shape, b_shape, bias, attrs, pattern):
    g = GraphBuilder()
    ins = [g.input("a", "float32", a_shape), g.constant("b", np.ones(b_shape, F32))]
    if bias is not None:
        ins.append(g.constant("c", np.zeros(bias, F32)))
    with pytest.raises(qnnref.ValidationError, match=pattern):
        g.node("float_matmul", ins, attrs, name="bad")


def test_error_integer_input():
    g = GraphBuilder()
    a = g.input("a", "uint8", (2, 3), scale=0.1)
    with pytest.raises(qnnref.ValidationError, match="dtype uint8"):
        g.node("float_matmul", [a, g.constant("b", np.ones((3, 2), F32))], name="bad")
