"""Names a package exports from its modules, imported on first use (so importing the package is cheap)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any


def lazy_attribute(package: str, exports: Mapping[str, str], name: str) -> Any:
    """The module ``__getattr__`` of ``package``: import ``name`` from ``exports[name]`` once and keep it."""
    if name not in exports:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(exports[name]), name)
    setattr(sys.modules[package], name, value)
    return value


def lazy_dir(package: str, exports: Mapping[str, str]) -> list[str]:
    """The module ``__dir__`` of ``package``: what it holds and what it exports."""
    return sorted({*vars(sys.modules[package]), *exports})
