"""The inputs of ``qnnref conform onnxruntime MODEL.onnx``: the shapes that
symbolic dimensions take (``--input-shape``), real data (``--data``), and
seeded random inputs when no data is given (spec/conformance.md, "Model
files").

A *sample* is one set of model inputs: one run of the model in ONNX Runtime
and in qnnref, compared output by output. ``--data`` gives one sample per
``test_data_set_*`` directory, or, for an ``.npz`` file or a directory of
``NAME.npy`` files, one sample when each array has its input's rank, or a
stack of samples when every array has one axis more (axis 0 numbers the
samples).

Everything here is checked before ONNX Runtime starts; a bad argument or bad
data raises :class:`InputError` (the command exits with status 2).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from .onnxgraph import dtype_name


class InputError(ValueError):
    """Bad ``--input-shape`` or ``--data``: the message names the file, the
    input and what is wrong."""


@dataclass(frozen=True)
class InputSpec:
    """A graph input of an ONNX model (not an initializer)."""

    name: str
    dtype: str                       # numpy-style name, "elemN" when unknown
    dims: tuple | None               # per axis an int, a symbol (str) or None (unnamed); None: no shape

    @property
    def symbolic(self) -> list[tuple[int, str | None]]:
        """(axis, symbol) of every dimension without a fixed size."""
        return [(i, d) for i, d in enumerate(self.dims or ()) if not isinstance(d, int)]

    def describe(self) -> str:
        dims = "unknown shape" if self.dims is None else "[" + ", ".join(
            "?" if d is None else str(d) for d in self.dims) + "]"
        return f"{self.name!r} ({self.dtype} {dims})"


def model_inputs(model) -> list[InputSpec]:
    """The graph inputs of ``model`` (an onnx.ModelProto) that are not
    initializers, in graph order."""
    inits = {t.name for t in model.graph.initializer}
    specs = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dims = None
        if tt.HasField("shape"):
            dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0
                         else (d.dim_param or None) for d in tt.shape.dim)
        specs.append(InputSpec(vi.name, dtype_name(tt.elem_type), dims))
    return specs


# ---------------------------------------------------------------------------
# --input-shape
# ---------------------------------------------------------------------------

def parse_input_shapes(items) -> dict[str, tuple[int, ...]]:
    """``["x=1,3,224,224", ...]`` -> ``{"x": (1, 3, 224, 224)}``; ``NAME=``
    is a scalar."""
    shapes: dict[str, tuple[int, ...]] = {}
    for item in items or ():
        name, sep, dims = item.rpartition("=")
        try:
            if not sep or not name:
                raise ValueError
            shape = tuple(int(d) for d in dims.split(",")) if dims.strip() else ()
        except ValueError:
            raise InputError(f"--input-shape {item!r}: expected NAME=D0,D1,... (integers)") from None
        if any(d < 1 for d in shape):
            raise InputError(f"--input-shape {item!r}: every dimension must be at least 1")
        if name in shapes and shapes[name] != shape:
            raise InputError(f"--input-shape gives {name!r} twice: {shapes[name]} and {shape}")
        shapes[name] = shape
    return shapes


def _check_shape(where: str, spec: InputSpec, shape: tuple) -> None:
    """``shape`` fits ``spec``: same rank, same fixed dimensions."""
    if spec.dims is None:
        return
    if len(shape) != len(spec.dims):
        raise InputError(f"{where}: input {spec.describe()} has rank {len(spec.dims)}, "
                         f"given shape {list(shape)} has rank {len(shape)}")
    for axis, (d, s) in enumerate(zip(spec.dims, shape)):
        if isinstance(d, int) and d != s:
            raise InputError(f"{where}: input {spec.describe()} has dimension {d} on axis {axis}, "
                             f"given shape {list(shape)} has {s}")


def batch_inputs(specs) -> list:
    """The inputs whose leading dimension is symbolic: those that carry a
    model's symbolic batch (qnnref imports the model with it kept)."""
    return [s for s in specs if s.dims and not isinstance(s.dims[0], int)]


def batch_symbol(specs) -> str | None:
    """The symbolic batch of a model's inputs: its ``dim_param`` (``"?"``
    when unnamed), or None when no input has a symbolic leading dimension or
    they name different symbols (then it is not one batch: every dimension
    is fixed per sample, as for any symbolic dimension)."""
    names = {s.dims[0] or "?" for s in batch_inputs(specs)}
    return next(iter(names)) if len(names) == 1 else None


