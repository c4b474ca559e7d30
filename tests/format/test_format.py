"""Tests of the .qnn file format (qnnref/format.py, spec/format.md).

The helpers ``split_file`` / ``pack_file`` parse and build the byte layout
independently of qnnref/format.py, straight from the spec, so the tests also
check that the module writes what the spec says. test_format_fuzz.py reuses
them and ``rich_graph``.
"""
from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import struct
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnref import dtypes
from qnnref import format as qformat
from qnnref.errors import FormatError, ValidationError
from qnnref.graph import Graph, Node, Quant, TensorInfo

# ---------------------------------------------------------------------------
# Layout helpers written from spec/format.md
# ---------------------------------------------------------------------------

SPEC_MAGIC = b"\x89QNN\r\n\x1a\n"
PREAMBLE = struct.Struct("<8sHHQQ")


def align64(n: int) -> int:
    return (n + 63) // 64 * 64


def split_file(data: bytes) -> tuple[tuple[int, int], dict, bytes]:
    """(version, header dict, data section) of a well-formed file."""
    magic, major, minor, hlen, dlen = PREAMBLE.unpack_from(data)
    assert magic == SPEC_MAGIC
    start = align64(PREAMBLE.size + hlen)
    header = json.loads(data[PREAMBLE.size:PREAMBLE.size + hlen].decode("utf-8"))
    return (major, minor), header, data[start:start + dlen]


def all_paths(node, prefix=()) -> list[tuple]:
    """The path (keys / indices) of every value inside a JSON document."""
    paths = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            paths += all_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            paths += all_paths(value, prefix + (i,))
    return paths


def edit(document, path: tuple, value, delete: bool):
    """``document`` with the value at ``path`` replaced (or deleted)."""
    if not path:
        return value
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return document


def pack_file(header: dict | None, data_section: bytes, version=(1, 0), *,
              header_bytes: bytes | None = None) -> bytes:
    """A file with this header and data section and a correct file digest
    (the blob digests in the header are taken as given)."""
    if header_bytes is None:
        header_bytes = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    data_section = data_section + bytes(align64(len(data_section)) - len(data_section))
    pre = PREAMBLE.pack(SPEC_MAGIC, *version, len(header_bytes), len(data_section))
    body = pre + header_bytes
    body += bytes(align64(len(body)) - len(body)) + data_section
    return body + hashlib.sha256(body).digest()


def fix_blob_digests(header: dict, data_section: bytes) -> None:
    """Recompute the sha256 of every well-formed data reference in ``header``."""
    def visit(node):
        if isinstance(node, dict):
            if {"offset", "nbytes"} <= node.keys() and isinstance(node.get("sha256"), str) \
                    and len(node["sha256"]) == 64:
                try:
                    blob = data_section[node["offset"]:node["offset"] + node["nbytes"]]
                    node["sha256"] = hashlib.sha256(blob).hexdigest()
                except TypeError:
                    pass
            for v in node.values():
                visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)
    visit(header)


def repack(data: bytes, edit=None, *, edit_data=None, fix_digests=True, version=None) -> bytes:
    """Decode a valid file, let ``edit(header)`` / ``edit_data(bytearray)``
    change it in place, and pack it again with a correct file digest."""
    file_version, header, section = split_file(data)
    section = bytearray(section)
    if edit is not None:
        edit(header)
    if edit_data is not None:
        edit_data(section)
    if fix_digests:
        fix_blob_digests(header, bytes(section))
    return pack_file(header, bytes(section), version or file_version)


# ---------------------------------------------------------------------------
# Graphs
# ---------------------------------------------------------------------------

def f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def rich_graph() -> Graph:
    """A small graph exercising every dtype, quant granularity and JSON kind."""
    rng = np.random.default_rng(0)
    t = {}

    def add(name, dtype, shape, quant=None, data=None):
        t[name] = TensorInfo(name, dtype, tuple(shape), quant, data)

    add("x", "int8", (1, 4), Quant(f32(0.05), np.array(-3, np.int8)))
    add("w", "int8", (3, 4), Quant(f32([0.1, 0.2, 0.3]), np.array([1, -2, 3], np.int8), axis=0),
        rng.integers(-128, 128, (3, 4), dtype=np.int8))
    add("b", "int32", (3,), Quant(f32([0.005, 0.01, 0.015]), None, axis=0),
        rng.integers(-1000, 1000, 3, dtype=np.int32))
    add("w4", "int4", (3, 5),
        Quant(np.array([[0.5, 0.25, 1.0]] * 3, np.float16), np.array([[0, -1, 7]] * 3, np.int8),
              axis=1, block_size=2),
        rng.integers(-8, 8, (3, 5), dtype=np.int8))
    add("u4", "uint4", (5,), Quant(f32(0.125), np.array(8, np.uint8)),
        rng.integers(0, 16, 5, dtype=np.uint8))
    add("f", "float32", (2,), None, f32([1.5, -0.0]))
    add("h", "float16", (3,), None, np.array([1, 2, 3], np.float16))
    add("i16", "int16", (2, 2), None, np.array([[1, -2], [300, -32768]], np.int16))
    add("i64", "int64", (1,), None, np.array([2**40], np.int64))
    add("u8", "uint8", (), None, np.array(200, np.uint8))
    add("y", "int32", (1, 3))
    add("z", "int8", (1, 3), Quant(f32(0.1), np.array(0, np.int8)))
    nodes = [
        Node("fc", "FullyConnected", ["x", "w", "b"], ["y"], {"keep_dims": False}),
        Node("rq", "Requantize", ["y", "", ""], ["z"],
             {"rounding": "half_even", "shift": -3, "gain": 0.75, "pads": [0, 1, [2, 3]],
              "recipe": {"acc": "int32", "nested": {"ok": True, "none": None}}}),
    ]
    metadata = {"producer": "test 1.0", "created": "2024-01-02T03:04:05Z",
                "description": "Modèle d’essai ✓", "profile": "tflite",
                "user": {"calibration_dataset": "calib-v3", "samples": 512}}
    return Graph(t, nodes, ["x"], ["z"], metadata)


