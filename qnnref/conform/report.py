"""The conformance report: per-operator figures, diagnoses, a terminal table
and a JSON document (schema ``qnnref-conform/2``, spec/conformance.md).

Per operator (report row) and profile:

* ``integer`` cases: how many are bit-exact (every element of every output
  identical), the element counts, the largest |difference| in steps and a
  histogram of |difference| over all output elements;
* ``float`` cases: how many lie within the documented bound; they are never
  counted in the bit-exact figures;
* per output name: samples (cases) and elements identical, within the bound
  and outside it;
* a model with a symbolic batch: its symbol, whether qnnref kept it, the
  batch sizes compared, and the batched samples whose items each have the
  bits of batch 1;
* cases not compared, by why: refused on purpose (documented built-in
  cases), unsupported by qnnref, refused by ONNX Runtime.
"""
from __future__ import annotations

import collections

from .compare import FLOAT_ATOL, FLOAT_CASE_STEPS, FLOAT_RTOL, HIST_LABELS

SCHEMA = "qnnref-conform/2"
#: vendor statuses in the order the table shows them
VENDOR_STATUSES = ("ok", "refused", "crashed", "hung", "error")


def _pct(n: int, d: int) -> float | None:
    return None if d == 0 else round(100.0 * n / d, 2)


def aggregate(results, profiles) -> dict:
    """Per-operator figures (JSON-ready), rows in the order cases came."""
    rows: dict[str, dict] = {}
    for r in results:
        row = rows.get(r.op)
        if row is None:
            row = rows[r.op] = {
                "cases": 0, "vendor": {s: 0 for s in VENDOR_STATUSES}, "integer_cases": 0, "float_cases": 0,
                "model": not r.builtin,
                "profiles": {p: {"explains": 0, "unsupported": 0, "refused_on_purpose": 0, "errors": 0,
                                 "outputs": {},
                                 "integer": {"cases": 0, "exact": 0, "elements": 0, "exact_elements": 0,
                                             "max_diff": 0, "histogram": [0] * len(HIST_LABELS)},
                                 "float": {"cases": 0, "identical": 0, "within_bound": 0, "max_abs": 0.0,
                                           "max_steps": 0}}
                             for p in profiles}}
        row["cases"] += 1
        if getattr(r, "batch", None) is not None:
            _count_batch(row, r, profiles[0])
        row["vendor"][r.vendor_status] = row["vendor"].get(r.vendor_status, 0) + 1
        if r.vendor_status != "ok":
            continue
        row["integer_cases" if r.kind == "integer" else "float_cases"] += 1
        for p in profiles:
            o = r.outcomes.get(p)
            if o is None:
                continue
            pr = row["profiles"][p]
            pr["explains"] += int(o.explains)
            if o.status == "unsupported":          # not compared: outside every figure below
                pr["refused_on_purpose" if o.documented else "unsupported"] += 1
                continue
            _count_outputs(pr["outputs"], o.outputs)
            if o.status == "error":
                pr["errors"] += 1
            if r.kind == "integer":
                s = pr["integer"]
                s["cases"] += 1
                s["exact"] += int(o.status == "exact")
                for d in o.outputs:
                    s["elements"] += d.size
                    s["exact_elements"] += d.size - d.differing if not d.problem else 0
                    if d.kind == "int" and not d.problem:
                        s["max_diff"] = max(s["max_diff"], int(d.max_diff))
                        s["histogram"] = [a + b for a, b in zip(s["histogram"], d.hist)]
            else:
                s = pr["float"]
                s["cases"] += 1
                s["within_bound"] += int(o.explains)          # identical ones included
                s["identical"] += int(o.status == "exact")
                for d in o.outputs:
                    if d.problem:
                        continue
                    if d.kind == "float":
                        s["max_abs"] = max(s["max_abs"], float(d.max_diff))
                        if d.max_steps is not None:
                            s["max_steps"] = max(s["max_steps"], d.max_steps)
                    else:
                        s["max_steps"] = max(s["max_steps"], int(d.max_diff))
    for row in rows.values():
        for pr in row["profiles"].values():
            s = pr["integer"]
            s["exact_pct"] = _pct(s["exact"], s["cases"])
            s["exact_elements_pct"] = _pct(s["exact_elements"], s["elements"])
            s["histogram"] = dict(zip(HIST_LABELS, s["histogram"]))
    return rows


