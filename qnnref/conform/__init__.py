"""``qnnref conform onnxruntime``: bit-exact conformance of qnnref with ONNX
Runtime, and a diagnosis of every difference (spec/conformance.md).

    qnnref conform onnxruntime                       # the built-in suite
    qnnref conform onnxruntime model.onnx --json out.json
    qnnref conform onnxruntime model.onnx --data images.npz --input-shape x=4,1,8,8
    qnnref conform onnxruntime --ops QLinearConv,QGemm --cases 200 --profile onnx
    qnnref conform onnxruntime --cpu avx2            # ORT as on an AVX2 CPU (CPUID masked)

Pieces: :mod:`.suite` (the seeded built-in cases), :mod:`.runner` and
:mod:`.worker` (ONNX Runtime in a child process; crashes and hangs are
results), :mod:`.engine` (qnnref's side: import, run, tensors by ONNX name),
:mod:`.compare`, :mod:`.diagnose`, :mod:`.report`, :mod:`.harness`, and
:mod:`.cpumask` (``--cpu``: ONNX Runtime on an older CPU, by CPUID masking).

Exit status: 0 when every case was compared and conforms to the expected
profile (the first ``--profile``), built-in cases refused on purpose aside;
1 when one does not, or was not compared (qnnref or ONNX Runtime refused
it; ``--allow-unsupported`` allows that); 2 on a usage or setup error.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

__all__ = ["main", "run_conformance"]

#: QEMU CPU models (lower case) with AVX512-VNNI or AVX-VNNI
VNNI_CPU_MODELS = {"cascadelake-server", "cooperlake", "icelake-server", "icelake-client",
                   "sapphirerapids", "graniterapids", "snowridge"}


class _Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, stream, enabled: bool):
        self.stream = stream
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last = 0.0

    def __call__(self, done: int, total: int | None, case_id: str) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.1 and done != total:
            return
        self.last = now
        elapsed = now - self.t0
        if total:
            width = 30
            fill = int(width * done / total)
            eta = elapsed / done * (total - done) if done else 0.0
            text = f"[{'#' * fill}{'.' * (width - fill)}] {done}/{total} {elapsed:5.0f} s (eta {eta:.0f} s) {case_id}"
        else:
            text = f"{done} cases {elapsed:5.0f} s {case_id}"
        self.stream.write("\r" + text[:110].ljust(110))
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 110 + "\r")
            self.stream.flush()


def model_label(path: str, paths) -> str:
    """The report row of a model file: its base name, or its path when two
    models given share a base name."""
    base = os.path.basename(path)
    return base if sum(os.path.basename(p) == base for p in paths) == 1 else path


#: the batch sizes a model with a symbolic batch is compared at when neither
#: --input-shape nor --data gives its batch
RANDOM_BATCHES = (1, 3)


def model_cases(paths, seed: int = 0, input_shapes: dict | None = None, data: str | None = None):
    """The cases of model files: ``(cases, notes)``. One case per sample:
    each sample of ``data`` (a ``--data`` path, see :mod:`.inputs`), else
    seeded random inputs (integers over their dtype's whole range, floats
    from a standard normal distribution clipped to [-3, 3]): one sample, or
    for a model with a symbolic batch one sample per batch size in
    :data:`RANDOM_BATCHES`. ``input_shapes`` (``--input-shape``) fixes
    symbolic dimensions, else the data's shapes do, else they are 1 (said in
    ``notes``). Everything is read and checked here, before any case runs:
    raises inputs.InputError."""
    import onnx
    from .inputs import (InputError, batch_inputs, batch_symbol, model_inputs, random_inputs, read_data,
                         resolve_shapes, samples_from_data)
    from .suite import Case, case_rng
    given = dict(input_shapes or {})
    cases, notes = [], []
    for path in paths:
        label = model_label(path, paths)
        try:
            model = onnx.load(path)
        except Exception as e:
            raise InputError(f"{path}: not an ONNX model: {type(e).__name__}: {e}") from None
        specs = model_inputs(model)
        unknown = sorted(set(given) - {s.name for s in specs})
        if unknown:
            raise InputError(f"--input-shape names {unknown}, which are not inputs of {label} "
                             f"(its inputs: {', '.join(s.describe() for s in specs) or 'none'})")
        blob = model.SerializeToString()
        symbol = batch_symbol(specs)
        batched = tuple(s.name for s in batch_inputs(specs)) if symbol else ()
        if data is None:
            if batched and not any(n in given for n in batched):
                batches = RANDOM_BATCHES
                notes.append(f"{label}: symbolic batch {symbol!r} (axis 0 of "
                             f"{', '.join(map(repr, batched))}): compared at batch sizes "
                             f"{', '.join(map(str, batches))} (no --input-shape or --data gives it)")
            else:
                batches = (None,)
            samples = []
            for k, b in enumerate(batches):
                shapes, why = resolve_shapes(label, specs, given, batch=b)
                if k == 0:
                    notes += why
                rng = case_rng(seed, os.path.basename(path), k)
                samples.append(("random" if b is None else f"random (batch {b})",
                                random_inputs(label, specs, shapes, rng), shapes, (seed, os.path.basename(path), k)))
        else:
            samples = []
            for sample, feeds in samples_from_data(label, specs, read_data(data, specs), given, batched):
                shapes, _ = resolve_shapes(label, specs, given, {k: v.shape for k, v in feeds.items()})
                samples.append((sample, feeds, shapes, ()))
        fixed = all(not s.symbolic for s in specs)
        for sample, feeds, shapes, case_seed in samples:
            sizes = {shapes[n][0] for n in batched if shapes[n]}
            batch = next(iter(sizes)) if len(sizes) == 1 else None
            if data is not None:
                cid = f"{label}/{sample}"
            elif len(samples) > 1:
                cid = f"{label}/batch{batch}"
            else:
                cid = label
            case = Case(id=cid, op=label, model=blob, inputs=feeds, tags=(path,), seed=case_seed,
                        input_shapes=None if fixed else shapes, sample=sample,
                        batch=batch, batch_symbol=symbol if batch is not None else None,
                        batch_inputs=batched if batch is not None else ())
            cases.append(case)
    return cases, notes


def run_conformance(cases, profiles=None, *, vnni: bool | None = None, timeout: float | None = None,
                    engine=None, progress=None, total=None, meta: dict | None = None,
                    strict: bool = False, emulate_cpu: str | None = None, jobs: int | None = None,
                    cpu: str = "native", allow_unsupported: bool = False):
    """Run ``cases`` (an iterable of suite.Case) and return a report.Report.

    ``profiles``: names (the first is the expected one); default
    :func:`harness.default_profiles`. ``vnni``: whether this ONNX Runtime
    multiplies u8 x s8 without saturation (default: measured by the worker,
    see worker.u8s8_saturates). A case that is not compared (qnnref's
    importer or ONNX Runtime refuses it) fails the run, unless it is a
    built-in case refused on purpose (suite/refusals.py) or
    ``allow_unsupported``; ``strict``: refusals on purpose fail too.
    ``cpu``: ``native``, or a CPU model that the worker presents to ONNX
    Runtime by hiding features from CPUID, at native speed (``avx2``: AVX2 without AVX-512, VNNI or AMX; cpumask.CPU_MODELS).
    ``emulate_cpu``: run ONNX Runtime under ``qemu-x86_64 -cpu MODEL``
    instead (e.g. ``Haswell``), see runner.emulator; slow. ``jobs``: ONNX
    Runtime worker processes (default 1; 2 under emulation)."""
    from .cpumask import CPU_MODELS, hides_vnni
    from .harness import Settings, cpu_info, default_profiles, machine_overrides, run_cases
    from .report import Report
    from .runner import OrtRunner, VendorUnavailable, cpu_mask_env, emulator
    machine = cpu_info()
    wrapper, env = [], {}
    if cpu not in CPU_MODELS:
        raise ValueError(f"unknown cpu {cpu!r} (known: {', '.join(CPU_MODELS)})")
    if emulate_cpu and cpu != "native":
        raise ValueError("--cpu and --emulate-cpu exclude each other")
    from ..profiles import get_profile
    for p in profiles or ():              # usage errors before any worker starts
        get_profile(p, "--profile")
    if emulate_cpu:
        wrapper = emulator(emulate_cpu)
        machine = {"model": f"{emulate_cpu} (emulated by qemu-x86_64 on {machine['model']})",
                   "emulated": emulate_cpu,
                   "vnni": "vnni" in emulate_cpu.lower() or emulate_cpu.lower() in VNNI_CPU_MODELS}
    elif cpu != "native":
        env = cpu_mask_env(cpu)
        hidden = CPU_MODELS[cpu]
        machine = dict(machine, model=f"{machine['model']} as {cpu} ({hidden} hidden from CPUID)",
                       cpu=cpu, hidden=hidden, vnni=machine["vnni"] and not hides_vnni(hidden))
    if timeout is None:
        timeout = 300.0 if emulate_cpu else 60.0
    runner = OrtRunner(timeout=timeout, window=8, wrapper=wrapper, env=env,
                       startup_timeout=300.0 if emulate_cpu else 60.0,
                       jobs=jobs or (2 if emulate_cpu else 1))
    try:
        greeting = runner.start()
        measured = greeting.get("u8s8_saturates")
        if cpu != "native" and measured is False and hides_vnni(CPU_MODELS[cpu]):
            raise VendorUnavailable(f"--cpu {cpu}: with {CPU_MODELS[cpu]} hidden from CPUID, ONNX Runtime "
                                    "still multiplies u8 x s8 without saturation; masking did not take effect")
        if vnni is None:                  # what this ONNX Runtime does, not what the CPU flags suggest
            vnni = (not measured) if measured is not None else machine["vnni"]
        machine = dict(machine, vnni=vnni)
        profiles = list(profiles) if profiles else default_profiles(vnni)
        settings = Settings(profiles=profiles, overrides=machine_overrides(vnni), timeout=timeout,
                            strict=strict, allow_unsupported=allow_unsupported, window=runner.window)
        t0 = time.perf_counter()
        results, vendor = run_cases(cases, settings, engine=engine, runner=runner, progress=progress,
                                    total=total)
    finally:
        runner.close()
    from .. import __version__
    meta = dict(meta or {})
    meta.update(vendor={k: v for k, v in vendor.items() if k != "pid"}, machine=machine,
                qnnref=__version__, seconds=round(time.perf_counter() - t0, 2))
    # report the machine overrides that change a profile of this run (not the no-ops)
    from ..profiles import PROFILES
    changed = {k: v for k, v in settings.overrides.items()
               if any(getattr(PROFILES[p], k, v) != v for p in profiles)}
    return Report(results, profiles, meta=meta, overrides=changed, strict=strict,
                  allow_unsupported=allow_unsupported)


def _parser() -> argparse.ArgumentParser:
    from .suite import FULL_SUITE_SIZE, GENERATORS
    rows = ", ".join(f"{op} {n}" for op, (_, n) in GENERATORS.items())
    p = argparse.ArgumentParser(
        prog="qnnref conform",
        description="Run cases in ONNX Runtime and in qnnref under semantic profiles; report "
                    "per operator how many are bit-exact, and diagnose every difference. A run "
                    "passes only if every case it was given was compared (see --allow-unsupported).",
        epilog=f"The built-in suite: {FULL_SUITE_SIZE} cases in {len(GENERATORS)} rows ({rows}). "
               "Exit status: 0 pass, 1 a case failed or was not compared, 2 usage or setup error.")
    p.add_argument("vendor", choices=["onnxruntime"], help="the runtime to compare with")
    p.add_argument("models", nargs="*", metavar="MODEL.onnx",
                   help="ONNX models to compare (inputs from --data, else seeded random ones); "
                        "default: the built-in suite")
    p.add_argument("--suite", choices=["builtin"], default=None,
                   help=f"run the built-in generated suite, {FULL_SUITE_SIZE} cases (the default when "
                        "no model is given)")
    p.add_argument("--data", metavar="PATH", default=None,
                   help="real inputs for the models: an .npz (keys: input names), a directory of NAME.npy "
                        "files, or ONNX test_data_set_*/input_K.pb directories (input_K.pb: the K-th model "
                        "input); an array with one axis more than its input is a stack of samples along "
                        "axis 0. Every sample is compared")
    p.add_argument("--input-shape", action="append", default=None, metavar="NAME=D0,D1,...",
                   help="the shape of model input NAME, fixing its symbolic dimensions (repeat per input); "
                        "default: the --data shapes, else every symbolic dimension is 1 (the report says so), "
                        "but a symbolic batch (leading dimension) is compared at batches 1 and 3. A model with "
                        "a symbolic batch is imported once, the batch kept, whatever the batch sizes")
    p.add_argument("--allow-unsupported", action="store_true",
                   help="a case that was not compared (qnnref's importer or ONNX Runtime refused it) does "
                        "not fail the run; it is still counted in the report")
    p.add_argument("--profile", action="append", default=None, metavar="P",
                   help="a semantic profile (repeat, or comma-separate); the first is the expected "
                        "one (default: ort-cpu-x86 and onnx, those registered)")
    p.add_argument("--json", metavar="OUT", help="write the JSON report to OUT")
    p.add_argument("--full-json", action="store_true",
                   help="list every case in full in the JSON report (default: failures in full)")
    p.add_argument("--seed", type=int, default=0, help="seed of the built-in suite and of model inputs")
    p.add_argument("--cases", type=int, default=None, metavar="N",
                   help="run N built-in cases, shared among the operators (default: the full suite)")
    p.add_argument("--ops", default=None, metavar="OP,...",
                   help="only these rows of the built-in suite (e.g. QLinearConv,'QDQ Conv')")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="seconds one case may take in ONNX Runtime before it counts as hung "
                        "(default 60; 300 with --emulate-cpu)")
    p.add_argument("--cpu", choices=["native", "avx2", "avx512"], default="native",
                   help="the CPU ONNX Runtime sees: native, or this one with features hidden from "
                        "CPUID at native speed -- avx2: no AVX-512, VNNI or AMX (MLAS's saturating AVX2 "
                        "u8 x s8 path); avx512: no VNNI or AMX. Needs x86-64 Linux with CPUID faulting "
                        "and a C compiler")
    p.add_argument("--emulate-cpu", metavar="MODEL", default=None,
                   help="run ONNX Runtime under qemu-x86_64 -cpu MODEL, e.g. Haswell (AVX2, no VNNI): "
                        "checks another CPU's semantics here; slow (needs qemu-user)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="ONNX Runtime worker processes (default 1; 2 with --emulate-cpu)")
    p.add_argument("--vnni", choices=["auto", "yes", "no"], default="auto",
                   help="whether ONNX Runtime multiplies u8 x s8 exactly (VNNI); default: measured "
                        "in the worker (u8 [255, 255] . s8 [127, 127])")
    p.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="show a progress bar (default: when stderr is a terminal)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--strict", action="store_true",
                   help="built-in cases refused on purpose (documented refusals) fail the run too")
    p.add_argument("--quiet", action="store_true", help="print only the final line")
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``qnnref conform`` command; returns the exit status."""
    # intermixed: options may come between the vendor and the models
    args = _parser().parse_intermixed_args(argv)
    try:
        return _main(args)
    except KeyboardInterrupt:
        print("qnnref conform: interrupted", file=sys.stderr)
        return 130


