"""qnnref against vendor int8 runtimes: validate, then time, in one run; one table.

    python benchmarks/compare.py [--quick] [--cases gemm,conv,...] [--vendors ort,...]
                                 [--vendor-cpu native,avx2] [--json OUT] [--markdown]

Cases (benchmarks/_cases.py): gemm, gemv, conv, depthwise, gemm_int4, digits,
and two measurements of qnnref alone: overhead (Python cost of Model.run on a
one-node model) and rss (peak memory of loading and running a model).

For every case and dtype variant:
1. qnnref reference backend output == an independent int64 oracle (else the case is aborted);
2. qnnref kernels output (each ISA) == reference output, bit for bit (else aborted);
3. each vendor (a subprocess per vendor and case, see vendors.py) runs the
   same integers; its output is compared with qnnref run under each named
   recipe (_cases.recipes()): "exact under R", or how many outputs differ and
   by how many steps;
4. then everything is timed (median of many runs after warm-up), single thread.

Vendors run twice by default (--vendor-cpu): "[native: ...]" as they run on
this CPU (with AVX-512 VNNI / AMX where it has them), and "[avx2]" with
AVX-512, VNNI and AMX hidden from CPUID in the vendor's process
(qnnref/conform/cpumask.py), i.e. the kernels they run on an AVX2-only CPU
-- the machine the issue's targets are written for, and the ISA qnnref's
kernels use.

Only numpy and qnnref are required: a vendor that cannot be imported is
reported as missing, one that crashes costs its row.
"""
from __future__ import annotations

import os
import sys

# Single thread everywhere, set before numpy is imported (OpenBLAS reads it at load).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["QNNREF_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
try:
    import qnnref  # noqa: E402
except ImportError:  # running from a source checkout that is not installed
    sys.path.insert(1, os.path.dirname(HERE))
    import qnnref  # noqa: E402

from _cases import (CASES, VARIANTS, compare_outputs, digits_input, make_data,  # noqa: E402
                    median_time, model_ops, oracle_output, pairwise_saturated_accumulator,
                    qnnref_graph, recipes, save_data)
from vendors import VENDORS  # noqa: E402  (their descriptions only: vendors run in subprocesses)

VENDOR_ORDER = list(VENDORS)
# When several recipes match (ties are rare in random data), the one named.
RECIPE_PREFERENCE = ["f32-half-even", "f32-half-up", "f32-half-away", "gemmlowp-up", "gemmlowp-away", "qnnref"]
EXTRA_CASES = ("overhead", "rss")


class CaseAborted(Exception):
    pass


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- machine and ceiling ---------------------------------------------------------------------

def cpu_info() -> dict:
    info = {"model": platform.processor() or platform.machine(), "flags": [], "mhz": None}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and info["model"] in ("", platform.machine(), platform.processor()):
                info["model"] = value.strip()
            elif key == "flags" and not info["flags"]:
                flags = set(value.split())
                info["flags"] = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
                                 if f in flags]
                info["hypervisor"] = "hypervisor" in flags
            elif key == "cpu MHz" and info["mhz"] is None:
                info["mhz"] = float(value)
    except OSError:
        pass
    info["cores"] = os.cpu_count()
    return info


