"""The built-in suite's documented refusals: cases the suite generates on
purpose although qnnref (or ONNX Runtime) refuses them, each with the reason.

The generators cover an operator's whole ONNX definition (every dtype, every
quantization granularity, every attribute), also where a runtime does not
follow: the refusal itself is checked -- it must be a clean refusal with
the documented message, not a crash or a wrong answer. A refusal of a
built-in case is "refused on purpose" only when its message matches an
entry here for its row; any other refusal is *unsupported* and fails the
run (unless ``--allow-unsupported``). A model given on the command line is
never matched against this list. spec/conformance.md lists the entries.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    side: str                    # "qnnref" (its importer) or "onnxruntime"
    row: str                     # the suite's report row
    pattern: str                 # a regular expression searched in the refusal message
    reason: str                  # why, with where the spec says so


UINT16 = ("uint16 is not a qnnref dtype (spec/onnx-import.md, \"Refused, and why\"); "
          "int16 covers 16-bit activations")

BLOCK1 = ("blocked quantization whose scale has one element: ONNX Runtime takes it for per-tensor "
          "quantization and refuses the block_size that the ONNX specification allows")

DOCUMENTED: tuple[Refusal, ...] = (
    Refusal("qnnref", "QuantizeLinear", r"zero point of type uint16", UINT16),
    Refusal("qnnref", "DequantizeLinear", r"has ONNX type UINT16", UINT16),
    Refusal("qnnref", "DequantizeLinear", r"a dequantized constant as a graph output is not supported",
            "a DequantizeLinear of a constant (the suite's int4 / uint4 cases: ONNX Runtime's Python API "
            "takes 4-bit tensors only as initializers) straight to a graph output: the importer folds "
            "constants, and a qnnref graph output must be computed by a node"),
    Refusal("qnnref", "DequantizeLinear", r"carries no quantization in qnnref",
            "an int32 graph input dequantized directly: int32 tensors in qnnref are accumulators without "
            "a quantization of their own (they are dequantized only as a bias)"),
    Refusal("qnnref", "QGemm", r"alpha = \S+: no float32 weight scale",
            "about one (s_a, s_b, alpha) in ten has no float32 weight scale that reproduces ONNX Runtime's "
            "multiplier fl32(fl32(alpha * s_a) * s_b) (spec/onnx-import.md, \"QGemm\")"),
    Refusal("qnnref", "QLinearAveragePool", r"ceil_mode with count_include_pad=1 and a partial last window",
            "ONNX Runtime counts the ceil_mode extension of a partial last window as padding; qnnref's "
            "avg_pool2d has no such window (spec/onnx-import.md, \"QOperator\")"),
    Refusal("onnxruntime", "QuantizeLinear", r"block_size must be 0 for per-tensor quantization", BLOCK1),
    Refusal("onnxruntime", "DequantizeLinear", r"block_size must be 0 for per-tensor quantization", BLOCK1),
)


def documented_refusal(side: str, row: str, message: str) -> Refusal | None:
    """The entry that documents this refusal of a built-in case of ``row``, or None."""
    for r in DOCUMENTED:
        if r.side == side and r.row == row and re.search(r.pattern, message or ""):
            return r
    return None
