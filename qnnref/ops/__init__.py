"""The numpy reference operators: one module per operator (spec/ops/NAME.md).

Importing this package imports every operator module, which registers it in
``registry.OPS``.
"""
import importlib
import pkgutil

from .registry import OPS, Op, get_op  # noqa: F401

for _m in pkgutil.iter_modules(__path__):
    if not _m.name.startswith("_") and _m.name != "registry":
        importlib.import_module(f"{__name__}.{_m.name}")


def operator_names() -> list[str]:
    """Names of every registered operator, sorted."""
    return sorted(OPS)
