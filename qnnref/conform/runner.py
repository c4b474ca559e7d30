"""Run cases in ONNX Runtime, in a child process, with a timeout per case.

:class:`OrtRunner` keeps one worker process (:mod:`.worker`) busy with a
window of cases sent ahead, and yields ``(case, VendorResult)`` in the
order the cases came, as soon as each result is back -- so the caller can
run qnnref on one case while ONNX Runtime works on the next ones (two
cores, both busy).

A crash (the worker dies: segfault, abort, exit) or a hang (no result for
``timeout`` seconds) is a *result* of the case the worker was on -- the
first unanswered one, since the worker runs cases in order. The runner
kills what is left of that worker, starts a new one, and sends it the
cases that were waiting.
"""
from __future__ import annotations

import collections
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from .worker import read_message, write_message


class VendorUnavailable(Exception):
    """The worker could not start (onnxruntime missing, broken install...)."""


@dataclass
class VendorResult:
    status: str                        # ok | refused | crashed | hung | error
    outputs: dict = field(default_factory=dict)
    intermediates: dict | None = None
    probe_consistent: bool | None = None
    vendor_ops: list | None = None
    float_nodes: list = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0

    @classmethod
    def from_message(cls, msg: dict) -> "VendorResult":
        return cls(status=msg["status"], outputs=msg.get("outputs") or {},
                   intermediates=msg.get("intermediates"), probe_consistent=msg.get("probe_consistent"),
                   vendor_ops=msg.get("vendor_ops"), float_nodes=msg.get("float_nodes") or [],
                   message=msg.get("message", ""), seconds=msg.get("seconds", 0.0))


_EOF = object()


