"""Helpers shared by the format modules: atomic output, geometry (de)serialisation, checks.

Private to :mod:`medseg.io`; the format modules and :mod:`medseg.io.dispatch` use them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import DataValueError, FormatError, MedsegError
from medseg.io.paths import require_file
from medseg.io.volume import Volume

__all__ = [
    "atomic_output",
    "check_finite",
    "geometry_from_attrs",
    "geometry_to_attrs",
    "make_volume",
    "require_file",
]

logger = logging.getLogger(__name__)

_TMP_PREFIX = ".medseg-tmp-"


@contextlib.contextmanager
def atomic_output(path: Path, *, copy_existing: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` to; move it into place only on success.

    The temporary path lives in a fresh hidden directory next to ``path`` (same file
    system, so the final move is an atomic ``os.replace``) and has the same file name,
    so libraries that pick a writer by suffix, or write side files next to it
    (``.mhd`` + ``.raw``), behave as they would at the destination. On success every
    file in the temporary directory is moved next to ``path``, ``path`` itself last;
    a directory output (a Zarr store) replaces any old one. On any exception the
    temporary directory is removed and the destination is left untouched.

    Parameters
    ----------
    path : Path
        Final destination (file or directory).
    copy_existing : bool
        Copy an existing ``path`` into the temporary location first, for formats that
        add one array to a container (HDF5 file, Zarr store) keeping the others.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=path.parent))
    tmp_path = tmp_dir / path.name
    try:
        if copy_existing and path.exists():
            if path.is_dir():
                shutil.copytree(path, tmp_path)
            else:
                shutil.copy2(path, tmp_path)
        yield tmp_path
        if not tmp_path.exists():
            raise FormatError(f"writing {path} produced no output (nothing was written)")
        # side files first (e.g. the .raw of a .mhd), the named output last
        for side in sorted(p for p in tmp_dir.iterdir() if p.name != path.name):
            _move_into_place(side, path.parent / side.name)
        _move_into_place(tmp_path, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _move_into_place(src: Path, dest: Path) -> None:
    if src.is_dir() and dest.exists():
        # os.replace cannot replace a non-empty directory: swap via a side name
        old = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=dest.parent))
        os.replace(dest, old / dest.name)
        try:
            os.replace(src, dest)
        except OSError:
            os.replace(old / dest.name, dest)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
    elif dest.is_dir() and not src.is_dir():
        raise FormatError(f"cannot write file {dest}: a directory of that name exists; remove it first")
    else:
        os.replace(src, dest)


def check_finite(array: np.ndarray, path: Path | str) -> None:
    """Raise :class:`DataValueError` when a float/complex ``array`` holds NaN or inf."""
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.complexfloating)):
        return
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise DataValueError(
            f"{path} holds {bad} non-finite value(s) (NaN or inf) out of {array.size}; "
            "clean the file or read it with allow_nonfinite=True"
        )


def geometry_to_attrs(volume: Volume) -> dict[str, Any]:
    """JSON-friendly geometry: ``spacing``, ``origin`` (lists) and ``direction`` (nested lists).

    Python floats survive a JSON round trip exactly (``repr`` is shortest round-trip).
    """
    return {
        "spacing": [float(s) for s in volume.spacing],
        "origin": [float(o) for o in volume.origin],
        "direction": [[float(v) for v in row] for row in np.asarray(volume.direction)],
    }


def geometry_from_attrs(
    attrs: Mapping[str, Any], ndim: int, path: Path | str
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None, np.ndarray | None]:
    """Parse ``spacing``/``resolution``, ``origin``/``offset`` and ``direction`` attributes.

    Accepts the CREMI convention (``resolution`` and ``offset`` in array order
    ``(z, y, x)``), ``element_size_um`` (ilastik/Fiji) and medseg's own names. The
    direction may be stored flat (``D*D`` values, row-major) or nested.
    """

    def _vector(*names: str) -> tuple[float, ...] | None:
        for name in names:
            if name in attrs:
                value = np.asarray(attrs[name], dtype=np.float64).ravel()
                if value.size != ndim:
                    raise FormatError(
                        f"{path}: attribute {name!r} has {value.size} values, expected {ndim} "
                        f"(one per spatial axis, array order); fix or remove the attribute"
                    )
                return tuple(float(v) for v in value)
        return None

    spacing = _vector("spacing", "resolution", "element_size_um")
    origin = _vector("origin", "offset")
    direction = None
    if "direction" in attrs:
        value = np.asarray(attrs["direction"], dtype=np.float64)
        if value.size != ndim * ndim:
            raise FormatError(
                f"{path}: attribute 'direction' has {value.size} values, expected {ndim * ndim} "
                f"({ndim}x{ndim} matrix); fix or remove the attribute"
            )
        direction = value.reshape(ndim, ndim)
    return spacing, origin, direction


def make_volume(
    path: Path | str,
    array: np.ndarray,
    *,
    spacing: Sequence[float] | None = None,
    origin: Sequence[float] | None = None,
    direction: np.ndarray | None = None,
    meta: dict[str, Any] | None = None,
    unit: str | None = None,
) -> Volume:
    """Build a :class:`Volume`, turning invalid file geometry into a :class:`FormatError`."""
    try:
        return Volume(
            array, spacing=spacing, origin=origin, direction=direction, meta=dict(meta or {}), unit=unit
        )
    except MedsegError as err:
        raise FormatError(f"{path}: cannot build a volume from the file's data and geometry: {err}") from err
