"""Fast mutations of .qnn files for the long fuzz driver (tools/fuzz.py).

The hypothesis fuzzers in tests/format/test_format_fuzz.py and
tests/fuzz/test_model_fuzz.py draw their mutations through hypothesis,
which is thorough but slow (tens of inputs per second). Here the same
kinds of mutation are driven by a ``random.Random`` seeded with the input's
number, so that a campaign of a million inputs is cheap and any input can
be replayed from its number alone:

* byte-level: bit flips, byte sets, insertions, deletions, truncation, in
  the whole file or inside the JSON header (read with and without
  ``verify``);
* header-level: a JSON value replaced (by an interesting value or a random
  one) or deleted, then the file re-packed with correct digests, so that
  the header validation and ``Model`` validation are reached.

:func:`run_one` reads the result; a file that reads and validates is run
once on valid random inputs. Only a ``qnnref.QnnError`` may escape.
"""
from __future__ import annotations

import copy
import json
import random

import numpy as np

from qnnref import Model, QnnError
from qnnref import format as qformat
from qnnref import graph as qgraph

from format.test_format import all_paths, edit, fix_blob_digests, pack_file, rich_graph, split_file
from .harness import random_input
from .seeds import SEED_GRAPHS


def seed_files() -> dict[str, bytes]:
    """{name: .qnn bytes} of the fuzz seeds (tests/fuzz/seeds.py) and the
    format tests' rich graph (every dtype and quantization kind)."""
    out = {name: qformat.to_bytes(copy.deepcopy(g)) for name, g in SEED_GRAPHS.items()}
    out["rich"] = qformat.to_bytes(rich_graph())
    return out


class Seed:
    """One seed file, split once: its header, data section and the path of
    every JSON value in the header."""

    def __init__(self, name: str, data: bytes):
        self.name, self.data = name, data
        self.version, self.header, self.section = split_file(data)
        self.header_start = 28
        self.header_end = 28 + len(json.dumps(self.header, ensure_ascii=False, separators=(",", ":")).encode())
        self.paths = all_paths(self.header)
        self.leaves = [p for p in self.paths if not isinstance(_get(self.header, p), (dict, list))]


def _get(doc, path):
    for key in path:
        doc = doc[key]
    return doc


INTERESTING = [0, 1, -1, 2, 3, 7, 8, 63, 64, 65, 128, 255, 256, 2**15, 2**16, 2**24, 2**28, 2**31 - 1, 2**31,
               2**32, 2**40, 2**53, 2**63 - 1, 2**63, 2**64, -(2**63), 10**12, 10**30, 1e39, 1e308, 0.5, -0.0,
               1e-45, 1e-320, "", "int4", "uint4", "int8", "uint8", "int16", "int32", "int64", "float16",
               "float32", "bool", "per-tensor", "per-axis", "blocked", "0" * 64, [], {}, [0], [1], [1, 1], [-1],
               [0, 0, 0, 0], [2**31, 2**31], [10**6, 10**6], [1] * 33, None, True, False,
               {"offset": 0, "nbytes": 1, "sha256": "0" * 64}, "NaN", "Infinity"]


def _random_json(rng: random.Random, depth: int = 0):
    r = rng.random()
    if r < 0.55 or depth > 2:
        return copy.deepcopy(rng.choice(INTERESTING))     # a copy: the header must not share (or contain) itself
    if r < 0.7:
        return rng.randint(-2**70, 2**70)
    if r < 0.8:
        return rng.choice([float("nan"), float("inf"), rng.uniform(-1e6, 1e6)])
    if r < 0.9:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["name", "op", "dtype", "shape", "x", ""]): _random_json(rng, depth + 1)
            for _ in range(rng.randint(0, 3))}


def _header_json_mutation(seed: Seed, rng: random.Random) -> bytes:
    header = copy.deepcopy(seed.header)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if rng.random() < 0.6:                # a leaf: an attribute, a dim, a dtype, a scale...
            path = rng.choice(seed.leaves)
            try:
                _get(header, path)
            except (KeyError, IndexError, TypeError):
                continue
        else:
            path = rng.choice(all_paths(header))
        delete = bool(path) and rng.random() < 0.25
        value = _random_json(rng)
        if not delete and path and rng.random() < 0.3:     # a near miss of the current value
            parent = header
            for key in path[:-1]:
                parent = parent[key]
            old = parent[path[-1]]
            if isinstance(old, bool):
                value = not old
            elif isinstance(old, int):
                value = old + rng.choice([-1, 1, -old - 1, old, 2**31])
            elif isinstance(old, list) and old:
                value = old[:-1] if rng.random() < 0.5 else old + [old[-1]]
        try:
            header = edit(header, path, value, delete)
        except (KeyError, IndexError, TypeError):
            pass
    if isinstance(header, (dict, list)):
        fix_blob_digests(header, seed.section)
    try:
        return pack_file(header, seed.section, seed.version)
    except (ValueError, TypeError):                        # NaN / inf are not JSON: write them anyway
        text = json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
        return pack_file(None, seed.section, seed.version, header_bytes=text)


def _byte_mutation(seed: Seed, rng: random.Random) -> bytes:
    buf = bytearray(seed.data)
    for _ in range(rng.randint(1, 3)):
        n = len(buf)
        if not n:
            break
        kind = rng.choice(["flip", "flip-header", "set", "insert", "delete", "truncate"])
        if kind == "flip-header" and seed.header_end <= n:
            i = rng.randrange(seed.header_start, seed.header_end)
        else:
            i = rng.randrange(n)
        if kind in ("flip", "flip-header"):
            buf[i] ^= 1 << rng.randrange(8)
        elif kind == "set":
            buf[i] = rng.choice([0, 0xFF, 0x7F, 0x80, ord('"'), ord("9"), ord("-"), rng.randrange(256)])
        elif kind == "insert":
            buf[i:i] = rng.randbytes(rng.randint(1, 16))
        elif kind == "delete":
            del buf[i:i + rng.randint(1, 16)]
        else:
            del buf[i:]
    return bytes(buf)


def mutate(seeds: list[Seed], rng: random.Random) -> tuple[bytes, bool]:
    """(mutated file, verify) for one fuzz input."""
    seed = rng.choice(seeds)
    if rng.random() < 0.6:
        return _header_json_mutation(seed, rng), rng.random() < 0.5
    return _byte_mutation(seed, rng), rng.random() < 0.3


def run_one(data: bytes, verify: bool, seed: int = 0) -> str:
    """Read, validate and (if valid) run once: "ok", "qnnref error" or
    "run error"; any other exception propagates."""
    try:
        loaded = qformat.from_bytes(data, verify=verify, name="fuzz.qnn")
        model = Model(loaded.graph)
    except QnnError:
        return "qnnref error"
    if any(qgraph.element_count(s.shape) > qgraph.MAX_TENSOR_ELEMENTS for s in model.inputs):
        return "ok"
    rng = np.random.default_rng(seed)
    try:
        model.run({s.name: random_input(s, rng) for s in model.inputs})
    except QnnError:
        return "run error"
    return "ok"
