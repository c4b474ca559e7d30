"""Benchmark cases shared by compare.py, bench_kernels.py and vendors.py.

A *case* is a shape (GEMM 512^3, conv 56x56x64, ...); a *variant* is the
dtype pair it runs with (u8 x s8, u8 x u8, s8 x s8, u8 x s4), because each
vendor supports different ones. ``make_data(case, variant)`` draws the
integers and quantization parameters once (seeded), as plain numpy values,
so that the very same data can be written to an .npz file and handed to a
vendor running in another process.

Layouts are qnnref's: GEMM a [M, K], w [K, N]; conv x NHWC, w OHWI
([C_out, KH, KW, C_in/groups]). Vendors convert (vendors.py).

Nothing here needs the compiled kernels; only ``qnnref_graph`` and the
oracle need qnnref itself, and vendors.py uses neither.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


# -- cases and variants --------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    name: str          # "u8s8"
    label: str         # "u8 x s8"
    x_dtype: str       # activations (and the output)
    w_dtype: str       # weights
    per_channel: bool  # weight scales per output channel (else per tensor)


VARIANTS = {
    "u8s8": Variant("u8s8", "u8 x s8", "uint8", "int8", True),
    "u8u8": Variant("u8u8", "u8 x u8", "uint8", "uint8", False),   # u8 weights: per tensor, zp 128 (legacy TFLite style)
    "s8s8": Variant("s8s8", "s8 x s8", "int8", "int8", True),
    "u8s4": Variant("u8s4", "u8 x s4", "uint8", "int4", True),
}


@dataclass(frozen=True)
class Case:
    name: str                  # id for --cases
    title: str                 # row label
    kind: str                  # "gemm", "conv" or "model"
    dims: tuple = ()           # gemm: (M, K, N); conv: (H, W, C_in, C_out, KH, KW, groups, pad)
    variants: tuple = ()       # dtype variants measured (the first one is the headline)

    @property
    def ops(self) -> int | None:
        """2 * multiply-accumulates (None for a whole model: see model_ops)."""
        if self.kind == "gemm":
            m, k, n = self.dims
            return 2 * m * n * k
        if self.kind == "conv":
            h, w, cin, cout, kh, kw, groups, pad = self.dims
            oh, ow = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
            return 2 * oh * ow * cout * kh * kw * (cin // groups)
        return None


CASES = {c.name: c for c in [
    Case("gemm", "GEMM 512^3", "gemm", (512, 512, 512), ("u8s8", "u8u8", "s8s8")),
    Case("gemv", "GEMV M=1 N=K=4096", "gemm", (1, 4096, 4096), ("u8s8", "u8u8", "s8s8")),
    Case("conv", "conv 1x56x56x64 3x3 64->64 pad 1", "conv", (56, 56, 64, 64, 3, 3, 1, 1), ("u8s8", "u8u8", "s8s8")),
    Case("depthwise", "depthwise 3x3 1x56x56x128 pad 1", "conv", (56, 56, 128, 128, 3, 3, 128, 1),
         ("u8s8", "u8u8", "s8s8")),
    Case("gemm_int4", "GEMM 512^3 int4 weights", "gemm", (512, 512, 512), ("u8s4",)),
    Case("digits", "bundled digits model, batch 1", "model", (), ("s8s8",)),
]}


def dtype_range(name: str) -> tuple[int, int]:
    return {"uint8": (0, 255), "int8": (-128, 127), "int4": (-8, 7)}[name]


# -- data ------------------------------------------------------------------------

def make_data(case: Case, variant: str, seed: int = 0, ties: bool = False) -> dict:
    """The integers and quantization parameters of one case/variant.

    Full-range data, so that every overflow or saturation a runtime has shows
    up: activations uniform over their dtype, int8 weights in [-127, 127]
    (TFLite's symmetric range), uint8 weights in [0, 255] with zero point 128,
    int4 in [-8, 7]. The output scale is chosen so that outputs spread over
    about +-40 steps (few clamp), which makes rounding differences visible.

    ``ties=True`` (an exactness probe): power-of-two scales, so that every
    real multiplier s_x * s_w / s_y is exactly 2^-k and an output is an exact
    tie (x.5) whenever acc mod 2^k == 2^(k-1): about one output in 2^k, k
    chosen for a +-40 step spread as above. Every recipe then agrees except on ties,
    where each rounding mode shows.
    """
    v = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    if case.kind == "gemm":
        m, k, n = case.dims
        x_shape, w_shape, channels, k_eff = (m, k), (k, n), n, k
    else:
        h, w, cin, cout, kh, kw, groups, _ = case.dims
        x_shape, w_shape, channels, k_eff = (1, h, w, cin), (cout, kh, kw, cin // groups), cout, kh * kw * cin // groups
    lo, hi = dtype_range(v.x_dtype)
    x = rng.integers(lo, hi, size=x_shape, endpoint=True).astype(v.x_dtype)
    x_zp = 120 if v.x_dtype == "uint8" else -3
    w_np = np.uint8 if v.w_dtype == "uint8" else np.int8
    w_lo, w_hi, w_zp = {"int8": (-127, 127, 0), "uint8": (0, 255, 128), "int4": (-8, 7, 0)}[v.w_dtype]
    w = rng.integers(w_lo, w_hi, size=w_shape, endpoint=True).astype(w_np)
    acc_std = np.sqrt(k_eff) * np.std(x.astype(np.float64) - x_zp) * np.std(w.astype(np.float64) - w_zp)
    if ties:
        x_scale = np.float32(2.0**-6)
        w_scale = np.full(channels, 2.0**-7, np.float32)
        if v.per_channel:                      # two multipliers, 2^-k and 2^-(k+1)
            w_scale[1::2] = 2.0**-8
        k = max(1, int(round(np.log2(acc_std / 40))))
        y_scale = np.float32(2.0**(k - 13))
    else:
        x_scale = np.float32(0.02)
        if v.per_channel:
            w_scale = rng.uniform(0.001, 0.01, channels).astype(np.float32)
        else:
            w_scale = np.full(channels, 0.005, np.float32)
        y_scale = np.float32(x_scale * np.mean(w_scale) * acc_std / 40)
    return {"case": case.name, "variant": variant, "kind": case.kind, "dims": tuple(case.dims),
            "x_dtype": v.x_dtype, "w_dtype": v.w_dtype, "per_channel": v.per_channel,
            "x": x, "x_scale": x_scale, "x_zp": x_zp,
            "w": w, "w_scale": w_scale, "w_zp": w_zp,
            "y_dtype": v.x_dtype, "y_scale": y_scale, "y_zp": 5 if v.x_dtype == "int8" else 133}


def save_data(data: dict, path: str) -> None:
    np.savez(path, **{k: np.asarray(v) for k, v in data.items()})


def load_data(path: str) -> dict:
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    for k in ("case", "variant", "kind", "x_dtype", "w_dtype", "y_dtype"):
        d[k] = str(d[k])
    for k in ("x_zp", "w_zp", "y_zp"):
        d[k] = int(d[k])
    d["per_channel"] = bool(d["per_channel"])
    d["x_scale"], d["y_scale"] = np.float32(d["x_scale"]), np.float32(d["y_scale"])
    d["dims"] = tuple(int(i) for i in d["dims"])
    return d


# -- recipes: how each vendor rounds -----------------------------------------------

def recipes() -> dict:
    """Named requantization recipes a vendor may implement (qnnref.Recipe)."""
    from qnnref import Recipe
    f32 = dict(kind="float", float_dtype="float32", scale_dtype="float32")
    return {
        "qnnref": Recipe(kind="fixed_point", rounding="half_up", double_round="none", scale_dtype="float64"),
        "f32-half-even": Recipe(rounding="half_to_even", **f32),
        "f32-half-up": Recipe(rounding="half_up", **f32),
        "f32-half-away": Recipe(rounding="half_away_from_zero", **f32),
        "gemmlowp-away": Recipe(kind="fixed_point", rounding="half_away_from_zero", double_round="gemmlowp",
                                scale_dtype="float64"),
        "gemmlowp-up": Recipe(kind="fixed_point", rounding="half_up", double_round="gemmlowp",
                              scale_dtype="float64"),
    }


# -- qnnref graphs -----------------------------------------------------------------

def qnnref_graph(data: dict, recipe: str | None = None):
    """The case as a one-node qnnref Graph (matmul or conv2d, no bias), with
    the named recipe as the node's ``recipe`` attribute (None: the profile's)."""
    from qnnref import GraphBuilder
    b = GraphBuilder(description=f"{data['case']} {data['variant']}")
    x = b.input("x", data["x_dtype"], data["x"].shape, scale=data["x_scale"], zero_point=data["x_zp"])
    pc = data["per_channel"]
    scale = data["w_scale"] if pc else data["w_scale"][0]
    zp = np.full(len(data["w_scale"]), data["w_zp"]) if pc else data["w_zp"]
    attrs = {"dtype": data["y_dtype"]}
    if recipe is not None:
        attrs["recipe"] = recipes()[recipe].to_dict()
    if data["kind"] == "gemm":
        w = b.constant("w", data["w"], dtype=data["w_dtype"], scale=scale, zero_point=zp, axis=1 if pc else None)
        y = b.node("matmul", [x, w], attrs, scale=data["y_scale"], zero_point=data["y_zp"], output="y")
    else:
        _, _, _, _, _, _, groups, pad = data["dims"]
        w = b.constant("w", data["w"], dtype=data["w_dtype"], scale=scale, zero_point=zp, axis=0 if pc else None)
        attrs.update(pads=[pad] * 4, groups=groups)
        y = b.node("conv2d", [x, w], attrs, scale=data["y_scale"], zero_point=data["y_zp"], output="y")
    b.output(y)
    return b.graph()


def exact_accumulator(data: dict) -> np.ndarray:
    """The exact int64 accumulators, written independently of qnnref: a plain
    int64 matrix product, or the convolution summed tap by tap (no im2col,
    no BLAS)."""
    x = data["x"].astype(np.int64) - data["x_zp"]
    w = data["w"].astype(np.int64) - data["w_zp"]
    if data["kind"] == "gemm":
        return np.einsum("mk,kn->mn", x, w)     # int64 sums of products
    _, _, _, _, kh, kw, groups, pad = data["dims"]
    c_out, _, _, cg = w.shape
    n, h, wd, _ = x.shape
    oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))     # x - zp_x, zero-padded
    per_group = c_out // groups
    wg = w.reshape(groups, per_group, kh, kw, cg)
    acc = np.zeros((n, oh, ow, groups, per_group), np.int64)
    for p in range(kh):
        for q in range(kw):
            tap = xp[:, p:p + oh, q:q + ow, :].reshape(n, oh, ow, groups, cg)
            if cg == 1 and per_group == 1:      # depthwise: one product per channel
                acc[..., 0] += tap[..., 0] * wg[:, 0, p, q, 0]
            else:
                acc += np.einsum("nhwgc,goc->nhwgo", tap, wg[:, :, p, q, :])
    return acc.reshape(n, oh, ow, c_out)


def oracle_output(data: dict) -> np.ndarray:
    """The qnnref profile's output written out independently: the exact
    accumulator, the multiplier s_x * s_w / s_y formed in float64 and encoded
    as (multiplier, shift) with ties away from zero, then one rounding,
    ties up: (acc * M + 2^(t-1)) >> t with t = 31 - shift."""
    acc = exact_accumulator(data)
    assert np.abs(acc).max() < 2**31, "the int32 accumulator contract"
    real = np.float64(data["x_scale"]) * data["w_scale"].astype(np.float64) / np.float64(data["y_scale"])
    q, e = np.frexp(real)
    mult = np.floor(np.ldexp(q, 31) + 0.5).astype(np.int64)     # q > 0: ties away from zero
    e = e + (mult == 2**31)
    mult = np.where(mult == 2**31, mult // 2, mult)
    t = 31 - e.astype(np.int64)
    y = ((acc * mult + (np.int64(1) << (t - 1))) >> t) + data["y_zp"]
    lo, hi = dtype_range(data["y_dtype"])
    return np.clip(y, lo, hi).astype(data["y_dtype"])


def compare_outputs(got: np.ndarray, want: np.ndarray) -> dict:
    """How far ``got`` is from ``want``, in output steps."""
    if got.shape != want.shape:
        return {"exact": False, "error": f"shape {list(got.shape)} != {list(want.shape)}"}
    d = np.abs(got.astype(np.int64) - want.astype(np.int64))
    n = int(np.count_nonzero(d))
    return {"exact": n == 0, "differ": n, "total": int(d.size), "percent": 100.0 * n / d.size,
            "max_steps": int(d.max()) if d.size else 0}


# -- the bundled model -------------------------------------------------------------

def digits_input(model, index: int = 0) -> np.ndarray:
    import qnnref
    images, _ = qnnref.bundled_test_set("digits")
    return model.quantize(model.inputs[0].name, images[index:index + 1])


def model_ops(graph) -> int:
    """2 * multiply-accumulates of a graph's matmul and conv2d nodes (at
    batch 1 for a model with a symbolic batch)."""
    from qnnref.graph import element_count
    total = 0
    for node in graph.nodes:
        if node.op == "conv2d":
            y = graph.tensors[node.outputs[0]].shape
            w = graph.tensors[node.inputs[1]].shape
            total += 2 * element_count(y) * w[1] * w[2] * w[3]
        elif node.op == "matmul":
            a = graph.tensors[node.inputs[0]].shape
            y = graph.tensors[node.outputs[0]].shape
            total += 2 * element_count(y) * a[-1]
    return total


# -- timing -------------------------------------------------------------------------

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def median_time(fn, min_time: float = 1.0, min_repeats: int = 10, max_time: float = 20.0,
                warmup: int = 3, clock: str = "wall") -> tuple[float, int]:
    """Median time of ``fn()`` in seconds, and the number of timed runs.

    ``warmup`` untimed calls first (lazy caches, page faults, thread pools),
    then timed calls until at least ``min_repeats`` runs and ``min_time``
    seconds of wall time, stopping early at ``max_time`` seconds (at least 3
    runs). ``clock="cpu"`` measures each call in CPU time of this process
    (time.process_time) instead of wall time: on a shared machine, time
    spent waiting for the core does not count. Everything measured here is
    single-threaded, so on an idle machine the two agree."""
    tick = CLOCKS[clock]
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while True:
        t0 = tick()
        fn()
        times.append(tick() - t0)
        spent = time.perf_counter() - start
        if len(times) >= 3 and spent >= max_time:
            break
        if len(times) >= min_repeats and spent >= min_time:
            break
    return float(np.median(times)), len(times)


def pairwise_saturated_accumulator(data: dict) -> np.ndarray:
    """Accumulators as x86 u8 x s8 kernels without exact int8 paths compute
    them (VPMADDUBSW): the raw u8 activations (zero point not removed; padding
    holds the zero point) times the s8 weights, adjacent products summed in
    pairs saturated to int16, the pairs summed in int32, then the zero-point
    correction - zp_x * sum(w). Pairs run along K for GEMM, along input
    channels within each tap for a convolution, and along the taps in row-major
    order for a depthwise convolution. A diagnostic: it explains a vendor's
    mismatch; qnnref's profiles do not implement it (yet)."""
    assert data["x_dtype"] == "uint8" and data["w_dtype"] == "int8" and data["w_zp"] == 0
    zp = data["x_zp"]

    def sat(v):
        return np.clip(v, -32768, 32767)

    x = data["x"].astype(np.int64)
    w = data["w"].astype(np.int64)
    if data["kind"] == "gemm":
        k = x.shape[1]
        acc = np.zeros((x.shape[0], w.shape[1]), np.int64)
        for i in range(0, k, 2):
            acc += sat(np.einsum("mk,kn->mn", x[:, i:i + 2], w[i:i + 2]))
        return acc - zp * w.sum(axis=0)
    _, _, _, _, kh, kw, groups, pad = data["dims"]
    c_out, _, _, cg = w.shape
    n, h, wd, _ = x.shape
    oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=zp)
    taps = [(p, q) for p in range(kh) for q in range(kw)]
    if groups == c_out and cg == 1:            # depthwise: pairs of taps
        acc = np.zeros((n, oh, ow, c_out), np.int64)
        for i in range(0, len(taps), 2):
            pair = 0
            for p, q in taps[i:i + 2]:
                pair = pair + xp[:, p:p + oh, q:q + ow, :] * w[:, p, q, 0]
            acc += sat(pair)
        return acc - zp * w.sum(axis=(1, 2, 3))
    if groups != 1:
        raise ValueError("grouped convolution: no emulation")
    acc = np.zeros((n, oh, ow, c_out), np.int64)
    for p, q in taps:
        tap = xp[:, p:p + oh, q:q + ow, :]
        for i in range(0, cg, 2):
            acc += sat(np.einsum("nhwc,oc->nhwo", tap[..., i:i + 2], w[:, p, q, i:i + 2]))
    return acc - zp * w.sum(axis=(1, 2, 3))
