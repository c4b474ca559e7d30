"""The long fuzz campaign: the .qnn reader and the ONNX importer, outside CI.

    python tools/fuzz.py --target all --inputs 500000 --jobs 2 --timeout 20
    python tools/fuzz.py --target onnx --replay 12345        # one input, in this process, with its traceback

Every input is numbered; input ``k`` of a target is generated from
``random.Random(k)`` alone (tests/fuzz/qnn_mutators.py for ``qnn``,
tests/fuzz/onnx_mutators.py for ``onnx``), so any input can be replayed
from its number. Inputs run in worker processes, in chunks:

* a worker that dies (SIGSEGV, abort, out of memory) counts a **crash** for
  the input it was running; a new worker goes on with the rest of the chunk;
* an input that runs longer than ``--timeout`` seconds counts a **hang**: the
  worker is killed and replaced;
* an exception that is not a ``qnnref.QnnError`` counts a **non-qnnref
  exception**, by signature (type and innermost qnnref frame);
* for every crash, hang and new signature the input is written to ``--out``
  (``<target>-<kind>-<k>.qnn`` / ``.onnx``, and a ``.txt`` with the
  traceback).

While fuzzing, qnnref.graph.MAX_TENSOR_ELEMENTS is lowered to
``--max-elements`` (as the test suite's fuzzers do: any big tensor must be
refused, not run) and each worker's address space is limited to
``--memory-mb``. The exit status is 1 if anything but qnnref errors and
successes happened.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from multiprocessing.connection import wait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
CHUNK = 100


def _paths():
    for p in (ROOT, TESTS):
        if p not in sys.path:
            sys.path.insert(0, p)


# ---------------------------------------------------------------------------
# Targets: make input k, run it
# ---------------------------------------------------------------------------

class QnnTarget:
    name, suffix = "qnn", ".qnn"

    def __init__(self, opts):
        _paths()
        from fuzz import qnn_mutators
        self.m = qnn_mutators
        self.seeds = [qnn_mutators.Seed(n, d) for n, d in qnn_mutators.seed_files().items()]

    def make(self, k: int):
        data, verify = self.m.mutate(self.seeds, random.Random(k))
        return data, {"verify": verify}

    def run(self, k: int) -> str:
        data, meta = self.make(k)
        return self.m.run_one(data, meta["verify"], k)

    def reproducer(self, k: int) -> bytes:
        return self.make(k)[0]


class OnnxTarget:
    name, suffix = "onnx", ".onnx"

    def __init__(self, opts):
        _paths()
        import onnx
        from fuzz import onnx_mutators, onnx_seeds
        self.onnx, self.m = onnx, onnx_mutators
        seeds = onnx_seeds.seed_models(opts.seeds_dir)
        self.names = sorted(seeds)
        self.blobs = [seeds[n] for n in self.names]
        self.protos = [onnx.ModelProto.FromString(b) for b in self.blobs]

    def make(self, k: int):
        """(bytes or ModelProto, description): a third of the inputs are
        byte-level mutations, the rest graph-level."""
        rng = random.Random(k)
        i = rng.randrange(len(self.blobs))
        if rng.random() < 1 / 3:
            return self.m.mutate_bytes(self.blobs[i], rng, self.blobs), f"{self.names[i]}: bytes"
        m = self.onnx.ModelProto()
        m.CopyFrom(self.protos[i])
        return m, f"{self.names[i]}: {', '.join(self.m.mutate_graph(m, rng))}"

    def run(self, k: int) -> str:
        return self.m.run_one(self.make(k)[0], k, self.m.PROFILES[k % len(self.m.PROFILES)])

    def reproducer(self, k: int) -> bytes:
        x = self.make(k)[0]
        return x if isinstance(x, bytes) else x.SerializeToString()


class SelfTestTarget:
    """Checks the driver itself (tests/fuzz/test_fuzz_driver.py): input k
    succeeds, or (k % 5) crashes the worker (1), hangs (2), raises a raw
    exception (3), raises a qnnref error (4)."""
    name, suffix = "selftest", ".txt"

    def __init__(self, opts):
        pass

    def run(self, k: int) -> str:
        kind = k % 5
        if kind == 1:
            os.abort()
        if kind == 2:
            time.sleep(3600)
        if kind == 3:
            raise IndexError(f"input {k}")
        return "qnnref error" if kind == 4 else "ok"

    def reproducer(self, k: int) -> bytes:
        return str(k).encode()


TARGETS = {"qnn": QnnTarget, "onnx": OnnxTarget, "selftest": SelfTestTarget}


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if os.sep + "qnnref" + os.sep in f.filename] or frames
    if not ours:
        return type(exc).__name__
    f = ours[-1]
    return f"{type(exc).__name__} at {os.path.relpath(f.filename, ROOT)}:{f.lineno}"


def _setup(opts):
    _paths()
    warnings.simplefilter("ignore")
    from qnnref import graph as qgraph
    qgraph.MAX_TENSOR_ELEMENTS = opts.max_elements


# ---------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------

def _worker(target_name, opts, conn, slot_k, slot_t):
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))      # a crash is counted, not dumped
    # (not under AddressSanitizer, tools/sanitize.sh: its shadow memory is
    # terabytes of address space, so any RLIMIT_AS makes every allocation fail)
    if opts.memory_mb and "libasan" not in os.environ.get("LD_PRELOAD", ""):
        limit = opts.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _setup(opts)
    target = TARGETS[target_name](opts)
    conn.send("ready")
    while True:
        job = conn.recv()
        if job is None:
            return
        k0, k1 = job
        counts, failures = collections.Counter(), []
        for k in range(k0, k1):
            slot_k.value, slot_t.value = k, time.monotonic()
            try:
                counts[target.run(k)] += 1
            except Exception as e:  # noqa: BLE001 -- what the campaign counts
                counts["exception"] += 1
                failures.append((k, _signature(e), "".join(traceback.format_exception(e))[-4000:]))
        slot_t.value = 0.0
        conn.send((k0, k1, counts, failures))


class Worker:
    def __init__(self, ctx, target, opts):
        self.slot_k = ctx.Value("q", -1, lock=False)
        self.slot_t = ctx.Value("d", 0.0, lock=False)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(target, opts, child, self.slot_k, self.slot_t), daemon=True)
        self.proc.start()
        child.close()
        self.job = None
        self.ready = False
        self.started = time.monotonic()

    def give(self, job):
        self.job = job
        self.conn.send(job)

    def kill(self):
        self.proc.kill()
        self.proc.join()
        self.conn.close()


# ---------------------------------------------------------------------------
# The campaign
# ---------------------------------------------------------------------------

def campaign(target: str, opts) -> dict:
    ctx = mp.get_context("spawn")          # no fork of a process with threads
    todo = collections.deque((k, min(k + CHUNK, opts.start + opts.inputs))
                             for k in range(opts.start, opts.start + opts.inputs, CHUNK))
    totals = collections.Counter()
    signatures: dict[str, list] = {}
    crashes, hangs = [], []
    local = None                           # the target in this process, to write reproducers
    os.makedirs(opts.out, exist_ok=True)

    def save(kind, k, text):
        nonlocal local
        if local is None:
            _setup(opts)
            local = TARGETS[target](opts)
        path = os.path.join(opts.out, f"{target}-{kind}-{k}")
        try:
            data = local.reproducer(k)
        except Exception as e:  # noqa: BLE001 -- a bug of the mutator itself: say so, go on
            data = f"the mutator failed on input {k}: {type(e).__name__}: {e}".encode()
        with open(path + local.suffix, "wb") as f:
            f.write(data)
        with open(path + ".txt", "w") as f:
            f.write(f"python tools/fuzz.py --target {target} --replay {k} --max-elements {opts.max_elements}"
                    f"\n\n{text}\n")

    def lost(w, kind):
        """Worker ``w`` died or hung on its current input: count it, requeue the rest."""
        k = w.slot_k.value
        k0, k1 = w.job
        if not k0 <= k < k1:
            k = k0
        (crashes if kind == "crash" else hangs).append(k)
        totals[kind] += 1
        save(kind, k, f"{kind} (exit code {w.proc.exitcode})")
        if k + 1 < k1:
            todo.appendleft((k + 1, k1))
        if k0 < k:
            todo.appendleft((k0, k))

    workers = [Worker(ctx, target, opts) for _ in range(opts.jobs)]
    t0 = time.monotonic()
    last_report = t0
    while todo or any(w.job for w in workers):
        for i, w in enumerate(workers):
            if w.ready and w.job is None and todo:
                w.give(todo.popleft())
        ready = wait([w.conn for w in workers] + [w.proc.sentinel for w in workers], timeout=0.2)
        for i, w in enumerate(workers):
            if w.conn in ready:
                try:
                    msg = w.conn.recv()
                except (EOFError, OSError):
                    msg = None
                if msg == "ready":
                    w.ready = True
                    continue
                if msg is not None:
                    k0, k1, counts, failures = msg
                    totals.update(counts)
                    for k, sig, tb in failures:
                        if sig not in signatures:
                            signatures[sig] = []
                            save("exception", k, tb)
                        signatures[sig].append(k)
                    w.job = None
                    continue
            dead = not w.proc.is_alive()
            hung = w.job is not None and w.slot_t.value and time.monotonic() - w.slot_t.value > opts.timeout
            slow_start = not w.ready and time.monotonic() - w.started > 600
            if dead or hung or slow_start:
                if not w.ready:
                    raise SystemExit(f"fuzz: a {target} worker failed to start (exit code {w.proc.exitcode})")
                if w.job is not None:
                    lost(w, "hang" if hung and not dead else "crash")
                w.kill()
                workers[i] = Worker(ctx, target, opts)
        if time.monotonic() - last_report > 30 and not opts.quiet:
            done = sum(totals.values())
            print(f"  {target}: {done} inputs, {done / (time.monotonic() - t0):.0f}/s, "
                  f"{totals['exception']} exceptions, {totals['crash']} crashes, {totals['hang']} hangs", flush=True)
            last_report = time.monotonic()
    for w in workers:
        try:
            w.conn.send(None)
        except OSError:
            pass
        w.proc.join(5)
        if w.proc.is_alive():
            w.kill()
    elapsed = time.monotonic() - t0
    return {"target": target, "inputs": sum(totals.values()), "seconds": elapsed, "counts": totals,
            "signatures": signatures, "crashes": crashes, "hangs": hangs}


def report(r: dict) -> bool:
    c = r["counts"]
    n = r["inputs"]
    print(f"{r['target']}: {n} inputs in {r['seconds']:.0f} s ({n / max(r['seconds'], 1e-9):.0f} inputs/s)")
    print(f"  qnnref errors: {c['qnnref error'] + c['run error']} "
          f"({c['qnnref error']} refused when read / imported, {c['run error']} at run time)")
    print(f"  successes (read or imported, and ran): {c['ok']}")
    print(f"  non-qnnref exceptions: {c['exception']} ({len(r['signatures'])} distinct)")
    for sig, ks in sorted(r["signatures"].items(), key=lambda x: -len(x[1])):
        print(f"    {len(ks):6d}  {sig}  (first: input {ks[0]})")
    print(f"  crashes: {c['crash']}" + (f" (inputs {r['crashes'][:10]})" if r["crashes"] else ""))
    print(f"  hangs: {c['hang']}" + (f" (inputs {r['hangs'][:10]})" if r["hangs"] else ""))
    return not (c["exception"] or c["crash"] or c["hang"])


def replay(target: str, k: int, opts) -> int:
    _setup(opts)
    warnings.simplefilter("default")
    t = TARGETS[target](opts)
    if target == "onnx":
        print(f"input {k}: {t.make(k)[1]}, profile {t.m.PROFILES[k % len(t.m.PROFILES)]}")
    start = time.monotonic()
    try:
        print(f"input {k}: {t.run(k)} ({time.monotonic() - start:.2f} s)")
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        return 1
    return 0


def _prepare_onnx_seeds(opts) -> None:
    """Quantize the ONNX seeds once, in a separate process (onnxruntime
    starts threads; the workers only read the cached files)."""
    code = ("import sys; sys.path[:0] = [%r, %r]; from fuzz.onnx_seeds import seed_models; seed_models(%r)"
            % (ROOT, TESTS, opts.seeds_dir))
    subprocess.run([sys.executable, "-c", code], check=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=["qnn", "onnx", "all", "selftest"], default="all",
                   help="what to fuzz (default: all; selftest checks this driver)")
    p.add_argument("--inputs", type=int, default=10_000, help="inputs per target (default: 10000)")
    p.add_argument("--start", type=int, default=0, help="number of the first input (default: 0)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes per target (default: 2)")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds one input may take before it counts "
                   "as a hang (default: 20)")
    p.add_argument("--max-elements", type=int, default=20_000, help="qnnref.graph.MAX_TENSOR_ELEMENTS while "
                   "fuzzing (default: 20000)")
    p.add_argument("--memory-mb", type=int, default=4096, help="address-space limit of a worker, MiB "
                   "(0: none; default: 4096)")
    tmp = tempfile.gettempdir()
    with open(os.path.join(TESTS, "fuzz", "onnx_seeds.py"), "rb") as f:    # a new cache when the seeds change
        seeds_version = hashlib.sha256(f.read()).hexdigest()[:12]
    p.add_argument("--out", default=os.path.join(tmp, "qnnref-fuzz-findings"),
                   help="directory for reproducers (default: %(default)s)")
    p.add_argument("--seeds-dir", default=os.path.join(tmp, f"qnnref-fuzz-seeds-{seeds_version}"),
                   help="cache of the quantized ONNX seed models (default: %(default)s)")
    p.add_argument("--replay", type=int, metavar="K", help="run input K of --target in this process and "
                   "print its traceback")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    opts = p.parse_args(argv)
    if opts.inputs < 1 or opts.jobs < 1 or opts.timeout <= 0:
        p.error("--inputs and --jobs must be >= 1, --timeout > 0")
    targets = ["qnn", "onnx"] if opts.target == "all" else [opts.target]
    if "onnx" in targets:
        _prepare_onnx_seeds(opts)
    if opts.replay is not None:
        if opts.target == "all":
            p.error("--replay needs --target qnn or onnx")
        return replay(opts.target, opts.replay, opts)
    ok, total = True, 0
    for t in targets:
        r = campaign(t, opts)
        ok &= report(r)
        total += r["inputs"]
    print(f"total: {total} inputs; {'no' if ok else 'SOME'} non-qnnref exceptions, crashes or hangs")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
