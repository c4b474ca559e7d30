"""The ``.qnn`` file format: write a :class:`~qnnref.graph.Graph` to bytes or a
file, and read it back.

spec/format.md is the contract; this module implements it. In brief::

    offset      size  field
    0           8     magic  b"\\x89QNN\\r\\n\\x1a\\n"
    8           2     major version, uint16 little-endian
    10          2     minor version, uint16 little-endian
    12          8     H = header length in bytes, uint64 little-endian
    20          8     L = data section length in bytes, uint64 little-endian
    28          H     header: UTF-8 JSON (tensors, nodes, inputs, outputs, metadata)
    28+H        ..    zero bytes up to D = the next multiple of 64
    D           L     data section: tensor blobs, each at a multiple of 64
    D+L         32    SHA-256 of bytes [0, D+L), the whole file before it

Reading copies the file into private memory: constant tensors are read-only
numpy views of that copy, except the 4-bit types, which are unpacked into new
(read-only) arrays; the file on disk may then change without effect. All digests are verified unless ``verify=False``.

Every malformed input raises :class:`~qnnref.errors.FormatError` whose message
starts with the file's path (``"<bytes>"`` for :func:`from_bytes`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import stat
import struct
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, NoReturn

import numpy as np

from . import dtypes
from .errors import FormatError, ValidationError
from .graph import MAX_DIM, MAX_RANK, SYMBOL_PATTERN, Graph, Node, Quant, TensorInfo

# --------------------------------------------------------------------------
# Constants of the layout (spec/format.md, "Byte layout")
# --------------------------------------------------------------------------

#: The first 8 bytes of every .qnn file. Like PNG's signature: the high byte
#: catches 7-bit transfers, CR LF / LF catch newline translation, 0x1A stops
#: ``type`` on DOS-like systems.
MAGIC = b"\x89QNN\r\n\x1a\n"

#: (major, minor): the newest version written by this module. Readers accept
#: any 1.x file. A file is written as 1.1 only when it needs 1.1 (a symbolic
#: batch, spec/format.md "Symbolic batch"); every other file is written as
#: 1.0, byte for byte as before, so 1.0 readers still read it.
FORMAT_VERSION: tuple[int, int] = (1, 1)
#: the version of files without a symbolic batch
STATIC_VERSION: tuple[int, int] = (1, 0)
#: the first minor version whose shapes may start with a batch symbol
SYMBOLIC_MINOR = 1

ALIGNMENT = 64                          # blob and data-section alignment, bytes
DIGEST_SIZE = 32                        # SHA-256 trailer
_PREAMBLE = struct.Struct("<8sHHQQ")    # magic, major, minor, H, L
PREAMBLE_SIZE = _PREAMBLE.size          # 28

# Limits on what a header may claim (spec/format.md, "Limits"); MAX_RANK and
# MAX_DIM come from qnnref.graph, which applies them to graphs in memory too.
MAX_ELEMENTS = 2**40
MAX_JSON_DEPTH = 64                     # nesting of attrs / metadata values

#: metadata keys with a defined meaning; all hold strings
METADATA_STRING_KEYS = ("producer", "created", "description", "profile")
#: metadata key holding free-form user key/values (a JSON object)
METADATA_USER_KEY = "user"

GRANULARITIES = ("per-tensor", "per-axis", "blocked")
SCALE_DTYPES = ("float32", "float16")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class LoadedFile:
    """What :func:`read_graph` / :func:`from_bytes` return."""

    graph: Graph
    digest: str                  # hex SHA-256 of the whole file (the trailer)
    version: tuple[int, int]     # (major, minor) found in the file
    path: str | None             # the file read; None for from_bytes
    size: int                    # file size in bytes


# --------------------------------------------------------------------------
# Small helpers shared by reader and writer
# --------------------------------------------------------------------------

def _align(n: int) -> int:
    """``n`` rounded up to a multiple of ALIGNMENT."""
    return -(-n // ALIGNMENT) * ALIGNMENT


def _element_count(shape: tuple[int, ...]) -> int:
    """Number of elements, in exact Python integers (never overflows); a
    batch symbol counts as 1 (the limits of a symbolic shape are at batch 1)."""
    return math.prod(1 if isinstance(d, str) else d for d in shape)


def _blob_nbytes(dt: dtypes.DType, count: int) -> int:
    """Bytes a tensor of ``count`` elements of ``dt`` occupies on disk."""
    return (count * dt.bits + 7) // 8


def _disk_dtype(dt: dtypes.DType) -> np.dtype:
    """The little-endian numpy dtype of a (non-4-bit) dtype on disk."""
    return dt.numpy.newbyteorder("<")


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_int(value: Any) -> bool:
    """True for a JSON integer (Python int but not bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_unicode(text: str) -> bool:
    """False for strings holding lone surrogates (not encodable as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --------------------------------------------------------------------------
# Array encoding: in-memory numpy arrays <-> little-endian blobs
# --------------------------------------------------------------------------

def _pack4(arr: np.ndarray) -> np.ndarray:
    """Pack 4-bit values two per byte, low nibble first; an odd count leaves
    the last byte's high nibble zero."""
    nibbles = arr.reshape(-1).astype(np.uint8) & 0x0F   # int8 -1 -> 0xFF -> 0x0F
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8)