def _count_batch(row: dict, r, expected: str) -> None:
    """A model with a symbolic batch: its symbol, whether qnnref kept it
    (imported once), the batch sizes compared, and how many batched samples
    (batch > 1) gave each item the bits of batch 1 in qnnref."""
    b = row.setdefault("batch", {"symbol": r.batch.get("symbol"), "kept": None, "sizes": [],
                                 "per_item": {"samples": 0, "identical": 0}})
    kept = r.batch.get("kept")          # None: qnnref did not import the model (refused, or not run)
    if kept is not None:
        b["kept"] = kept if b["kept"] is None else b["kept"] and kept
    if kept is False:
        b.setdefault("not_kept", r.batch.get("not_kept"))
    if r.coverage(expected) == "compared" and r.batch["size"] not in b["sizes"]:
        b["sizes"] = sorted(b["sizes"] + [r.batch["size"]])
    item = r.batch.get("per_item")
    if item:
        b["per_item"]["samples"] += 1
        b["per_item"]["identical"] += int(item["identical"])


def batch_summary(op: str, b: dict) -> str:
    """One line on a model's symbolic batch."""
    how = ("not imported by qnnref" if b["kept"] is None
           else "kept by qnnref (imported once, run at each size)" if b["kept"]
           else f"not kept by qnnref (imported per batch size: {b.get('not_kept')})")
    sizes = ", ".join(map(str, b["sizes"])) or "none"
    text = f"{op}: symbolic batch {b['symbol']!r} {how}; batch sizes compared: {sizes}"
    if b["per_item"]["samples"]:
        text += (f"; per item: {b['per_item']['identical']} of {b['per_item']['samples']} batched samples "
                 "give each item the bits of batch 1")
    return text


def _count_outputs(table: dict, diffs) -> None:
    """Per output name: samples (one per case compared) identical, within the
    bound, outside it; and the same per element."""
    for d in diffs:
        c = table.setdefault(d.name, {"kind": d.kind, "samples": 0, "identical": 0, "within_bound": 0,
                                      "outside": 0, "elements": 0, "identical_elements": 0,
                                      "within_bound_elements": 0, "outside_elements": 0})
        c["samples"] += 1
        c[{"identical": "identical", "within-bound": "within_bound", "outside": "outside"}[d.verdict]] += 1
        c["elements"] += d.size
        if d.problem:
            c["outside_elements"] += d.size
        else:
            c["identical_elements"] += d.size - d.differing
            c["within_bound_elements"] += d.within
            c["outside_elements"] += d.outside


def output_summary(name: str, c: dict) -> str:
    """``356 identical, 4 within the float bound, 0 outside it`` for one output's counts."""
    bound = "the float bound" if c["kind"] == "float" else "the bound"
    return (f"output {name!r}: {c['samples']} sample{'s' if c['samples'] != 1 else ''}: "
            f"{c['identical']} identical, {c['within_bound']} within {bound}, {c['outside']} outside it; "
            f"{c['elements']} elements: {c['identical_elements']} identical, "
            f"{c['within_bound_elements']} within, {c['outside_elements']} outside")