def _main(args) -> int:
    from ..errors import QnnError
    err = lambda msg: print(f"qnnref conform: error: {msg}", file=sys.stderr) or 2  # noqa: E731
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        return err(f"needs onnx and onnxruntime ({e}): pip install \"qnnref[onnx]\"")
    from .engine import ImporterUnavailable, find_importer
    try:
        find_importer()
    except ImporterUnavailable as e:
        return err(str(e))
    from .suite import FULL_SUITE_SIZE, GENERATORS, builtin_suite, counts
    profiles = [q.strip() for p in (args.profile or []) for q in p.split(",") if q.strip()]
    ops = [o.strip() for o in args.ops.split(",") if o.strip()] if args.ops else None
    if ops:
        unknown = [o for o in ops if o not in GENERATORS]
        if unknown:
            return err(f"unknown --ops {unknown}; the suite has: {', '.join(GENERATORS)}")
    if args.cases is not None and args.cases < 1:
        return err("--cases must be at least 1")
    if args.jobs is not None and not 1 <= args.jobs <= 64:
        return err("--jobs must be in [1, 64]")
    if args.timeout is not None and not args.timeout > 0:
        return err("--timeout must be positive")
    for m in args.models:
        if not os.path.isfile(m):
            return err(f"no such model file: {m}")
    if args.strict and args.allow_unsupported:
        return err("--strict and --allow-unsupported exclude each other")
    if (args.data or args.input_shape) and not args.models:
        return err("--data and --input-shape apply to MODEL.onnx files; none given")
    use_suite = args.suite == "builtin" or not args.models
    parts, total, suite_desc, notes = [], 0, [], []
    if args.models:
        from .inputs import InputError, parse_input_shapes
        try:
            mcases, notes = model_cases(args.models, args.seed, parse_input_shapes(args.input_shape),
                                        args.data)
        except InputError as e:
            return err(str(e))
        parts.append(mcases)
        total += len(mcases)
        inputs = f"{len(mcases)} sample(s) from {args.data}" if args.data else "random inputs"
        suite_desc.append(f"{len(args.models)} model(s), {inputs}")
    if use_suite:
        n = sum(counts(args.cases, ops).values())
        parts.append(builtin_suite(args.seed, args.cases, ops))
        total += n
        suite_desc.append(f"built-in suite, seed {args.seed}, {n} of {FULL_SUITE_SIZE} cases")

    def cases():
        for part in parts:
            yield from part
    vnni = {"auto": None, "yes": True, "no": False}[args.vnni]
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    progress = _Progress(sys.stderr, show and not args.quiet)
    from .runner import VendorUnavailable
    try:
        report = run_conformance(cases(), profiles or None, vnni=vnni, timeout=args.timeout,
                                 progress=progress, total=total, strict=args.strict,
                                 allow_unsupported=args.allow_unsupported,
                                 emulate_cpu=args.emulate_cpu, jobs=args.jobs, cpu=args.cpu,
                                 meta={"suite": "; ".join(suite_desc), "seed": args.seed,
                                       "data": args.data, "notes": notes})
    except (QnnError, ValueError, VendorUnavailable) as e:
        progress.finish()
        return err(str(e))
    progress.finish()
    if args.json:                        # first: the JSON survives a closed stdout
        with open(args.json, "w") as f:
            json.dump(report.to_json(full_cases=args.full_json), f, indent=1, default=_json_default)
            f.write("\n")
    text = report.render()
    print(text.splitlines()[-1] if args.quiet else text)
    return report.exit_code()


def _json_default(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