def _unpack4(packed: np.ndarray, count: int, dt: dtypes.DType) -> tuple[np.ndarray, bool]:
    """Unpack ``count`` 4-bit values (a new array: this copies). Returns the
    values and whether the padding nibble (if any) was zero."""
    nibbles = np.empty(packed.size * 2, np.uint8)
    nibbles[0::2] = packed & 0x0F
    nibbles[1::2] = packed >> 4
    padding_ok = count == nibbles.size or not nibbles[count:].any()
    nibbles = nibbles[:count]
    if dt.min < 0:   # int4: two's complement nibble -> int8 in [-8, 7]
        return (nibbles ^ 8).astype(np.int8) - np.int8(8), padding_ok
    return nibbles.copy(), padding_ok


def encode_array(arr: np.ndarray, dt: dtypes.DType) -> np.ndarray:
    """The on-disk bytes of an in-memory array as a flat uint8 array (a view
    of ``arr`` when no conversion is needed)."""
    if dt.bits == 4:
        return _pack4(arr)
    little = np.ascontiguousarray(arr.astype(_disk_dtype(dt), copy=False))
    return little.reshape(-1).view(np.uint8)


def _decode_array(buf, start: int, dt: dtypes.DType, shape: tuple[int, ...]
                  ) -> tuple[np.ndarray, bool]:
    """The in-memory array for a blob at byte ``start`` of ``buf``, read-only.

    Non-4-bit types on a little-endian host are views of ``buf`` (no copy);
    4-bit types are unpacked and big-endian hosts byte-swap, both of which
    copy. Returns the array and whether a 4-bit padding nibble was zero.
    """
    count = _element_count(shape)
    padding_ok = True
    if dt.bits == 4:
        packed = np.frombuffer(buf, np.uint8, _blob_nbytes(dt, count), start)
        arr, padding_ok = _unpack4(packed, count, dt)
    else:
        arr = np.frombuffer(buf, _disk_dtype(dt), count, start)
        if arr.dtype != dt.numpy:            # big-endian host: swap (copies)
            arr = arr.astype(dt.numpy)
    arr = arr.reshape(shape)
    arr.flags.writeable = False
    return arr, padding_ok


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------

def _write_fail(where: str, message: str) -> NoReturn:
    raise FormatError(f"{where}: {message}")


class _BlobTable:
    """Lays blobs out in the data section, each at a multiple of ALIGNMENT,
    and returns the header's data reference for each."""

    def __init__(self) -> None:
        self.blobs: list[tuple[int, np.ndarray]] = []   # (offset, uint8 bytes)
        self.size = 0                                     # always aligned

    def add(self, data: np.ndarray) -> dict[str, Any]:
        offset = self.size
        self.blobs.append((offset, data))
        self.size = _align(offset + data.nbytes)
        return {"offset": offset, "nbytes": int(data.nbytes),
                "sha256": hashlib.sha256(data).hexdigest()}


