"""ONNX's own backend node tests for the quantization operators, generated
from the installed onnx package (the wheel ships no test data). Their
scales and zero points are graph inputs: the test passes them as
``constants``. Cases with types qnnref does not have must be refused;
the others import and give ONNX's expected outputs -- exactly under the
``onnx`` profile, within one step under qnnref's float profile until it exists."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

import qnnref
from onnx_helpers import needs_profile
from qnnref.onnx import import_onnx

MODULES = ("quantizelinear", "dequantizelinear", "qlinearconv", "qlinearmatmul", "convinteger", "matmulinteger",
           "dynamicquantizelinear")
#: the cases qnnref imports; every other one must be refused with a reason
SUPPORTED = {
    "test_quantizelinear", "test_quantizelinear_axis", "test_quantizelinear_int16", "test_quantizelinear_uint4",
    "test_quantizelinear_int4", "test_quantizelinear_blocked_asymmetric", "test_quantizelinear_blocked_symmetric",
    "test_dequantizelinear", "test_dequantizelinear_axis", "test_dequantizelinear_int16",
    "test_dequantizelinear_uint4", "test_dequantizelinear_int4", "test_dequantizelinear_blocked",
    "test_qlinearconv", "test_qlinearmatmul_2D_uint8_float32", "test_qlinearmatmul_3D_uint8_float32",
    "test_qlinearmatmul_2D_int8_float32", "test_qlinearmatmul_3D_int8_float32",
    "test_convinteger_with_padding", "test_convinteger_without_padding", "test_matmulinteger",
    "test_dynamicquantizelinear", "test_dynamicquantizelinear_max_adjusted", "test_dynamicquantizelinear_min_adjusted",
    "test_qlinearmatmul_2D_uint8_float16", "test_qlinearmatmul_3D_uint8_float16",
    "test_qlinearmatmul_2D_int8_float16", "test_qlinearmatmul_3D_int8_float16",
}


def _cases():
    import sys

    import onnx.backend.test.case.node as node_cases
    before = len(node_cases._NodeTestCases)
    fresh = [m for m in MODULES if f"onnx.backend.test.case.node.{m}" not in sys.modules]
    for m in MODULES:
        importlib.import_module(f"onnx.backend.test.case.node.{m}")   # importing registers its cases
    cases = {c.name: c for c in node_cases._NodeTestCases
             if "_expanded" not in c.name and any(c.name.startswith(f"test_{m}") for m in MODULES)}
    # leave onnx's global case list as it was: other test modules collect the
    # cases that their own imports register (tests/profiles/test_onnx_profile.py)
    for c in node_cases._NodeTestCases[before:]:
        node_cases._existing_names.pop(c.name, None)
    del node_cases._NodeTestCases[before:]
    for m in fresh:
        sys.modules.pop(f"onnx.backend.test.case.node.{m}", None)
    return cases


CASES = _cases()


def _split(case):
    """(runtime inputs, constants, expected outputs) of a case's data set: the
    first input is the data, the rest (scales, zero points, weights) constants."""
    ins, outs = case.data_sets[0]
    names = [i.name for i in case.model.graph.input]
    return {names[0]: _array(ins[0])}, {n: _array(v) for n, v in zip(names[1:], ins[1:])}, \
        [_array(o) for o in outs]


def _array(v) -> np.ndarray:
    from onnx import TensorProto, numpy_helper
    return numpy_helper.to_array(v) if isinstance(v, TensorProto) else np.asarray(v)


def _as_qnnref(arr: np.ndarray) -> np.ndarray:
    kind = str(arr.dtype)
    return arr.astype(np.int8) if kind == "int4" else arr.astype(np.uint8) if kind == "uint4" else arr


@pytest.mark.parametrize("name", sorted(CASES))
def test_backend_node_case(name):
    case = CASES[name]
    feeds, consts, expected = _split(case)
    if name not in SUPPORTED:
        with pytest.raises(qnnref.ValidationError):
            import_onnx(case.model, profile="qnnref", constants=consts)
        return
    profile = "onnx" if "onnx" in qnnref.PROFILES else "float32-half-to-even"
    m = import_onnx(case.model, profile=profile, constants=consts)
    got = m.run({k: _as_qnnref(v) for k, v in feeds.items()})
    for out, want in zip(case.model.graph.output, expected):
        g, w = got[out.name], _as_qnnref(want)
        if w.dtype.kind == "f":
            np.testing.assert_array_equal(g, w)            # dequantize is exact float32 arithmetic
        elif profile == "onnx":
            np.testing.assert_array_equal(g, w)
        else:
            assert np.max(np.abs(g.astype(np.int64) - w.astype(np.int64)), initial=0) <= 1


@needs_profile("onnx")
def test_every_supported_case_is_exact_under_onnx():
    assert SUPPORTED <= set(CASES)