def resolve_shapes(label: str, specs, given: dict, data_shapes: dict | None = None,
                   batch: int | None = None):
    """The shape every input of a model runs with, and notes for the report.

    The one place that decides what symbolic dimensions become: a
    ``--input-shape`` (``given``), else the shape of the data (``data_shapes``),
    else 1 -- the documented default, noted. ``batch``: what a symbolic
    leading dimension becomes instead of 1 (not noted: the caller says which
    batch sizes it compares). Both runtimes run with these shapes; qnnref
    imports a model with a symbolic batch once, the batch kept, and fixes
    only the other dimensions (engine.import_plan). Returns ``(shapes, notes)``."""
    shapes, notes, symbols = {}, [], {}
    for spec in specs:
        if spec.name in given:
            shape = tuple(given[spec.name])
            _check_shape(f"{label}: --input-shape", spec, shape)
        elif data_shapes is not None and spec.name in data_shapes:
            shape = tuple(data_shapes[spec.name])
        elif spec.dims is None:
            raise InputError(f"{label}: input {spec.name!r} has no shape in the model; "
                             f"give it with --input-shape {spec.name}=D0,D1,... or --data")
        else:
            lead = 1 if batch is None else batch
            shape = tuple(d if isinstance(d, int) else lead if i == 0 else 1 for i, d in enumerate(spec.dims))
            for axis, sym in spec.symbolic:
                if axis == 0 and batch is not None:
                    continue
                notes.append(f"{label}: input {spec.name!r} dimension "
                             f"{repr(sym) if sym else '?'} (axis {axis}) set to 1 "
                             "(no --input-shape or --data gives it)")
        for axis, sym in spec.symbolic:
            if sym is None or axis >= len(shape):
                continue
            seen = symbols.setdefault(sym, (shape[axis], spec.name))
            if seen[0] != shape[axis]:
                raise InputError(f"{label}: symbolic dimension {sym!r} is {seen[0]} in input {seen[1]!r} "
                                 f"but {shape[axis]} in input {spec.name!r}")
        shapes[spec.name] = shape
    return shapes, notes


# ---------------------------------------------------------------------------
# --data
# ---------------------------------------------------------------------------

_SET_RE = re.compile(r"^test_data_set_(\d+)$")
_PB_RE = re.compile(r"^input_(\d+)\.pb$")


def read_data(path: str, specs) -> list[tuple[str, dict]]:
    """The raw arrays of ``--data PATH``: a list of ``(label, {input name:
    array})``, one entry per file set (an ``.npz``, a directory of ``.npy``
    files, or each ``test_data_set_*`` directory)."""
    if os.path.isfile(path):
        if not path.endswith(".npz"):
            raise InputError(f"--data {path}: a file must be an .npz (keys: input names)")
        try:
            with np.load(path, allow_pickle=False) as z:
                return [(os.path.basename(path), {k: z[k] for k in z.files})]
        except InputError:
            raise
        except Exception as e:
            raise InputError(f"--data {path}: cannot read the .npz: {type(e).__name__}: {e}") from None
    if not os.path.isdir(path):
        raise InputError(f"--data {path}: no such file or directory")
    entries = sorted(os.listdir(path))
    sets = sorted((int(m.group(1)), e) for e in entries if (m := _SET_RE.match(e))
                  and os.path.isdir(os.path.join(path, e)))
    if sets:
        return [(name, _read_pb_set(os.path.join(path, name), specs)) for _, name in sets]
    if any(_PB_RE.match(e) for e in entries):            # the directory is one test_data_set
        return [(os.path.basename(os.path.normpath(path)), _read_pb_set(path, specs))]
    npys = [e for e in entries if e.endswith(".npy")]
    if not npys:
        raise InputError(f"--data {path}: the directory holds no NAME.npy files and no "
                         "test_data_set_*/input_*.pb")
    arrays = {}
    for e in npys:
        try:
            arrays[e[:-4]] = np.load(os.path.join(path, e), allow_pickle=False)
        except Exception as ex:
            raise InputError(f"--data {os.path.join(path, e)}: cannot read: {type(ex).__name__}: {ex}") from None
    return [(os.path.basename(os.path.normpath(path)), arrays)]


def _read_pb_set(directory: str, specs) -> dict:
    """``input_K.pb`` (serialized onnx.TensorProto) is the K-th model input."""
    import onnx
    from onnx import numpy_helper
    files = sorted((int(m.group(1)), e) for e in os.listdir(directory) if (m := _PB_RE.match(e)))
    if not files:
        raise InputError(f"--data {directory}: no input_*.pb files")
    arrays = {}
    for k, e in files:
        where = os.path.join(directory, e)
        if k >= len(specs):
            raise InputError(f"--data {where}: the model has only {len(specs)} input(s) "
                             f"({', '.join(s.name for s in specs)})")
        t = onnx.TensorProto()
        try:
            with open(where, "rb") as f:
                t.ParseFromString(f.read())
            a = numpy_helper.to_array(t)
        except Exception as ex:
            raise InputError(f"--data {where}: not a serialized onnx.TensorProto: "
                             f"{type(ex).__name__}: {ex}") from None
        name = specs[k].name
        if t.name and t.name != name:
            raise InputError(f"--data {where}: the tensor is named {t.name!r}, but model input {k} "
                             f"is {name!r} (input_K.pb is the K-th model input)")
        arrays[name] = a
    return arrays