def const_graph(dtype: str, data: np.ndarray, quant: Quant | None = None) -> Graph:
    """A graph whose only tensor is the constant output ``w``."""
    return Graph({"w": TensorInfo("w", dtype, data.shape, quant, data)}, [], [], ["w"])


def random_array(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    dt = dtypes.DTYPES[dtype]
    rng = np.random.default_rng(seed)
    if dt.is_int:
        return rng.integers(dt.min, dt.max, shape, dtype=dt.numpy, endpoint=True)
    arr = rng.standard_normal(shape).astype(dt.numpy)
    flat = arr.reshape(-1)
    special = np.array([np.nan, np.inf, -np.inf, -0.0], dt.numpy)[:flat.size]
    flat[:special.size] = special
    return arr


def assert_same_array(a: np.ndarray, b: np.ndarray) -> None:
    """Equal dtype, shape and bits (so NaN and -0.0 count)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def assert_same_quant(a: Quant | None, b: Quant | None) -> None:
    if a is None or b is None:
        assert a is None and b is None
        return
    assert (a.axis, a.block_size) == (b.axis, b.block_size)
    assert_same_array(np.asarray(a.scale), np.asarray(b.scale))
    if a.zero_point is None or b.zero_point is None:
        assert a.zero_point is None and b.zero_point is None
    else:
        assert_same_array(np.asarray(a.zero_point), np.asarray(b.zero_point))


def assert_same_graph(a: Graph, b: Graph) -> None:
    assert list(a.tensors) == list(b.tensors)
    for name, ta in a.tensors.items():
        tb = b.tensors[name]
        assert (ta.name, ta.dtype, tuple(ta.shape)) == (tb.name, tb.dtype, tb.shape)
        assert_same_quant(ta.quant, tb.quant)
        if ta.data is None or tb.data is None:
            assert ta.data is None and tb.data is None
        else:
            assert_same_array(ta.data, tb.data)
    assert [(n.name, n.op, n.inputs, n.outputs, n.attrs) for n in a.nodes] == \
           [(n.name, n.op, n.inputs, n.outputs, n.attrs) for n in b.nodes]
    assert (a.inputs, a.outputs, a.metadata) == (b.inputs, b.outputs, b.metadata)


def roundtrip(graph: Graph, verify: bool = True) -> Graph:
    return qformat.from_bytes(qformat.to_bytes(graph), verify=verify).graph


def assert_format_error(data: bytes, *fragments: str, verify: bool = True,
                        name: str = "model.qnn") -> str:
    """from_bytes fails with a FormatError starting with ``name`` and
    containing every fragment; returns the message."""
    with pytest.raises(FormatError) as info:
        qformat.from_bytes(data, verify=verify, name=name)
    message = str(info.value)
    assert message.startswith(f"{name}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture(scope="module")
def rich_bytes() -> bytes:
    return qformat.to_bytes(rich_graph())


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------

SHAPES = [(), (0,), (1,), (7,), (3, 3), (2, 0, 3), (2, 3, 4)]


@pytest.mark.parametrize("dtype", list(dtypes.DTYPES))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_roundtrip_every_dtype_and_shape(dtype, shape):
    data = random_array(dtype, shape)
    graph = const_graph(dtype, data)
    back = roundtrip(graph)
    assert_same_graph(graph, back)
    assert back.tensors["w"].data.dtype == dtypes.DTYPES[dtype].numpy


def test_roundtrip_rich_graph_bytes_and_file(tmp_path, rich_bytes):
    graph = rich_graph()
    assert_same_graph(graph, qformat.from_bytes(rich_bytes).graph)
    path = tmp_path / "rich.qnn"
    qformat.write_graph(graph, path)
    loaded = qformat.read_graph(path)
    expected = dict(graph.metadata)   # producer and created are already set
    assert loaded.graph.metadata == expected
    assert_same_graph(graph, loaded.graph)


def test_to_bytes_is_deterministic():
    assert qformat.to_bytes(rich_graph()) == qformat.to_bytes(rich_graph())


@pytest.mark.parametrize("dtype,values,packed", [
    ("int4", [1, 2, 3], b"\x21\x03"),
    ("int4", [-1, -8], b"\x8f"),
    ("uint4", [15, 0, 7, 8], b"\x0f\x87"),
    ("int16", [1, 256], b"\x01\x00\x00\x01"),
    ("float32", [1.0], b"\x00\x00\x80\x3f"),
])
def test_on_disk_encoding_is_packed_little_endian(dtype, values, packed):
    data = np.array(values, dtypes.DTYPES[dtype].numpy)
    _, header, section = split_file(qformat.to_bytes(const_graph(dtype, data)))
    ref = header["tensors"][0]["data"]
    assert ref["nbytes"] == len(packed)
    assert section[ref["offset"]:ref["offset"] + ref["nbytes"]] == packed
    assert ref["sha256"] == hashlib.sha256(packed).hexdigest()


QUANTS = {
    "per-tensor-symmetric": ("int8", (4, 3), lambda: Quant(f32(0.02))),
    "per-tensor-uint8": ("uint8", (5,), lambda: Quant(f32(0.5), np.array(128, np.uint8))),
    "per-tensor-int4": ("int4", (3,), lambda: Quant(f32(1.25), np.array(-3, np.int8))),
    "per-tensor-int16": ("int16", (2, 2), lambda: Quant(f32(1e-4), np.array(0, np.int16))),
    "per-axis-0": ("int8", (3, 4), lambda: Quant(f32([0.1, 0.2, 0.3]), np.array([1, 2, 3], np.int8), 0)),
    "per-axis-1-symmetric": ("int8", (2, 5), lambda: Quant(f32([1, 2, 3, 4, 5]), None, 1)),
    "per-axis-int4-odd": ("int4", (3, 2), lambda: Quant(f32([1, 2, 3]), np.array([-8, 0, 7], np.int8), 0)),
    "per-axis-int32-bias": ("int32", (4,), lambda: Quant(f32([1e-3] * 4), None, 0)),
    "blocked-float32": ("int8", (4, 6), lambda: Quant(f32(np.full((2, 6), 0.5)), None, 0, 2)),
    "blocked-float16-short-last": ("uint4", (2, 10),
                                   lambda: Quant(np.full((2, 3), 0.25, np.float16),
                                                 np.full((2, 3), 8, np.uint8), 1, 4)),
}


@pytest.mark.parametrize("case", list(QUANTS))
def test_roundtrip_every_quant_granularity(case):
    dtype, shape, make = QUANTS[case]
    quant = make()
    constant = const_graph(dtype, random_array(dtype, shape), quant)
    back = roundtrip(constant)
    assert_same_graph(constant, back)
    assert back.tensors["w"].quant.granularity == quant.granularity
    # the same parameters on a non-constant tensor (an activation)
    activation = Graph({"a": TensorInfo("a", dtype, shape, make())}, [], ["a"], ["a"])
    assert_same_graph(activation, roundtrip(activation))


def test_symmetric_means_zero_point_absent_in_the_file():
    _, header, _ = split_file(qformat.to_bytes(const_graph("int8", np.zeros(3, np.int8), Quant(f32(0.5)))))
    quant = header["tensors"][0]["quant"]
    assert quant == {"granularity": "per-tensor", "scale": 0.5}


@settings(max_examples=200, deadline=None)
@given(st.floats(width=32, min_value=0.0, exclude_min=True, allow_infinity=False, allow_subnormal=True))
def test_float32_scale_round_trips_bit_exactly(value):
    scale = np.float32(value)
    g = Graph({"a": TensorInfo("a", "int8", (2,), Quant(np.array(scale)))}, [], ["a"], ["a"])
    back = roundtrip(g).tensors["a"].quant.scale
    assert back.dtype == np.float32 and back.tobytes() == np.array(scale).tobytes()


def test_inline_scale_is_repr_of_the_float32():
    scale = np.float32(0.1)
    g = Graph({"a": TensorInfo("a", "int8", (), Quant(np.array(scale)))}, [], ["a"], ["a"])
    _, header, _ = split_file(qformat.to_bytes(g))
    assert repr(header["tensors"][0]["quant"]["scale"]) == repr(float(scale))


def test_node_attrs_round_trip_and_numpy_scalars_become_json():
    graph = rich_graph()
    graph.nodes[1].attrs.update({"np_int": np.int64(5), "np_float": np.float32(0.5),
                                 "np_bool": np.bool_(True), "tuple": (1, 2), "array": np.array([1, 2])})
    attrs = roundtrip(graph).nodes[1].attrs
    assert attrs["np_int"] == 5 and type(attrs["np_int"]) is int
    assert attrs["np_float"] == 0.5 and type(attrs["np_float"]) is float
    assert attrs["np_bool"] is True
    assert attrs["tuple"] == [1, 2] and attrs["array"] == [1, 2]
    assert attrs["pads"] == [0, 1, [2, 3]] and attrs["gain"] == 0.75
    assert attrs["recipe"] == {"acc": "int32", "nested": {"ok": True, "none": None}}
    assert roundtrip(graph).nodes[1].inputs == ["y", "", ""]


# ---------------------------------------------------------------------------
# Metadata and write_graph
# ---------------------------------------------------------------------------

def test_metadata_round_trip(rich_bytes):
    assert qformat.from_bytes(rich_bytes).graph.metadata == rich_graph().metadata


def test_write_graph_sets_producer_and_created_without_mutating(tmp_path):
    graph = rich_graph()
    graph.metadata = {"description": "d"}
    path = tmp_path / "m.qnn"
    qformat.write_graph(graph, path)
    assert graph.metadata == {"description": "d"}
    metadata = qformat.read_graph(path).graph.metadata
    assert metadata["description"] == "d"
    assert metadata["producer"].startswith("qnnref")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", metadata["created"])


def test_write_graph_keeps_existing_producer_and_created(tmp_path):
    path = tmp_path / "m.qnn"
    qformat.write_graph(rich_graph(), path)
    metadata = qformat.read_graph(path).graph.metadata
    assert metadata["producer"] == "test 1.0" and metadata["created"] == "2024-01-02T03:04:05Z"


def test_to_bytes_adds_no_metadata():
    graph = const_graph("int8", np.zeros(2, np.int8))
    assert roundtrip(graph).metadata == {}


def test_write_graph_is_atomic_and_returns_the_digest(tmp_path):
    path = tmp_path / "m.qnn"
    digest = qformat.write_graph(rich_graph(), str(path))
    data = path.read_bytes()
    assert digest == data[-32:].hex() == hashlib.sha256(data[:-32]).hexdigest()
    loaded = qformat.read_graph(path)
    assert (loaded.digest, loaded.version, loaded.path, loaded.size) == (digest, (1, 0), str(path), len(data))
    assert os.listdir(tmp_path) == ["m.qnn"]            # no temporary file left
    # a failing write leaves the old file untouched and no temporary file
    bad = const_graph("int8", np.zeros(2, np.int16))
    with pytest.raises(FormatError):
        qformat.write_graph(bad, path)
    assert path.read_bytes() == data and os.listdir(tmp_path) == ["m.qnn"]


def test_layout_matches_the_spec(rich_bytes):
    data = rich_bytes
    magic, major, minor, hlen, dlen = PREAMBLE.unpack_from(data)
    assert (magic, major, minor) == (qformat.MAGIC, 1, 0) and qformat.STATIC_VERSION == (1, 0)
    start = align64(28 + hlen)
    assert len(data) == start + dlen + 32 and dlen % 64 == 0
    assert data[28 + hlen:start] == bytes(start - 28 - hlen)
    _, header, section = split_file(data)
    refs = []
    for t in header["tensors"]:
        refs += [t["data"]] if "data" in t else []
        for key in ("scale", "zero_point"):
            if isinstance(t.get("quant", {}).get(key), dict):
                refs.append(t["quant"][key])
    assert len(refs) == 14                  # 9 constants, 5 quant parameter arrays
    covered = bytearray(len(section))
    for ref in refs:
        assert ref["offset"] % 64 == 0
        blob = section[ref["offset"]:ref["offset"] + ref["nbytes"]]
        assert hashlib.sha256(blob).hexdigest() == ref["sha256"]
        covered[ref["offset"]:ref["offset"] + ref["nbytes"]] = b"\1" * ref["nbytes"]
    assert all(b == 0 for b, c in zip(section, covered) if not c)     # padding is zero


# ---------------------------------------------------------------------------
# Memory mapping
# ---------------------------------------------------------------------------

def backing_object(arr: np.ndarray):
    base = arr
    while isinstance(base, np.ndarray):
        base = base.base
    return base.obj if isinstance(base, memoryview) else base


def test_constants_are_read_only_views_of_a_private_copy(tmp_path):
    path = tmp_path / "m.qnn"
    qformat.write_graph(rich_graph(), path)
    graph = qformat.read_graph(path).graph
    for t in graph.tensors.values():
        arrays = [] if t.data is None else [t.data]
        if t.quant is not None and t.quant.axis is not None:
            arrays.append(t.quant.scale)
            if t.quant.zero_point is not None:
                arrays.append(t.quant.zero_point)
        for arr in arrays:
            assert not arr.flags.writeable, t.name
            with pytest.raises(ValueError):
                arr.reshape(-1)[:1] = 0
            if dtypes.DTYPES[t.dtype].bits == 4 and arr.dtype.kind in "iu":
                assert not isinstance(backing_object(arr), bytes), t.name   # unpacked copy
            else:
                assert isinstance(backing_object(arr), bytes), t.name       # a view of the copy


def test_from_bytes_arrays_are_views_of_the_bytes(rich_bytes):
    w = qformat.from_bytes(rich_bytes).graph.tensors["w"].data
    assert backing_object(w) is rich_bytes and not w.flags.writeable


def test_loaded_constants_survive_replacement_of_the_file(tmp_path):
    path = tmp_path / "m.qnn"
    qformat.write_graph(rich_graph(), path)
    w = qformat.read_graph(path).graph.tensors["w"].data
    expected = rich_graph().tensors["w"].data
    gc.collect()
    np.testing.assert_array_equal(w, expected)
    other = rich_graph()
    other.tensors["w"].data = np.zeros((3, 4), np.int8)
    qformat.write_graph(other, path)                    # rename over the loaded file
    np.testing.assert_array_equal(w, expected)
    assert not qformat.read_graph(path).graph.tensors["w"].data.any()


def test_loaded_constants_survive_in_place_changes_of_the_file(tmp_path):
    """The file is read into private memory: overwriting or truncating it in
    place (not by rename) leaves a loaded graph's constants as verified."""
    path = tmp_path / "m.qnn"
    qformat.write_graph(rich_graph(), path)
    graph = qformat.read_graph(path).graph
    expected = {k: t.data.copy() for k, t in graph.tensors.items() if t.data is not None}
    size = path.stat().st_size
    with open(path, "r+b") as f:                        # overwrite every byte in place
        f.write(b"\xff" * size)
    for k, data in expected.items():
        np.testing.assert_array_equal(graph.tensors[k].data, data)
    os.truncate(path, 0)                                # then truncate it
    for k, data in expected.items():
        np.testing.assert_array_equal(graph.tensors[k].data, data)


# ---------------------------------------------------------------------------
# Versioning
# ---------------------------------------------------------------------------

def test_unknown_major_version_is_refused(rich_bytes):
    data = repack(rich_bytes, version=(2, 0))
    assert_format_error(data, "written by a newer qnnref; major version 2 is not supported, "
                              "this reader supports 1.x")
    assert_format_error(repack(rich_bytes, version=(0, 9)), "major version 0 is not supported")
    # refused before anything else is looked at, even a truncated file
    assert_format_error(data[:12], "major version 2")


def test_newer_minor_version_with_unknown_keys_is_accepted(rich_bytes):
    def add_unknown_keys(header):
        header["future"] = {"anything": [1, 2]}
        header["tensors"][1]["layout"] = "NHWC"
        header["tensors"][1]["data"]["compression"] = None
        header["tensors"][1]["quant"]["rounding"] = "away"
        header["nodes"][0]["debug"] = {"line": 3}
    loaded = qformat.from_bytes(repack(rich_bytes, add_unknown_keys, version=(1, 7)))
    assert loaded.version == (1, 7)
    assert_same_graph(rich_graph(), loaded.graph)


# ---------------------------------------------------------------------------
# verify=False
# ---------------------------------------------------------------------------

def test_verify_false_skips_the_file_digest(rich_bytes):
    data = rich_bytes[:-1] + bytes([rich_bytes[-1] ^ 1])
    assert_format_error(data, "file digest mismatch")
    loaded = qformat.from_bytes(data, verify=False)
    assert loaded.digest == data[-32:].hex()            # reported, not checked


def test_verify_false_skips_blob_digests_and_padding(rich_bytes):
    _, header, _ = split_file(rich_bytes)
    offset = header["tensors"][1]["data"]["offset"]

    def corrupt(section):
        section[offset] ^= 0xFF
    data = repack(rich_bytes, edit_data=corrupt, fix_digests=False)
    assert_format_error(data, "tensor 'w' data", "SHA-256 mismatch")
    w = qformat.from_bytes(data, verify=False).graph.tensors["w"].data
    assert w.reshape(-1)[0] == np.int8(rich_graph().tensors["w"].data.reshape(-1)[0] ^ -1)

    def dirty_padding(section):
        section[-1] = 7                                 # padding at the end of the data section
    data = repack(rich_bytes, edit_data=dirty_padding)
    assert_format_error(data, "non-zero padding")
    assert_same_graph(rich_graph(), qformat.from_bytes(data, verify=False).graph)


def test_verify_false_still_checks_structure(rich_bytes):
    data = repack(rich_bytes, lambda h: h["tensors"][1]["data"].update(offset=8))
    assert_format_error(data, "misaligned", verify=False)


# ---------------------------------------------------------------------------
# Malformed inputs: one test per class
# ---------------------------------------------------------------------------

def test_wrong_magic(rich_bytes):
    assert_format_error(b"PK\x03\x04" + rich_bytes[4:], "bad magic", "not a .qnn file")
    assert_format_error(b"hello", "bad magic")


@pytest.mark.parametrize("cut", [0, 3, 8, 11, 20, 27, 60, 200, -33, -1])
def test_truncated(rich_bytes, cut):
    assert_format_error(rich_bytes[:cut], "truncated")


def test_truncated_file_on_disk_names_the_path(tmp_path, rich_bytes):
    path = tmp_path / "cut.qnn"
    path.write_bytes(rich_bytes[:100])
    with pytest.raises(FormatError, match="^" + re.escape(str(path)) + ": .*truncated"):
        qformat.read_graph(path)
    path.write_bytes(b"")
    with pytest.raises(FormatError, match="truncated"):
        qformat.read_graph(path)
    with pytest.raises(FileNotFoundError):
        qformat.read_graph(tmp_path / "missing.qnn")


def test_trailing_bytes(rich_bytes):
    assert_format_error(rich_bytes + b"\0", "1 unexpected bytes")


def test_header_length_bounded_by_file_size(rich_bytes):
    data = bytearray(rich_bytes)
    struct.pack_into("<Q", data, 12, 10**12)
    assert_format_error(bytes(data), "header length 1000000000000 does not fit")
    struct.pack_into("<QQ", data, 12, 2**64 - 1, 2**64 - 1)
    assert_format_error(bytes(data), "does not fit")


def test_data_length_must_match_the_file(rich_bytes):
    data = bytearray(rich_bytes)
    (dlen,) = struct.unpack_from("<Q", data, 20)
    struct.pack_into("<Q", data, 20, dlen + 64)
    assert_format_error(bytes(data), "truncated")
    struct.pack_into("<Q", data, 20, dlen - 64)
    assert_format_error(bytes(data), "unexpected bytes")


def test_bad_json(rich_bytes):
    assert_format_error(pack_file(None, b"", header_bytes=b'{"tensors": [}'), "not valid JSON")
    assert_format_error(pack_file(None, b"", header_bytes=b'{"a": NaN}'), "NaN is not valid JSON")
    assert_format_error(pack_file(None, b"", header_bytes=b'{"a": 1, "a": 2}'), "duplicate key 'a'")
    assert_format_error(pack_file(None, b"", header_bytes=b"[" * 100000), "JSON")
    assert_format_error(pack_file(None, b"", header_bytes=b"1" * 5000), "JSON")
    assert_format_error(pack_file(None, b"", header_bytes=b"[]"), "header must be a JSON object")


def test_header_not_utf8():
    assert_format_error(pack_file(None, b"", header_bytes=b'{"x": "\xff"}'), "not valid UTF-8")


def test_file_digest_mismatch(rich_bytes):
    data = bytearray(rich_bytes)
    data[-100] ^= 1                                     # inside the data section
    assert_format_error(bytes(data), "file digest mismatch")


def test_blob_digest_mismatch_names_the_tensor(rich_bytes):
    _, header, _ = split_file(rich_bytes)
    offset = header["tensors"][3]["data"]["offset"]
    data = repack(rich_bytes, edit_data=lambda s: s.__setitem__(offset, s[offset] ^ 1), fix_digests=False)
    assert_format_error(data, "tensor 'w4' data", "SHA-256 mismatch")


def test_blob_out_of_bounds(rich_bytes):
    _, _, section = split_file(rich_bytes)
    data = repack(rich_bytes, lambda h: h["tensors"][1]["data"].update(offset=len(section)))
    assert_format_error(data, "tensor 'w' data", "out of bounds")


def test_blob_misaligned(rich_bytes):
    data = repack(rich_bytes, lambda h: h["tensors"][1]["data"].update(offset=8))
    assert_format_error(data, "tensor 'w' data", "misaligned")


def test_blobs_overlapping(rich_bytes):
    def share(header):
        header["tensors"][2]["data"]["offset"] = header["tensors"][1]["data"]["offset"]
    assert_format_error(repack(rich_bytes, share), "overlaps", "'w'", "'b'")


def test_unknown_dtype(rich_bytes):
    data = repack(rich_bytes, lambda h: h["tensors"][1].update(dtype="int3"))
    assert_format_error(data, "tensor 'w'", "unknown dtype 'int3'")


def test_shape_size_mismatch(rich_bytes):
    data = repack(rich_bytes, lambda h: h["tensors"][1].update(shape=[3, 5]))
    assert_format_error(data, "tensor 'w'", "nbytes 12 does not match int8[3, 5]")
    data = repack(rich_bytes, lambda h: h["tensors"][4]["data"].update(nbytes=2))
    assert_format_error(data, "tensor 'u4'", "nbytes 2 does not match uint4[5]")


def test_negative_dimension(rich_bytes):
    data = repack(rich_bytes, lambda h: h["tensors"][0].update(shape=[1, -4]))
    assert_format_error(data, "tensor 'x'", "negative dimension -4")


def test_absurd_dimensions(rich_bytes):
    data = repack(rich_bytes, lambda h: h["tensors"][0].update(shape=[2**31, 1]))
    assert_format_error(data, "tensor 'x'", "absurd dimension")
    data = repack(rich_bytes, lambda h: h["tensors"][0].update(shape=[2**30, 2**30]))
    assert_format_error(data, "tensor 'x'", "absurd")
    data = repack(rich_bytes, lambda h: h["tensors"][0].update(shape=[1] * 33))
    assert_format_error(data, "tensor 'x'", "rank 33")


def test_huge_claimed_constant_fails_fast_without_allocating(rich_bytes):
    def huge(header, nbytes):
        header["tensors"][5].update(shape=[10**6, 10**6])    # float32 'f', 10**12 elements
        header["tensors"][5]["data"]["nbytes"] = nbytes
    tracemalloc.start()
    start = time.perf_counter()
    try:
        for nbytes in (8, 4 * 10**12):
            data = repack(rich_bytes, lambda h: huge(h, nbytes))
            for verify in (True, False):
                assert_format_error(data, "tensor 'f'", verify=verify)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 2
    assert peak < 10 * 2**20


# Wrong JSON types anywhere: (where in the header, new value, expected words).
# Tensor 0 is 'x' (per-tensor quant), 1 is 'w' (per-axis quant, constant).
WRONG_TYPES = [
    (["tensors"], {}, "'tensors' must be an array"),
    (["tensors", 0], 5, "tensors[0]: must be an object"),
    (["tensors", 0, "name"], 7, "'name' must be a string"),
    (["tensors", 0, "name"], "", "'name' must not be empty"),
    (["tensors", 1, "dtype"], 8, "tensor 'w': 'dtype' must be a string"),
    (["tensors", 1, "shape"], "3,4", "tensor 'w': 'shape' must be an array"),
    (["tensors", 1, "shape"], [3, 4.0], "non-integer"),
    (["tensors", 1, "shape"], [3, True], "non-integer"),
    (["tensors", 1, "data"], [0, 12], "tensor 'w' data: must be a data reference object"),
    (["tensors", 1, "data", "offset"], "0", "tensor 'w' data: 'offset' must be an integer"),
    (["tensors", 1, "data", "nbytes"], -12, "'nbytes' = -12 is outside"),
    (["tensors", 1, "data", "sha256"], 5, "'sha256' must be a string"),
    (["tensors", 1, "data", "sha256"], "ABC", "64 lowercase hex"),
    (["tensors", 1, "quant"], "q", "tensor 'w': 'quant' must be an object"),
    (["tensors", 1, "quant", "granularity"], "per-row", "unknown granularity 'per-row'"),
    (["tensors", 1, "quant", "axis"], 2, "'axis' = 2 is outside [0, 1]"),
    (["tensors", 1, "quant", "axis"], None, "missing required key 'axis'"),
    (["tensors", 1, "quant", "scale"], 0.5, "tensor 'w' quant scale: must be a data reference"),
    (["tensors", 1, "quant", "scale_dtype"], "float64", "scale_dtype must be one of"),
    (["tensors", 1, "quant", "scale_dtype"], "float16", "float16 scales are allowed only for blocked"),
    (["tensors", 0, "quant", "scale"], "0.1", "tensor 'x' quant: 'scale' must be a number"),
    (["tensors", 0, "quant", "scale"], 1e39, "not a finite float32"),
    (["tensors", 0, "quant", "scale"], -1.0, "scales must be finite and > 0"),
    (["tensors", 0, "quant", "zero_point"], 1.5, "'zero_point' must be an integer"),
    (["tensors", 0, "quant", "zero_point"], 1000, "'zero_point' = 1000 is outside [-128, 127]"),
    (["tensors", 0, "quant", "axis"], 0, "not allowed for per-tensor"),
    (["tensors", 5, "quant"], {"granularity": "per-tensor", "scale": 1.0}, "float32 tensor cannot be quantized"),
    (["tensors", 9, "quant"], {"granularity": "per-axis", "axis": 0}, "scalar cannot be quantized"),
    (["nodes"], None, "missing required key 'nodes'"),
    (["nodes", 0], [], "nodes[0]: must be an object"),
    (["nodes", 0, "op"], "", "node 'fc': 'op' must not be empty"),
    (["nodes", 0, "inputs"], "x", "node 'fc': 'inputs' must be an array"),
    (["nodes", 0, "inputs", 0], 1, "inputs[0] must be a tensor name"),
    (["nodes", 0, "outputs", 0], "", "outputs[0] is an empty name"),
    (["nodes", 0, "attrs"], [], "node 'fc': 'attrs' must be an object"),
    (["nodes", 1, "attrs", "deep"], json.loads("[" * 70 + "]" * 70), "nested deeper"),
    (["inputs"], "x", "'inputs' must be an array"),
    (["outputs", 0], None, "outputs[0] must be a tensor name"),
    (["metadata"], 3, "'metadata' must be an object"),
    (["metadata", "producer"], 1, "metadata: 'producer' must be a string"),
    (["metadata", "user"], [], "metadata: 'user' must be an object"),
]


def set_path(obj, path, value):
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


@pytest.mark.parametrize("path,value,expected", WRONG_TYPES, ids=[str(p) for p, _, _ in WRONG_TYPES])
def test_wrong_json_types(rich_bytes, path, value, expected):
    data = repack(rich_bytes, lambda h: set_path(h, path, value))
    for verify in (True, False):
        assert_format_error(data, expected, verify=verify)


def test_dangling_tensor_names(rich_bytes):
    data = repack(rich_bytes, lambda h: set_path(h, ["nodes", 0, "inputs", 1], "ghost"))
    assert_format_error(data, "node 'fc'", "'ghost'")
    data = repack(rich_bytes, lambda h: set_path(h, ["outputs"], ["nope"]))
    assert_format_error(data, "'nope'")
    data = repack(rich_bytes, lambda h: set_path(h, ["inputs"], ["w"]))
    assert_format_error(data, "graph input 'w' is a constant")


def test_duplicate_names(rich_bytes):
    data = repack(rich_bytes, lambda h: set_path(h, ["tensors", 1, "name"], "x"))
    assert_format_error(data, "duplicate tensor name 'x'")
    data = repack(rich_bytes, lambda h: set_path(h, ["nodes", 1, "name"], "fc"))
    assert_format_error(data, "duplicate node name 'fc'")


def test_cycle(rich_bytes):
    def make_cycle(header):
        header["nodes"][0]["inputs"][0] = "z"          # fc reads z, which rq produces from fc's y
    assert_format_error(repack(rich_bytes, make_cycle), "node 'fc'", "'z'", "cycle")


def test_nonzero_padding(rich_bytes):
    data = repack(rich_bytes, edit_data=lambda s: s.__setitem__(-1, 1))
    assert_format_error(data, "non-zero padding")
    qformat.from_bytes(data, verify=False)
    raw = bytearray(rich_bytes)
    (hlen,) = struct.unpack_from("<Q", raw, 12)
    raw[28 + hlen] = 1                                 # padding after the header
    data = bytes(raw[:-32]) + hashlib.sha256(raw[:-32]).digest()
    assert_format_error(data, "non-zero padding bytes between header and data")


def test_int4_padding_nibble_must_be_zero(rich_bytes):
    _, header, _ = split_file(rich_bytes)
    ref = header["tensors"][4]["data"]                 # uint4[5]: 3 bytes, last high nibble unused
    last = ref["offset"] + ref["nbytes"] - 1
    data = repack(rich_bytes, edit_data=lambda s: s.__setitem__(last, s[last] | 0xF0))
    for verify in (True, False):
        assert_format_error(data, "tensor 'u4' data", "nibble", verify=verify)


def test_from_bytes_accepts_bytes_like_and_names_itself(rich_bytes):
    assert_same_graph(rich_graph(), qformat.from_bytes(bytearray(rich_bytes)).graph)
    with pytest.raises(FormatError, match="^<bytes>: bad magic|^<bytes>: not a .qnn"):
        qformat.from_bytes(b"x" * 200)
    with pytest.raises(FormatError, match="^<bytes>: expected bytes"):
        qformat.from_bytes(12)


# ---------------------------------------------------------------------------
# What the writer refuses
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("graph,error,expected", [
    (const_graph("int8", np.zeros(3, np.int16)), FormatError, "tensor 'w': constant data has numpy dtype int16"),
    (const_graph("int4", np.array([9], np.int8)), FormatError, "int4 values must lie in [-8, 7]"),
    (const_graph("int3", np.zeros(3, np.int8)), FormatError, "unknown dtype 'int3'"),
    (const_graph("int8", np.zeros(3, np.int8), Quant(f32(-1.0))), ValidationError, "scales must be finite"),
    (Graph({"w": TensorInfo("w", "int8", (2,), None, np.zeros(3, np.int8))}, [], [], ["w"]),
     FormatError, "constant data has shape (3,)"),
    (Graph({"w": TensorInfo("w", "int8", (-1,))}, [], ["w"], ["w"]), FormatError, "dimension -1"),
    (Graph({"a": TensorInfo("a", "int8", (2,))}, [], ["a"], ["ghost"]), FormatError, "'ghost'"),
    (Graph({"": TensorInfo("", "int8", (2,))}, [], [""], [""]), FormatError, "non-empty string"),
], ids=["dtype", "int4-range", "unknown-dtype", "quant", "shape", "negative-dim", "dangling", "empty-name"])
def test_writer_refuses_invalid_graphs(graph, error, expected):
    with pytest.raises(error) as info:
        qformat.to_bytes(graph)
    assert str(info.value).startswith("<bytes>: ") and expected in str(info.value)


@pytest.mark.parametrize("attrs,expected", [
    ({"x": object()}, "not a JSON value"),
    ({"x": float("nan")}, "not representable in JSON"),
    ({1: 2}, "not a string"),
    ({"x": "\ud800"}, "not valid Unicode"),
])
def test_writer_refuses_non_json_attrs(attrs, expected):
    graph = rich_graph()
    graph.nodes[0].attrs = attrs
    with pytest.raises(FormatError, match=re.escape(expected)):
        qformat.to_bytes(graph)


def test_writer_refuses_non_string_metadata():
    graph = rich_graph()
    graph.metadata["profile"] = 3
    with pytest.raises(FormatError, match="metadata\\['profile'\\] must be a string"):
        qformat.to_bytes(graph)


def test_writer_error_names_the_path(tmp_path):
    path = tmp_path / "bad.qnn"
    with pytest.raises(FormatError, match="^" + re.escape(str(path)) + ": tensor 'w'"):
        qformat.write_graph(const_graph("int8", np.zeros(3, np.int16)), path)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_helper_repack_without_edits_is_the_identity(rich_bytes):
    assert repack(rich_bytes) == rich_bytes


def test_data_section_length_must_be_a_multiple_of_64():
    header = json.dumps({"tensors": [], "nodes": [], "inputs": [], "outputs": []}).encode()
    body = PREAMBLE.pack(SPEC_MAGIC, 1, 0, len(header), 32) + header
    body += bytes(align64(len(body)) - len(body)) + bytes(32)
    assert_format_error(body + hashlib.sha256(body).digest(), "data section length 32")


def test_minimal_file_is_valid():
    header = b'{"tensors":[],"nodes":[],"inputs":[],"outputs":[]}'
    loaded = qformat.from_bytes(pack_file(None, b"", header_bytes=header))
    assert loaded.graph.tensors == {} and loaded.graph.metadata == {} and loaded.size == 160


@pytest.mark.parametrize("text,expected", [
    ('{"tensors":[{"name":"\\ud800","dtype":"int8","shape":[]}]}', "not valid Unicode"),
    ('{"tensors":[],"nodes":[{"name":"n","op":"A","inputs":[],"outputs":[],"attrs":{"a":1e999}}]}',
     "node 'n' attrs['a']: number inf is out of range"),
    ('{"tensors":[{"name":"t","dtype":"int8","shape":[4],"quant":{"granularity":"per-axis","axis":0,'
     '"block_size":2}}]}', "block_size is only allowed for blocked"),
    ('{"tensors":[{"name":"t","dtype":"int8","shape":[4],"quant":{"granularity":"per-tensor",'
     '"scale_dtype":"float16","scale":1.0}}]}', "per-tensor scale is float32"),
])
def test_more_malformed_headers(text, expected):
    assert_format_error(pack_file(None, b"", header_bytes=text.encode()), expected)


def test_unexpected_exceptions_become_format_errors(rich_bytes, monkeypatch):
    def broken(self, header):
        raise KeyError("surprise")
    monkeypatch.setattr(qformat._Reader, "_build_graph", broken)
    assert_format_error(rich_bytes, "malformed file (KeyError")


@pytest.mark.parametrize("graph,expected", [
    (None, "expected a Graph"),
    (Graph([], [], [], []), "graph.tensors must be a dict"),
    (Graph({"a": 1}, [], [], []), "expected a TensorInfo"),
    (Graph({}, [1], [], []), "expected a Node"),
    (Graph({}, [], [], [], metadata=[]), "metadata must be a dict"),
    (Graph({}, [], [], [], metadata={"user": 1}), "must be a dict of user key/values"),
    (Graph({}, [], "x", []), "graph inputs must be a list"),
    (Graph({}, [Node("n", "A", [], [], attrs=[])], [], []), "attrs must be a dict"),
    (Graph({"a": TensorInfo("a", "int8", 3)}, [], ["a"], ["a"]), "shape must be a tuple"),
    (Graph({"a": TensorInfo("a", "int8", (1.5,))}, [], ["a"], ["a"]), "non-integer"),
    (Graph({"a": TensorInfo("a", "int8", (1,) * 33)}, [], ["a"], ["a"]), "rank 33"),
    (Graph({"a": TensorInfo("a", "int8", (2**31 - 1,) * 2)}, [], ["a"], ["a"]), "exceed the limit"),
    (Graph({"a": TensorInfo("a", "int8", (2,), None, [1, 2])}, [], [], ["a"]), "must be a numpy array"),
    (Graph({"a": TensorInfo("a", "int8", (2,), 0.5)}, [], ["a"], ["a"]), "quant must be a Quant"),
])
def test_writer_refuses_malformed_objects(graph, expected):
    with pytest.raises(FormatError, match=re.escape(expected)):
        qformat.to_bytes(graph)


def test_worked_example_of_the_spec():
    """The example at the end of spec/format.md, byte for byte."""
    graph = Graph(
        {"x": TensorInfo("x", "int8", (2,), Quant(f32(0.1), np.array(-3, np.int8))),
         "w": TensorInfo("w", "int4", (3,), Quant(f32(0.5)), np.array([1, -2, 7], np.int8)),
         "y": TensorInfo("y", "int8", (2,))},
        [Node("mul", "Mul", ["x", "w"], ["y"])], ["x"], ["y"],
        {"producer": "qnnref 0.1.0", "profile": "tflite"})
    data = qformat.to_bytes(graph)
    assert len(data) == 672
    assert data[:28].hex() == "89514e4e0d0a1a0a" "01000000" "1d02000000000000" "4000000000000000"
    assert data[0x239:0x240] == bytes(7) and data[0x240:0x242] == b"\xe1\x07"
    assert data[0x242:0x280] == bytes(62)
    assert data[-32:].hex() == "1e938719f64c452b2f6ed3fc4739f7a3582b4c35d581b315084e144b9473e454"
    _, header, _ = split_file(data)
    assert header["tensors"][1]["data"] == {
        "offset": 0, "nbytes": 2,
        "sha256": "973c244312de982f3f32715b29ac0b51e700640f9e97603cb19098d75fce2384"}
