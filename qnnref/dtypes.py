"""The tensor element types of qnnref and their properties.

In memory every tensor is an ordinary numpy array. The 4-bit types have no
numpy dtype: an ``int4`` tensor is held unpacked as ``np.int8`` with values in
[-8, 7] and a ``uint4`` tensor as ``np.uint8`` with values in [0, 15]. Only
the file format packs them, two per byte, low nibble first (spec/format.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ValidationError


@dataclass(frozen=True)
class DType:
    name: str
    numpy: np.dtype      # the numpy dtype of the in-memory array
    bits: int            # bits per element in a file
    is_int: bool
    min: int | None      # value range of integer types
    max: int | None

    def __repr__(self) -> str:
        return self.name


def _int(name, np_dtype, bits, lo, hi):
    return DType(name, np.dtype(np_dtype), bits, True, lo, hi)


DTYPES: dict[str, DType] = {
    "int4": _int("int4", np.int8, 4, -8, 7),
    "uint4": _int("uint4", np.uint8, 4, 0, 15),
    "int8": _int("int8", np.int8, 8, -128, 127),
    "uint8": _int("uint8", np.uint8, 8, 0, 255),
    "int16": _int("int16", np.int16, 16, -(2**15), 2**15 - 1),
    "int32": _int("int32", np.int32, 32, -(2**31), 2**31 - 1),
    "int64": _int("int64", np.int64, 64, -(2**63), 2**63 - 1),
    "float16": DType("float16", np.dtype(np.float16), 16, False, None, None),
    "float32": DType("float32", np.dtype(np.float32), 32, False, None, None),
}

#: integer dtypes that may carry quantization (activations and weights)
QUANT_DTYPES = ("int4", "uint4", "int8", "uint8", "int16")


def get(name: str, where: str = "") -> DType:
    """The DType called ``name``; a ValidationError naming ``where`` if none."""
    try:
        return DTYPES[name]
    except (KeyError, TypeError):
        known = ", ".join(DTYPES)
        prefix = f"{where}: " if where else ""
        raise ValidationError(f"{prefix}unknown dtype {name!r} (known: {known})") from None


def check_array(arr: np.ndarray, dtype: DType) -> bool:
    """True when ``arr`` is a valid in-memory array of ``dtype``: the right
    numpy dtype and, for the 4-bit types, every value in range."""
    if arr.dtype != dtype.numpy:
        return False
    if dtype.bits == 4 and arr.size:
        return bool(arr.min() >= dtype.min and arr.max() <= dtype.max)
    return True
