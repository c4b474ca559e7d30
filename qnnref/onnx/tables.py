"""Lookup tables for QLinearSigmoid / QLinearLeakyRelu (and their QDQ forms).

An 8-bit unary operator is exactly a 256-entry table: for every input code
q, ``table[q] = Q(f(DQ(q)))``. ONNX defines the operator through float32:

1. ``DQ(q) = float32((q - zp_x) * s_x)`` (exact ``dequantize``);
2. ``f`` evaluated in float32;
3. ``Q(v) = saturate(round(v / s_y) + zp_y)`` by the profile's quantize recipe.

So the table is exact once step 2 is pinned down. How each profile evaluates ``f``:

* ``ort-*`` profiles: what ONNX Runtime's CPU provider computes when it
  builds its table (``QlinearBuildLookupTable``): sigmoid is MLAS's
  ``MlasComputeLogistic`` -- on x86-64 with FMA3 the rational approximation
  ``p(x)/q(x) + 0.5`` of Eigen's coefficients, x clamped to [-18, 18], the
  polynomials evaluated with fused multiply-adds, the result clamped below at
  0 -- emulated here operation by operation (``fma32`` is exact);
  LeakyRelu is ``v >= 0 ? v : alpha * v`` in float32.
* every other profile: the correctly rounded float32 of the real function
  (sigmoid evaluated in float64, rounded once to float32); LeakyRelu as above
  (one float32 multiplication: already exact).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..arith import QuantizeRecipe, dequantize_values, quantize_values
from ..profiles import get_profile
from .reader import OnnxQuant, Refused


def fma32(a, b, c) -> np.ndarray:
    """float32 fused multiply-add ``a * b + c`` with one rounding, exactly.

    ``a * b`` of two float32 is exact in float64 (48 significant bits).
    Adding c in float64 rounds once; the TwoSum error term tells whether it
    was exact. Rounding that float64 sum "to odd" (if inexact and the last
    bit is even, step one ulp toward the error) and then to float32 gives the
    correctly rounded result, because float64 has more than 24 + 2 bits."""
    a = np.asarray(a, np.float32).astype(np.float64)
    b = np.asarray(b, np.float32).astype(np.float64)
    c = np.asarray(c, np.float32).astype(np.float64)
    p = a * b
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)
    even = (s.view(np.int64) & 1) == 0
    toward = np.where(err > 0, np.inf, -np.inf)
    s = np.where((err != 0) & even, np.nextafter(s, toward), s)
    return s.astype(np.float32)


# MLAS's logistic constants (onnxruntime/core/mlas/lib/logistic.cpp), float32.
_LOGISTIC = {k: np.float32(v) for k, v in dict(
    lower=-18.0, upper=18.0,
    a9=4.37031012579801e-11, a7=1.15627324459942e-07, a5=6.08574864600143e-05,
    a3=8.51377133304701e-03, a1=2.48287947061529e-01,
    b10=6.10247389755681e-13, b8=5.76102136993427e-09, b6=6.29106785017040e-06,
    b4=1.70198817374094e-03, b2=1.16817656904453e-01, b0=9.93151921023180e-01).items()}


def mlas_logistic_fma3(v: np.ndarray) -> np.ndarray:
    """``MlasComputeLogisticF32KernelFma3``, step by step in float32."""
    k = _LOGISTIC
    x = np.minimum(np.maximum(np.asarray(v, np.float32), k["lower"]), k["upper"])
    x2 = x * x
    p = fma32(x2, k["a9"], k["a7"])
    for c in ("a5", "a3", "a1"):
        p = fma32(x2, p, k[c])
    p = x * p
    q = fma32(x2, k["b10"], k["b8"])
    for c in ("b6", "b4", "b2", "b0"):
        q = fma32(x2, q, k[c])
    return np.maximum(np.float32(0), (p / q) + np.float32(0.5))


def _sigmoid_float32(v: np.ndarray) -> np.ndarray:
    v64 = np.asarray(v, np.float64)
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-v64))).astype(np.float32)


def _leaky_relu_float32(v: np.ndarray, alpha: float) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return np.where(v >= 0, v, np.float32(alpha) * v).astype(np.float32)


def lookup_table(profile: str, function: str, xq: OnnxQuant, yq: OnnxQuant, alpha: float = 0.01) -> np.ndarray:
    """The table of ``function`` under ``profile``, see :func:`table_values`."""
    return table_values(function, xq, yq, get_profile(profile).quantize, mlas=profile.startswith("ort"),
                        alpha=alpha)


def table_values(function: str, xq: OnnxQuant, yq: OnnxQuant, recipe: QuantizeRecipe, mlas: bool,
                 alpha: float = 0.01) -> np.ndarray:
    """The 256 output codes for the input codes ``dtype_min .. dtype_max`` of
    ``xq.dtype`` (the order of qnnref's ``table`` operator): dequantize, apply
    ``function`` ("sigmoid": MLAS's approximation when ``mlas``, else the
    correctly rounded float32; "leaky_relu"), quantize with ``recipe``."""
    if xq.dtype not in ("int8", "uint8") or yq.dtype not in ("int8", "uint8"):
        raise Refused(f"lookup tables need 8-bit input and output, got {xq.dtype} -> {yq.dtype}")
    dt = dtypes.get(xq.dtype)
    codes = np.arange(dt.min, dt.max + 1)
    real_in = dequantize_values(codes, xq.scale, xq.zero_points())
    if function == "sigmoid":
        real_out = mlas_logistic_fma3(real_in) if mlas else _sigmoid_float32(real_in)
    elif function == "leaky_relu":
        real_out = _leaky_relu_float32(real_in, alpha)
    else:
        raise Refused(f"no lookup table for {function!r}")
    return quantize_values(real_out, yq.scale, yq.zero_points(), yq.dtype, recipe)
