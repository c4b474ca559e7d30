"""Build script: only the table of C++ extensions and their per-ISA flags.

Everything else (metadata, dependencies) is in pyproject.toml.

Kernels are compiled per instruction set in separate translation units, each
with its own flags, and chosen at run time by CPU detection, so the built
package runs on any x86-64 CPU: never -march=native. Float requantization is
compiled with -ffp-contract=off so float paths give identical bits on every
ISA (no fused multiply-add).

The table is empty until the kernels land (issue 3); the build then needs
only setuptools.
"""
from setuptools import setup

COMMON_FLAGS = ["-O2", "-std=c++17", "-ffp-contract=off", "-fno-fast-math"]
ISA_FLAGS = {
    "scalar": [],
    "avx2": ["-mavx2", "-mfma", "-mbmi2"],
}

# (module name, sources, isa) -- filled by the kernels issue.
EXTENSIONS: list[tuple[str, list[str], str]] = []


def ext_modules():
    if not EXTENSIONS:
        return []
    import numpy
    from Cython.Build import cythonize
    from setuptools import Extension

    exts = [
        Extension(name, sources, include_dirs=[numpy.get_include(), "qnnref/_kernels/include"],
                  language="c++", extra_compile_args=COMMON_FLAGS + ISA_FLAGS[isa])
        for name, sources, isa in EXTENSIONS
    ]
    return cythonize(exts, language_level=3)


setup(ext_modules=ext_modules())
