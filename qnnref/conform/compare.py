"""Comparing ONNX Runtime's tensors with qnnref's, case by case.

Integer tensors are compared exactly; a difference is measured in *steps*
(units of the integer grid: one step of a quantized output is one
quantization level, of an int32 output one unit). Float tensors are never
counted as bit-exact or not: they must lie within :data:`FLOAT_RTOL` (see
:func:`float_bound`), and are reported separately.

A case is one of two kinds:

* ``integer``: everything ONNX Runtime computes is integer arithmetic or
  exact float32 steps (requantization, QDQ patterns it fuses into integer
  operators): every output must be identical;
* ``float``: an output is float (DequantizeLinear, QGemm without y_scale):
  float outputs must lie within the float bound. When ONNX Runtime also
  computes with its own vectorized float math (a float operator left between
  DequantizeLinear and QuantizeLinear, the QLinearSigmoid table), integer
  outputs may differ by :data:`FLOAT_CASE_STEPS` step, and so may a float
  output computed by a DequantizeLinear, in steps of its scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: float outputs: |ort - qnnref| <= FLOAT_RTOL * max(|ort|, |qnnref|) + FLOAT_ATOL,
#: about 8 units in the last place of float32 (2^-23 relative)
FLOAT_RTOL = 2.0 ** -20
FLOAT_ATOL = 2.0 ** -126            # the smallest normal float32: only zero vs denormal
#: integer outputs of float-kind cases: at most one step apart
FLOAT_CASE_STEPS = 1

#: histogram bins of |difference| in steps: (low, high, label), inclusive
HIST_BINS = ((0, 0, "0"), (1, 1, "1"), (2, 2, "2"), (3, 4, "3-4"), (5, 8, "5-8"), (9, 16, "9-16"),
             (17, 64, "17-64"), (65, 256, "65-256"), (257, None, ">256"))
HIST_LABELS = tuple(b[2] for b in HIST_BINS)


def histogram(diff: np.ndarray) -> list[int]:
    """Counts of ``diff`` (non-negative integers) per :data:`HIST_BINS` bin."""
    edges = [lo for lo, _, _ in HIST_BINS[1:]]
    idx = np.searchsorted(np.asarray(edges, np.int64), diff.ravel(), side="right")
    return np.bincount(idx, minlength=len(HIST_BINS)).astype(int).tolist()


@dataclass
class TensorDiff:
    """How one tensor of qnnref compares with ONNX Runtime's."""

    name: str
    kind: str                         # "int" or "float"
    shape: tuple = ()
    size: int = 0
    differing: int = 0                # elements that are not identical
    max_diff: float = 0.0             # steps (int) or absolute (float)
    min_diff: float = 0.0             # the smallest non-zero difference
    hist: list = field(default_factory=list)   # int only: element counts per HIST_BINS
    max_rel: float = 0.0              # float only
    max_steps: float | None = None    # float only: in steps of the DequantizeLinear scale, when known
    within_bound: bool = True
    problem: str | None = None        # missing tensor, dtype or shape mismatch
    outside: int = 0                  # elements beyond the bound (all of them when there is a problem)

    @property
    def exact(self) -> bool:
        return self.problem is None and self.differing == 0

    @property
    def within(self) -> int:
        """Elements that differ but lie within the bound."""
        return 0 if self.problem else self.differing - self.outside

    @property
    def verdict(self) -> str:
        """``identical``, ``within-bound`` or ``outside``: the tensor as a whole."""
        return "identical" if self.exact else "within-bound" if self.within_bound else "outside"

    def summary(self) -> str:
        if self.problem:
            return self.problem
        if self.exact:
            return f"identical ({self.size} elements)"
        if self.kind == "int":
            lo, hi = int(self.min_diff), int(self.max_diff)
            span = f"{lo}" if lo == hi else f"{lo}\u2013{hi}"
            return f"{self.differing} of {self.size} outputs differ by {span} step{'s' if hi > 1 else ''}"
        return (f"{self.differing} of {self.size} outputs differ, max |d| {self.max_diff:.3g} "
                f"(relative {self.max_rel:.3g})")

    def to_json(self) -> dict:
        d = {"name": self.name, "kind": self.kind, "shape": list(self.shape), "size": self.size,
             "differing": self.differing, "outside": self.outside, "max_diff": self.max_diff,
             "within_bound": self.within_bound}
        if self.kind == "int":
            d["histogram"] = dict(zip(HIST_LABELS, self.hist))
        else:
            d["max_rel"] = self.max_rel
            if self.max_steps is not None:
                d["max_steps"] = self.max_steps
        if self.problem:
            d["problem"] = self.problem
        return d