def measure_ceiling(cpu: dict, workdir: str) -> dict:
    """Exact int8 -> int32 MAC rate of one core on qnnref's AVX2 path
    (vpmaddwd), measured by ceiling.cpp when a C++ compiler is here, else
    estimated as 32 MAC/cycle x the clock in /proc/cpuinfo."""
    cxx = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    out = {"method": None}
    if cxx and platform.machine() in ("x86_64", "AMD64"):
        exe = os.path.join(workdir, "ceiling")
        try:
            subprocess.run([cxx, "-O2", "-o", exe, os.path.join(HERE, "ceiling.cpp")], check=True,
                           capture_output=True, timeout=120)
            args = [exe] + (["vnni"] if "avx_vnni" in cpu["flags"] else [])
            r = subprocess.run(args, check=True, capture_output=True, text=True, timeout=120)
            m = json.loads(r.stdout)
            out.update(m)
            out["method"] = "measured (ceiling.cpp)"
            out["avx2_gops"] = m["vpmaddwd_per_s"] * 16 * 2 / 1e9
            if "vpdpbusd_per_s" in m:
                out["avx_vnni_gops"] = m["vpdpbusd_per_s"] * 32 * 2 / 1e9
        except (subprocess.SubprocessError, OSError, ValueError, KeyError) as e:
            out["error"] = f"{type(e).__name__}: {e}"[:200]
    if out["method"] is None and cpu.get("mhz"):
        out["method"] = "estimated: 32 MAC/cycle x /proc/cpuinfo clock"
        out["clock_ghz"] = cpu["mhz"] / 1000
        out["avx2_gops"] = cpu["mhz"] / 1000 * 32 * 2
    return out


# -- vendors -----------------------------------------------------------------------------------

VENDOR_CPUS = ("native", "avx2")


def native_label(cpu: dict) -> str:
    """'native: avx512-vnni/amx' etc.: the int8 features the vendors may use here."""
    flags = set(cpu["flags"])
    feats = []
    if "avx512f" in flags:
        feats.append("avx512-vnni" if "avx512_vnni" in flags else "avx512")
    elif "avx_vnni" in flags:
        feats.append("avx-vnni")
    if "amx_int8" in flags:
        feats.append("amx")
    return "native: " + "/".join(feats) if feats else "native"


def worker(args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, os.path.join(HERE, "vendors.py")] + args
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {timeout:.0f} s"}
    if r.returncode != 0:
        why = f"signal {-r.returncode}" if r.returncode < 0 else f"exit code {r.returncode}"
        tail = r.stderr.strip().splitlines()[-1:] if r.stderr.strip() else []
        return {"status": "crashed", "reason": why + (f": {tail[0][:150]}" if tail else "")}
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"status": "error", "reason": f"unreadable worker output {r.stdout[-200:]!r}"}


