"""Present ONNX Runtime with an older x86 CPU, at native speed: CPUID masking.

What ONNX Runtime computes depends on the CPU it runs on: MLAS picks its
kernels from CPUID when it is loaded (u8 x s8 products: saturating
VPMADDUBSW pairs on AVX2 and AVX-512, exact VPDPBUSD with VNNI). To check a
profile of another CPU here, the worker process that runs ONNX Runtime
hides CPU features from CPUID before importing onnxruntime:
``cpuidmask.c`` (next to this file) uses Linux's CPUID faulting
(``arch_prctl(ARCH_SET_CPUID, 0)``) so that every CPUID instruction of the
process traps; a signal handler executes it and clears the hidden feature
bits. MLAS then takes the code paths of that older CPU -- its real code, on
the real hardware.

The C file is compiled on first use with the system C compiler (``$CC``,
else ``cc``, ``gcc`` or ``clang``) into a cache directory
(``$QNNREF_CACHE_DIR``, else ``$XDG_CACHE_HOME/qnnref``, else
``~/.cache/qnnref``; the temporary directory when that is not writable),
once per source version.

Needs x86-64 Linux, a CPU (or hypervisor) with CPUID faulting
(``cpuid_fault`` in /proc/cpuinfo: Intel since Ivy Bridge, AMD Zen 3 and
later) and a C compiler; :func:`unavailable` says which is missing.
``--emulate-cpu`` (qemu) is the slow alternative.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["CPU_MODELS", "CpuMaskUnavailable", "unavailable", "library_path", "enable", "hides_vnni"]

SOURCE = Path(__file__).resolve().with_name("cpuidmask.c")

#: ``--cpu`` choices: the features hidden from CPUID (cpuidmask.c's names)
CPU_MODELS = {
    "native": "",
    # MLAS's AVX2 kernels: u8 x s8 pairs summed with int16 saturation
    "avx2": "avx512,vnni,amx",
    # AVX-512 without VNNI (Skylake-SP): MLAS's AVX512BW kernels, saturating too
    "avx512": "vnni,amx",
}

#: the environment variables the worker reads (set by the runner)
ENV_FEATURES = "QNNREF_CPUID_MASK"
ENV_LIBRARY = "QNNREF_CPUID_MASK_LIB"


class CpuMaskUnavailable(Exception):
    """CPUID masking cannot work here; the message says why."""


def hides_vnni(features: str) -> bool:
    """Whether hiding ``features`` leaves ONNX Runtime without VNNI and AMX."""
    hidden = set(features.split(","))
    return "vnni" in hidden and "amx" in hidden


def _platform_problem() -> str:
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"CPUID masking needs x86-64 Linux (this is {sys.platform} on {platform.machine()})"
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError as e:
        return f"cannot read /proc/cpuinfo: {e}"
    if "cpuid_fault" not in flags:
        return ("this CPU (or its hypervisor) has no CPUID faulting ('cpuid_fault' is not in "
                "/proc/cpuinfo), so CPUID cannot be masked; use --emulate-cpu (qemu) instead")
    return ""


def _compiler() -> list[str] | None:
    cc = os.environ.get("CC")
    if cc:
        return cc.split()
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def _cache_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("QNNREF_CACHE_DIR"):
        dirs.append(Path(os.environ["QNNREF_CACHE_DIR"]))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    dirs.append(Path(base) / "qnnref")
    dirs.append(Path(tempfile.gettempdir()) / f"qnnref-{os.getuid()}")
    return dirs


def library_path() -> Path:
    """The compiled shim (compiled now if needed). Raises CpuMaskUnavailable."""
    why = _platform_problem()
    if why:
        raise CpuMaskUnavailable(why)
    source = SOURCE.read_bytes()
    cc = _compiler()
    if cc is None:
        raise CpuMaskUnavailable("CPUID masking compiles a small C file, and no C compiler was found "
                                 "($CC, cc, gcc, clang)")
    stamp = hashlib.sha256(source + " ".join(cc).encode()).hexdigest()[:16]
    name = f"cpuidmask-{stamp}.so"
    for d in _cache_dirs():
        if (d / name).is_file():
            return d / name
    errors = []
    for d in _cache_dirs():
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            errors.append(f"{d}: {e}")
            continue
        if not os.access(d, os.W_OK):
            errors.append(f"{d}: not writable")
            continue
        so = d / name
        tmp = d / f".{name}.{os.getpid()}.tmp"
        try:
            r = subprocess.run([*cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(SOURCE)],
                               capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CpuMaskUnavailable(f"cannot run the C compiler {' '.join(cc)}: {e}") from None
        if r.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise CpuMaskUnavailable(f"compiling {SOURCE.name} with {' '.join(cc)} failed: "
                                     f"{r.stderr.strip()[-800:]}")
        os.replace(tmp, so)                    # atomic: concurrent compilers agree
        return so
    raise CpuMaskUnavailable("no writable cache directory for the CPUID shim: " + "; ".join(errors))


def unavailable() -> str:
    """'' when CPUID masking works here (the shim is compiled now if needed),
    else the reason it does not."""
    try:
        library_path()
    except CpuMaskUnavailable as e:
        return str(e)
    return ""


def enable(features: str, library: str | os.PathLike | None = None) -> None:
    """Hide ``features`` (e.g. ``"avx512,vnni,amx"``) from CPUID in this
    process and the threads it starts from now on. Call it before importing
    onnxruntime. Raises CpuMaskUnavailable."""
    path = Path(library) if library else library_path()
    lib = ctypes.CDLL(str(path))
    lib.cpuidmask_enable.argtypes = [ctypes.c_char_p]
    lib.cpuidmask_enable.restype = ctypes.c_int
    if lib.cpuidmask_enable(features.encode()) != 0:
        raise CpuMaskUnavailable("arch_prctl(ARCH_SET_CPUID) failed: the kernel refused CPUID faulting "
                                 f"({_platform_problem() or 'reason unknown'})")
