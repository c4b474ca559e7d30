"""The built extension must run on x86-64 CPUs without AVX2.

AVX2 code lives in its own translation units (src/*_avx2.cpp) and is only
called after CPU detection. The remaining risk is the linker: an inline
function or template instantiated both in a baseline and in an AVX2 unit is
a weak (COMDAT) symbol kept once; if the copy compiled with -mavx2 were
kept, baseline code would execute AVX instructions. This test disassembles
the extension and checks that no weak function contains a VEX/EVEX-encoded
instruction (mnemonics starting with "v")."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from qnnref import _kernels

pytestmark = [
    pytest.mark.skipif(not _kernels.available(), reason="the C++ kernels are not built"),
    pytest.mark.skipif(not (shutil.which("nm") and shutil.which("objdump")),
                       reason="binutils (nm, objdump) not installed"),
]


def test_no_weak_symbol_holds_avx_code():
    so = _kernels._ext.__file__
    weak = set()
    for line in subprocess.run(["nm", "--defined-only", so], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("W", "V", "u"):
            weak.add(parts[2])
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", so], capture_output=True, text=True,
                         check=True).stdout
    offenders: dict[str, int] = {}
    current = None
    for line in dis.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            current = m.group(1)
            continue
        if current in weak:
            fields = line.split("\t")
            if len(fields) >= 3:
                mnemonic = fields[2].strip()
                if re.match(r"v[a-z]", mnemonic) and not mnemonic.startswith(("verr", "verw")):
                    offenders[current] = offenders.get(current, 0) + 1
    assert weak, "expected some weak symbols (e.g. std::vector<std::thread> members)"
    assert not offenders, ("weak (shared) functions compiled with AVX instructions; a CPU without AVX2 "
                           f"would crash in them: {sorted(offenders)[:10]}")
