"""Skips for the conformance-harness tests: ONNX Runtime, qnnref's ONNX
importer and the ONNX Runtime profiles may be missing."""
from __future__ import annotations

import importlib.util

import pytest

from qnnref.profiles import PROFILES

HAVE_ONNX = importlib.util.find_spec("onnx") is not None
HAVE_ORT = HAVE_ONNX and importlib.util.find_spec("onnxruntime") is not None


def _have_importer() -> bool:
    try:
        from qnnref.onnx import import_onnx  # noqa: F401
    except ImportError:
        return False
    return True


needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="onnx is not installed")
needs_ort = pytest.mark.skipif(not HAVE_ORT, reason="onnx / onnxruntime is not installed")
needs_importer = pytest.mark.skipif(not (HAVE_ORT and _have_importer()),
                                    reason="qnnref.onnx.import_onnx is not available")
needs_ort_profile = pytest.mark.skipif("ort-cpu-x86" not in PROFILES,
                                       reason="the ort-cpu-x86 profile is not registered yet")


@pytest.fixture
def fake_engine(monkeypatch):
    """Make the conform CLI use ``engine_cls`` instead of the ONNX importer."""
    def use(engine_cls):
        import qnnref.conform.engine as engine_mod
        monkeypatch.setattr(engine_mod, "find_importer", lambda: None)
        monkeypatch.setattr(engine_mod, "QnnrefEngine", engine_cls)
    return use
