"""The qnnref side of a case: import the ONNX model under a profile, run it,
and hand back every tensor under its ONNX name, in ONNX layout.

The importer (``qnnref.onnx.import_onnx``) keeps ONNX tensor names where a
tensor survives. Where it does not keep a name or a layout, it says so in
``metadata["source"]["tensors"]``: ONNX name -> ``{"tensor": qnnref name,
"perm": p, "dequantized": bool}``, where qnnref axis i is ONNX axis
``p[i]`` (qnnref array = ONNX array ``.transpose(p)``). :func:`onnx_view`
undoes that, so intermediate tensors compare with ONNX Runtime's.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..profiles import PROFILES, get_profile


class ImporterUnavailable(Exception):
    pass


def find_importer():
    """``qnnref.onnx.import_onnx``, or raise ImporterUnavailable saying why."""
    try:
        from ..onnx import import_onnx
    except ImportError as e:
        raise ImporterUnavailable(f"qnnref.onnx.import_onnx is not available ({e})") from None
    return import_onnx


# ---------------------------------------------------------------------------
# Profiles with vendor-configuration overrides
# ---------------------------------------------------------------------------

def profile_variant(name: str, overrides: dict | None) -> str:
    """The name of profile ``name`` with ``overrides`` applied to its fields
    (registered, in this process only, as ``name[field=value,...]``); ``name``
    itself when nothing changes. Fields the profile does not have are ignored:
    they describe a vendor mechanism this profile does not model."""
    base = get_profile(name, "conform")
    changes = {k: v for k, v in (overrides or {}).items()
               if k in {f.name for f in dataclasses.fields(base)} and getattr(base, k) != v}
    if not changes:
        return name
    variant = f"{name}[{','.join(f'{k}={v}' for k, v in sorted(changes.items()))}]"
    if variant not in PROFILES:
        PROFILES[variant] = dataclasses.replace(
            base, **changes, name=variant,
            description=f"{base.description} -- with {', '.join(f'{k}={v}' for k, v in sorted(changes.items()))} "
                        "(a conformance-harness variant)")
    return variant


def base_profile_name(name: str) -> str:
    return name.split("[", 1)[0]


# ---------------------------------------------------------------------------
# Running a case
# ---------------------------------------------------------------------------

@dataclass
class OursResult:
    profile: str                                   # the (variant) profile it ran under
    outputs: dict = field(default_factory=dict)    # ONNX graph output name -> array (ONNX layout)
    tensors: dict = field(default_factory=dict)    # every ONNX-named tensor qnnref computed
    error: str | None = None                       # import or run failure
    stage: str | None = None                       # "import" or "run" when error
    #: the importer refused the model with a qnnref error (an operator, type
    #: or attribute it does not support): "unsupported", not a wrong answer
    refused: bool = False
    seconds: float = 0.0
    #: a model with a symbolic batch: {"size", "symbol", "kept"} (and
    #: "not_kept": the importer's reason; "per_item": see :func:`per_item`)
    batch: dict | None = None


def onnx_view(model, onnx_name: str, captured: dict):
    """The value qnnref computed for ONNX tensor ``onnx_name``, as an array in
    ONNX layout, or None when qnnref has no integer tensor for it."""
    entries = (model.metadata.get("source") or {}).get("tensors") or {}
    entry = entries.get(onnx_name)
    if entry is None:
        value = captured.get(onnx_name)
        return value
    if entry.get("dequantized"):
        return None                    # holds the integers of a float ONNX value
    value = captured.get(entry.get("tensor", onnx_name))
    if value is None:
        return None
    perm = entry.get("perm")
    if perm:
        value = value.transpose(np.argsort(perm))
    return value


def import_plan(case) -> tuple[bytes, dict | None, bool]:
    """How qnnref imports a case's model: ``(model bytes, input_shapes,
    batch kept)``.

    A model with a symbolic batch (``case.batch`` set) is imported with the
    batch kept, the same model for every batch size: its batch inputs are
    not in ``input_shapes`` (the importer keeps a symbolic leading dimension
    of an input it is not given), and their other symbolic dimensions, if
    any, are fixed in a copy of the model (to the sizes
    inputs.resolve_shapes chose). Every other model is imported at the
    case's shapes (None: the model's own, all fixed)."""
    if case.batch is None or not case.input_shapes:
        return case.model, case.input_shapes or None, False
    batched = set(case.batch_inputs)
    shapes = {k: v for k, v in case.input_shapes.items() if k not in batched}
    return _fix_inner_dims(case.model, {k: case.input_shapes[k] for k in batched}), shapes or None, True


def _fix_inner_dims(blob: bytes, shapes: dict) -> bytes:
    """``blob`` with every dimension but the leading one of the graph inputs
    in ``shapes`` set to its size there (the model's own bytes when none is
    symbolic)."""
    import onnx
    proto = onnx.load_from_string(blob)
    changed = False
    for vi in proto.graph.input:
        if vi.name not in shapes:
            continue
        for axis, d in enumerate(vi.type.tensor_type.shape.dim):
            if axis and not (d.HasField("dim_value") and d.dim_value > 0):
                d.dim_value = int(shapes[vi.name][axis])
                changed = True
    return proto.SerializeToString() if changed else blob


def _batch_key(case) -> tuple:
    """The import-cache key of a case's shapes: without the batch size when
    the batch is kept."""
    _, shapes, kept = import_plan(case)
    if not kept:
        return tuple(sorted((shapes or {}).items()))
    return ("batch", tuple(sorted((k, tuple(v)[1:]) for k, v in case.input_shapes.items()
                                  if k in case.batch_inputs)), tuple(sorted((shapes or {}).items())))


class QnnrefEngine:
    """Imports and runs cases in qnnref (in this process). The samples of a
    model file are cases with the same model bytes: the last few imports
    are kept, so a model is imported once per profile and shapes -- and a
    model with a symbolic batch once per profile, whatever the batch sizes.
    ``mlas_nchwc_block``: the NCHWc block of ONNX Runtime's MLAS kernel
    family (the worker's probe; the harness sets it from the greeting),
    passed to the importer."""

    CACHE = 8

    def __init__(self, mlas_nchwc_block: int | None = None):
        self.import_onnx = find_importer()
        self.mlas_nchwc_block = mlas_nchwc_block
        self._cache: dict = {}
        #: symbolic imports the importer refused: key -> its message (the
        #: model is then imported at each case's batch size)
        self._not_kept: dict = {}

    def _import(self, case, profile: str, float_nodes):
        """``(model, batch kept, why not)``."""
        blob, shapes, kept = import_plan(case)
        key = (case.model, profile, _batch_key(case), tuple(float_nodes or ()))
        why = self._not_kept.get(key)
        if kept and why is not None:
            blob, shapes, kept = case.model, case.input_shapes, False
        if not kept:
            key = (case.model, profile, tuple(sorted((shapes or {}).items())), tuple(float_nodes or ()))
        model = self._cache.pop(key, None)
        if model is None:
            from ..errors import QnnError
            try:
                kw = {"mlas_nchwc_block": self.mlas_nchwc_block} if self.mlas_nchwc_block else {}
                model = self.import_onnx(blob, profile=profile, input_shapes=shapes, **kw)
                if kept and model.batch_symbol is None:
                    raise QnnError("the imported model has no symbolic batch")
            except QnnError as e:
                if not kept:
                    raise
                # the batch cannot stay open (e.g. a Reshape to a fixed [1, ...]):
                # import at this case's shapes, as for any symbolic dimension
                self._not_kept[key] = why = _error_text(e)
                return self._import(case, profile, float_nodes)
            model = without_saturation(model, float_nodes)
        self._cache[key] = model                     # the most recent last
        while len(self._cache) > self.CACHE:
            del self._cache[next(iter(self._cache))]
        return model, kept, why

    def run(self, case, profile: str, onnx_model=None, float_nodes=()) -> OursResult:
        """Run ``case`` under ``profile`` (already a variant name, see
        :func:`profile_variant`); capture every tensor. ``float_nodes``:
        names of ONNX nodes that ONNX Runtime computed in float (see
        :func:`without_saturation`). A model with a symbolic batch run at a
        batch size above 1 is also run item by item at batch 1
        (:func:`per_item`)."""
        import time
        t0 = time.perf_counter()
        res = OursResult(profile=profile)
        try:
            model, kept, why = self._import(case, profile, float_nodes)
        except Exception as e:          # QnnError: a refusal; anything else: an importer bug
            from ..errors import QnnError
            res.error, res.stage = _error_text(e), "import"
            res.refused = isinstance(e, QnnError)
            res.seconds = time.perf_counter() - t0
            return res
        if case.batch is not None:
            res.batch = {"size": case.batch, "symbol": case.batch_symbol, "kept": kept}
            if why:
                res.batch["not_kept"] = why
        names = [i.name for i in model.inputs]
        feeds = {k: v for k, v in case.inputs.items() if k in names}
        try:
            captured = model.run(feeds, capture=True)
            if kept and case.batch > 1:
                res.batch["per_item"] = per_item(model, feeds, captured)
        except Exception as e:
            res.error, res.stage = _error_text(e), "run"
            res.seconds = time.perf_counter() - t0
            return res
        if onnx_model is None:
            import onnx
            onnx_model = onnx.load_from_string(case.model)
        graph_outputs = [o.name for o in onnx_model.graph.output]
        tensor_names = [o for n in onnx_model.graph.node for o in n.output if o]
        for name in tensor_names:
            v = onnx_view(model, name, captured)
            if v is not None:
                res.tensors[name] = v
        for name in graph_outputs:
            v = captured.get(name)
            if v is None:
                v = onnx_view(model, name, captured)
            if v is not None:
                res.outputs[name] = v
        res.seconds = time.perf_counter() - t0
        return res


def per_item(model, feeds: dict, captured: dict) -> dict:
    """Whether ``model`` (a symbolic batch) gives each item of the batch
    ``feeds`` the same bits at batch 1 as in the batch (``captured``: its
    tensors at the full batch): ``{"items": n, "identical": bool}``, and the
    first item and output that differ."""
    symbol = model.batch_symbol
    batched = {i.name for i in model.inputs if i.shape and i.shape[0] == symbol}
    n = next(iter(feeds[k].shape[0] for k in feeds if k in batched))
    for i in range(n):
        item = {k: (v[i:i + 1] if k in batched else v) for k, v in feeds.items()}
        got = model.run(item)
        for o in model.outputs:
            whole = np.asarray(captured[o.name])
            want = whole[i:i + 1] if o.shape and o.shape[0] == symbol else whole
            mine = np.asarray(got[o.name])
            if want.shape != mine.shape or want.dtype != mine.dtype or \
                    np.ascontiguousarray(want).tobytes() != np.ascontiguousarray(mine).tobytes():
                return {"items": n, "identical": False, "item": i, "output": o.name}
    return {"items": n, "identical": True}


def without_saturation(model, onnx_names):
    """``model`` with ``pairwise_int16_saturation`` off on its matmul and
    conv2d nodes imported from the ONNX nodes ``onnx_names``: ONNX Runtime
    did not fuse those QDQ patterns into its integer operators but computed
    them in float (its optimized graph says so), and a float product has no
    int16 pairs. The same model when nothing changes."""
    names = set(onnx_names or ())
    hit = [n for n in model.graph.nodes
           if n.name in names and n.op in ("matmul", "conv2d") and n.attrs.get(SATURATION_ATTR) is not False]
    if not hit:
        return model
    from ..interpreter import Model
    graph = model.graph.copy()           # a loaded model's graph is read-only
    for n in graph.nodes:
        if n.name in names and any(n.name == h.name for h in hit):
            n.attrs[SATURATION_ATTR] = False
    return Model(graph, backend=model.backend, isa=model.isa, threads=model.threads)


SATURATION_ATTR = "pairwise_int16_saturation"


def float_node_names(vendor) -> tuple[str, ...]:
    """Names of the nodes ONNX Runtime computed in float (its optimized graph):
    qnnref runs their integer counterparts without int16 pair saturation."""
    from .worker import EXACT_OPS
    return tuple(name for op, name in (vendor.vendor_ops or ()) if op not in EXACT_OPS)


def _error_text(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    from ..errors import QnnError
    return text if isinstance(e, QnnError) else f"{type(e).__name__}: {text}"
