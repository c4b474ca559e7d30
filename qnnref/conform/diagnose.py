"""Why does a profile not explain ONNX Runtime's output for a case?

1. Find the *first diverging node*: walk the ONNX graph in order and compare
   every tensor both sides have (graph outputs, and the integer
   intermediates ONNX Runtime returned as extra outputs); the first node with
   a differing output is where the semantics part. For a QDQ pattern that
   ONNX Runtime fused (DequantizeLinear -> Conv -> QuantizeLinear), the
   node is named by its compute operator and the QuantizeLinear that ends it.
2. Describe it: how many of its outputs differ and by how many steps, and
   statistics of its integer inputs (the activations, the weights).
3. Attribute it: re-run qnnref on the case under *hypotheses* and see which
   one makes that node's output match: first the profile with the u8 x s8
   pairwise int16 saturation switched (on if it was off, off if it was on),
   then every other profile of the run.

The result is a dict (JSON-ready) whose ``message`` reads like
``node conv (QLinearConv): 412 of 16384 outputs differ by 1-15 steps;
matches u8×s8 int16 saturation``.
"""
from __future__ import annotations

import numpy as np

from ..profiles import PROFILES, get_profile
from .compare import diff_tensor
from .engine import base_profile_name, float_node_names, profile_variant
from .onnxgraph import dequantize_steps, initializer_arrays, node_table

SATURATION = "pairwise_int16_saturation"
#: how a hypothesis that makes the node match is named
LABELS = {(SATURATION, True): "matches u8\u00d7s8 int16 saturation (pairwise_int16_saturation=True)",
          (SATURATION, False): "matches exact int32 accumulation (no u8\u00d7s8 int16 saturation)"}


def _producers(nodes) -> dict[str, dict]:
    return {o: n for n in nodes for o in n["outputs"] if o}


def _pattern(node: dict, producers: dict) -> tuple[dict, str | None]:
    """For a QuantizeLinear ending a fused QDQ pattern, the compute node inside
    (through Relu / Clip) and a description; else the node itself."""
    if node["op"] != "QuantizeLinear" or not node["inputs"]:
        return node, None
    inner = producers.get(node["inputs"][0])
    chain = []
    while inner is not None and inner["op"] in ("Relu", "Clip"):
        chain.append(inner["op"])
        inner = producers.get(inner["inputs"][0]) if inner["inputs"] else None
    if inner is None or inner["op"] in ("DequantizeLinear", "QuantizeLinear"):
        return node, None
    parts = ["DequantizeLinear", inner["op"], *reversed(chain), "QuantizeLinear"]
    return inner, "\u2192".join(parts) + f" {node['name']}"


def _integer_inputs(node: dict, producers: dict) -> list[str]:
    """The node's inputs, seen through DequantizeLinear: the integer tensors it reads."""
    names = []
    for name in node["inputs"]:
        if not name:
            continue
        p = producers.get(name)
        if p is not None and p["op"] == "DequantizeLinear" and p["inputs"]:
            names.append(p["inputs"][0])
        else:
            names.append(name)
    return names


def tensor_stats(name: str, value) -> dict:
    """Statistics of a tensor for the diagnosis (a few values for scalars)."""
    a = np.asarray(value)
    d = {"name": name, "dtype": str(a.dtype), "shape": list(a.shape)}
    if a.size == 0:
        return d
    if a.size <= 4:
        d["values"] = a.ravel().tolist()
        return d
    d.update(min=a.min().item(), max=a.max().item(), mean=round(float(a.mean(dtype=np.float64)), 3))
    if a.dtype.kind in "iu" and a.dtype.itemsize <= 2:
        info = np.iinfo(a.dtype)
        d["at_min"] = round(float(np.mean(a == info.min)), 4)
        d["at_max"] = round(float(np.mean(a == info.max)), 4)
    return d


def _stats_text(s: dict) -> str:
    if "values" in s:
        v = s["values"]
        return f"{s['name']}={v[0] if len(v) == 1 else v}"
    if "min" not in s:
        return f"{s['name']} (empty)"
    text = f"{s['name']} {s['dtype']}{s['shape']} in [{s['min']}, {s['max']}] mean {s['mean']}"
    if s.get("at_max", 0) >= 0.05 or s.get("at_min", 0) >= 0.05:
        text += f" ({100 * s.get('at_min', 0):.0f}% at min, {100 * s.get('at_max', 0):.0f}% at max)"
    return text


def first_divergence(onnx_model, vendor_tensors: dict, ours_tensors: dict, step_bound: int = 0):
    """``(node, TensorDiff)`` of the first node (in graph order) whose output
    differs between the two sides beyond ``step_bound`` steps (or the float
    bound), or None when every shared tensor agrees."""
    steps = dequantize_steps(onnx_model)
    for node in node_table(onnx_model):
        for out in node["outputs"]:
            if out in vendor_tensors and out in ours_tensors:
                d = diff_tensor(out, vendor_tensors[out], ours_tensors[out], step_bound, steps.get(out))
                if not d.within_bound:
                    return node, d
    return None


