/* Make this process's CPUID instruction report a CPU without some features,
 * so that ONNX Runtime (MLAS chooses its kernels from CPUID once, when it is
 * loaded) runs the kernels of an older CPU at native speed. Used by
 * `qnnref conform onnxruntime --cpu avx2` (qnnref/conform/cpumask.py, which
 * compiles this file with the system C compiler on first use) and by
 * tests/profiles, to run ORT's AVX2-without-VNNI u8 x s8 path on a VNNI
 * machine.
 *
 * How: Linux's ARCH_SET_CPUID(0) makes CPUID fault (SIGSEGV) in this thread
 * and the threads it creates later (execve resets it); the handler re-enables
 * CPUID, executes it, clears the masked feature bits, re-arms the fault and
 * skips the two-byte instruction. Needs x86-64 Linux and a CPU with CPUID
 * faulting ("cpuid_fault" in /proc/cpuinfo); cpuidmask_enable returns -1
 * otherwise. Load it (ctypes) and call it before importing onnxruntime.
 *
 * Masked bits: "avx512" clears leaf 7 AVX-512 F/DQ/IFMA/PF/ER/CD/BW/VL,
 * VBMI/VBMI2/VNNI/BITALG/VPOPCNTDQ/FP16 and leaf 7.1 AVX512_BF16; "vnni"
 * clears AVX512_VNNI (7.0 ECX 11), AVX-VNNI (7.1 EAX 4) and AVX-VNNI-INT8/
 * -NE-CONVERT (7.1 EDX 4, 5); "amx" clears AMX-BF16/TILE/INT8 (7.0 EDX 22,
 * 24, 25) and AMX-FP16 (7.1 EAX 21).
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static int mask_avx512, mask_vnni, mask_amx;

static long set_cpuid(unsigned long enabled) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled); }

static void on_fault(int sig, siginfo_t *info, void *vctx) {
    (void)sig; (void)info;
    ucontext_t *ctx = (ucontext_t *)vctx;
    greg_t *g = ctx->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) {       /* not CPUID: a real fault */
        signal(SIGSEGV, SIG_DFL);
        return;                                  /* re-executes and dies normally */
    }
    unsigned leaf = (unsigned)g[REG_RAX], sub = (unsigned)g[REG_RCX], a, b, c, d;
    set_cpuid(1);
    __cpuid_count(leaf, sub, a, b, c, d);
    set_cpuid(0);
    if (leaf == 7 && sub == 0) {
        if (mask_avx512) {
            b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
                   (1u << 30) | (1u << 31));
            c &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
            d &= ~(1u << 23);
        }
        if (mask_vnni) c &= ~(1u << 11);
        if (mask_amx) d &= ~((1u << 22) | (1u << 24) | (1u << 25));
    }
    if (leaf == 7 && sub == 1) {
        if (mask_avx512) a &= ~(1u << 5);
        if (mask_vnni) { a &= ~(1u << 4); d &= ~((1u << 4) | (1u << 5)); }
        if (mask_amx) a &= ~(1u << 21);
    }
    g[REG_RAX] = a; g[REG_RBX] = b; g[REG_RCX] = c; g[REG_RDX] = d;
    g[REG_RIP] += 2;
}

int cpuidmask_enable(const char *features) {
    mask_avx512 = strstr(features, "avx512") != NULL;
    mask_vnni = strstr(features, "vnni") != NULL;
    mask_amx = strstr(features, "amx") != NULL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSEGV, &sa, NULL) != 0) return -1;
    return set_cpuid(0) == 0 ? 0 : -1;
}