class _Worker:
    """One worker process and the threads that feed and drain its pipes."""

    def __init__(self, python: str, startup_timeout: float, wrapper=(), extra_env=None):
        env = dict(os.environ)
        env.update(extra_env or {})
        # the worker imports this very package, wherever it lives
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = "1"
        self.proc = subprocess.Popen([*wrapper, python, "-m", "qnnref.conform.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.results: queue.Queue = queue.Queue()
        self.to_send: queue.Queue = queue.Queue()
        self.stderr_tail: collections.deque = collections.deque(maxlen=40)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()
        self.startup_timeout = startup_timeout
        self.info: dict = {}

    def wait_ready(self) -> "_Worker":
        """Wait for the worker's greeting (it has imported onnxruntime)."""
        startup_timeout = self.startup_timeout
        try:
            hello = self.results.get(timeout=startup_timeout)
        except queue.Empty:
            self.kill()
            raise VendorUnavailable(f"the ONNX Runtime worker did not start within {startup_timeout:.0f} s")
        if hello is _EOF or not hello.get("hello"):
            self.kill()
            why = "" if hello is _EOF else hello.get("error", "")
            tail = " | ".join(self.stderr_tail)
            raise VendorUnavailable(f"the ONNX Runtime worker could not start: {why or tail or 'no reason given'}")
        self.info = hello["hello"]
        return self

    def _read(self) -> None:
        stream = self.proc.stdout
        while True:
            try:
                msg = read_message(stream)
            except Exception:            # a torn message: the worker died mid-write
                msg = None
            if msg is None:
                self.results.put(_EOF)
                return
            self.results.put(msg)

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    def _write(self) -> None:
        while True:
            req = self.to_send.get()
            if req is None:
                break
            try:
                write_message(self.proc.stdin, req)
            except (BrokenPipeError, OSError, ValueError):
                return                   # the worker is gone; the reader reports it
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def send(self, req: dict) -> None:
        self.to_send.put(req)

    def close(self) -> None:
        self.to_send.put(None)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()             # this process only, by its handle
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def exit_description(self) -> str:
        rc = self.proc.poll()
        if rc is None:
            return "still running"
        if rc < 0:
            import signal
            try:
                return f"killed by signal {signal.Signals(-rc).name}"
            except ValueError:
                return f"killed by signal {-rc}"
        return f"exited with status {rc}"


def emulator(cpu: str) -> list[str]:
    """The command prefix that runs the worker on an emulated x86-64 CPU model
    (``qemu-x86_64 -cpu MODEL``, e.g. ``Haswell``: AVX2 without AVX-512 or
    VNNI). ONNX Runtime then takes the code paths of that CPU -- its real
    code, on exactly emulated instructions -- so a VNNI machine can check
    the AVX2 semantics (the u8 x s8 int16 saturation). Slow: about 10 s to
    start and 10-50 times slower per case."""
    import shutil
    qemu = shutil.which("qemu-x86_64") or shutil.which("qemu-x86_64-static")
    if qemu is None:
        raise VendorUnavailable("emulating a CPU needs qemu-x86_64 (Debian: apt-get install qemu-user)")
    return [qemu, "-cpu", cpu]


def cpu_mask_env(cpu: str) -> dict:
    """The worker environment that presents ONNX Runtime with CPU model
    ``cpu`` (a key of cpumask.CPU_MODELS: ``native``, ``avx2``, ``avx512``)
    by hiding features from CPUID at native speed; the shim is compiled here,
    once. Raises VendorUnavailable, with the reason, where that cannot work."""
    from .cpumask import CPU_MODELS, ENV_FEATURES, ENV_LIBRARY, CpuMaskUnavailable, library_path
    if cpu not in CPU_MODELS:
        raise VendorUnavailable(f"unknown --cpu {cpu!r} (known: {', '.join(CPU_MODELS)})")
    if not CPU_MODELS[cpu]:
        return {}
    try:
        lib = library_path()
    except CpuMaskUnavailable as e:
        raise VendorUnavailable(f"--cpu {cpu} is unavailable here: {e}") from None
    return {ENV_FEATURES: CPU_MODELS[cpu], ENV_LIBRARY: str(lib)}


def _request(case) -> dict:
    return {"id": case.id, "model": case.model, "inputs": case.inputs,
            "session_config": dict(case.session_config), "hook": case.hook}


class OrtRunner:
    """Runs cases in an ONNX Runtime worker process.

    ``timeout``: seconds a case may take (session creation included) before
    it is reported as hung. ``window``: cases sent ahead of the one running.
    ``wrapper``: a command the worker runs under, e.g. :func:`emulator` to run
    ONNX Runtime on an emulated CPU. ``env``: environment variables added for
    the worker, e.g. :func:`cpu_mask_env` to hide CPU features from it.
    ``jobs``: worker processes.
    """

    def __init__(self, timeout: float = 60.0, window: int = 8, python: str | None = None,
                 startup_timeout: float = 60.0, wrapper=(), jobs: int = 1, env: dict | None = None):
        self.wrapper = list(wrapper)
        self.env = dict(env or {})
        self.jobs = max(1, int(jobs))
        self.timeout = float(timeout)
        self.window = max(1, int(window))
        self.python = python or sys.executable
        self.startup_timeout = startup_timeout
        self.info: dict = {}
        self.restarts = 0

    _started: list | None = None

    def _start_all(self) -> list:
        workers = [_Worker(self.python, self.startup_timeout, self.wrapper, self.env) for _ in range(self.jobs)]
        try:                                 # started together, then greeted
            for w in workers:
                self.info = w.wait_ready().info
        except VendorUnavailable:
            for w in workers:
                w.kill()
            raise
        return workers

    def start(self) -> dict:
        """Start the workers now (else :meth:`run` does) and return their
        greeting: the versions, and what this ONNX Runtime does with u8 x s8
        (``u8s8_saturates``). Raises VendorUnavailable."""
        if self._started is None:
            self._started = self._start_all()
        return self.info

    def close(self) -> None:
        """Stop workers started by :meth:`start` that :meth:`run` did not use."""
        workers, self._started = self._started or [], None
        for w in workers:
            w.close()

    def _start(self) -> _Worker:
        w = _Worker(self.python, self.startup_timeout, self.wrapper, self.env).wait_ready()
        self.info = w.info
        return w

    def run(self, cases):
        """Yield ``(case, VendorResult)`` for each case, in order.

        With ``jobs`` workers, each case goes to the worker with the fewest
        cases waiting; results are still yielded in the cases' order (each
        worker answers its own cases in order, so the next case to yield is
        always the oldest one of its worker)."""
        it = iter(cases)
        workers, self._started = self._started or self._start_all(), None
        waiting = [collections.deque() for _ in workers]    # per worker, sent and unanswered
        order: collections.deque = collections.deque()      # (case, worker index), in input order
        exhausted = False
        try:
            while True:
                while not exhausted and len(order) < self.window * len(workers):
                    try:
                        case = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    k = min(range(len(workers)), key=lambda j: len(waiting[j]))
                    waiting[k].append(case)
                    order.append((case, k))
                    workers[k].send(_request(case))
                if not order:
                    break
                head, k = order.popleft()
                worker = workers[k]
                t0 = time.perf_counter()
                try:
                    msg = worker.results.get(timeout=self.timeout)
                except queue.Empty:
                    msg = None
                waiting[k].popleft()
                if msg is None or msg is _EOF:
                    worker.kill()
                    if msg is None:
                        result = VendorResult("hung", message=f"no result after {self.timeout:g} s; "
                                                              "the worker was killed")
                    else:
                        tail = [ln for ln in worker.stderr_tail if ln.strip()][-3:]
                        result = VendorResult("crashed", message=f"the worker {worker.exit_description()}"
                                              + (": " + " | ".join(tail) if tail else ""))
                    result.seconds = time.perf_counter() - t0
                    yield head, result
                    self.restarts += 1
                    workers[k] = worker = self._start()
                    for case in waiting[k]:      # the cases that were waiting behind it
                        worker.send(_request(case))
                    continue
                if msg.get("id") != head.id:     # cannot happen: a worker answers in order
                    raise RuntimeError(f"worker answered {msg.get('id')!r} for case {head.id!r}")
                yield head, VendorResult.from_message(msg)
        finally:
            for worker, w in zip(workers, waiting):
                if w:                            # stopped early: drop the queued work
                    worker.kill()
                else:
                    worker.close()
