"""Speed of the numpy reference backend (pytest-benchmark).

Run:  python -m pytest benchmarks/bench_reference.py --benchmark-only
      (or: python benchmarks/bench_reference.py  for a one-line GOPS table)

Each case validates its output against an independent exact computation
before it is timed (validate, then time). GOPS = 2*M*N*K / median seconds.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest

import qnnref
from qnnref import GraphBuilder


def gemm_model(m, k, n, rng, w_dtype="int8"):
    b = GraphBuilder(description=f"GEMM {m}x{k}x{n}")
    a = b.input("a", "uint8", (m, k), scale=0.02, zero_point=128)
    lo, hi = (-8, 7) if w_dtype == "int4" else (-127, 127)
    w = rng.integers(lo, hi, size=(k, n), endpoint=True).astype(np.int8)
    wt = b.constant("w", w, dtype=w_dtype, scale=rng.uniform(0.001, 0.01, n).astype(np.float32), axis=1)
    bias = b.constant("bias", rng.integers(-1000, 1000, n).astype(np.int32))
    b.output(b.node("matmul", [a, wt, bias], {"dtype": "int8"}, scale=0.5, zero_point=3, output="y"))
    x = rng.integers(0, 255, size=(m, k), endpoint=True).astype(np.uint8)
    return b.build(), x, w


def conv_model(h, w_, cin, cout, rng, groups=1):
    b = GraphBuilder(description=f"conv {h}x{w_}x{cin} 3x3 -> {cout}")
    x = b.input("x", "int8", (1, h, w_, cin), scale=0.02, zero_point=-3)
    w = rng.integers(-127, 127, size=(cout, 3, 3, cin // groups), endpoint=True).astype(np.int8)
    wt = b.constant("w", w, scale=rng.uniform(0.001, 0.01, cout).astype(np.float32), axis=0)
    b.output(b.node("conv2d", [x, wt], {"pads": [1, 1, 1, 1], "groups": groups}, scale=0.5, output="y"))
    xs = rng.integers(-128, 127, size=(1, h, w_, cin), endpoint=True).astype(np.int8)
    return b.build(), xs


def expected_output(model, acc, w_name, y_zero_point):
    """The qnnref profile's requantization written out independently:
    single rounding, ties up, (acc * M + 2^(t-1)) >> t with t = 31 - shift."""
    from qnnref.arith import combine_scales, quantize_multiplier
    g = model.graph
    x_name = model.inputs[0].name
    real = combine_scales([g.tensors[x_name].quant.scale, g.tensors[w_name].quant.scale],
                          g.tensors["y"].quant.scale, "float64")
    mult, shift = quantize_multiplier(real)
    t = 31 - shift.astype(np.int64)
    return np.clip(((acc * mult + (np.int64(1) << (t - 1))) >> t) + y_zero_point, -128, 127).astype(np.int8)


def check_gemm(model, x, w):
    """Validate before timing: exact int64 accumulators, then the profile's
    requantization, compared bit for bit with the model's output."""
    acc = (x.astype(np.int64) - 128) @ w.astype(np.int64) + model.graph.tensors["bias"].data.astype(np.int64)
    assert np.abs(acc).max() < 2**31
    assert np.array_equal(model.run(x)["y"], expected_output(model, acc, "w", 3))


def check_conv(model, x, groups):
    """Validate before timing: the exact accumulators summed tap by tap in
    int64 (no im2col, no BLAS), then the profile's requantization."""
    w = model.graph.tensors["w"].data.astype(np.int64)
    c_out, kh, kw, cg = w.shape
    n, h, wd, _ = x.shape
    xp = np.pad(x.astype(np.int64) + 3, ((0, 0), (1, 1), (1, 1), (0, 0)))   # x - zp_x, zero-padded
    acc = np.zeros((n, h, wd, c_out), np.int64)
    per_group = c_out // groups
    for p in range(kh):
        for q in range(kw):
            tap = xp[:, p:p + h, q:q + wd, :]
            for g in range(groups):
                acc[..., g * per_group:(g + 1) * per_group] += (
                    tap[..., g * cg:(g + 1) * cg] @ w[g * per_group:(g + 1) * per_group, p, q, :].T)
    assert np.array_equal(model.run(x)["y"], expected_output(model, acc, "w", 0))


def median_seconds(fn, repeat=7):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# -- pytest-benchmark ---------------------------------------------------------

def record_gops(benchmark, ops):
    """GOPS in the saved report (no stats when run with --benchmark-disable)."""
    if benchmark.stats is not None:
        benchmark.extra_info["GOPS"] = ops / benchmark.stats["median"] / 1e9


GEMMS = {"gemm_512": ((512, 512, 512), "int8"), "gemm_512_int4": ((512, 512, 512), "int4"),
         "gemv_4096": ((1, 4096, 4096), "int8")}


@pytest.mark.parametrize("case", GEMMS)
def test_gemm(benchmark, case):
    (m, k, n), w_dtype = GEMMS[case]
    model, x, w = gemm_model(m, k, n, np.random.default_rng(0), w_dtype)
    check_gemm(model, x, w)
    benchmark(model.run, x)
    record_gops(benchmark, 2 * m * n * k)


def test_conv_56x56x64(benchmark):
    rng = np.random.default_rng(0)
    model, x = conv_model(56, 56, 64, 64, rng)
    check_conv(model, x, 1)
    benchmark(model.run, x)
    record_gops(benchmark, 2 * 56 * 56 * 64 * 64 * 9)


def test_bundled_digits(benchmark):
    model = qnnref.load(qnnref.bundled_model("digits"))
    images, _ = qnnref.bundled_test_set("digits")
    x = model.quantize(model.inputs[0].name, images[:1])
    benchmark(model.run, x)


# -- plain script -----------------------------------------------------------------

def main() -> int:
    rng = np.random.default_rng(0)
    rows = []
    for name, (m, k, n), wd in [("GEMM 512^3 u8 x s8", (512, 512, 512), "int8"),
                                ("GEMM 512^3 u8 x s4", (512, 512, 512), "int4"),
                                ("GEMV 1x4096x4096", (1, 4096, 4096), "int8")]:
        model, x, w = gemm_model(m, k, n, rng, wd)
        check_gemm(model, x, w)
        t = median_seconds(lambda: model.run(x))
        rows.append((name, 2 * m * n * k / t / 1e9, t * 1e3))
    for name, args, groups in [("conv 1x56x56x64 3x3 64->64", (56, 56, 64, 64), 1),
                               ("depthwise 3x3 1x56x56x128", (56, 56, 128, 128), 128)]:
        model, x = conv_model(*args, rng, groups=groups)
        check_conv(model, x, groups)
        t = median_seconds(lambda: model.run(x))
        macs = 56 * 56 * args[3] * 9 * (args[2] // groups)
        rows.append((name, 2 * macs / t / 1e9, t * 1e3))
    model = qnnref.load(qnnref.bundled_model("digits"))
    images, _ = qnnref.bundled_test_set("digits")
    x = model.quantize(model.inputs[0].name, images[:1])
    t = median_seconds(lambda: model.run(x), repeat=51)
    rows.append(("bundled digits model, batch 1", float("nan"), t * 1e3))
    print(f"{'case':<32} {'GOPS':>8} {'ms':>9}   (reference backend, numpy {np.__version__})")
    for name, gops, ms in rows:
        print(f"{name:<32} {gops:>8.1f} {ms:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