def diagnosis_groups(results, profile: str) -> list[dict]:
    """The cases ``profile`` does not explain, grouped by (row, verdict):
    ``{"op", "verdict", "count", "cases", "example"}``, largest groups first."""
    groups: dict[tuple, dict] = {}
    for r in results:
        o = r.outcomes.get(profile)
        if r.vendor_status != "ok":
            if r.vendor_status == "refused":     # listed apart (Report.render)
                continue
            key = (r.op, f"ONNX Runtime {r.vendor_status}")
            example = r.vendor_message
        elif o is None or o.explains:
            continue
        else:
            dg = o.diagnosis or {}
            if o.status == "unsupported" and o.documented:
                continue                          # refused on purpose: listed apart
            if o.status == "unsupported":
                key = (r.op, "unsupported by qnnref (its importer refused the model)")
                example = " ".join((o.error or "").split())
            elif o.status == "error":
                key = (r.op, "qnnref error")
                example = " ".join((o.error or "").split())     # one line
            else:
                verdict = dg.get("explained_by") or "not explained by any profile tried"
                if dg.get("op"):
                    verdict = f"first diverging node {dg['op']}: {verdict}"
                key = (r.op, verdict)
                example = dg.get("message") or o.status
                if dg.get("inputs_text"):
                    example += f"\n      inputs: {dg['inputs_text']}"
                if dg.get("note"):
                    example += f"\n      note: {dg['note']}"
        g = groups.setdefault(key, {"op": key[0], "verdict": key[1], "count": 0, "cases": [],
                                    "example": f"{r.id} [{', '.join(r.tags)}]: {example}"})
        g["count"] += 1
        g["cases"].append(r.id)
    # what fails first; the cases qnnref does not support (not failures by default) last
    return sorted(groups.values(), key=lambda g: (g["verdict"].startswith("unsupported"), -g["count"], g["op"]))


