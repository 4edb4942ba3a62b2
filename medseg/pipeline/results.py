"""Atomic JSON/YAML result files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from medseg.io._common import atomic_output

__all__ = ["write_json", "write_yaml"]


def _clean(value: Any) -> Any:
    """NaN/inf become ``None`` so the JSON stays standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (NaN/inf as ``null``), atomically."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(_clean(data), indent=2, allow_nan=False) + "\n")
    return path


def write_yaml(path: str | Path, data: Any) -> Path:
    """Write ``data`` as YAML, atomically."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(yaml.safe_dump(_clean(data), sort_keys=False))
    return path
