"""Fuzzing the .qnn reader: whatever the bytes, reading either succeeds or
raises a qnnref error (FormatError in practice) - never another exception,
never a hang, never a huge allocation.

Three levels:

* arbitrary bytes, with and without a valid-looking preamble;
* valid files mutated byte by byte (flip, insert, delete, truncate), read with
  ``verify=True`` and ``verify=False`` (the latter gets past the digest check
  into the JSON and layout validation);
* valid headers whose JSON subtrees are replaced or deleted, re-packed with
  correct digests, so that the header validation itself is exercised.

Each test runs a modest number of examples (the file takes ~10 s).
"""
from __future__ import annotations

import copy
import hashlib
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qnnref import format as qformat
from qnnref.errors import FormatError, QnnError

from .test_format import all_paths, edit, fix_blob_digests, pack_file, rich_graph, split_file

# QNNREF_FUZZ_EXAMPLES=100000 python -m pytest tests/format/test_format_fuzz.py  fuzzes for longer
# deadline=None: hypothesis' deadline only measures an example after it ends
# (it cannot catch a hang), and on a loaded 2-core CI machine a 2 s deadline
# failed a correct run; a hang would still stop the suite, visibly.
FUZZ = settings(max_examples=int(os.environ.get("QNNREF_FUZZ_EXAMPLES", 1000)), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

VALID = qformat.to_bytes(rich_graph())
VERSION, HEADER, SECTION = split_file(VALID)
(HEADER_LENGTH,) = struct.unpack_from("<Q", VALID, 12)


def symbolic_graph():
    """A small model with a symbolic batch "N" (format 1.1): conv2d, a
    reshape to [N, -1], matmul (spec/format.md, "Symbolic batch")."""
    import numpy as np
    import qnnref
    rng = np.random.default_rng(5)
    b = qnnref.GraphBuilder(profile="qnnref")
    x = b.input("x", "int8", ("N", 4, 4, 2), scale=0.02, zero_point=-3)
    w = b.constant("w", rng.integers(-127, 128, (3, 3, 3, 2)).astype(np.int8),
                   scale=np.full(3, 0.01, np.float32), axis=0)
    y = b.node("conv2d", [x, w], {"pads": [1, 1, 1, 1]}, scale=0.05, zero_point=1, name="conv")
    y = b.node("reshape", [y], {"shape": [1, -1]}, scale=0.05, zero_point=1, name="flat")
    m = b.constant("m", rng.integers(-127, 128, (48, 5)).astype(np.int8), scale=0.01)
    y = b.node("matmul", [y, m], scale=0.1, zero_point=0, name="fc")
    b.output(y)
    return b.graph()


SYMBOLIC = qformat.to_bytes(symbolic_graph())
SYMBOLIC_VERSION, SYMBOLIC_HEADER, SYMBOLIC_SECTION = split_file(SYMBOLIC)
FILES = {"rich": (VALID, VERSION, SECTION), "symbolic": (SYMBOLIC, SYMBOLIC_VERSION, SYMBOLIC_SECTION)}


def read_or_qnn_error(data: bytes, verify: bool, allowed: type[Exception] = QnnError):
    """Read ``data``; an ``allowed`` error is fine, anything else fails the
    test. A successful read must give a graph that can be written again."""
    try:
        loaded = qformat.from_bytes(data, verify=verify, name="fuzz.qnn")
    except allowed as e:
        assert str(e).startswith("fuzz.qnn: "), str(e)
        return None
    qformat.to_bytes(loaded.graph)          # what the reader accepts, the writer writes
    if loaded.graph.batch_symbol is not None:
        import numpy as np
        import qnnref
        try:                                 # a symbolic model loads and runs, or raises a qnnref error
            model = qnnref.Model(loaded.graph, backend="reference")
            for n in (1, 2):
                feeds = {i.name: np.zeros([n if isinstance(d, str) else d for d in i.shape], np.dtype(i.dtype))
                         for i in model.inputs if i.dtype in ("int8", "uint8", "int16", "int32", "float32")}
                if len(feeds) == len(model.inputs):
                    model.run(feeds)
        except QnnError:
            pass
    return loaded


# ---------------------------------------------------------------------------
# Bytes
# ---------------------------------------------------------------------------

@FUZZ
@given(st.binary(max_size=600), st.booleans())
def test_arbitrary_bytes(data, verify):
    read_or_qnn_error(data, verify)


@FUZZ
@given(st.integers(0, 3), st.integers(0, 3), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
       st.binary(max_size=400), st.booleans())
def test_arbitrary_bytes_after_a_preamble(major, minor, hlen, dlen, rest, verify):
    data = qformat.MAGIC + struct.pack("<HHQQ", major, minor, hlen, dlen) + rest
    read_or_qnn_error(data, verify)


def mutate(data: bytes, draw) -> bytes:
    """One random byte-level mutation of ``data``."""
    kind = draw(st.sampled_from(["flip", "flip-header", "set", "insert", "delete", "truncate"]))
    size = len(data)
    if size == 0:
        return draw(st.binary(min_size=1, max_size=8))
    if kind == "truncate":
        return data[:draw(st.integers(0, size - 1))]
    if kind == "flip-header" and size >= 28 + HEADER_LENGTH:   # keeps the layout, breaks the JSON
        i = draw(st.integers(28, 28 + HEADER_LENGTH - 1))
    else:
        i = draw(st.integers(0, size - 1))
    if kind in ("flip", "flip-header"):
        return data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1:]
    if kind == "set":
        return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]
    if kind == "insert":
        return data[:i] + draw(st.binary(min_size=1, max_size=70)) + data[i:]
    return data[:i] + data[i + draw(st.integers(1, 70)):]


