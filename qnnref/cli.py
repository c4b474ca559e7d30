"""The ``qnnref`` command line: inspect, run, demo, convert, conform, kernels.

Errors print one line (``qnnref: error: ...``) and exit with status 1; no
traceback, whatever the input.

What a command was asked for (inspect's description, run's arrays, demo's
accuracy, kernels' table) is printed on stdout. Everything else goes through
the ``qnnref`` logger: status lines ("wrote ...") at INFO on stdout, details
(backend, plan, timings) at DEBUG on stderr. ``-v/--verbose`` shows DEBUG,
``-q/--quiet`` leaves out INFO (and warnings are still shown).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import numpy as np

from . import __version__
from .errors import QnnError


log = logging.getLogger("qnnref")

#: the ``schema`` field of ``qnnref inspect --json`` (README, "Command line"); bump on a breaking change
INSPECT_SCHEMA = "qnnref-inspect/1"


class CliError(Exception):
    """A usage problem found after parsing (bad --input value, missing file)."""


class _Only(logging.Filter):
    """Pass records whose level is in [lo, hi)."""

    def __init__(self, lo: int, hi: int):
        super().__init__()
        self.lo, self.hi = lo, hi

    def filter(self, record):
        return self.lo <= record.levelno < self.hi


class _Prefixed(logging.Formatter):
    """``qnnref: debug: ...``, ``qnnref: warning: ...``: the level, as the CLI's errors say it."""

    def format(self, record):
        return f"qnnref: {record.levelname.lower()}: {super().format(record)}"


def configure_logging(verbose: int = 0, quiet: bool = False):
    """Set up the ``qnnref`` logger for one command: INFO status lines on
    stdout; DEBUG (with -v), warnings and errors on stderr; bound to the
    current sys.stdout / sys.stderr. Returns a function that undoes it (main
    calls it when the command ends, so a program that calls main keeps its
    logging)."""
    saved = (log.level, log.propagate)
    log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    log.propagate = False
    status = logging.StreamHandler(sys.stdout)
    status.addFilter(_Only(logging.INFO, logging.WARNING))
    status.setFormatter(logging.Formatter("%(message)s"))
    other = logging.StreamHandler(sys.stderr)
    other.addFilter(lambda record: record.levelno != logging.INFO)
    other.setFormatter(_Prefixed("%(message)s"))
    handlers = (status, other)
    for h in handlers:
        log.addHandler(h)

    def restore() -> None:
        for h in handlers:
            log.removeHandler(h)
        log.setLevel(saved[0])
        log.propagate = saved[1]
    return restore


def _load(args, **options):
    """qnnref.load(args.file, ...), with the load time and the plan at DEBUG."""
    from . import load
    t0 = time.perf_counter()
    model = load(args.file, verify=not getattr(args, "no_verify", False), **options)
    log.debug("loaded %s in %.2f ms: sha256:%s, profile %s, %s", args.file, (time.perf_counter() - t0) * 1e3,
              model.digest, model.profile, _describe_backend(model))
    _log_plan(model)
    return model


def _log_plan(model) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    plan = model.plan()
    counts: dict[str, int] = {}
    for r in plan:
        counts[r["runs"]] = counts.get(r["runs"], 0) + 1
    log.debug("plan: %d nodes: %s", len(plan), "; ".join(f"{n} {runs}" for runs, n in counts.items()))
    for r in plan:
        log.debug("  %s (%s): %s", r["node"], r["op"], r["runs"])


# ---------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------

def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _quant_text(t) -> str:
    q = t.quant
    if q is None:
        return "-"
    zp = q.zero_point_or_zeros()
    if q.axis is None:
        return f"scale={float(q.scale):.6g} zp={int(zp)}"
    s = q.scale.astype(np.float64)
    kind = f"axis={q.axis}" if q.block_size is None else f"axis={q.axis} block={q.block_size}"
    if not s.size:                      # an axis of length 0: no scales at all
        return f"{kind} (0 scales)"
    zps = "sym" if q.symmetric else f"zp {int(zp.min())}..{int(zp.max())}"
    return f"{kind} scale {s.min():.4g}..{s.max():.4g} ({s.size}) {zps}"


def _attr_text(attrs: dict) -> str:
    parts = []
    for k, v in attrs.items():
        text = json.dumps(v, separators=(",", ":"))
        parts.append(f"{k}={text if len(text) <= 40 else text[:37] + '...'}")
    return " ".join(parts)


