"""The conformance run: ONNX Runtime (in a worker process) against qnnref
(in this process) under each profile asked for, case by case.

:func:`run_cases` drives :class:`~.runner.OrtRunner`; for each case ONNX
Runtime answers, it runs qnnref under every profile, compares the outputs,
and diagnoses every profile that does not explain the vendor's output.
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field

from ..profiles import PROFILES, get_profile
from .compare import ProfileOutcome, case_kind, compare_outputs
from .diagnose import SATURATION, diagnose
from .engine import float_node_names, profile_variant
from .onnxgraph import dequantize_steps
from .suite.refusals import documented_refusal

ORT_PROFILE = "ort-cpu-x86"
ONNX_PROFILE = "onnx"


# ---------------------------------------------------------------------------
# The machine and the profiles
# ---------------------------------------------------------------------------

def cpu_info() -> dict:
    """The CPU model and the x86 features that change what ONNX Runtime computes."""
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {"model": model, "machine": platform.machine(),
            "avx2": "avx2" in flags, "avx512f": "avx512f" in flags,
            "vnni": bool(flags & {"avx512_vnni", "avx_vnni"}),
            "flags_known": bool(flags)}


def machine_overrides(vnni: bool) -> dict:
    """Profile fields that this machine's ONNX Runtime changes: with VNNI
    (AVX512-VNNI or AVX-VNNI) MLAS multiplies u8 x s8 exactly, without the
    pairwise int16 saturation of VPMADDUBSW."""
    return {SATURATION: False} if vnni else {}


def default_profiles(vnni: bool) -> list[str]:
    """ort-cpu-x86 (its -vnni variant on a VNNI machine, when registered) and
    onnx, those that are registered; else every registered profile."""
    names = []
    if vnni and f"{ORT_PROFILE}-vnni" in PROFILES:
        names.append(f"{ORT_PROFILE}-vnni")
    elif ORT_PROFILE in PROFILES:
        names.append(ORT_PROFILE)
    if ONNX_PROFILE in PROFILES:
        names.append(ONNX_PROFILE)
    return names or [n for n in PROFILES if "[" not in n]


@dataclass
class Settings:
    profiles: list[str]                   # the first is the expected profile
    overrides: dict = field(default_factory=dict)   # machine overrides, applied to every profile
    timeout: float = 60.0
    window: int = 8
    diagnose: bool = True
    strict: bool = False                  # a documented refusal of a built-in case fails too
    allow_unsupported: bool = False       # a case that was not compared does not fail

    def __post_init__(self):
        if not self.profiles:
            raise ValueError("at least one profile is needed")
        for p in self.profiles:
            get_profile(p, "--profile")

    @property
    def expected(self) -> str:
        return self.profiles[0]


# ---------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------

@dataclass
class CaseResult:
    id: str
    op: str
    tags: tuple
    vendor_status: str                    # ok | refused | crashed | hung | error
    vendor_message: str = ""
    kind: str | None = None               # integer | float (when ONNX Runtime ran it)
    float_reason: str | None = None
    step_bound: int = 0                   # steps outputs may differ by (float cases where ORT computes in float)
    outcomes: dict = field(default_factory=dict)   # profile -> ProfileOutcome
    vendor_ops: list | None = None
    vendor_seconds: float = 0.0
    qnnref_seconds: float = 0.0
    seed: tuple = ()
    builtin: bool = False
    #: a built-in case ONNX Runtime refused on purpose: the documented reason (suite/refusals.py)
    vendor_documented: str | None = None
    sample: str | None = None             # a model's sample: which input set (--data) or "random"
    #: a model with a symbolic batch: {"size", "symbol", "kept"} as qnnref ran
    #: it under the expected profile (engine.OursResult.batch)
    batch: dict | None = None

    def coverage(self, profile: str) -> str:
        """Whether the case was compared under ``profile``: ``compared``,
        ``refused-on-purpose`` (a built-in case refused by qnnref or ONNX
        Runtime, as documented), ``unsupported`` (qnnref's importer refused
        it), ``vendor-refused`` (ONNX Runtime refused it), or ``failed``
        (ONNX Runtime crashed, hung or erred: nothing to compare)."""
        if self.vendor_status == "refused":
            return "refused-on-purpose" if self.vendor_documented else "vendor-refused"
        if self.vendor_status != "ok":
            return "failed"
        o = self.outcomes.get(profile)
        if o is not None and o.status == "unsupported":
            return "refused-on-purpose" if o.documented else "unsupported"
        return "compared"

    def conforms(self, profile: str, strict: bool = False, allow_unsupported: bool = False) -> bool:
        """The case passes for ``profile``: the profile explains its outputs,
        or it is a built-in case refused on purpose (unless ``strict``), or
        it was not compared and ``allow_unsupported`` says that is fine. A
        case that was not compared fails otherwise: a run passes only if it
        compared what it was given."""
        cov = self.coverage(profile)
        if cov == "refused-on-purpose":
            return allow_unsupported or not strict
        if cov in ("unsupported", "vendor-refused"):
            return allow_unsupported
        if cov == "failed":
            return False
        o = self.outcomes.get(profile)
        return o is not None and o.explains

    def to_json(self, full: bool = True) -> dict:
        d = {"id": self.id, "op": self.op, "tags": list(self.tags), "vendor": self.vendor_status}
        if self.seed:
            d["seed"] = list(self.seed)
        if self.sample is not None:
            d["sample"] = self.sample
        if self.batch is not None:
            d["batch"] = self.batch
        if self.vendor_message:
            d["vendor_message"] = self.vendor_message
        if self.vendor_documented:
            d["vendor_refused_on_purpose"] = self.vendor_documented
        if self.kind:
            d["kind"] = self.kind
        if self.float_reason:
            d["float_reason"] = self.float_reason
            d["step_bound"] = self.step_bound
        if self.vendor_ops is not None and full:
            d["vendor_ops"] = [op for op, _ in self.vendor_ops]
        d["profiles"] = {p: (o.to_json() if full or not o.explains else {"status": o.status, "ran_as": o.ran_as})
                         for p, o in self.outcomes.items()}
        d["seconds"] = {"vendor": round(self.vendor_seconds, 4), "qnnref": round(self.qnnref_seconds, 4)}
        return d


def _new_result(case, vendor) -> CaseResult:
    r = CaseResult(case.id, case.op, tuple(case.tags), vendor.status, vendor.message,
                   vendor_ops=vendor.vendor_ops, vendor_seconds=vendor.seconds, seed=case.seed,
                   builtin=case.builtin, sample=getattr(case, "sample", None))
    if getattr(case, "batch", None) is not None:      # until qnnref says how it ran it
        r.batch = {"size": case.batch, "symbol": case.batch_symbol}
    if vendor.status == "refused" and case.builtin:
        doc = documented_refusal("onnxruntime", case.op, vendor.message)
        r.vendor_documented = doc.reason if doc else None
    return r


def _mark_documented(case, outcome: ProfileOutcome) -> None:
    """A qnnref refusal of a built-in case that suite/refusals.py documents."""
    if case.builtin and outcome.status == "unsupported":
        doc = documented_refusal("qnnref", case.op, outcome.error or "")
        outcome.documented = doc.reason if doc else None


def evaluate(case, vendor, settings: Settings, engine) -> CaseResult:
    """Compare one case that ONNX Runtime has run, under every profile."""
    r = _new_result(case, vendor)
    if vendor.status != "ok":
        return r
    import onnx
    onnx_model = onnx.load_from_string(case.model)
    r.kind, r.float_reason, r.step_bound = case_kind(case, vendor)
    steps = dequantize_steps(onnx_model)
    overrides = {**settings.overrides, **case.profile_overrides}
    t0 = time.perf_counter()
    results = {}
    floats = float_node_names(vendor)
    for p in settings.profiles:
        ran_as = profile_variant(p, overrides)
        ours = engine.run(case, ran_as, onnx_model, floats)
        results[p] = ours
        if p == settings.expected and ours.batch is not None:
            r.batch = dict(ours.batch)
        r.outcomes[p] = compare_outputs(p, ran_as, vendor.outputs, ours, r.step_bound, steps)
        _mark_documented(case, r.outcomes[p])
    if settings.diagnose:
        for p, outcome in r.outcomes.items():
            if outcome.explains or outcome.status == "unsupported":
                continue
            others = {q: res for q, res in results.items() if q != p}
            try:
                outcome.diagnosis = diagnose(case, vendor, outcome, results[p], r.step_bound, engine,
                                             others, onnx_model, overrides)
            except Exception as e:          # a diagnosis must never end the run
                outcome.diagnosis = {"message": f"diagnosis failed: {type(e).__name__}: {e}"}
    r.qnnref_seconds = time.perf_counter() - t0
    return r


def unavailable_result(case, vendor, settings: Settings, why: str) -> CaseResult:
    """A case whose qnnref side cannot run at all (no importer)."""
    r = _new_result(case, vendor)
    if vendor.status == "ok":
        r.kind, r.float_reason, r.step_bound = case_kind(case, vendor)
        for p in settings.profiles:
            r.outcomes[p] = ProfileOutcome(p, p, "error", error=why)
    return r


def run_cases(cases, settings: Settings, *, engine=None, runner=None, progress=None, total=None):
    """Run every case; returns (list of CaseResult, vendor info dict).
    ``progress(done, total, case_id)`` is called after each case."""
    if runner is None:
        from .runner import OrtRunner
        runner = OrtRunner(timeout=settings.timeout, window=settings.window)
    why = None
    if engine is None:
        from .engine import ImporterUnavailable, QnnrefEngine
        try:
            engine = QnnrefEngine()
        except ImporterUnavailable as e:
            why = str(e)
    results = []
    for case, vendor in runner.run(cases):
        if why is None and getattr(engine, "mlas_nchwc_block", 0) is None:
            engine.mlas_nchwc_block = runner.info.get("mlas_nchwc_block")   # the worker's probe
        if why is None:
            results.append(evaluate(case, vendor, settings, engine))
        else:
            results.append(unavailable_result(case, vendor, settings, why))
        if progress is not None:
            progress(len(results), total, case.id)
    return results, dict(runner.info, restarts=runner.restarts)
