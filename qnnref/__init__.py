"""qnnref: the reference runtime for quantized neural networks.

Exact, specified integer semantics (spec/), a readable numpy reference for
every operator (qnnref/ops/), and the tools around them.

    import qnnref
    model = qnnref.load(qnnref.bundled_model("digits"))
    outputs = model.run(image_int8)
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import CrossCheckError, FormatError, QnnError, RuntimeCheckError, ValidationError  # noqa: E402
from .graph import Graph, Node, Quant, TensorInfo  # noqa: E402
from .builder import GraphBuilder  # noqa: E402
from .interpreter import IOSpec, Model  # noqa: E402
from .profiles import PROFILES, Profile  # noqa: E402
from .arith import QuantizeRecipe, Recipe  # noqa: E402

__all__ = [
    "load", "save", "kernels_info", "CrossCheckError", "import_onnx", "export_onnx", "bundled_model", "Model", "GraphBuilder", "Graph", "Node", "Quant",
    "TensorInfo", "IOSpec", "QnnError", "FormatError", "ValidationError", "RuntimeCheckError",
    "Recipe", "QuantizeRecipe", "Profile", "PROFILES", "__version__",
]


def load(path, verify: bool = True, *, backend: str | None = None, isa: str | None = None,
         threads: int | None = None) -> Model:
    """Load and validate a .qnn file. The file is read into private memory, so
    changing it on disk afterwards cannot change or crash the loaded model.

    ``verify=False`` skips the SHA-256 checks of the file and its blobs
    (faster for large trusted files; structure is still fully validated).

    ``backend``: ``"kernels"`` (the default when the C++ kernels are built),
    ``"reference"`` or ``"cross-check"`` (both, compared node by node);
    default ``$QNNREF_BACKEND``. ``isa``: ``"scalar"`` or ``"avx2"`` (default
    ``$QNNREF_ISA``, else the best this CPU has). ``threads``: kernel threads
    (default ``$QNNREF_THREADS``, else 1); results are bit-identical for any
    thread count."""
    from . import format as _format
    loaded = _format.read_graph(path, verify=verify)
    return Model(loaded.graph, path=str(path), digest=loaded.digest, source=loaded,
                 backend=backend, isa=isa, threads=threads)


def import_onnx(model_or_path, profile: str = "onnx", **options) -> Model:
    """Import a quantized ONNX model (QOperator or QDQ) as a runnable Model
    under the semantic ``profile`` (needs the extra: pip install "qnnref[onnx]")."""
    from .onnx import import_onnx as _import
    return _import(model_or_path, profile, **options)


def export_onnx(model, path, format: str = "qdq"):
    """Write a Model as ONNX (``format="qdq"`` or ``"qoperator"``)."""
    from .onnx import export_onnx as _export
    return _export(model, path, format=format)


def kernels_info() -> dict:
    """The compiled kernels here: ``built``, ``isa`` (used by default),
    ``available_isas``, ``default_backend``, ``operators`` with a kernel."""
    from ._kernels import kernels_info as _info
    return _info()


def save(model_or_graph, path) -> str:
    """Write a Model or Graph to ``path`` as .qnn; returns the file digest."""
    from . import format as _format
    graph = model_or_graph.graph if isinstance(model_or_graph, Model) else model_or_graph
    if isinstance(graph, GraphBuilder):
        graph = graph.graph()
    Model(graph)  # validate before writing: never write an invalid model
    return _format.write_graph(graph, path)


def bundled_model(name: str = "digits") -> str:
    """Path of a model shipped inside the package (``"digits"``)."""
    from importlib import resources
    models = {"digits": "digits.qnn"}
    if name not in models:
        raise QnnError(f"no bundled model {name!r} (available: {', '.join(models)})")
    return str(resources.files("qnnref") / "data" / models[name])


def bundled_test_set(name: str = "digits"):
    """The held-out test set shipped with a bundled model: (images_float32, labels)."""
    from importlib import resources
    import numpy as np
    path = resources.files("qnnref") / "data" / f"{name}_test.npz"
    with np.load(str(path)) as z:
        return z["images"], z["labels"]