def diagnose(case, vendor, outcome, ours, step_bound: int, engine, others: dict, onnx_model,
             overrides: dict) -> dict:
    """The diagnosis of ``outcome`` (a ProfileOutcome that does not explain
    the case). ``ours``: the OursResult it came from; ``others``: profile ->
    OursResult of the other profiles of the run; ``overrides``: the profile
    overrides this case ran with."""
    if ours.error:
        return {"message": f"qnnref could not {ours.stage} the case: {ours.error.splitlines()[0]}",
                "stage": ours.stage}
    vendor_tensors = dict(vendor.outputs)
    note = None
    if vendor.intermediates:
        if vendor.probe_consistent:
            vendor_tensors.update(vendor.intermediates)
        else:
            note = ("intermediate tensors not used: exposing them changed ONNX Runtime's outputs "
                    "(its fusions)")
    elif len(onnx_model.graph.node) > 1 and vendor.message:
        note = vendor.message
    found = first_divergence(onnx_model, vendor_tensors, ours.tensors, step_bound)
    if found is None:
        # every shared tensor agrees: a tensor is missing or misplaced on one side
        bad = next((d for d in outcome.outputs if not d.exact), None)
        text = bad.problem or bad.summary() if bad else outcome.status
        return {"message": f"output {bad.name if bad else '?'}: {text}", "note": note}
    node, d = found
    nodes = node_table(onnx_model)
    producers = _producers(nodes)
    compute, pattern = _pattern(node, producers)
    known = {**initializer_arrays(onnx_model), **case.inputs, **vendor_tensors}
    inputs = [tensor_stats(n, known[n]) for n in _integer_inputs(compute, producers) if n in known]
    where = f"node {compute['name']} ({compute['op']}"
    where += f", in {pattern})" if pattern else ")"
    result = {"node": compute["name"], "op": compute["op"], "tensor": d.name, "pattern": pattern,
              "differing": d.differing, "size": d.size, "min_diff": d.min_diff, "max_diff": d.max_diff,
              "inputs": inputs, "note": note}
    u8s8 = {"uint8", "int8"} <= {s["dtype"] for s in inputs}
    label, explains_case = attribute(case, d.name, vendor_tensors[d.name], vendor.outputs,
                                     outcome.ran_as, engine, others, onnx_model, overrides, step_bound,
                                     try_saturation=u8s8, float_nodes=float_node_names(vendor))
    result["explained_by"] = label
    result["hypothesis_explains_case"] = explains_case
    text = f"{where}: {d.summary()}"
    text += f"; {label}" if label else "; no profile tried explains it"
    if not label and d.kind == "int" and d.max_diff == 1:
        text += " (off by one step: a rounding difference)"
    result["message"] = text
    result["inputs_text"] = "; ".join(_stats_text(s) for s in inputs)
    return result


def saturation_sibling(base, saturate: bool) -> str | None:
    """A registered profile identical to ``base`` except for the saturation
    fields, with pairwise_int16_saturation == ``saturate`` (ort-cpu-x86 for
    ort-cpu-x86-vnni and back): it knows the exceptions that come with the
    saturation (e.g. depthwise convolutions) better than a flipped flag."""
    import dataclasses
    skip = {"name", "description", "notes", SATURATION} | {f.name for f in dataclasses.fields(base)
                                                           if f.name.startswith("pairwise_")}
    same = [f.name for f in dataclasses.fields(base) if f.name not in skip]
    for name, p in PROFILES.items():
        if "[" in name or getattr(p, SATURATION, None) != saturate:
            continue
        if type(p) is type(base) and all(getattr(p, f) == getattr(base, f) for f in same):
            return name
    return None


def attribute(case, tensor: str, vendor_value, vendor_outputs: dict, ran_as: str, engine,
              others: dict, onnx_model, overrides: dict, step_bound: int = 0, try_saturation: bool = True,
              float_nodes=()):
    """(label, explains the whole case) of the first hypothesis under which
    qnnref's ``tensor`` equals ONNX Runtime's (within the case's bound), or
    (None, False). ``float_nodes``: as for the engine's run."""
    steps = dequantize_steps(onnx_model)

    def matches(value, name=tensor, reference=vendor_value) -> bool:
        if value is None:
            return False
        return diff_tensor(name, reference, value, step_bound, steps.get(name)).within_bound

    def explains(res) -> bool:
        return all(matches(res.outputs.get(n), n, v) for n, v in vendor_outputs.items())

    # 1. the same profile with the u8 x s8 saturation switched (when the node multiplies u8 by s8)
    base = get_profile(ran_as)
    if try_saturation and hasattr(base, SATURATION):
        flipped = not getattr(base, SATURATION)
        variant = saturation_sibling(base, flipped) or \
            profile_variant(base_profile_name(ran_as), {**overrides, SATURATION: flipped})
        if variant != ran_as:
            res = engine.run(case, variant, onnx_model, float_nodes)
            if not res.error and matches(res.tensors.get(tensor)):
                return LABELS[(SATURATION, flipped)], explains(res)
    # 2. the other profiles of the run (already computed)
    for name, res in others.items():
        if res.profile == ran_as or res.error:
            continue
        if matches(res.tensors.get(tensor)):
            return f"matches profile {name}", explains(res)
    return None, False
