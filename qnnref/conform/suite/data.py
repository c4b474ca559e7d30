"""Cases, dtypes, value regimes and the random helpers every generator uses."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# ---------------------------------------------------------------------------
# The case
# ---------------------------------------------------------------------------


@dataclass
class Case:
    """One conformance case: an ONNX model and its inputs."""

    id: str                                   # "QLinearConv/0007" (unique in a run)
    op: str                                   # the report row (operator or pattern)
    model: bytes                              # a serialized onnx.ModelProto
    inputs: dict[str, np.ndarray]             # graph input name -> array
    tags: tuple[str, ...] = ()
    #: ONNX Runtime session config entries (SessionOptions.add_session_config_entry)
    session_config: dict[str, str] = field(default_factory=dict)
    #: how this vendor configuration changes every profile's fields for this
    #: case, e.g. {"pairwise_int16_saturation": False} under session.x64quantprecision
    profile_overrides: dict = field(default_factory=dict)
    #: why the outputs are compared within a bound rather than exactly
    #: (None: integer semantics, exact). The worker may add a reason of its own.
    float_reason: str | None = None
    #: whether ONNX Runtime computes it with its own float math (then one step
    #: of difference is allowed); False for a float output that is exact arithmetic
    float_compute: bool = False
    #: tests only: "crash", "hang" or "exit", done by the worker instead of running
    hook: str | None = None
    seed: tuple = ()                          # the generator's seed (for the JSON report)
    #: a case of the built-in suite: its refusals may be documented ones (suite/refusals.py)
    builtin: bool = False
    #: the shapes of this case's inputs where the model has symbolic dimensions
    #: (inputs.resolve_shapes); None: the model's own, all fixed
    input_shapes: dict | None = None
    #: a model with a symbolic batch (the leading dimension of ``batch_inputs``):
    #: the batch size of this case; qnnref imports the model once with the
    #: batch kept (engine.import_plan). None: no symbolic batch
    batch: int | None = None
    batch_symbol: str | None = None
    batch_inputs: tuple[str, ...] = ()
    #: a model file's case: which sample (a --data label, or "random")
    sample: str | None = None

    def describe(self) -> str:
        return f"{self.id} [{', '.join(self.tags)}]" if self.tags else self.id


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------

QRANGE = {"uint8": (0, 255), "int8": (-128, 127), "uint16": (0, 65535), "int16": (-32768, 32767),
          "int32": (-2**31, 2**31 - 1), "uint4": (0, 15), "int4": (-8, 7)}

SHORT = {"uint8": "u8", "int8": "s8", "uint16": "u16", "int16": "s16", "int32": "s32",
         "uint4": "u4", "int4": "s4", "float32": "f32"}

#: The value regimes of compute cases, in the order they cycle through
#: (case i uses REGIMES[i % len(REGIMES)]): so any 12 consecutive cases of
#: an operator cover every regime, and random ones are the most common.
REGIMES = ("random", "saturate", "ties", "random", "narrow", "large_acc",
           "random", "extremes", "ties", "random", "zero", "saturate")


def np_dtype(dtype: str):
    """numpy dtype holding ``dtype`` (4-bit types are held unpacked)."""
    return {"int4": np.int8, "uint4": np.uint8}.get(dtype, np.dtype(dtype))


def zero_point(rng, dtype: str, style: str | None = None) -> int:
    lo, hi = QRANGE[dtype]
    style = style or rng.choice(["random", "random", "random", "extreme", "middle", "zero"])
    if style == "extreme":
        return int(rng.choice([lo, hi]))
    if style == "middle":
        return (lo + hi + 1) // 2
    if style == "zero":
        return 0 if lo <= 0 else lo
    return int(rng.integers(lo, hi + 1))


def activations(rng, dtype: str, shape, zp: int, regime: str) -> np.ndarray:
    """Quantized activations for a value regime."""
    lo, hi = QRANGE[dtype]
    shape = tuple(int(s) for s in shape)
    if regime in ("saturate", "large_acc"):
        a = np.full(shape, hi)
    elif regime == "extremes":
        a = rng.choice([lo, hi], size=shape)
    elif regime == "zero":
        a = np.full(shape, zp)
    elif regime == "narrow":
        a = rng.integers(max(lo, zp - 16), min(hi, zp + 16) + 1, size=shape)
    else:
        a = rng.integers(lo, hi + 1, size=shape)
    return a.astype(np_dtype(dtype))


def weights(rng, dtype: str, shape, regime: str) -> np.ndarray:
    """Quantized weights for a value regime. s8 weights are in [-127, 127]
    (what quantizers write) except in ``extremes``, which also uses -128."""
    lo, hi = QRANGE[dtype]
    shape = tuple(int(s) for s in shape)
    if lo < 0:
        lo = max(lo, -hi)                          # symmetric: -127 for int8
    if regime in ("saturate", "large_acc"):
        # +-127 with runs of one sign: pairs u8*s8 then overflow int16
        sign = rng.choice([-1, 1], size=shape[:1] + (1,) * (len(shape) - 1))
        a = np.where(sign > 0, hi, lo) if regime == "large_acc" or rng.random() < 0.5 \
            else rng.choice([lo, hi], size=shape)
        a = np.broadcast_to(a, shape)
    elif regime == "extremes":
        a = rng.choice([QRANGE[dtype][0], hi], size=shape)
    elif regime == "narrow":
        mid = (lo + hi) // 2
        a = rng.integers(mid - 64, mid + 64, size=shape)
    else:
        a = rng.integers(lo, hi + 1, size=shape)
    return np.ascontiguousarray(a).astype(np_dtype(dtype))


def log_uniform(rng, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(math.log(lo), math.log(hi))))


def scale(rng, lo: float, hi: float, pow2: bool = False) -> np.float32:
    """A float32 scale in [lo, hi]; a power of two when ``pow2``."""
    s = log_uniform(rng, lo, hi)
    return np.float32(2.0 ** round(math.log2(s)) if pow2 else s)


def channel_scales(rng, n: int, lo: float, hi: float, pow2: bool) -> np.ndarray:
    return np.array([scale(rng, lo, hi, pow2) for _ in range(n)], np.float32)


def acc_magnitude(xc: np.ndarray, wc: np.ndarray, k: int) -> float:
    """A rough size of the accumulator sum_k xc*wc: enough to choose an
    output scale that neither saturates nor rounds everything to zero."""
    rx = float(np.sqrt(np.mean(np.square(xc, dtype=np.float64)))) if xc.size else 0.0
    rw = float(np.sqrt(np.mean(np.square(wc, dtype=np.float64)))) if wc.size else 0.0
    mx = float(np.mean(xc)) if xc.size else 0.0
    mw = float(np.mean(wc)) if wc.size else 0.0
    return max(1.0, math.sqrt(max(k, 1)) * rx * rw, abs(k * mx * mw))


def output_scale(rng, in_scale: float, magnitude: float, out_dtype: str, pow2: bool) -> np.float32:
    """y_scale such that magnitude * in_scale / y_scale spans about half the
    output range (times a random factor in [1/4, 4])."""
    lo, hi = QRANGE[out_dtype]
    target = in_scale * magnitude / ((hi - lo) / 4) * log_uniform(rng, 0.25, 4.0)
    target = min(max(target, 1e-12), 1e12)
    return np.float32(2.0 ** round(math.log2(target)) if pow2 else target)


def float_inputs(rng, shape, s, zp, dtype: str, regime: str) -> np.ndarray:
    """Float inputs for QuantizeLinear-like cases: values around the
    representable range of (s, zp, dtype) -- ``s`` and ``zp`` may be arrays
    broadcastable to ``shape`` -- with exact ties, saturation and signed
    zeros depending on the regime."""
    lo, hi = QRANGE[dtype]
    shape = tuple(int(v) for v in shape)
    s64 = np.broadcast_to(np.asarray(s, np.float64), shape)
    zp = np.broadcast_to(np.asarray(zp, np.int64), shape)
    if regime == "ties":        # exactly halfway between two quantized values
        k = rng.integers(lo - zp - 2, hi - zp + 2, size=shape)
        x = (k + 0.5) * s64
    elif regime in ("saturate", "extremes", "large_acc"):
        x = rng.choice([-1, 1], size=shape) * rng.uniform(1, 4, size=shape) * (hi - lo) * s64
    elif regime == "zero":
        x = rng.choice([0.0, -0.0], size=shape) * np.ones(shape)
    elif regime == "narrow":
        x = rng.normal(0, 4, size=shape) * s64
    else:
        x = ((lo - zp - 4) + rng.uniform(0, 1, size=shape) * (hi - lo + 8)) * s64
    return x.astype(np.float32)


def pads_for(rng, k: int) -> tuple[int, int]:
    return int(rng.integers(0, k)), int(rng.integers(0, k))


def conv_out(size: int, k: int, stride: int, dilation: int, pad_a: int, pad_b: int) -> int:
    return (size + pad_a + pad_b - (dilation * (k - 1) + 1)) // stride + 1
