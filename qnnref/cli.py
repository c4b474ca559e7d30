"""The ``qnnref`` command line: inspect, run, demo.

Errors print one line (``qnnref: error: ...``) and exit with status 1; no
traceback, whatever the input.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from . import __version__
from .errors import QnnError


class CliError(Exception):
    """A usage problem found after parsing (bad --input value, missing file)."""


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
    from . import load
    model = load(args.file, verify=not args.no_verify)
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
    from . import load
    model = load(args.file, verify=not args.no_verify, **_backend_options(args))
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
    if args.output:
        _write_npz(args.output, outputs)
        print(f"wrote {len(outputs)} tensor(s) to {args.output} ({dt * 1e3:.2f} ms)")
    else:
        for name, arr in outputs.items():
            print(f"{name}: {arr.dtype}{list(arr.shape)}")
            print(np.array2string(arr, threshold=64, edgeitems=4))
    return 0


# ---------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------

def cmd_demo(args) -> int:
    from . import bundled_model, bundled_test_set, load
    path = bundled_model("digits")
    model = load(path, **_backend_options(args))
    images, labels = bundled_test_set("digits")
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    x_name, y_name = model.inputs[0].name, model.outputs[0].name
    q_images = model.quantize(x_name, images)       # float -> int8 with the input's parameters
    correct = 0
    latencies = []
    for img, label in zip(q_images, labels):
        x = img[np.newaxis]
        t0 = time.perf_counter()
        logits = model.run(x)[y_name]
        latencies.append(time.perf_counter() - t0)
        correct += int(np.argmax(logits) == label)
    n = len(labels)
    lat = np.array(latencies) * 1e3
    md = model.metadata
    print(f"qnnref {__version__} demo: {md.get('description', 'digits CNN')}")
    print(f"model     {path}")
    print(f"          sha256:{model.digest}  profile {model.profile}")
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
        one = np.concatenate([model.run(img[np.newaxis])[y_name] for img in q_images])
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
    digest = convert(args.input, args.output, args.profile, input_shapes=shapes or None)
    print(f"wrote {args.output} (sha256:{digest}, profile {args.profile})")
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

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qnnref", description="qnnref: the reference runtime for quantized "
                                "neural networks (exact, specified integer semantics).")
    p.add_argument("--version", action="version", version=f"qnnref {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("inspect", help="describe a .qnn file: inputs, outputs, nodes, quantization, digest")
    s.add_argument("file")
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

    s = sub.add_parser("run", help="run a .qnn model on .npy inputs")
    backend_args(s)
    s.add_argument("file")
    s.add_argument("--input", "-i", action="append", metavar="NAME=FILE.npy",
                   help="an input array (repeat per input; NAME= may be left out for one-input models)")
    s.add_argument("--output", "-o", metavar="OUT.npz", help="write outputs to an .npz file")
    s.add_argument("--capture", action="store_true", help="also output every intermediate tensor")
    s.add_argument("--no-verify", action="store_true", help="skip SHA-256 checks")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("demo", help="run the bundled digits model on its test set")
    s.add_argument("--limit", type=int, default=0, help="use only the first N images")
    backend_args(s)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("convert", help="import a quantized ONNX model and write it as .qnn")
    s.add_argument("input", metavar="IN.onnx")
    s.add_argument("output", metavar="OUT.qnn")
    s.add_argument("--profile", default="onnx", help="semantic profile (default: onnx; e.g. ort-cpu-x86)")
    s.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...",
                   help="a static shape for an input with symbolic dimensions (repeat per input)")
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("conform", help="compare a vendor runtime with qnnref, bit for bit "
                       "(qnnref conform onnxruntime --help)", add_help=False)
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_conform)

    s = sub.add_parser("kernels", help="what the compiled kernels support on this machine")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_kernels)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["conform"]:
        # the conformance harness parses its own options (qnnref conform --help)
        args = argparse.Namespace(func=cmd_conform, rest=argv[1:])
    else:
        args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (QnnError, CliError) as e:
        print("qnnref: error: " + " ".join(str(e).split()), file=sys.stderr)
        return 1
    except OSError as e:
        print(f"qnnref: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (e.g. `qnnref inspect m.qnn | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("qnnref: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