def cmd_inspect(args) -> int:
    model = _load(args)
    g = model.graph
    if args.json:
        print(json.dumps(_inspect_json(model), indent=2))
        return 0
    md = g.metadata
    weights = sum(t.data.nbytes for t in g.tensors.values() if t.data is not None)
    rows = [("file", f"{args.file}  ({_fmt_bytes(os.path.getsize(args.file))})"),
            ("digest", f"sha256:{model.digest}"), ("profile", model.profile)]
    rows += [(k, md[k]) for k in ("producer", "created", "description") if md.get(k)]
    rows += [(k, v) for k, v in md.items() if k not in ("producer", "created", "description", "profile")]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v if isinstance(v, str) else json.dumps(v)}")
    print(f"{'nodes':<{width}}  {len(g.nodes)}; constants {sum(t.is_constant for t in g.tensors.values())}"
          f" ({_fmt_bytes(weights)})")
    print()
    io_rows = [[kind, s.name, s.dtype, "x".join(map(str, s.shape)) or "scalar", _quant_text(g.tensors[s.name])]
               for kind, specs in (("input", model.inputs), ("output", model.outputs)) for s in specs]
    print(_table(io_rows, ["", "name", "dtype", "shape", "quantization"]))
    print()
    node_rows = []
    for n in g.nodes:
        outs = [g.tensors[o] for o in n.outputs]
        node_rows.append([n.name, n.op, ", ".join(i or "-" for i in n.inputs), ", ".join(n.outputs),
                          "; ".join(f"{t.dtype}[{'x'.join(map(str, t.shape))}]" for t in outs),
                          _attr_text(n.attrs)])
    print(_table(node_rows, ["node", "op", "inputs", "outputs", "type", "attributes"]))
    print()
    print(f"execution plan ({_describe_backend(model)}):")
    print(_table([[r["node"], r["op"], r["runs"]] for r in model.plan()], ["node", "op", "runs"]))
    print()
    floats = _float_nodes(g)
    if floats:
        print(f"float nodes: {len(floats)} compute in float32 (spec/ops/float_*.md): {', '.join(floats)}")
        print()
    t_rows = [[t.name, t.dtype, "x".join(map(str, t.shape)) or "scalar", _quant_text(t),
               _fmt_bytes(t.data.nbytes) if t.data is not None else ""]
              for t in g.tensors.values()]
    print(_table(t_rows, ["tensor", "dtype", "shape", "quantization", "constant"]))
    return 0


def _float_nodes(g) -> list[str]:
    """Names of the nodes whose arithmetic is float32 (the float_* operators)."""
    return [n.name for n in g.nodes if n.op.startswith("float_")]


def _inspect_json(model) -> dict:
    g = model.graph

    def qd(t):
        q = t.quant
        if q is None:
            return None
        return {"scale": q.scale.astype(float).tolist(), "zero_point": q.zero_point_or_zeros().tolist(),
                "axis": q.axis, "block_size": q.block_size}

    return {
        "schema": INSPECT_SCHEMA,
        "digest": model.digest, "profile": model.profile, "metadata": g.metadata,
        "backend": model.backend, "isa": model.isa, "plan": model.plan(), "float_nodes": _float_nodes(g),
        "inputs": g.inputs, "outputs": g.outputs,
        "nodes": [{"name": n.name, "op": n.op, "inputs": n.inputs, "outputs": n.outputs, "attrs": n.attrs}
                  for n in g.nodes],
        "tensors": {t.name: {"dtype": t.dtype, "shape": list(t.shape), "quant": qd(t),
                             "constant": t.data is not None} for t in g.tensors.values()},
    }


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------

def _load_npy(path: str) -> np.ndarray:
    if not os.path.exists(path):
        raise CliError(f"{path}: no such file")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises many kinds on a bad file
        raise CliError(f"{path}: not a readable .npy file ({type(e).__name__}: {e})") from None
    if not isinstance(arr, np.ndarray):
        raise CliError(f"{path}: expected a single array (.npy), got an archive")
    return arr


def _write_npz(path: str, arrays: dict) -> None:
    """np.savez(path, **arrays), except that any tensor name is a fine key:
    np.savez would take a tensor named "file" or "allow_pickle" for its own
    argument (a TypeError, or an array silently left out)."""
    import zipfile
    if not path.endswith(".npz"):
        path += ".npz"                  # as np.savez does
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, arr in arrays.items():
            with z.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)


def _backend_options(args) -> dict:
    return {"backend": args.backend, "isa": args.isa, "threads": args.threads}


def _describe_backend(model) -> str:
    if model.backend == "reference":
        return "reference backend"
    return f"{model.backend} backend, {model.isa}, {model.threads} thread{'s' if model.threads > 1 else ''}"


