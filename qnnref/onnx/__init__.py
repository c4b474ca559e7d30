"""ONNX import: quantized ONNX models (QOperator and QDQ) as qnnref models.

    import qnnref.onnx
    model = qnnref.onnx.import_onnx("model_int8.onnx", profile="onnx")
    outputs = model.run({"input": x})
    qnnref.onnx.convert("model_int8.onnx", "model.qnn", profile="onnx")

What maps onto what, and what is refused, is written in spec/onnx-import.md.
Importing this package does not import ``onnx``; the functions do, and
say how to install it when it is missing.
"""
from __future__ import annotations

from ..errors import QnnError

__all__ = ["import_onnx", "convert"]

_EXTRA = 'pip install "qnnref[onnx]"'


def _require_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise QnnError(f"ONNX import needs the onnx package: {_EXTRA}") from None


def import_onnx(model_or_path, profile: str = "onnx", *, input_shapes: dict | None = None,
                constants: dict | None = None, mlas_nchwc_block: int | None = None):
    """Import a quantized ONNX model (a path, bytes or an ``onnx.ModelProto``)
    as a validated, runnable ``qnnref.Model`` under semantic ``profile``.

    ``input_shapes`` fixes the shapes of graph inputs with symbolic
    dimensions, e.g. ``{"input": (1, 3, 224, 224)}``. ``constants`` gives
    graph inputs fixed values (numpy arrays), which makes them constants:
    e.g. the scales and zero points that ONNX's backend node tests pass as inputs.
    ``mlas_nchwc_block`` (``ort-*`` profiles): the NCHWc block of the MLAS
    kernel family ONNX Runtime selects on the target CPU (8: AVX2/FMA3, 16:
    AVX-512F; probed by qnnref.conform.worker), which decides the summation
    order of float convolutions with constant weights (spec/ops/float_conv2d.md).

    ONNX tensor names are kept wherever a tensor survives; the others are
    listed in ``metadata["source"]["tensors"]`` (name in qnnref, axis
    permutation, dequantized view). Raises ``qnnref.ValidationError`` listing
    every node that cannot be imported, at once."""
    _require_onnx()
    from .importer import import_model
    return import_model(model_or_path, profile, input_shapes, constants, mlas_nchwc_block=mlas_nchwc_block)


def convert(in_path, out_path, profile: str = "onnx", *, input_shapes: dict | None = None,
            constants: dict | None = None) -> str:
    """Import ``in_path`` (ONNX) and write it to ``out_path`` (.qnn); returns the
    file digest."""
    from .. import save
    model = import_onnx(in_path, profile, input_shapes=input_shapes, constants=constants)
    return save(model, out_path)


def export_onnx(model, path, format: str = "qdq"):
    """Write a qnnref Model (or Graph) as an ONNX model that any ONNX runtime
    runs: ``format="qdq"`` or ``"qoperator"``. See qnnref.onnx.exporter."""
    _require_onnx()
    from .exporter import export_onnx as _export
    return _export(model, path, format=format)