def samples_from_data(label: str, specs, raw_sets, given: dict, batched=()) -> list[tuple[str, dict]]:
    """Check the raw arrays against the model's inputs (names, dtypes,
    shapes) and split stacks into samples: a list of ``(sample label,
    {input name: array})``. ``batched``: the inputs that carry a symbolic
    batch (:func:`batch_inputs`); then a stack of several samples is also
    one more sample, its samples joined along the batch axis (``SET[all]``),
    when every other input is the same in all of them and no
    ``--input-shape`` fixes the batch."""
    names = [s.name for s in specs]
    samples = []
    for set_label, arrays in raw_sets:
        where = f"--data {set_label}"
        unknown = sorted(set(arrays) - set(names))
        if unknown:
            raise InputError(f"{where}: {unknown} are not inputs of {label} (its inputs: {', '.join(names)})")
        missing = [n for n in names if n not in arrays]
        if missing:
            raise InputError(f"{where}: no data for input(s) {missing} of {label}")
        stacked = {}
        for spec in specs:
            a = arrays[spec.name]
            if str(a.dtype) != spec.dtype:
                raise InputError(f"{where}: input {spec.describe()} of {label} is given {a.dtype} data "
                                 f"(convert it, e.g. array.astype(numpy.{spec.dtype}))")
            rank = len(spec.dims) if spec.dims is not None else None
            if rank is None or a.ndim == rank:
                stacked[spec.name] = False
            elif a.ndim == rank + 1:
                stacked[spec.name] = True
            else:
                raise InputError(f"{where}: input {spec.describe()} of {label} has rank {rank}; the data "
                                 f"has shape {list(a.shape)} (rank {rank} for one sample, {rank + 1} for "
                                 "a stack of samples along axis 0)")
        if len(set(stacked.values())) > 1:
            raise InputError(f"{where}: some inputs are stacks of samples (one axis more than the input's "
                             f"rank: {[n for n, s in stacked.items() if s]}) and others are not")
        if any(stacked.values()):
            counts = {n: arrays[n].shape[0] for n in names}
            if len(set(counts.values())) != 1:
                raise InputError(f"{where}: the stacks hold different numbers of samples: {counts}")
            n = next(iter(counts.values()))
            if n == 0:
                raise InputError(f"{where}: the stacks hold no samples")
            items = [(f"{set_label}[{i}]", {k: arrays[k][i] for k in names}) for i in range(n)]
            if n > 1 and batched and not any(b in given for b in batched) and all(
                    np.array_equal(arrays[k][0], arrays[k][i]) for k in names if k not in batched
                    for i in range(1, n)):
                items.append((f"{set_label}[all]", {k: np.concatenate(list(arrays[k])) if k in batched
                                                    else arrays[k][0] for k in names}))
        else:
            items = [(set_label, {k: arrays[k] for k in names})]
        for sample_label, feeds in items:
            for spec in specs:
                _check_shape(f"--data {sample_label}", spec, feeds[spec.name].shape)
                if spec.name in given and tuple(given[spec.name]) != feeds[spec.name].shape:
                    raise InputError(f"--data {sample_label}: input {spec.name!r} has shape "
                                     f"{list(feeds[spec.name].shape)}, --input-shape says "
                                     f"{list(given[spec.name])}")
            samples.append((sample_label, {k: np.ascontiguousarray(v) for k, v in feeds.items()}))
    return samples


# ---------------------------------------------------------------------------
# Random inputs
# ---------------------------------------------------------------------------

def random_inputs(label: str, specs, shapes: dict, rng) -> dict:
    """Seeded random inputs: integers over their dtype's whole range, floats
    from a standard normal distribution clipped to [-3, 3]."""
    from .suite import QRANGE
    inputs = {}
    for spec in specs:
        shape = shapes[spec.name]
        if spec.dtype in QRANGE:
            lo, hi = QRANGE[spec.dtype]
            inputs[spec.name] = rng.integers(lo, hi + 1, size=shape).astype(spec.dtype)
        elif spec.dtype == "float32":
            inputs[spec.name] = np.clip(rng.standard_normal(shape), -3, 3).astype(np.float32)
        else:
            raise InputError(f"{label}: input {spec.name!r} has type {spec.dtype}, for which the harness "
                             "cannot generate random values; give --data")
    return inputs