def cmd_run(args) -> int:
    model = _load(args, **_backend_options(args))
    inputs = {}
    for item in args.input or []:
        if "=" in item:
            name, path = item.split("=", 1)
        elif len(model.inputs) == 1:
            name, path = model.inputs[0].name, item
        else:
            raise CliError(f"--input {item!r}: this model has several inputs; write NAME=FILE.npy")
        inputs[name] = _load_npy(path)
    t0 = time.perf_counter()
    outputs = model.run(inputs, capture=args.capture)
    dt = time.perf_counter() - t0
    log.debug("ran in %.2f ms: %s", dt * 1e3,
              ", ".join(f"{k} {v.dtype}{list(v.shape)}" for k, v in inputs.items()) or "no inputs")
    if args.output:
        _write_npz(args.output, outputs)
        log.info("wrote %d tensor(s) to %s (%.2f ms)", len(outputs), args.output, dt * 1e3)
    else:
        for name, arr in outputs.items():
            print(f"{name}: {arr.dtype}{list(arr.shape)}")
            print(np.array2string(arr, threshold=64, edgeitems=4))
    return 0


# ---------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------

def cmd_demo(args) -> int:
    from . import bundled_model, bundled_test_set
    path = bundled_model("digits")
    model = _load(argparse.Namespace(file=path), **_backend_options(args))
    images, labels = bundled_test_set("digits")
    if args.limit is not None:          # >= 1 (argparse checked); default: every image
        images, labels = images[: args.limit], labels[: args.limit]
    x_name, y_name = model.inputs[0].name, model.outputs[0].name
    q_images = model.quantize(x_name, images)       # float -> int8 with the input's parameters
    correct = 0
    latencies = []
    per_image = []
    for img, label in zip(q_images, labels):
        x = img[np.newaxis]
        t0 = time.perf_counter()
        logits = model.run(x)[y_name]
        latencies.append(time.perf_counter() - t0)
        per_image.append(logits)
        correct += int(np.argmax(logits) == label)
    n = len(labels)
    lat = np.array(latencies) * 1e3
    md = model.metadata
    log.info("qnnref %s demo: %s", __version__, md.get("description", "digits CNN"))
    log.info("model     %s", path)
    log.info("          sha256:%s  profile %s", model.digest, model.profile)
    log.debug("%d images in %.1f ms", n, float(lat.sum()))
    print(f"test set  {n} held-out images of the UCI handwritten digits (8x8)")
    fa = md.get("float_accuracy")
    if fa is not None:
        print(f"float accuracy  {float(fa) * 100:6.2f} %   (float32 model before quantization, "
              "measured by tools/make_digits_model.py)")
    print(f"int8  accuracy  {correct / n * 100:6.2f} %   ({correct}/{n}, measured now)")
    print(f"latency         {np.median(lat):.3f} ms per image (median; p90 {np.percentile(lat, 90):.3f} ms; "
          f"{_describe_backend(model)}, batch 1)")
    if model.batch_symbol and n > 1:
        # the bundled model has a symbolic batch: every image at once, the same logits
        one = np.concatenate(per_image)
        t0 = time.perf_counter()
        batched = model.run(q_images)[y_name]
        seconds = time.perf_counter() - t0
        same = "identical to batch 1" if np.array_equal(batched, one) else "DIFFERENT from batch 1 (a bug)"
        print(f"batch {n:<9} {seconds * 1e3:.3f} ms for all {n} images in one run; logits {same}")
    return 0


def cmd_convert(args) -> int:
    from .onnx import convert
    shapes = {}
    for item in args.input_shape or []:
        name, _, dims = item.partition("=")
        try:
            shapes[name] = tuple(int(d) for d in dims.split(",")) if dims else ()
        except ValueError:
            raise CliError(f"--input-shape {item!r}: expected NAME=D0,D1,...") from None
        if not name:
            raise CliError(f"--input-shape {item!r}: expected NAME=D0,D1,...")
    t0 = time.perf_counter()
    digest = convert(args.input, args.output, args.profile, input_shapes=shapes or None)
    log.debug("converted in %.1f ms", (time.perf_counter() - t0) * 1e3)
    log.info("wrote %s (sha256:%s, profile %s)", args.output, digest, args.profile)
    return 0


def cmd_conform(args) -> int:
    from .conform import main as conform_main
    return conform_main(args.rest)


def cmd_kernels(args) -> int:
    from . import kernels_info
    info = kernels_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for k, v in info.items():
        print(f"{k:<{width}}  {', '.join(v) if isinstance(v, list) else v}")
    return 0


# ---------------------------------------------------------------------------

