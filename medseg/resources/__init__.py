"""Files shipped inside the package: dataset manifests and example pipeline configs.

They are package data (installed with the wheel), found through
:mod:`importlib.resources`, so ``medseg fetch isbi2012`` and the example pipelines work
from any install, not only from a source checkout.

- ``manifests/<name>.yaml``: one per dataset, validated by :class:`medseg.data.Manifest`;
  the file stem is the dataset name used by ``medseg fetch`` and ``data.dataset``.
- ``pipelines/<name>.yaml``: example pipeline configs (``medseg train``/``medseg run``).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from medseg.errors import DataNotFoundError

__all__ = ["list_pipelines", "manifest_dir", "pipeline_dir", "shipped_pipeline"]


def _folder(name: str) -> Path:
    return Path(str(files("medseg.resources") / name))


def manifest_dir() -> Path:
    """The folder of the shipped dataset manifests."""
    return _folder("manifests")


def pipeline_dir() -> Path:
    """The folder of the shipped example pipelines."""
    return _folder("pipelines")


def list_pipelines() -> dict[str, Path]:
    """Name (file stem) to path of every shipped example pipeline."""
    return {p.stem: p for p in sorted(pipeline_dir().glob("*.yaml"))}


def shipped_pipeline(name: str) -> Path:
    """The path of the shipped example pipeline ``name`` (e.g. ``"isbi2012"``).

    Raises
    ------
    DataNotFoundError
        No such pipeline; the message lists the shipped ones.
    """
    known = list_pipelines()
    if name not in known:
        raise DataNotFoundError(f"no shipped pipeline {name!r}; shipped pipelines: {sorted(known)}")
    return known[name]
