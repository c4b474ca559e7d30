"""Test doubles for the conformance harness, usable without qnnref's ONNX
importer: an engine that runs cases with ``onnx.reference`` (standard ONNX
operators only), optionally emulating the u8 x s8 pairwise int16
saturation of MatMulInteger when the profile asks for it."""
from __future__ import annotations

import numpy as np

from qnnref.conform.engine import OursResult
from qnnref.profiles import get_profile


def saturating_matmul_integer(a, b, a_zp=0, b_zp=0):
    """MatMulInteger as x86 VPMADDUBSW computes u8 x s8: products of raw
    values summed in pairs along K with int16 saturation, then the zero-point
    terms exactly (as MLAS does)."""
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    k = a64.shape[-1]
    prods = a64[..., :, :, None] * b64[None, :, :] if a64.ndim == 2 else None
    if prods is None:
        raise NotImplementedError("2-D only")
    if k % 2:
        prods = np.concatenate([prods, np.zeros_like(prods[:, :1])], axis=1)
    pairs = np.clip(prods[:, 0::2] + prods[:, 1::2], -32768, 32767).sum(axis=1)
    acc = pairs - b_zp * a64.sum(-1, keepdims=True) - a_zp * b64.sum(0, keepdims=True) + k * a_zp * b_zp
    return acc.astype(np.int32)


class ReferenceEngine:
    """``onnx.reference`` as the engine; ``saturate`` emulates x86 u8 x s8
    MatMulInteger under profiles with pairwise_int16_saturation."""

    def __init__(self, fail_ops=()):
        self.fail_ops = set(fail_ops)
        self.calls = 0

    def run(self, case, profile, onnx_model=None, float_nodes=()):
        import onnx
        from onnx.reference import ReferenceEvaluator
        self.calls += 1
        model = onnx_model or onnx.load_from_string(case.model)
        res = OursResult(profile=profile)
        if any(n.op_type in self.fail_ops for n in model.graph.node):
            res.error, res.stage, res.refused = "refused by the fake engine", "import", True
            return res
        sat = get_profile(profile).pairwise_int16_saturation
        values = ReferenceEvaluator(model).run(None, case.inputs, intermediate=True)
        if sat:
            for n in model.graph.node:
                if n.op_type != "MatMulInteger":
                    continue
                a = values[n.input[0]]
                b = values[n.input[1]]
                if a.dtype == np.uint8 and b.dtype == np.int8 and a.ndim == 2:
                    zps = [int(values[x]) if len(n.input) > i and x and np.ndim(values[x]) == 0 else 0
                           for i, x in ((2, n.input[2] if len(n.input) > 2 else ""),
                                        (3, n.input[3] if len(n.input) > 3 else ""))]
                    values[n.output[0]] = saturating_matmul_integer(a, b, *zps)
        for n in model.graph.node:
            for o in n.output:
                if o in values:
                    res.tensors[o] = np.asarray(values[o])
        res.outputs = {o.name: np.asarray(values[o.name]) for o in model.graph.output}
        return res
