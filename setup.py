"""Build script: the C++ extension, its sources and their per-ISA flags.

Everything else (metadata, dependencies) is in pyproject.toml.

Kernels are compiled per instruction set in separate translation units, each
with its own flags, and chosen at run time by CPU detection, so the built
package runs on any x86-64 CPU: never -march=native. A source file named
``*_avx2.cpp`` is compiled with ISA_FLAGS["avx2"]; every other file with the
baseline flags only (x86-64: SSE2). Everything is compiled with
-ffp-contract=off and -fno-fast-math so that float requantization gives
identical bits on every ISA (no fused multiply-add, no reassociation).
"""
import glob
import os
import sys

import setuptools
from setuptools import setup
from setuptools.command.build_ext import build_ext

# pyproject.toml's licence metadata is PEP 639 (an SPDX string and license-files), which older
# setuptools reject with a schema dump; `pip install` and `python -m build` fetch a recent one
# (build-system.requires), but `python setup.py build_ext --inplace` uses the one installed.
if int(setuptools.__version__.split(".")[0]) < 77:
    sys.exit(f"qnnref's build needs setuptools >= 77 (PEP 639 licence metadata); this Python has "
             f"{setuptools.__version__}: python -m pip install 'setuptools>=77'")

COMMON_FLAGS = ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-fno-math-errno",
                "-Wall", "-Wno-unused-function", "-Wno-sign-compare", "-pthread"]
ISA_FLAGS = {
    "scalar": [],
    "avx2": ["-mavx2", "-mfma", "-mbmi2"],
}
KERNEL_DIR = os.path.join("qnnref", "_kernels")

def isa_of(source: str) -> str:
    stem = os.path.splitext(os.path.basename(source))[0]
    return "avx2" if stem.endswith("_avx2") else "scalar"


def kernel_sources() -> list[str]:
    """Every source, baseline ones first. Order matters for safety: an inline
    function or template that baseline and AVX2 code both instantiate (e.g.
    std::vector<std::thread>::reserve) is linked once, and the GNU linker
    keeps the first copy it sees: baseline objects first means the copy kept
    runs on any x86-64 CPU. (qnnref's own header functions are ``static
    inline``, so they are never shared; tests/kernels/test_isa_safety.py
    checks that no shared symbol holds AVX instructions.)"""
    sources = sorted(glob.glob(os.path.join(KERNEL_DIR, "src", "*.cpp")))
    return ([os.path.join(KERNEL_DIR, "_ext.pyx")] + [s for s in sources if isa_of(s) == "scalar"]
            + [s for s in sources if isa_of(s) == "avx2"])


# (module name, sources): one extension; each source's ISA is its name's suffix.
EXTENSIONS = [("qnnref._kernels._ext", kernel_sources())]


class BuildExtPerIsa(build_ext):
    """build_ext that adds ISA_FLAGS[isa_of(source)] to each source's compile."""

    def build_extensions(self):
        compiler = self.compiler
        original = compiler._compile

        def _compile(obj, src, ext, cc_args, extra_postargs, pp_opts):
            flags = list(extra_postargs or []) + ISA_FLAGS[isa_of(src)]
            return original(obj, src, ext, cc_args, flags, pp_opts)

        compiler._compile = _compile
        try:
            super().build_extensions()
        finally:
            compiler._compile = original


def ext_modules():
    if sys.platform == "win32" or os.environ.get("QNNREF_NO_KERNELS"):
        return []  # reference backend only
    import numpy
    from Cython.Build import cythonize
    from setuptools import Extension

    exts = [
        Extension(name, sources, include_dirs=[numpy.get_include(), os.path.join(KERNEL_DIR, "include")],
                  language="c++", extra_compile_args=COMMON_FLAGS, extra_link_args=["-pthread"],
                  depends=sorted(glob.glob(os.path.join(KERNEL_DIR, "include", "qnnref", "*.h"))
                                 + glob.glob(os.path.join(KERNEL_DIR, "*.pxi"))))
        for name, sources in EXTENSIONS
    ]
    return cythonize(exts, language_level=3, compiler_directives={"boundscheck": False, "wraparound": False})


setup(ext_modules=ext_modules(), cmdclass={"build_ext": BuildExtPerIsa})