def _to_json_value(value: Any, where: str, ctx: str, depth: int = 0) -> Any:
    """``value`` as plain JSON data (numpy scalars and arrays become Python
    numbers and lists, tuples become lists); FormatError if impossible."""
    if depth > MAX_JSON_DEPTH:
        _write_fail(where, f"{ctx}: nested deeper than {MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            _write_fail(where, f"{ctx}: {number} is not representable in JSON (only finite numbers are)")
        return number
    if isinstance(value, str):
        if not _is_unicode(value):
            _write_fail(where, f"{ctx}: string {value!r} is not valid Unicode")
        return value
    if isinstance(value, np.ndarray):
        return _to_json_value(value.tolist(), where, ctx, depth)
    if isinstance(value, (list, tuple)):
        return [_to_json_value(v, where, f"{ctx}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str) or not _is_unicode(key):
                _write_fail(where, f"{ctx}: object key {key!r} is not a string")
            out[key] = _to_json_value(v, where, f"{ctx}[{key!r}]", depth + 1)
        return out
    _write_fail(where, f"{ctx}: a {type(value).__name__} is not a JSON value")


def _check_name(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str) or not value or not _is_unicode(value):
        _write_fail(where, f"{what} must be a non-empty string, got {value!r}")
    return value


def _check_name_list(value: Any, where: str, what: str, allow_empty: bool) -> list[str]:
    if not isinstance(value, (list, tuple)):
        _write_fail(where, f"{what} must be a list of tensor names, got {type(value).__name__}")
    for name in value:
        if not isinstance(name, str) or not _is_unicode(name) or (not name and not allow_empty):
            _write_fail(where, f"{what} holds {name!r}, which is not a tensor name")
    return list(value)


def _check_shape(shape: Any, where: str, ctx: str) -> tuple[int, ...]:
    if not isinstance(shape, (tuple, list)):
        _write_fail(where, f"{ctx}: shape must be a tuple of ints, got {shape!r}")
    dims: list = []
    for i, d in enumerate(shape):
        if i == 0 and isinstance(d, str):          # a symbolic batch
            if not SYMBOL_PATTERN.fullmatch(d):
                _write_fail(where, f"{ctx}: batch symbol {d!r} is not a name")
            dims.append(d)
            continue
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)):
            _write_fail(where, f"{ctx}: shape {shape!r} holds a non-integer {d!r}")
        if not 0 <= int(d) <= MAX_DIM:
            _write_fail(where, f"{ctx}: dimension {int(d)} outside [0, {MAX_DIM}]")
        dims.append(int(d))
    if len(dims) > MAX_RANK:
        _write_fail(where, f"{ctx}: rank {len(dims)} exceeds {MAX_RANK}")
    if _element_count(dims) > MAX_ELEMENTS:
        _write_fail(where, f"{ctx}: {_element_count(dims)} elements exceed the limit {MAX_ELEMENTS}")
    return tuple(dims)


def _constant_to_json(t: TensorInfo, dt: dtypes.DType, shape, where: str, ctx: str,
                      blobs: _BlobTable) -> dict[str, Any]:
    data = t.data
    if not isinstance(data, np.ndarray):
        _write_fail(where, f"{ctx}: constant data must be a numpy array, got {type(data).__name__}")
    if data.dtype != dt.numpy:
        _write_fail(where, f"{ctx}: constant data has numpy dtype {data.dtype}, but a {dt} tensor "
                           f"is held as {dt.numpy} in memory")
    if data.shape != shape:
        _write_fail(where, f"{ctx}: constant data has shape {data.shape}, the tensor declares {shape}")
    if not dtypes.check_array(data, dt):
        _write_fail(where, f"{ctx}: {dt} values must lie in [{dt.min}, {dt.max}]")
    return blobs.add(encode_array(data, dt))


def _quant_to_json(q: Any, dt: dtypes.DType, shape, where: str, ctx: str,
                   blobs: _BlobTable) -> dict[str, Any]:
    if not isinstance(q, Quant):
        _write_fail(where, f"{ctx}: quant must be a Quant, got {type(q).__name__}")
    q.check(dt, shape, f"{where}: {ctx}")        # ValidationError if unfit
    out: dict[str, Any] = {"granularity": q.granularity}
    if q.axis is None:
        out["scale"] = float(np.float32(q.scale))  # exact: repr round-trips
        if q.zero_point is not None:
            out["zero_point"] = int(q.zero_point)
        return out
    out["axis"] = int(q.axis)
    if q.block_size is not None:
        out["block_size"] = int(q.block_size)
    out["scale_dtype"] = q.scale.dtype.name
    out["scale"] = blobs.add(encode_array(q.scale, dtypes.DTYPES[q.scale.dtype.name]))
    if q.zero_point is not None:
        out["zero_point"] = blobs.add(encode_array(q.zero_point, dt))
    return out


def _tensor_to_json(key: str, t: Any, where: str, blobs: _BlobTable) -> dict[str, Any]:
    ctx = f"tensor {key!r}"
    if not isinstance(t, TensorInfo):
        _write_fail(where, f"{ctx}: expected a TensorInfo, got {type(t).__name__}")
    _check_name(t.name, where, f"{ctx}: name")
    dt = dtypes.DTYPES.get(t.dtype) if isinstance(t.dtype, str) else None
    if dt is None:
        _write_fail(where, f"{ctx}: unknown dtype {t.dtype!r} (known: {', '.join(dtypes.DTYPES)})")
    shape = _check_shape(t.shape, where, ctx)
    entry: dict[str, Any] = {"name": t.name, "dtype": t.dtype, "shape": list(shape)}
    data_ref = None if t.data is None else _constant_to_json(t, dt, shape, where, ctx, blobs)
    if t.quant is not None:
        entry["quant"] = _quant_to_json(t.quant, dt, shape, where, ctx, blobs)
    if data_ref is not None:
        entry["data"] = data_ref
    return entry


def _node_to_json(n: Any, index: int, where: str) -> dict[str, Any]:
    if not isinstance(n, Node):
        _write_fail(where, f"nodes[{index}]: expected a Node, got {type(n).__name__}")
    _check_name(n.name, where, f"nodes[{index}] name")
    ctx = f"node {n.name!r}"
    _check_name(n.op, where, f"{ctx}: op")
    if not isinstance(n.attrs, dict):
        _write_fail(where, f"{ctx}: attrs must be a dict, got {type(n.attrs).__name__}")
    return {"name": n.name, "op": n.op,
            "inputs": _check_name_list(n.inputs, where, f"{ctx}: inputs", allow_empty=True),
            "outputs": _check_name_list(n.outputs, where, f"{ctx}: outputs", allow_empty=False),
            "attrs": _to_json_value(n.attrs, where, f"{ctx}: attrs")}


def _metadata_to_json(metadata: Any, where: str) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        _write_fail(where, f"metadata must be a dict, got {type(metadata).__name__}")
    for key in METADATA_STRING_KEYS:
        if key in metadata and not isinstance(metadata[key], str):
            _write_fail(where, f"metadata[{key!r}] must be a string, got {metadata[key]!r}")
    if METADATA_USER_KEY in metadata and not isinstance(metadata[METADATA_USER_KEY], dict):
        _write_fail(where, f"metadata[{METADATA_USER_KEY!r}] must be a dict of user key/values")
    return _to_json_value(metadata, where, "metadata")


def _check_graph_containers(graph: Any, where: str) -> None:
    if not isinstance(graph, Graph):
        _write_fail(where, f"expected a Graph, got {type(graph).__name__}")
    if not isinstance(graph.tensors, dict):
        _write_fail(where, "graph.tensors must be a dict of name -> TensorInfo")
    if not isinstance(graph.nodes, (list, tuple)):
        _write_fail(where, "graph.nodes must be a list of Node")


def _version(tensors: list[dict[str, Any]]) -> tuple[int, int]:
    """The version a file needs: 1.1 with a symbolic batch, else 1.0."""
    symbolic = any(t["shape"] and isinstance(t["shape"][0], str) for t in tensors)
    return FORMAT_VERSION if symbolic else STATIC_VERSION


def _serialize(graph: Graph, where: str) -> tuple[bytes, _BlobTable, tuple[int, int]]:
    """Validate ``graph`` and encode it: the header's UTF-8 bytes, the
    blobs of the data section and the format version the file needs."""
    _check_graph_containers(graph, where)
    blobs = _BlobTable()
    tensors = [_tensor_to_json(key, t, where, blobs) for key, t in graph.tensors.items()]
    nodes = [_node_to_json(n, i, where) for i, n in enumerate(graph.nodes)]
    header = {
        "metadata": _metadata_to_json(graph.metadata, where),
        "inputs": _check_name_list(graph.inputs, where, "graph inputs", allow_empty=False),
        "outputs": _check_name_list(graph.outputs, where, "graph outputs", allow_empty=False),
        "tensors": tensors,
        "nodes": nodes,
    }
    graph.check_structure(where)
    symbols = {t["shape"][0] for t in tensors if t["shape"] and isinstance(t["shape"][0], str)}
    if len(symbols) > 1:
        _write_fail(where, f"tensors use {len(symbols)} batch symbols {sorted(symbols)}: a model has one")
    text = json.dumps(header, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    encoded = text.encode("utf-8")
    return encoded, blobs, _version(tensors)


def _file_chunks(header: bytes, blobs: _BlobTable, version: tuple[int, int] = STATIC_VERSION
                 ) -> Iterator[bytes | np.ndarray]:
    """Every byte of the file before the digest trailer, in order."""
    yield _PREAMBLE.pack(MAGIC, *version, len(header), blobs.size)
    yield header
    yield bytes(_align(PREAMBLE_SIZE + len(header)) - PREAMBLE_SIZE - len(header))
    position = 0
    for offset, data in blobs.blobs:
        yield bytes(offset - position)
        yield data
        position = offset + data.nbytes
    yield bytes(blobs.size - position)


def to_bytes(graph: Graph) -> bytes:
    """The .qnn encoding of ``graph``. Unlike :func:`write_graph` this adds no
    metadata (no producer or creation time), so equal graphs give equal bytes."""
    header, blobs, version = _serialize(graph, "<bytes>")
    body = b"".join(bytes(chunk) if isinstance(chunk, np.ndarray) else chunk
                    for chunk in _file_chunks(header, blobs, version))
    return body + hashlib.sha256(body).digest()


def _producer() -> str:
    try:
        from . import __version__ as version
    except ImportError:
        return "qnnref"
    return f"qnnref {version}"


def _with_default_metadata(graph: Graph) -> Graph:
    """A shallow copy of ``graph`` whose metadata has producer and created
    filled in where absent (the caller's graph is not modified)."""
    if not isinstance(graph, Graph) or not isinstance(graph.metadata, dict):
        return graph                         # _serialize reports the problem
    metadata = dict(graph.metadata)
    metadata.setdefault("producer", _producer())
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    metadata.setdefault("created", created.replace("+00:00", "Z"))
    return dataclasses.replace(graph, metadata=metadata)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_graph(graph: Graph, path) -> str:
    """Write ``graph`` to ``path`` atomically and return the file digest (hex).

    The file is written to a temporary file in the same directory and renamed
    over ``path``, so readers never see a partial file (and existing maps of
    an old file stay valid). Metadata ``producer`` ("qnnref <version>") and
    ``created`` (UTC ISO-8601) are added unless present. Raises FormatError or
    ValidationError for graphs that cannot be written, OSError for I/O errors.
    """
    where = os.fsdecode(os.fspath(path))
    header, blobs, version = _serialize(_with_default_metadata(graph), where)
    directory = os.path.dirname(os.path.abspath(where))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(where)}.", suffix=".tmp", dir=directory)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            for chunk in _file_chunks(header, blobs, version):
                f.write(chunk)
                digest.update(chunk)
            f.write(digest.digest())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, where)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return digest.hexdigest()


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------