@FUZZ
@given(st.data(), st.booleans())
def test_mutated_valid_files(data, verify):
    mutated = data.draw(st.sampled_from([VALID, SYMBOLIC]))
    for _ in range(data.draw(st.integers(1, 3))):
        mutated = mutate(mutated, data.draw)
    read_or_qnn_error(mutated, verify)


@FUZZ
@given(st.data())
def test_mutated_header_bytes_with_correct_digest(data):
    """Flip bytes inside the JSON text, then fix the file digest, so that
    even ``verify=True`` reaches the JSON parser."""
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(28, 28 + HEADER_LENGTH - 1))
        raw[i] = data.draw(st.sampled_from(b'{}[]",:0123456789-.etrufalsn \\\x00\xff\xc3'))
    raw[-32:] = hashlib.sha256(raw[:-32]).digest()
    for verify in (True, False):
        read_or_qnn_error(bytes(raw), verify)


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------

NAMES = [t["name"] for t in HEADER["tensors"]] + [n["name"] for n in HEADER["nodes"]]
INTERESTING = [0, 1, -1, 2, 3, 8, 63, 64, 65, 128, 2**31, 2**40, 2**63, 10**12, -(2**63), 1e39, 0.5,
               1e-45, "", "int4", "uint4", "float16", "float32", "int64", "per-tensor", "per-axis",
               "blocked", "0" * 64, [], {}, [0], [1, 1], [10**6, 10**6], [-1], None, True, False,
               {"offset": 0, "nbytes": 1, "sha256": "0" * 64}, "N", "M", "1N", "N" * 33, ["N"], ["N", 4],
               ["N", "N"]] + NAMES

json_leaves = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
               | st.sampled_from(INTERESTING))
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12)


PATHS = all_paths(HEADER)


def repack_header(header, section: bytes = SECTION) -> bytes:
    if isinstance(header, (dict, list)):
        fix_blob_digests(header, section)
    return pack_file(header, section, VERSION)


@FUZZ
@given(st.data())
def test_random_json_subtrees(data):
    """Replace or delete 1-3 random subtrees of a valid header; re-pack with
    correct digests; the reader must succeed or raise FormatError."""
    valid, version, section = FILES[data.draw(st.sampled_from(sorted(FILES)))]
    header = split_file(valid)[1]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(all_paths(header)))
        delete = bool(path) and data.draw(st.booleans())
        # a copy: sampled_from(INTERESTING) hands out the same list/dict objects every
        # time, and a later edit (or fix_blob_digests) would change INTERESTING itself
        header = edit(header, path, copy.deepcopy(data.draw(json_values)), delete)
    if isinstance(header, (dict, list)):
        fix_blob_digests(header, section)
    packed = pack_file(header, section, data.draw(st.sampled_from([version, (1, 0), (1, 1)])))
    for verify in (True, False):
        read_or_qnn_error(packed, verify, allowed=FormatError)


@pytest.mark.parametrize("path", PATHS, ids=[str(p) for p in PATHS])
def test_every_header_value_replaced_by_null(path):
    """Systematic companion of the random test: null everywhere."""
    header = split_file(VALID)[1]
    read_or_qnn_error(repack_header(edit(header, path, None, False)), verify=False)