def probe_vendors(names: list[str], cpus: list[str]) -> dict:
    """{(vendor, cpu): probe result} for every vendor under every vendor CPU."""
    procs = {(n, c): subprocess.Popen([sys.executable, os.path.join(HERE, "vendors.py"), "probe", n, "--cpu", c],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in cpus for n in names}
    out = {}
    for key, p in procs.items():
        n = key[0]
        try:
            so, se = p.communicate(timeout=300)
            why = f"crashed (signal {-p.returncode})" if p.returncode < 0 else f"exit code {p.returncode}"
            out[key] = json.loads(so.strip().splitlines()[-1]) if p.returncode == 0 else {
                "status": "missing", "reason": f"import {why} {se.strip()[-150:]}".strip(), "label": VENDORS[n].label}
        except (subprocess.TimeoutExpired, ValueError, IndexError) as e:
            p.kill()
            out[key] = {"status": "missing", "reason": f"probe failed: {e}", "label": VENDORS[n].label}
    return out


def judge(y: np.ndarray, refs: dict, expected: str, data: dict) -> dict:
    """Compare a vendor output with qnnref under each recipe."""
    comps = {name: compare_outputs(y, ref) for name, ref in refs.items()}
    exact = [n for n, c in comps.items() if c.get("exact")]
    result = {"expected_recipe": expected, "vs_expected": comps[expected], "exact_under": exact,
              "all": comps}
    if exact:
        prefer = [expected] + [n for n in RECIPE_PREFERENCE if n != expected]
        result["text"] = f"exact ({next(n for n in prefer if n in exact)})"
        if expected not in exact:
            c = comps[expected]
            result["text"] += f"; not {expected}: {c['differ']} differ"
        return result
    c = comps[expected]
    if "error" in c:
        result["text"] = c["error"]
        return result
    result["text"] = f"{c['percent']:.3g}% differ ({c['differ']}), max {c['max_steps']} step(s) vs {expected}"
    closest = min(comps, key=lambda n: (comps[n].get("differ", 1 << 62), RECIPE_PREFERENCE.index(n)))
    if closest != expected and comps[closest].get("differ", 1 << 62) < c["differ"]:
        result["text"] += f" (closest: {closest}, {comps[closest]['differ']})"
    if data["variant"] == "u8s8":
        try:
            from qnnref.arith import combine_scales, prepare_requant, requantize_output
            acc = pairwise_saturated_accumulator(data)
            r = recipes()[expected]
            params = prepare_requant(combine_scales([data["x_scale"], data["w_scale"]], data["y_scale"],
                                                    r.scale_dtype), r)
            emu = requantize_output(acc, params, data["y_zp"], data["y_dtype"])
            e = compare_outputs(y, emu)
            result["pairwise_int16_emulation"] = e
            if e.get("exact"):
                result["text"] += "; = int16 pair saturation exactly"
        except (ValueError, AssertionError):
            pass
    return result


# -- qnnref runners ----------------------------------------------------------------------------

def qnnref_runners() -> list[tuple[str, dict]]:
    """(label, Model options) for reference and each kernels ISA available here."""
    runners = [("qnnref reference", {"backend": "reference"})]
    info = qnnref.kernels_info()
    if info["built"]:
        for isa in reversed(info["available_isas"]):     # best first
            runners.append((f"qnnref kernels {isa}", {"backend": "kernels", "isa": isa, "threads": 1}))
    return runners


def kernel_note(model) -> str:
    plan = model.plan()
    on_kernel = sum(1 for p in plan if p["runs"].startswith("kernel"))
    if on_kernel == len(plan):
        return ""
    if len(plan) == 1:
        return "no kernel: ran the reference" if "no kernel" in plan[0]["runs"] else plan[0]["runs"]
    return f"{on_kernel}/{len(plan)} nodes on kernels"


# -- cases -------------------------------------------------------------------------------------

def run_variant(case, variant, vendors, probes, timing, workdir, ties=False, cpu_labels=None) -> list[dict]:
    data = make_data(case, variant, ties=ties)
    ops = case.ops
    rows = []
    graph = qnnref_graph(data)
    ref_model = qnnref.Model(graph, backend="reference")
    y_ref = ref_model.run(data["x"])["y"]
    if not np.array_equal(y_ref, oracle_output(data)):
        raise CaseAborted("qnnref reference != int64 oracle")
    for label, opts in qnnref_runners():
        model = ref_model if opts["backend"] == "reference" else qnnref.Model(graph, **opts)
        if model is not ref_model:
            y = model.run(data["x"])["y"]
            if not np.array_equal(y, y_ref):
                c = compare_outputs(y, y_ref)
                raise CaseAborted(f"{label} != reference: {c.get('differ')} of {c.get('total')} outputs differ, "
                                  f"max {c.get('max_steps')} steps")
        t, n = median_time(lambda m=model: m.run(data["x"]), **timing)
        rows.append({"runner": label, "median_s": t, "repeats": n, "gops": ops / t / 1e9,
                     "exactness": "oracle" if model is ref_model else "== reference",
                     "note": "" if model is ref_model else kernel_note(model)})
    # vendors: every vendor CPU in turn ([avx2] rows first: they are the targets)
    todo = [(v, c) for (v, c), pr in probes.items() if pr["status"] == "ok" and variant in VENDORS[v].variants]
    if not todo:
        return rows
    path = os.path.join(workdir, f"{case.name}_{variant}.npz")
    save_data(data, path)
    refs = {}
    for v, cpu in todo:
        out = os.path.join(workdir, f"{case.name}_{variant}_{v}_{cpu}.npy")
        res = worker(["run", v, path, out, "--cpu", cpu, "--min-time", str(timing["min_time"]),
                      "--min-repeats", str(timing["min_repeats"]), "--max-time", str(timing["max_time"]),
                      "--clock", timing["clock"]],
                     timeout=600)
        row = {"runner": f"{probes[v, cpu]['label']} [{(cpu_labels or {}).get(cpu, cpu)}]", "vendor": v,
               "vendor_cpu": cpu}
        if res["status"] == "n/a":
            continue
        if res["status"] != "ok":
            row.update(status=res["status"], note=f"{res['status']}: {res.get('reason', '')}"[:120])
            rows.append(row)
            log(f"  {v} [{cpu}]: {row['note']}")
            continue
        y = np.load(out)
        if not refs:
            refs = {name: qnnref.Model(qnnref_graph(data, name), backend="reference").run(data["x"])["y"]
                    for name in recipes()}
        j = judge(y, refs, VENDORS[v].expected_recipe, data)
        row.update(median_s=res["median_s"], repeats=res["repeats"], gops=ops / res["median_s"] / 1e9,
                   exactness=j["text"], note=res.get("note", ""), judgement=j)
        rows.append(row)
    return rows


def run_digits(timing) -> list[dict]:
    path = qnnref.bundled_model("digits")
    ref_model = qnnref.load(path, backend="reference")
    xs = [digits_input(ref_model, i) for i in range(8)]
    ys = [ref_model.run(x) for x in xs]
    ops = model_ops(ref_model.graph)
    rows = []
    for label, opts in qnnref_runners():
        model = ref_model if opts["backend"] == "reference" else qnnref.load(path, **opts)
        if model is not ref_model:
            for x, y in zip(xs, ys):
                got = model.run(x)
                if any(not np.array_equal(got[k], y[k]) for k in y):
                    raise CaseAborted(f"{label} != reference on the bundled model")
        t, n = median_time(lambda m=model: m.run(xs[0]), **timing)
        rows.append({"runner": label, "median_s": t, "repeats": n, "gops": ops / t / 1e9,
                     "exactness": "test set" if model is ref_model else "== reference (8 images)",
                     "note": "" if model is ref_model else kernel_note(model)})
    return rows


# -- overhead and memory -------------------------------------------------------------------------

def measure_overhead(quick: bool, clock: str) -> list[dict]:
    """Microseconds per Model.run call on a one-node model whose compute is
    negligible (matmul 1x16 @ 16x16): the Python cost of the interpreter."""
    from qnnref import GraphBuilder
    b = GraphBuilder(description="overhead")
    x = b.input("x", "int8", (1, 16), scale=0.02, zero_point=0)
    w = b.constant("w", np.ones((16, 16), np.int8), scale=0.01)
    b.output(b.node("matmul", [x, w], scale=0.1, output="y"))
    graph = b.graph()
    xs = np.zeros((1, 16), np.int8)
    out = []
    for label, opts in qnnref_runners():
        model = qnnref.Model(graph, **opts)
        calls = 2000 if quick else 20000

        def batch(model=model, n=calls // 10):
            for _ in range(n):
                model.run(xs)
        t, _ = median_time(batch, min_time=0.2, min_repeats=5 if quick else 10, warmup=1, clock=clock)
        out.append({"runner": label, "us_per_call": t / (calls // 10) * 1e6, "note": kernel_note(model)
                    if opts["backend"] != "reference" else ""})
    return out


RSS_CHILD = r"""
import json, resource, sys
import numpy as np
import qnnref
qnnref.kernels_info()                     # imports the extension and the glue


def status(key):                          # Linux: KiB from /proc/self/status
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None


def peak():
    return status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# Baseline: RSS now, after the imports. The import phase may have peaked
# higher (transient buffers): reset the high-water mark so that it does not
# hide what loading and running add (Linux >= 4.0; else ru_maxrss as is).
base = status("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False
path, backend, m, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
x = np.zeros((m, k), np.int8)
model = qnnref.load(path, backend=backend)
loaded = peak()
model.run(x)
ran = peak()
print(json.dumps({"base_kib": base, "loaded_kib": loaded, "ran_kib": ran, "hwm_reset": reset,
                  "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def measure_rss(workdir: str) -> dict:
    """Peak RSS of loading and running a model of four 2048x2048 int8 matmuls
    (batch 64), each backend in a fresh process: the peak RSS (VmHWM, reset
    after the imports; else ru_maxrss) minus that process's RSS after
    importing numpy and qnnref, against the budget weights + 2 x largest
    activation + 30 MB."""
    from qnnref import GraphBuilder
    m, k, layers = 64, 2048, 4
    rng = np.random.default_rng(0)
    b = GraphBuilder(description="rss")
    t = b.input("x", "int8", (m, k), scale=0.02, zero_point=0)
    for i in range(layers):
        w = b.constant(f"w{i}", rng.integers(-127, 127, (k, k), endpoint=True).astype(np.int8),
                       scale=rng.uniform(0.001, 0.01, k).astype(np.float32), axis=1)
        t = b.node("matmul", [t, w], scale=0.5, output=f"y{i}")
    b.output(t)
    path = os.path.join(workdir, "rss.qnn")
    qnnref.save(b.graph(), path)
    weights = layers * k * k
    activation = m * k
    budget = weights + 2 * activation + 30 * 2**20
    result = {"model": f"{layers} x matmul {m}x{k} @ {k}x{k} int8", "weights_bytes": weights,
              "largest_activation_bytes": activation, "budget_bytes": budget, "backends": {}}
    backends = ["reference"] + (["kernels"] if qnnref.kernels_info()["built"] else [])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(qnnref.__file__)),
                                         env.get("PYTHONPATH", "")])
    for backend in backends:
        r = subprocess.run([sys.executable, "-c", RSS_CHILD, path, backend, str(m), str(k)],
                           capture_output=True, text=True, timeout=600, env=env, check=False)
        if r.returncode != 0:
            result["backends"][backend] = {"error": r.stderr.strip()[-300:]}
            continue
        v = json.loads(r.stdout)
        peak = (v["ran_kib"] - v["base_kib"]) * 1024
        result["backends"][backend] = {"baseline_bytes": v["base_kib"] * 1024, "hwm_reset": v["hwm_reset"],
                                       "load_bytes": (v["loaded_kib"] - v["base_kib"]) * 1024,
                                       "peak_bytes": peak, "within_budget": peak <= budget}
    return result


# -- output ----------------------------------------------------------------------------------------

def fmt_row(case_title, variant, row, best_qnnref_gops, ceiling):
    gops = row.get("gops")
    ratio = "" if not gops or not best_qnnref_gops else f"{best_qnnref_gops / gops:.2f}"
    pct = "" if not gops or not ceiling else f"{100 * gops / ceiling:.0f}%"
    ms = "" if row.get("median_s") is None else f"{row['median_s'] * 1e3:.3f}"
    return [case_title, variant, row["runner"], ms, "" if gops is None else f"{gops:.1f}", ratio, pct,
            row.get("exactness", ""), row.get("note", "")]


HEADER = ["case", "dtypes", "runner", "ms", "GOPS", "qnnref/this", "% ceiling", "exactness", "note"]


def render(table: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in table]
        return "\n".join(lines)
    widths = [max(len(HEADER[i]), *(len(r[i]) for r in table)) for i in range(len(HEADER))]
    right = {3, 4, 5, 6}

    def line(r):
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()
    return "\n".join([line(HEADER), line(["-" * w for w in widths])] + [line(r) for r in table])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats (about 0.2 s per measurement)")
    p.add_argument("--cases", default=",".join(list(CASES) + list(EXTRA_CASES)),
                   help=f"comma-separated, from {', '.join(list(CASES) + list(EXTRA_CASES))}")
    p.add_argument("--vendors", default=",".join(VENDOR_ORDER), help=f"comma-separated, from {', '.join(VENDOR_ORDER)}"
                   " (empty: none)")
    p.add_argument("--vendor-cpu", default=",".join(VENDOR_CPUS),
                   help="comma-separated, from native, avx2 (default both): run the vendors as they run on this "
                        "CPU, and/or with AVX-512/VNNI/AMX hidden from CPUID (their AVX2 kernels)")
    p.add_argument("--json", metavar="OUT", help="write every measurement as JSON")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="time each run in CPU time of the process (default: robust on a shared machine; "
                        "everything is single-threaded) or wall time")
    p.add_argument("--ties", action="store_true",
                   help="exactness probe: power-of-two scales, so that many outputs are exact rounding ties")
    a = p.parse_args(argv)
    cases = [c for c in a.cases.split(",") if c]
    vendors = [v for v in a.vendors.split(",") if v]
    for c in cases:
        if c not in CASES and c not in EXTRA_CASES:
            p.error(f"unknown case {c!r}")
    for v in vendors:
        if v not in VENDOR_ORDER:
            p.error(f"unknown vendor {v!r}")
    vendor_cpus = [c for c in a.vendor_cpu.split(",") if c]
    for c in vendor_cpus:
        if c not in VENDOR_CPUS:
            p.error(f"unknown vendor CPU {c!r}")
    vendor_cpus = [c for c in ("avx2", "native") if c in vendor_cpus]   # [avx2] rows first
    timing = ({"min_time": 0.2, "min_repeats": 3, "max_time": 5.0} if a.quick
              else {"min_time": 1.0, "min_repeats": 10, "max_time": 20.0})
    timing["clock"] = a.clock

    cpu = cpu_info()
    report = {"machine": {"cpu": cpu, "python": platform.python_version(), "numpy": np.__version__,
                          "qnnref": qnnref.__version__, "kernels": qnnref.kernels_info(),
                          "platform": platform.platform(),
                          "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
                          "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}},
              "timing": timing, "ties": a.ties, "rows": [], "aborted": []}
    with tempfile.TemporaryDirectory(prefix="qnnref-compare-") as workdir:
        log("measuring the exact-int8 ceiling ...")
        ceiling = measure_ceiling(cpu, workdir)
        report["ceiling"] = ceiling
        probes = probe_vendors(vendors, vendor_cpus) if vendors else {}
        cpu_labels = {"avx2": "avx2", "native": native_label(cpu)}
        report["vendors"] = {f"{v} [{c}]": pr for (v, c), pr in probes.items()}
        report["vendor_cpu_labels"] = cpu_labels
        table = []
        for name in cases:
            if name in EXTRA_CASES:
                continue
            case = CASES[name]
            for variant in case.variants:
                label = VARIANTS[variant].label if case.kind != "model" else "int8 model"
                log(f"{case.title} [{label}] ...")
                try:
                    rows = run_digits(timing) if case.kind == "model" else \
                        run_variant(case, variant, vendors, probes, timing, workdir, a.ties, cpu_labels)
                except CaseAborted as e:
                    log(f"  ABORTED: {e}")
                    report["aborted"].append({"case": name, "variant": variant, "reason": str(e)})
                    table.append([case.title, label, "ABORTED", "", "", "", "", "", str(e)])
                    continue
                best = next((r["gops"] for r in rows if r["runner"].startswith("qnnref kernels")),
                            rows[0]["gops"])
                for r in rows:
                    r.update(case=name, variant=variant)
                    report["rows"].append(r)
                    table.append(fmt_row(case.title, label, r, best, ceiling.get("avx2_gops")))
        if "overhead" in cases:
            log("overhead ...")
            report["overhead"] = measure_overhead(a.quick, a.clock)
        if "rss" in cases:
            log("peak RSS ...")
            report["rss"] = measure_rss(workdir)
    report["machine"]["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    print(describe_machine(report))
    print()
    if table:
        print(render(table, a.markdown))
        print()
    print(describe_extras(report))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    return 1 if report["aborted"] else 0


def describe_machine(report) -> str:
    m, c = report["machine"], report["ceiling"]
    cpu = m["cpu"]
    k = m["kernels"]
    lines = [f"CPU: {cpu['model']}, {cpu['cores']} cores{' (VM)' if cpu.get('hypervisor') else ''}, "
             f"flags: {' '.join(cpu['flags'])}",
             f"Python {m['python']}, numpy {m['numpy']}, qnnref {m['qnnref']}; kernels: "
             + (f"built, ISAs {', '.join(k['available_isas'])}, operators with a kernel: "
                f"{', '.join(k['operators']) or 'none'}" if k["built"] else "not built"),
             ("data: power-of-two scales (--ties: many exact rounding ties); " if report["ties"] else "")
             + f"single thread everywhere; median {report['timing']['clock']} time per run; load average "
             + " -> ".join("/".join(f"{x:.1f}" for x in m[k]) if m[k] else "?" for k in ("loadavg_start", "loadavg_end"))]
    if c.get("avx2_gops"):
        s = (f"ceiling (exact int8, AVX2 vpmaddwd): {c['avx2_gops']:.0f} GOPS = "
             f"{c.get('vpmaddwd_per_cycle', 2):.2f} vpmaddwd/cycle x 16 MAC x 2 x {c['clock_ghz']:.2f} GHz "
             f"[{c['method']}]")
        if c.get("avx_vnni_gops"):
            s += f"; with AVX-VNNI vpdpbusd: {c['avx_vnni_gops']:.0f} GOPS"
        lines.append(s)
    vs = report.get("vendors", {})
    if vs:
        labels = report.get("vendor_cpu_labels", {})
        ok = sorted({f"{v['label']} {v['version']}" for v in vs.values() if v["status"] == "ok"})
        missing = [f"{key} ({v['reason']})" for key, v in vs.items() if v["status"] != "ok"]
        lines.append("vendors: " + (", ".join(ok) or "none") + "; each run as "
                     + " and ".join(f"[{labels.get(c, c)}]" for c in ("avx2", "native")
                                    if any(k.endswith(f"[{c}]") for k in vs))
                     + " ([avx2]: AVX-512/VNNI/AMX hidden from CPUID, qnnref/conform/cpumask.py)")
        if missing:
            lines.append("missing: " + "; ".join(missing))
    return "\n".join(lines)


def describe_extras(report) -> str:
    lines = []
    for o in report.get("overhead", []):
        lines.append(f"Model.run overhead, one-node model (matmul 1x16 @ 16x16), {o['runner']}: "
                     f"{o['us_per_call']:.1f} us per call (target < 20){' [' + o['note'] + ']' if o['note'] else ''}")
    r = report.get("rss")
    if r:
        mib = 2**20
        lines.append(f"peak RSS, {r['model']}: budget = weights {r['weights_bytes'] / mib:.1f} MiB + 2 x largest "
                     f"activation {r['largest_activation_bytes'] / mib:.2f} MiB + 30 MiB = {r['budget_bytes'] / mib:.1f} MiB")
        for backend, v in r["backends"].items():
            if "error" in v:
                lines.append(f"  {backend}: error {v['error']}")
            else:
                lines.append(f"  {backend}: load +{v['load_bytes'] / mib:.1f} MiB, load and run +"
                             f"{v['peak_bytes'] / mib:.1f} MiB over the {v['baseline_bytes'] / mib:.0f} MiB "
                             f"after imports: {'within' if v['within_budget'] else 'OVER'} budget")
    for ab in report.get("aborted", []):
        lines.append(f"ABORTED {ab['case']} [{ab['variant']}]: {ab['reason']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