def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def _verbosity_args(p, default) -> None:
    """-v/--verbose and -q/--quiet, on the main parser (default: off) and on
    every command (default: SUPPRESS, so ``qnnref -v demo`` is not undone)."""
    p.add_argument("-v", "--verbose", action="count", default=0 if default else argparse.SUPPRESS,
                   help="also print details on stderr: backend, execution plan, timings")
    p.add_argument("-q", "--quiet", action="store_true", default=False if default else argparse.SUPPRESS,
                   help="print only the command's result and errors (no status lines)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qnnref", description="qnnref: the reference runtime for quantized "
                                "neural networks (exact, specified integer semantics).")
    p.add_argument("--version", action="version", version=f"qnnref {__version__}")
    _verbosity_args(p, default=True)
    common = argparse.ArgumentParser(add_help=False)
    _verbosity_args(common, default=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND",
                           help="what to do (qnnref COMMAND --help describes its arguments)")
    sub.required = True

    s = sub.add_parser("inspect", parents=[common],
                       help="describe a .qnn file: inputs, outputs, nodes, quantization, digest")
    s.add_argument("file", metavar="FILE", help="the .qnn model to describe")
    s.add_argument("--json", action="store_true", help="print JSON instead of tables")
    s.add_argument("--no-verify", action="store_true", help="skip SHA-256 checks (faster on big files)")
    s.set_defaults(func=cmd_inspect)

    def backend_args(s):
        s.add_argument("--backend", choices=("kernels", "reference", "cross-check"), default=None,
                       help="kernels (default when built), reference, or cross-check (both, compared "
                            "node by node); default $QNNREF_BACKEND")
        s.add_argument("--isa", choices=("scalar", "avx2"), default=None,
                       help="kernel instruction set (default $QNNREF_ISA, else the best this CPU has)")
        s.add_argument("--threads", type=int, default=None,
                       help="kernel threads (default $QNNREF_THREADS, else 1; same bits for any count)")

    s = sub.add_parser("run", parents=[common], help="run a .qnn model on .npy inputs")
    backend_args(s)
    s.add_argument("file", metavar="FILE", help="the .qnn model to run")
    s.add_argument("--input", "-i", action="append", metavar="NAME=FILE.npy",
                   help="an input array (repeat per input; NAME= may be left out for one-input models)")
    s.add_argument("--output", "-o", metavar="OUT.npz", help="write outputs to an .npz file")
    s.add_argument("--capture", action="store_true", help="also output every intermediate tensor")
    s.add_argument("--no-verify", action="store_true", help="skip SHA-256 checks")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("demo", parents=[common], help="run the bundled digits model on its test set")
    s.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="use only the first N images (N >= 1; default: all)")
    backend_args(s)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("convert", parents=[common], help="import a quantized ONNX model and write it as .qnn")
    s.add_argument("input", metavar="IN.onnx", help="the quantized ONNX model (QOperator or QDQ)")
    s.add_argument("output", metavar="OUT.qnn", help="the .qnn file to write")
    s.add_argument("--profile", default="onnx", help="semantic profile (default: onnx; e.g. ort-cpu-x86)")
    s.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...",
                   help="a static shape for an input with symbolic dimensions (repeat per input)")
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("conform", help="compare a vendor runtime with qnnref, bit for bit "
                       "(qnnref conform onnxruntime --help)", add_help=False)
    s.add_argument("rest", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="the harness's own arguments: a vendor (onnxruntime), models, options")
    s.set_defaults(func=cmd_conform)

    s = sub.add_parser("kernels", parents=[common], help="what the compiled kernels support on this machine")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_kernels)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    lead = 0                            # -v / -q before the command
    while lead < len(argv) and argv[lead] in ("-v", "--verbose", "-q", "--quiet", "-vv"):
        lead += 1
    if argv[lead:lead + 1] == ["conform"]:
        # the conformance harness parses its own options (qnnref conform --help)
        flags = argv[:lead]
        rest = argv[lead + 1:]
        if any(f in ("-q", "--quiet") for f in flags) and "--quiet" not in rest:
            rest = [*rest, "--quiet"]
        args = argparse.Namespace(func=cmd_conform, rest=rest, quiet=False,
                                  verbose=sum(f.count("v") if f.startswith("-v") else f == "--verbose"
                                              for f in flags))
    else:
        args = parser.parse_args(argv)
    if args.verbose and args.quiet:
        parser.error("-v/--verbose and -q/--quiet cannot be combined")
    restore_logging = configure_logging(args.verbose, args.quiet)
    try:
        return args.func(args)
    except (QnnError, CliError) as e:
        print("qnnref: error: " + " ".join(str(e).split()), file=sys.stderr)
        return 1
    except BrokenPipeError:             # an OSError, so before that branch
        # the reader went away (e.g. `qnnref inspect m.qnn | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as e:
        print(f"qnnref: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qnnref: interrupted", file=sys.stderr)
        return 130
    finally:
        restore_logging()


if __name__ == "__main__":
    sys.exit(main())
