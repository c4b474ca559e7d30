// Microbenchmark of this core's exact int8 -> int32 multiply-accumulate rate
// (compare.py compiles and runs it; see benchmarks/README.md, "The ceiling").
//
//   clock     a chain of dependent 1-cycle register `add`s: cycles per second
//   vpmaddwd  AVX2, int16 pairs -> int32: 8 lanes x 2 MACs per instruction,
//             exact for sign-extended int8 (qnnref's AVX2 kernels' path)
//   vpdpbusd  AVX-VNNI (only with the argument "vnni"): u8 x s8 quads summed
//             into int32 without intermediate saturation: 8 lanes x 4 MACs
//
// Each throughput loop runs 12 independent accumulator chains, enough to hide
// the instruction latency (5 cycles) at 2 instructions per cycle.
// Build: g++ -O2 -o ceiling ceiling.cpp   (inline assembly: no -mavx2 needed)
// Prints one JSON object.
#include <cstdio>
#include <cstring>
#include <ctime>

// CPU time of this thread: time while another process has the core does not
// count (the machine is shared), unlike wall time.
static double seconds_now() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// 20 dependent register adds per iteration: 20 cycles per iteration. (Not
// `add $imm`: recent Intel cores fold immediate adds at rename.)
static double measure_clock_hz(long iterations) {
    long x = 0, y = 1;
    double t0 = seconds_now();
    for (long i = 0; i < iterations; ++i) {
        asm volatile(
            "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
            "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
            "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
            "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
            : "+r"(x) : "r"(y));
    }
    double t = seconds_now() - t0;
    return 20.0 * iterations / t;
}

#define TWELVE(op)                                                   \
    op " %%ymm15, %%ymm0, %%ymm0\n\t" op " %%ymm15, %%ymm1, %%ymm1\n\t"   \
    op " %%ymm15, %%ymm2, %%ymm2\n\t" op " %%ymm15, %%ymm3, %%ymm3\n\t"   \
    op " %%ymm15, %%ymm4, %%ymm4\n\t" op " %%ymm15, %%ymm5, %%ymm5\n\t"   \
    op " %%ymm15, %%ymm6, %%ymm6\n\t" op " %%ymm15, %%ymm7, %%ymm7\n\t"   \
    op " %%ymm15, %%ymm8, %%ymm8\n\t" op " %%ymm15, %%ymm9, %%ymm9\n\t"   \
    op " %%ymm15, %%ymm10, %%ymm10\n\t" op " %%ymm15, %%ymm11, %%ymm11\n\t"

#define CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
                 "xmm8", "xmm9", "xmm10", "xmm11", "xmm14", "xmm15"

// vpmaddwd: acc = madd(acc, b), 12 chains; returns instructions per second.
static double measure_vpmaddwd(long iterations) {
    asm volatile("vpxor %%ymm15, %%ymm15, %%ymm15\n\t" ::: "xmm15");
    double t0 = seconds_now();
    for (long i = 0; i < iterations; ++i) {
        asm volatile(TWELVE("vpmaddwd") ::: CLOBBERS);
    }
    double t = seconds_now() - t0;
    asm volatile("vzeroupper" ::: CLOBBERS);
    return 12.0 * iterations / t;
}

// vpdpbusd (VEX-encoded AVX-VNNI): acc += dot4(u8 ymm14, s8 ymm15).
static double measure_vpdpbusd(long iterations) {
    asm volatile("vpxor %%ymm15, %%ymm15, %%ymm15\n\tvpxor %%ymm14, %%ymm14, %%ymm14\n\t" ::: "xmm14", "xmm15");
    double t0 = seconds_now();
    for (long i = 0; i < iterations; ++i) {
        asm volatile(
            "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm0\n\t%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm1\n\t"
            "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm2\n\t%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm3\n\t"
            "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm4\n\t%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm5\n\t"
            "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm6\n\t%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm7\n\t"
            "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm8\n\t%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm9\n\t"
            "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm10\n\t%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm11\n\t"
            ::: CLOBBERS);
    }
    double t = seconds_now() - t0;
    asm volatile("vzeroupper" ::: CLOBBERS);
    return 12.0 * iterations / t;
}

int main(int argc, char** argv) {
    bool vnni = argc > 1 && std::strcmp(argv[1], "vnni") == 0;
    const long n = 20000000;
    measure_clock_hz(n / 4);                       // warm up (frequency ramp)
    double hz = 0, madd = 0, dpbusd = 0;
    for (int rep = 0; rep < 3; ++rep) {            // best of 3 (another process may share the core)
        double h = measure_clock_hz(n);
        double m = measure_vpmaddwd(n);
        if (h > hz) hz = h;
        if (m > madd) madd = m;
        if (vnni) {
            double d = measure_vpdpbusd(n);
            if (d > dpbusd) dpbusd = d;
        }
    }
    std::printf("{\"clock_ghz\": %.4f, \"vpmaddwd_per_s\": %.6g, \"vpmaddwd_per_cycle\": %.4f", hz / 1e9, madd,
                madd / hz);
    if (vnni) std::printf(", \"vpdpbusd_per_s\": %.6g, \"vpdpbusd_per_cycle\": %.4f", dpbusd, dpbusd / hz);
    std::printf("}\n");
    return 0;
}