class Report:
    def __init__(self, results, profiles, *, meta: dict | None = None, overrides: dict | None = None,
                 strict: bool = False, allow_unsupported: bool = False):
        self.strict = strict
        self.allow_unsupported = allow_unsupported
        self.results = list(results)
        self.profiles = list(profiles)
        self.meta = meta or {}
        self.overrides = overrides or {}
        self.rows = aggregate(self.results, self.profiles)

    @property
    def expected(self) -> str:
        return self.profiles[0]

    def failures(self) -> list:
        """Cases that do not conform to the expected profile."""
        return [r for r in self.results
                if not r.conforms(self.expected, self.strict, self.allow_unsupported)]

    def exit_code(self) -> int:
        """0: every case conforms to the expected profile: compared and
        explained, or a built-in case refused on purpose (documented; not
        with ``strict``), or not compared under ``allow_unsupported``; 1: at
        least one does not (a difference beyond the bound, a qnnref error,
        an ONNX Runtime crash or hang, a case not compared)."""
        return 1 if self.failures() else 0

    def totals(self) -> dict:
        count = collections.Counter(r.vendor_status for r in self.results)
        cover = collections.Counter(r.coverage(self.expected) for r in self.results)
        compared = [r for r in self.results if r.coverage(self.expected) == "compared"]
        return {"cases": len(self.results), **{s: count.get(s, 0) for s in VENDOR_STATUSES},
                "compared": cover["compared"],
                "refused_on_purpose": cover["refused-on-purpose"],
                "unsupported": cover["unsupported"],
                "vendor_refused": cover["vendor-refused"],
                # of the cases compared under the expected profile
                "integer_cases": sum(1 for r in compared if r.kind == "integer"),
                "float_cases": sum(1 for r in compared if r.kind == "float"),
                "failures": len(self.failures())}

    # -- JSON ------------------------------------------------------------------
    def to_json(self, full_cases: bool = False) -> dict:
        """The JSON document. Cases that conform to every profile are listed
        compactly unless ``full_cases``."""
        return {
            "schema": SCHEMA,
            **self.meta,
            "profiles": self.profiles,
            "expected_profile": self.expected,
            "strict": self.strict,
            "allow_unsupported": self.allow_unsupported,
            "machine_overrides": self.overrides,
            "bounds": {"float_rtol": FLOAT_RTOL, "float_atol": FLOAT_ATOL,
                       "float_case_steps": FLOAT_CASE_STEPS},
            "histogram_bins": list(HIST_LABELS),
            "totals": self.totals(),
            "exit_code": self.exit_code(),
            "operators": self.rows,
            "diagnosis": {p: diagnosis_groups(self.results, p) for p in self.profiles},
            "cases": [r.to_json(full=full_cases or not all(o.explains for o in r.outcomes.values())
                                or r.vendor_status not in ("ok", "refused"))
                      for r in self.results],
        }

    # -- terminal --------------------------------------------------------------
    def render(self, max_examples: int = 3) -> str:
        out = []
        m = self.meta
        vend = m.get("vendor", {})
        cpu = m.get("machine", {})
        head = [f"qnnref conform: ONNX Runtime {vend.get('onnxruntime', '?')}", m.get("suite"),
                f"{cpu.get('model', '?')}{' (VNNI)' if cpu.get('vnni') else ''}"]
        out.append(" -- ".join(h for h in head if h))
        for note in m.get("notes") or ():
            out.append(f"note: {note}")
        if self.overrides:
            out.append("machine overrides applied to every profile: "
                       + ", ".join(f"{k}={v}" for k, v in self.overrides.items()))
        out.append("")
        out.append(self._table())
        hist = self._histograms()
        if hist:
            out += ["", "Differences in integer outputs (elements per |difference| in steps):", hist]
        out += ["", "Diagnosis"]
        for p in self.profiles:
            explained = sum(1 for r in self.results if r.vendor_status == "ok"
                            and r.outcomes.get(p) is not None and r.outcomes[p].explains)
            ran = sum(1 for r in self.results if r.vendor_status == "ok")
            mark = " (expected)" if p == self.expected else ""
            out.append(f"  {p}{mark} explains {explained} of {ran} cases ONNX Runtime ran")
            for g in diagnosis_groups(self.results, p)[:12]:
                out.append(f"    {g['op']}: {g['count']} case{'s' if g['count'] != 1 else ''}: {g['verdict']}")
                example = g["example"] if len(g["example"]) <= 400 else g["example"][:397] + "..."
                out.append(f"      e.g. {example}")
                if len(g["cases"]) > 1:
                    more = ", ".join(g["cases"][1:1 + max_examples])
                    out.append(f"      also {more}{' ...' if len(g['cases']) > 1 + max_examples else ''}")
        batches = [f"  {batch_summary(op, row['batch'])}" for op, row in self.rows.items() if row.get("batch")]
        if batches:
            out += ["", "Symbolic batch (one model for every batch size; each item of a batch must get the "
                        "bits it gets at batch 1):", *batches]
        models = self._per_output()
        if models:
            out += ["", "Per model and output (a sample is one set of inputs; identical: every element equal; "
                        "within: differs by no more than the documented bound):", models]
        on_purpose = collections.Counter()
        for r in self.results:
            o = r.outcomes.get(self.expected)
            if r.vendor_documented:
                on_purpose[(r.op, "ONNX Runtime", r.vendor_documented)] += 1
            elif r.vendor_status == "ok" and o is not None and o.documented:
                on_purpose[(r.op, "qnnref", o.documented)] += 1
        if on_purpose:
            out += ["", "Refused on purpose (built-in cases outside a runtime's scope, documented in "
                        "suite/refusals.py and spec/conformance.md; not compared):"]
            for (op, who, why), n in sorted(on_purpose.items()):
                out.append(f"  {op}: {n} by {who}: {why}")
        refused = collections.Counter((r.op, r.vendor_message.split("\n")[0][:140]) for r in self.results
                                      if r.vendor_status == "refused" and not r.vendor_documented)
        if refused:
            fails = "allowed by --allow-unsupported" if self.allow_unsupported else "failures"
            out += ["", f"Refused by ONNX Runtime (not compared: {fails}):"]
            for (op, msg), n in refused.most_common(10):
                out.append(f"  {op}: {n}: {msg}")
        t = self.totals()
        verdict = "PASS" if self.exit_code() == 0 else "FAIL"
        not_compared = t["unsupported"] + t["vendor_refused"]
        allowed = " (allowed by --allow-unsupported)" if self.allow_unsupported and not_compared else ""
        out += ["", f"{verdict}: {t['cases']} cases, {t['compared']} compared ({t['integer_cases']} integer, "
                    f"{t['float_cases']} float), {t['refused_on_purpose']} refused on purpose, "
                    f"{t['unsupported']} unsupported by qnnref, {t['vendor_refused']} refused by ONNX Runtime"
                    f"{allowed}, {t['crashed']} crashed, {t['hung']} hung; "
                    f"{t['failures']} not explained by the expected profile {self.expected}"
                    + (f"; {m['seconds']:.1f} s" if "seconds" in m else "")]
        return "\n".join(out)

    def _per_output(self) -> str:
        lines = []
        for op, row in self.rows.items():
            if not row.get("model"):
                continue
            for p in self.profiles:
                outputs = row["profiles"][p]["outputs"]
                if not outputs:
                    continue
                lines.append(f"  {op} under {p}:")
                lines += [f"    {output_summary(name, c)}" for name, c in outputs.items()]
        return "\n".join(lines)

    def _table(self) -> str:
        head = ["operator", "cases", "refused", "crash/hang", "int", "float"]
        for _ in self.profiles:
            head += ["exact%", "max", "float ok", "unsup"]
        rows = []
        for op, row in self.rows.items():
            v = row["vendor"]
            cells = [op, str(row["cases"]), str(v["refused"]), str(v["crashed"] + v["hung"] + v["error"]),
                     str(row["integer_cases"]), str(row["float_cases"])]
            for p in self.profiles:
                pr = row["profiles"][p]
                s, f = pr["integer"], pr["float"]
                cells.append("-" if s["exact_pct"] is None else f"{s['exact_pct']:.1f}")
                cells.append("-" if not s["cases"] else str(s["max_diff"]))
                cells.append("-" if not f["cases"] else f"{f['within_bound']}/{f['cases']}")
                cells.append(str(pr["unsupported"])
                             + (f" +{pr['refused_on_purpose']} doc" if pr["refused_on_purpose"] else "")
                             + (f" ({pr['errors']} err)" if pr["errors"] else ""))
            rows.append(cells)
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        # a profile's name spans its three columns
        for j, p in enumerate(self.profiles):
            cols = slice(6 + 4 * j, 10 + 4 * j)
            short = len(p) - (sum(widths[cols]) + 6)
            if short > 0:
                widths[9 + 4 * j] += short

        def line(cells):
            parts = []
            for i, (c, w) in enumerate(zip(cells, widths)):
                text = c.ljust(w) if i == 0 else c.rjust(w)
                parts.append(("| " + text) if i >= 6 and (i - 6) % 4 == 0 else text)
            return "  ".join(parts).rstrip()
        body = [line(head), *(line(r) for r in rows)]
        # the profile names above their columns, at each group's "|"
        bars = [i for i, ch in enumerate(body[0]) if ch == "|"]
        first = ""
        for pos, p in zip(bars, self.profiles):
            first = first.ljust(pos) + "| " + p + " "
        sep = "-" * max(len(x) for x in body)
        return "\n".join([first.rstrip(), body[0], sep, *body[1:]])

    def _histograms(self) -> str:
        lines = []
        for op, row in self.rows.items():
            for p in self.profiles:
                h = row["profiles"][p]["integer"]["histogram"]
                if sum(n for k, n in h.items() if k != "0") == 0:
                    continue
                bins = "  ".join(f"{k}:{n}" for k, n in h.items() if n)
                lines.append(f"  {op} under {p}: {bins}")
        return "\n".join(lines)