@dataclass
class _Ref:
    """A validated data reference: where a blob lies and what it holds."""

    offset: int                 # relative to the data section
    nbytes: int
    sha256: str
    ctx: str                    # e.g. "tensor 'w' data", for messages
    dt: dtypes.DType
    shape: tuple[int, ...]


@dataclass
class _QuantSpec:
    granularity: str
    axis: int | None
    block_size: int | None
    scale: float | _Ref         # inline float32 value (per-tensor) or blob
    zero_point: int | _Ref | None


@dataclass
class _TensorSpec:
    """A tensor entry of the header, validated but with no data loaded."""

    name: str
    dt: dtypes.DType
    shape: tuple[int, ...]
    quant: _QuantSpec | None
    data: _Ref | None

    def refs(self) -> list[_Ref]:
        out = [] if self.data is None else [self.data]
        if self.quant:
            out += [r for r in (self.quant.scale, self.quant.zero_point) if isinstance(r, _Ref)]
        return out


class _HeaderJSONError(Exception):
    """Raised from json.loads hooks; turned into a FormatError."""


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _HeaderJSONError(f"duplicate key {key!r} in a JSON object")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> NoReturn:
    raise _HeaderJSONError(f"{name} is not valid JSON (numbers must be finite)")


class _Reader:
    """Reads one .qnn image held in ``buf`` (immutable bytes)."""

    def __init__(self, buf, where: str, verify: bool) -> None:
        self.buf = buf
        self.where = where
        self.verify = verify
        self.size = len(buf)
        self.header_length = 0
        self.data_start = 0
        self.data_length = 0
        self.minor = 0
        self.batch_symbol: str | None = None   # the first batch symbol met in a shape

    def fail(self, message: str) -> NoReturn:
        raise FormatError(f"{self.where}: {message}")

    # -- entry point ------------------------------------------------------

    def read(self) -> LoadedFile:
        """Parse and check everything; FormatError for any malformed input."""
        try:
            return self._read()
        except FormatError:
            raise
        except ValidationError as e:
            message = str(e)
            if not message.startswith(self.where):
                message = f"{self.where}: {message}"
            raise FormatError(message) from e
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError,
                OverflowError, MemoryError, UnicodeError, struct.error, BufferError) as e:
            raise FormatError(f"{self.where}: malformed file ({type(e).__name__}: {e})") from e

    def _read(self) -> LoadedFile:
        version = self._read_preamble()
        digest = self._check_file_digest()
        header = self._parse_header_json()
        graph = self._build_graph(header)
        return LoadedFile(graph=graph, digest=digest, version=version, path=None, size=self.size)

    # -- fixed-size parts -------------------------------------------------

    def _read_preamble(self) -> tuple[int, int]:
        """Check magic and version; locate header and data section."""
        head = bytes(self.buf[:len(MAGIC)])
        if head != MAGIC:
            if len(head) < len(MAGIC) and MAGIC.startswith(head):
                self._truncated("the magic number")
            self.fail(f"not a .qnn file: bad magic {head!r} (expected {MAGIC!r})")
        if self.size < 12:
            self._truncated("the version")
        major, minor = struct.unpack_from("<HH", self.buf, 8)
        self._check_version(major, minor)
        self.minor = minor
        if self.size < PREAMBLE_SIZE:
            self._truncated("the preamble")
        _, _, _, header_length, data_length = _PREAMBLE.unpack_from(self.buf, 0)
        self._locate_sections(header_length, data_length)
        return major, minor

    def _truncated(self, what: str) -> NoReturn:
        self.fail(f"truncated file: {self.size} bytes end inside {what}")

    def _check_version(self, major: int, minor: int) -> None:
        supported = FORMAT_VERSION[0]
        if major > supported:
            self.fail(f"file written by a newer qnnref; major version {major} is not supported, "
                      f"this reader supports {supported}.x (file version {major}.{minor})")
        if major < supported:
            self.fail(f"major version {major} is not supported, this reader supports {supported}.x "
                      f"(file version {major}.{minor})")

    def _locate_sections(self, header_length: int, data_length: int) -> None:
        room = self.size - PREAMBLE_SIZE - DIGEST_SIZE
        if header_length > room:
            self.fail(f"header length {header_length} does not fit in a {self.size}-byte file "
                      f"(at most {max(room, 0)} bytes): the file is truncated or corrupt")
        data_start = _align(PREAMBLE_SIZE + header_length)
        expected = data_start + data_length + DIGEST_SIZE
        if expected > self.size:
            self.fail(f"truncated file: the preamble announces a {header_length}-byte header and a "
                      f"{data_length}-byte data section, i.e. {expected} bytes, but the file has {self.size}")
        if expected < self.size:
            self.fail(f"{self.size - expected} unexpected bytes: the preamble announces a "
                      f"{expected}-byte file, but it has {self.size} bytes")
        if data_length % ALIGNMENT:
            self.fail(f"data section length {data_length} is not a multiple of {ALIGNMENT}")
        self.header_length, self.data_start, self.data_length = header_length, data_start, data_length

    def _sha256(self, start: int, stop: int) -> bytes:
        with memoryview(self.buf) as whole, whole[start:stop] as part:
            return hashlib.sha256(part).digest()

    def _is_zero(self, start: int, stop: int) -> bool:
        return stop <= start or not np.frombuffer(self.buf, np.uint8, stop - start, start).any()

    def _check_file_digest(self) -> str:
        """The trailer as hex; with verify, also check it (and the header padding)."""
        body = self.size - DIGEST_SIZE
        stored = bytes(self.buf[body:])
        if self.verify:
            actual = self._sha256(0, body)
            if actual != stored:
                self.fail(f"file digest mismatch: the trailer holds SHA-256 {stored.hex()} but bytes "
                          f"[0, {body}) hash to {actual.hex()}; the file is corrupt or was modified")
            if not self._is_zero(PREAMBLE_SIZE + self.header_length, self.data_start):
                self.fail("non-zero padding bytes between header and data section")
        return stored.hex()

    # -- header JSON ------------------------------------------------------

    def _parse_header_json(self) -> dict[str, Any]:
        raw = bytes(self.buf[PREAMBLE_SIZE:PREAMBLE_SIZE + self.header_length])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self.fail(f"header is not valid UTF-8 (byte {e.start} of the header: {e.reason})")
        try:
            header = json.loads(text, object_pairs_hook=_unique_object, parse_constant=_reject_constant)
        except _HeaderJSONError as e:
            self.fail(f"header JSON: {e}")
        except json.JSONDecodeError as e:
            self.fail(f"header is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})")
        except RecursionError:
            self.fail("header is not valid JSON: nested too deeply")
        except ValueError as e:
            self.fail(f"header is not valid JSON: {e}")
        if not isinstance(header, dict):
            self.fail(f"header must be a JSON object, got {_json_type(header)}")
        return header

    # -- typed field access -----------------------------------------------

    def _field(self, obj: dict, key: str, ctx: str, check: Callable[[Any], bool], kind: str,
               required: bool = True) -> Any:
        """``obj[key]`` if it passes ``check``; None if absent/null and optional."""
        value = obj.get(key)
        if value is None:
            if required:
                self.fail(f"{ctx}: missing required key {key!r}")
            return None
        if not check(value):
            self.fail(f"{ctx}: {key!r} must be {kind}, got {_json_type(value)} {_short(value)}")
        return value

    def _str(self, obj, key, ctx, required=True, nonempty=False) -> str | None:
        value = self._field(obj, key, ctx, lambda v: isinstance(v, str), "a string", required)
        if value is not None and not _is_unicode(value):
            self.fail(f"{ctx}: {key!r} is not valid Unicode text")
        if nonempty and value == "":
            self.fail(f"{ctx}: {key!r} must not be empty")
        return value

    def _int(self, obj, key, ctx, lo: int, hi: int, required=True) -> int | None:
        value = self._field(obj, key, ctx, _is_int, "an integer", required)
        if value is not None and not lo <= value <= hi:
            self.fail(f"{ctx}: {key!r} = {value} is outside [{lo}, {hi}]")
        return value

    def _object(self, obj, key, ctx, required=True) -> dict | None:
        return self._field(obj, key, ctx, lambda v: isinstance(v, dict), "an object", required)

    def _names(self, obj, key, ctx, allow_empty: bool) -> list[str]:
        value = self._field(obj, key, ctx, lambda v: isinstance(v, list), "an array of tensor names")
        for i, name in enumerate(value):
            if not isinstance(name, str) or not _is_unicode(name):
                self.fail(f"{ctx}: {key}[{i}] must be a tensor name (string), got {_json_type(name)}")
            if name == "" and not allow_empty:
                self.fail(f"{ctx}: {key}[{i}] is an empty name")
        return list(value)

    def _json_value(self, value: Any, ctx: str, depth: int = 0) -> Any:
        """Check a free-form JSON value (attrs, metadata): depth, finiteness."""
        if depth > MAX_JSON_DEPTH:
            self.fail(f"{ctx}: nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(f"{ctx}: number {value} is out of range")
        elif isinstance(value, str) and not _is_unicode(value):
            self.fail(f"{ctx}: string is not valid Unicode text")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._json_value(v, f"{ctx}[{i}]", depth + 1)
        elif isinstance(value, dict):
            for k, v in value.items():
                if not _is_unicode(k):
                    self.fail(f"{ctx}: object key is not valid Unicode text")
                self._json_value(v, f"{ctx}[{k!r}]", depth + 1)
        return value

    # -- tensors ----------------------------------------------------------

    def _shape(self, obj: dict, ctx: str) -> tuple[int, ...]:
        shape = self._field(obj, "shape", ctx, lambda v: isinstance(v, list), "an array of integers")
        if len(shape) > MAX_RANK:
            self.fail(f"{ctx}: rank {len(shape)} exceeds the limit {MAX_RANK}")
        for i, d in enumerate(shape):
            if i == 0 and isinstance(d, str):
                self._symbol(d, shape, ctx)
                continue
            if not _is_int(d):
                self.fail(f"{ctx}: shape {_short(shape)} holds a non-integer {_json_type(d)}")
            if d < 0:
                self.fail(f"{ctx}: shape {_short(shape)} has a negative dimension {d}")
            if d > MAX_DIM:
                self.fail(f"{ctx}: shape {_short(shape)} has an absurd dimension {d} (limit {MAX_DIM})")
        count = _element_count(shape)
        if count > MAX_ELEMENTS:
            self.fail(f"{ctx}: shape {_short(shape)} has an absurd {count} elements (limit {MAX_ELEMENTS})")
        return tuple(shape)

    def _symbol(self, symbol: str, shape: list, ctx: str) -> None:
        """A batch symbol in the leading dimension (format 1.1): a name, the
        same in every tensor of the file."""
        if self.minor < SYMBOLIC_MINOR:
            self.fail(f"{ctx}: shape {_short(shape)} starts with the batch symbol {_short(symbol)}, "
                      f"which needs format version 1.{SYMBOLIC_MINOR} (the file says 1.{self.minor})")
        if not _is_unicode(symbol) or not SYMBOL_PATTERN.fullmatch(symbol):
            self.fail(f"{ctx}: batch symbol {_short(symbol)} is not a name (letters, digits and '_', "
                      "at most 32, not starting with a digit)")
        if self.batch_symbol is not None and symbol != self.batch_symbol:
            self.fail(f"{ctx}: batch symbol {_short(symbol)} differs from {self.batch_symbol!r}: a model has one")
        self.batch_symbol = symbol

    def _data_ref(self, value: Any, ctx: str, dt: dtypes.DType, shape: tuple[int, ...]) -> _Ref:
        """Validate a {offset, nbytes, sha256} reference against the layout
        and the dtype x shape it must hold (nothing is read or allocated)."""
        if not isinstance(value, dict):
            self.fail(f"{ctx}: must be a data reference object, got {_json_type(value)}")
        offset = self._int(value, "offset", ctx, 0, 2**63)
        nbytes = self._int(value, "nbytes", ctx, 0, 2**63)
        sha = self._str(value, "sha256", ctx)
        if not _SHA256_HEX.fullmatch(sha):
            self.fail(f"{ctx}: sha256 must be 64 lowercase hex digits, got {_short(sha)}")
        count = _element_count(shape)
        want = _blob_nbytes(dt, count)
        if nbytes != want:
            self.fail(f"{ctx}: nbytes {nbytes} does not match {dt}{list(shape)} "
                      f"({count} elements of {dt.bits} bits = {want} bytes)")
        if offset % ALIGNMENT:
            self.fail(f"{ctx}: blob offset {offset} is misaligned (not a multiple of {ALIGNMENT})")
        if offset + nbytes > self.data_length:
            self.fail(f"{ctx}: blob bytes [{offset}, {offset + nbytes}) are out of bounds of the "
                      f"{self.data_length}-byte data section")
        return _Ref(offset, nbytes, sha, ctx, dt, shape)

    def _quant(self, obj: dict, dt: dtypes.DType, shape: tuple[int, ...], tctx: str) -> _QuantSpec:
        ctx = f"{tctx} quant"
        if not dt.is_int:
            self.fail(f"{tctx}: a {dt} tensor cannot be quantized")
        granularity = self._str(obj, "granularity", ctx)
        if granularity not in GRANULARITIES:
            self.fail(f"{ctx}: unknown granularity {_short(granularity)} (known: {', '.join(GRANULARITIES)})")
        if granularity == "per-tensor":
            return self._per_tensor_quant(obj, dt, ctx)
        if not shape:
            self.fail(f"{ctx}: a scalar cannot be quantized {granularity}")
        axis = self._int(obj, "axis", ctx, 0, len(shape) - 1)
        if isinstance(shape[0], str) and (axis == 0 or granularity == "blocked"):
            self.fail(f"{ctx}: {granularity} quantization along the symbolic batch of {_short(list(shape))} "
                      "(each item must be quantized alike)")
        block_size = None
        params_shape: tuple[int, ...] = (shape[axis],)
        if granularity == "blocked":
            block_size = self._int(obj, "block_size", ctx, 1, MAX_DIM)
            params_shape = shape[:axis] + (-(-shape[axis] // block_size),) + shape[axis + 1:]
        elif obj.get("block_size") is not None:
            self.fail(f"{ctx}: block_size is only allowed for blocked quantization")
        scale_dtype = self._str(obj, "scale_dtype", ctx, required=False) or "float32"
        if scale_dtype not in SCALE_DTYPES:
            self.fail(f"{ctx}: scale_dtype must be one of {', '.join(SCALE_DTYPES)}, got {_short(scale_dtype)}")
        if scale_dtype == "float16" and granularity != "blocked":
            self.fail(f"{ctx}: float16 scales are allowed only for blocked quantization")
        scale = self._data_ref(obj.get("scale"), f"{ctx} scale", dtypes.DTYPES[scale_dtype], params_shape)
        zp = obj.get("zero_point")
        zero_point = None if zp is None else self._data_ref(zp, f"{ctx} zero_point", dt, params_shape)
        return _QuantSpec(granularity, axis, block_size, scale, zero_point)

    def _per_tensor_quant(self, obj: dict, dt: dtypes.DType, ctx: str) -> _QuantSpec:
        for key in ("axis", "block_size"):
            if obj.get(key) is not None:
                self.fail(f"{ctx}: {key!r} is not allowed for per-tensor quantization")
        if self._str(obj, "scale_dtype", ctx, required=False) not in (None, "float32"):
            self.fail(f"{ctx}: a per-tensor scale is float32")
        scale = self._field(obj, "scale", ctx, lambda v: _is_int(v) or isinstance(v, float), "a number")
        if not abs(scale) <= _FLOAT32_MAX:          # also false for inf and nan
            self.fail(f"{ctx}: scale {scale} is not a finite float32")
        zero_point = self._int(obj, "zero_point", ctx, dt.min, dt.max, required=False)
        return _QuantSpec("per-tensor", None, None, float(scale), zero_point)

    def _tensor_spec(self, entry: Any, index: int) -> _TensorSpec:
        ctx = f"tensors[{index}]"
        if not isinstance(entry, dict):
            self.fail(f"{ctx}: must be an object, got {_json_type(entry)}")
        name = self._str(entry, "name", ctx, nonempty=True)
        ctx = f"tensor {name!r}"
        dtype_name = self._str(entry, "dtype", ctx)
        dt = dtypes.DTYPES.get(dtype_name)
        if dt is None:
            self.fail(f"{ctx}: unknown dtype {_short(dtype_name)} (known: {', '.join(dtypes.DTYPES)})")
        shape = self._shape(entry, ctx)
        if shape and isinstance(shape[0], str) and entry.get("data") is not None:
            self.fail(f"{ctx}: a constant cannot have a symbolic batch ({_short(shape)})")
        quant_obj = self._object(entry, "quant", ctx, required=False)
        quant = None if quant_obj is None else self._quant(quant_obj, dt, shape, ctx)
        data = entry.get("data")
        data_ref = None if data is None else self._data_ref(data, f"{ctx} data", dt, shape)
        return _TensorSpec(name, dt, shape, quant, data_ref)

    def _tensor_specs(self, header: dict) -> list[_TensorSpec]:
        entries = self._field(header, "tensors", "header", lambda v: isinstance(v, list), "an array")
        specs, seen = [], set()
        for i, entry in enumerate(entries):
            spec = self._tensor_spec(entry, i)
            if spec.name in seen:
                self.fail(f"duplicate tensor name {spec.name!r}")
            seen.add(spec.name)
            specs.append(spec)
        return specs

    def _check_blob_layout(self, refs: list[_Ref]) -> None:
        """No two blobs overlap; with verify, every byte not in a blob is zero."""
        previous: _Ref | None = None
        position = 0
        for ref in sorted((r for r in refs if r.nbytes), key=lambda r: r.offset):
            if previous is not None and ref.offset < previous.offset + previous.nbytes:
                self.fail(f"{ref.ctx}: blob [{ref.offset}, {ref.offset + ref.nbytes}) overlaps "
                          f"{previous.ctx} [{previous.offset}, {previous.offset + previous.nbytes})")
            if self.verify and not self._is_zero(self.data_start + position, self.data_start + ref.offset):
                self.fail(f"non-zero padding bytes in the data section before {ref.ctx}")
            previous, position = ref, ref.offset + ref.nbytes
        if self.verify and not self._is_zero(self.data_start + position, self.data_start + self.data_length):
            self.fail("non-zero padding bytes at the end of the data section")

    def _load(self, ref: _Ref) -> np.ndarray:
        """The array a (layout-checked) reference holds; with verify, check its digest."""
        start = self.data_start + ref.offset
        if self.verify:
            actual = self._sha256(start, start + ref.nbytes).hex()
            if actual != ref.sha256:
                self.fail(f"{ref.ctx}: SHA-256 mismatch: the header says {ref.sha256}, "
                          f"the blob hashes to {actual}; the data is corrupt")
        arr, padding_ok = _decode_array(self.buf, start, ref.dt, ref.shape)
        if not padding_ok:
            self.fail(f"{ref.ctx}: the unused high nibble of the last {ref.dt} byte is not zero")
        return arr

    def _tensor(self, spec: _TensorSpec) -> TensorInfo:
        ctx = f"tensor {spec.name!r}"
        data = None if spec.data is None else self._load(spec.data)
        quant = None
        if spec.quant is not None:
            q = spec.quant
            if isinstance(q.scale, _Ref):
                scale = self._load(q.scale)
            else:
                scale = np.array(q.scale, dtype=np.float32)
            if isinstance(q.zero_point, _Ref):
                zero_point = self._load(q.zero_point)
            elif q.zero_point is not None:
                zero_point = np.array(q.zero_point, dtype=spec.dt.numpy)
            else:
                zero_point = None
            quant = Quant(scale, zero_point, q.axis, q.block_size)
            try:
                quant.check(spec.dt, spec.shape, f"{self.where}: {ctx}")
            except ValidationError as e:
                raise FormatError(str(e)) from None
        return TensorInfo(spec.name, spec.dt.name, spec.shape, quant, data)

    # -- nodes, metadata, graph -------------------------------------------

    def _node(self, entry: Any, index: int) -> Node:
        ctx = f"nodes[{index}]"
        if not isinstance(entry, dict):
            self.fail(f"{ctx}: must be an object, got {_json_type(entry)}")
        name = self._str(entry, "name", ctx, nonempty=True)
        ctx = f"node {name!r}"
        op = self._str(entry, "op", ctx, nonempty=True)
        inputs = self._names(entry, "inputs", ctx, allow_empty=True)
        outputs = self._names(entry, "outputs", ctx, allow_empty=False)
        attrs = self._object(entry, "attrs", ctx, required=False) or {}
        self._json_value(attrs, f"{ctx} attrs")
        return Node(name, op, inputs, outputs, attrs)

    def _metadata(self, header: dict) -> dict[str, Any]:
        metadata = self._object(header, "metadata", "header", required=False) or {}
        for key in METADATA_STRING_KEYS:
            self._str(metadata, key, "metadata", required=False)
        self._object(metadata, METADATA_USER_KEY, "metadata", required=False)
        self._json_value(metadata, "metadata")
        # a defined key that is null counts as absent (as everywhere in the header)
        reserved = (*METADATA_STRING_KEYS, METADATA_USER_KEY)
        return {k: v for k, v in metadata.items() if v is not None or k not in reserved}

    def _build_graph(self, header: dict) -> Graph:
        specs = self._tensor_specs(header)
        nodes_json = self._field(header, "nodes", "header", lambda v: isinstance(v, list), "an array")
        nodes = [self._node(entry, i) for i, entry in enumerate(nodes_json)]
        inputs = self._names(header, "inputs", "header", allow_empty=False)
        outputs = self._names(header, "outputs", "header", allow_empty=False)
        metadata = self._metadata(header)
        self._check_blob_layout([ref for spec in specs for ref in spec.refs()])
        tensors = {spec.name: self._tensor(spec) for spec in specs}
        graph = Graph(tensors, nodes, inputs, outputs, metadata)
        graph.check_structure(self.where)
        return graph


def _short(value: Any, limit: int = 60) -> str:
    """repr(value), cut to ``limit`` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def from_bytes(data: bytes, verify: bool = True, name: str = "<bytes>") -> LoadedFile:
    """Read a .qnn image held in memory. Constant arrays are read-only views
    of ``data`` (bytearray and memoryview inputs are copied first)."""
    if not isinstance(data, bytes):
        try:
            data = bytes(memoryview(data))
        except TypeError:
            raise FormatError(f"{name}: expected bytes, got {type(data).__name__}") from None
    return _Reader(data, name, verify).read()


def _read_file(path: str) -> bytes:
    """The file's bytes, copied into private memory (an immutable ``bytes``).

    The loaded model's constants are views of this copy, never of the file:
    a file truncated or overwritten on disk while the model is alive changes
    nothing (spec/format.md, "Loading into private memory"). OSError if the
    file cannot be opened or read; FormatError if it does not fit in memory.
    """
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            # a pipe or a device (/dev/zero) has no size and may never end
            raise FormatError(f"{path}: not a regular file")
        try:
            return f.read(st.st_size)       # fewer bytes if it shrinks meanwhile
        except MemoryError:
            raise FormatError(f"{path}: the file does not fit in memory ({st.st_size} bytes)") from None


def read_graph(path, verify: bool = True) -> LoadedFile:
    """Read a .qnn file.

    The whole file is read into private memory first (one ``read``; memory
    equal to the file size), and constant tensors are read-only numpy views
    of that copy (4-bit tensors are unpacked, which copies). So what was
    verified is what runs: changing, truncating or replacing the file on
    disk afterwards cannot change or crash a loaded model.

    With ``verify=True`` (default) the whole-file SHA-256, every blob's
    SHA-256 and all padding bytes are checked. ``verify=False`` skips exactly
    those checks (faster for large files); every structural check remains.

    Raises FormatError for malformed files, OSError if the file cannot be opened.
    """
    where = os.fsdecode(os.fspath(path))
    loaded = _Reader(_read_file(where), where, verify).read()
    loaded.path = where
    return loaded


__all__ = ["MAGIC", "FORMAT_VERSION", "LoadedFile", "write_graph", "read_graph",
           "to_bytes", "from_bytes", "encode_array"]