def diff_tensor(name: str, vendor: np.ndarray | None, ours: np.ndarray | None,
                max_steps: int = 0, step=None) -> TensorDiff:
    """Compare one tensor. ``max_steps``: how many steps apart two values may
    be (0: exact). ``step``: for a float tensor computed by a
    DequantizeLinear, its scale (broadcastable): then a difference is also
    measured in steps, and ``max_steps`` of them are within the bound."""
    if vendor is None or ours is None:
        who = "ONNX Runtime" if vendor is None else "qnnref"
        return TensorDiff(name, "int", within_bound=False, problem=f"{who} has no tensor {name!r}")
    vendor, ours = np.asarray(vendor), np.asarray(ours)
    kind = "float" if vendor.dtype.kind == "f" else "int"
    d = TensorDiff(name, kind, tuple(vendor.shape), int(vendor.size))
    if vendor.shape != ours.shape:
        d.problem = f"shape {list(ours.shape)} in qnnref, {list(vendor.shape)} in ONNX Runtime"
        d.within_bound, d.outside = False, d.size
        return d
    if (vendor.dtype.kind == "f") != (ours.dtype.kind == "f"):
        d.problem = f"dtype {ours.dtype} in qnnref, {vendor.dtype} in ONNX Runtime"
        d.within_bound, d.outside = False, d.size
        return d
    if kind == "int":
        diff = np.abs(vendor.astype(np.int64) - ours.astype(np.int64))
        d.differing = int(np.count_nonzero(diff))
        d.max_diff = int(diff.max()) if diff.size else 0
        d.min_diff = int(diff[diff > 0].min()) if d.differing else 0
        d.hist = histogram(diff)
        d.outside = int(np.count_nonzero(diff > max_steps))
        d.within_bound = d.outside == 0
        return d
    v, o = vendor.astype(np.float64), ours.astype(np.float64)
    both_nan = np.isnan(v) & np.isnan(o)
    same = (v == o) | both_nan
    d.differing = int(np.count_nonzero(~same))
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(v - o))
        mag = np.maximum(np.abs(v), np.abs(o))
        rel = np.where(same, 0.0, diff / np.where(mag > 0, mag, 1.0))
    diff = np.nan_to_num(diff, nan=np.inf)
    d.max_diff = float(diff.max()) if diff.size else 0.0
    d.max_rel = float(np.nan_to_num(rel, nan=np.inf).max()) if rel.size else 0.0
    slack = FLOAT_RTOL * np.nan_to_num(mag, nan=0.0) + FLOAT_ATOL
    if step is not None:
        # |d| <= max_steps * scale, plus the float bound for the float32
        # rounding of (q - zp) * scale on each side
        step = np.abs(np.broadcast_to(np.asarray(step, np.float64), diff.shape))
        with np.errstate(divide="ignore", invalid="ignore"):
            in_steps = np.nan_to_num(diff / step, nan=np.inf, posinf=np.inf)
        d.max_steps = round(float(in_steps.max()), 4) if in_steps.size else 0.0
        slack = slack + max_steps * step
    d.outside = int(np.count_nonzero(~(diff <= slack)))
    d.within_bound = d.outside == 0
    return d


@dataclass
class ProfileOutcome:
    """A case under one profile."""

    profile: str                      # the profile asked for
    ran_as: str                       # the variant it ran under (vendor-configuration overrides)
    status: str                       # exact | within-bound | differs | unsupported | error
    outputs: list = field(default_factory=list)  # TensorDiff per graph output
    error: str | None = None
    diagnosis: dict | None = None
    #: an ``unsupported`` built-in case refused on purpose: the documented reason
    documented: str | None = None

    @property
    def explains(self) -> bool:
        """Does this profile explain ONNX Runtime's outputs for the case?"""
        return self.status in ("exact", "within-bound")

    def to_json(self) -> dict:
        d = {"profile": self.profile, "ran_as": self.ran_as, "status": self.status,
             "outputs": [o.to_json() for o in self.outputs]}
        if self.error:
            d["error"] = self.error
        if self.documented:
            d["refused_on_purpose"] = self.documented
        if self.diagnosis:
            d["diagnosis"] = self.diagnosis
        return d


def compare_outputs(profile: str, ran_as: str, vendor_outputs: dict, ours, step_bound: int = 0,
                    steps: dict | None = None) -> ProfileOutcome:
    """Compare every graph output of a case (``ours``: an engine.OursResult).
    ``step_bound``: steps integer outputs (and DequantizeLinear outputs, in
    steps of ``steps[name]``, their scale) may differ by."""
    if ours.error:
        status = "unsupported" if ours.refused else "error"
        return ProfileOutcome(profile, ran_as, status, error=f"qnnref {ours.stage}: {ours.error}")
    steps = steps or {}
    diffs = [diff_tensor(name, v, ours.outputs.get(name), step_bound, steps.get(name))
             for name, v in vendor_outputs.items()]
    item = (ours.batch or {}).get("per_item")
    if item and not item["identical"]:
        # the batch is compared with ONNX Runtime, but qnnref broke its own
        # rule: each item gets the bits it gets at batch 1 (spec/format.md)
        return ProfileOutcome(profile, ran_as, "error", diffs,
                              error=f"qnnref run: at batch {ours.batch['size']}, item {item['item']} of output "
                                    f"{item['output']!r} differs from the same item run at batch 1")
    if all(d.exact for d in diffs):
        status = "exact"
    elif all(d.within_bound for d in diffs):
        status = "within-bound"
    else:
        status = "differs"
    return ProfileOutcome(profile, ran_as, status, diffs)


def case_kind(case, vendor) -> tuple[str, str | None, int]:
    """``(kind, why, step_bound)`` of a case ONNX Runtime ran: ``("integer",
    None, 0)``, or ``("float", why, 0 or FLOAT_CASE_STEPS)`` -- one step
    allowed where ONNX Runtime computes with its own float math."""
    if vendor.float_nodes:
        return "float", "ONNX Runtime computed in float: " + ", ".join(vendor.float_nodes), FLOAT_CASE_STEPS
    if case.float_reason:
        return "float", case.float_reason, FLOAT_CASE_STEPS if case.float_compute else 0
    if any(np.asarray(v).dtype.kind == "f" for v in vendor.outputs.values()):
        return "float", "float output", 0
    return "integer", None, 0
