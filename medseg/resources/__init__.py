"""The shipped dataset manifests and example pipelines, from a checkout or an installed wheel.

In the source tree they live at the top level, where users read and edit them:
``data_manifests/<name>.yaml`` (one per dataset, validated by
:class:`medseg.data.Manifest`; the file stem is the name ``medseg fetch`` takes) and
``pipelines/<name>.yaml`` (example pipeline configs for ``medseg train``/``medseg run``).
A wheel carries copies as package data, ``medseg/resources/manifests`` and
``medseg/resources/pipelines`` (``setup.py``'s build hook puts them there), so the
functions below find them from any install: the checkout's folders when medseg runs from
a source tree (editable installs included), the package data otherwise.
``published.yaml`` (the numbers ``report.md`` compares with) is package data in both.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from medseg.errors import DataNotFoundError

__all__ = ["list_pipelines", "manifest_dir", "pipeline_dir", "shipped_pipeline"]

#: Top-level folder of the source tree -> its name inside the installed package.
_INSTALLED_AS = {"data_manifests": "manifests", "pipelines": "pipelines"}


def _folder(name: str) -> Path:
    """The checkout's top-level ``name`` folder when running from a source tree, else the package data."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "setup.cfg").is_file() and (checkout / name).is_dir():
        return checkout / name
    return Path(str(files("medseg.resources") / _INSTALLED_AS[name]))


def manifest_dir() -> Path:
    """The folder of the shipped dataset manifests (``data_manifests/``)."""
    return _folder("data_manifests")


def pipeline_dir() -> Path:
    """The folder of the shipped example pipelines (``pipelines/``)."""
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
