"""HDF5 files (h5py), addressed as ``file.h5:/group/dataset``.

Axis order and geometry attributes follow :mod:`medseg.io._container`: a
single-channel volume is stored as ``(Z, Y, X)``, several channels as ``(C, Z, Y, X)``;
geometry lives in the dataset attributes ``resolution`` (spacing, ``(z, y, x)`` as in
CREMI), ``offset`` (origin) and ``direction``. A CREMI file
(``volumes/raw`` with ``resolution = (40, 4, 4)``) reads as ``(1, Z, Y, X)`` with
spacing ``(40, 4, 4)``.

Without a key, a file holding exactly one dataset reads that dataset; writing
without a key creates a fresh file with the dataset ``/data``. Writing with a key
keeps the file's other datasets (the file is copied, updated and swapped in
atomically).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from medseg.errors import DataNotFoundError, FormatError
from medseg.io._common import atomic_output, make_volume
from medseg.io._container import attrs_for, chunks_for, describe_path, layout_for, lazy_view
from medseg.io.lazy import LazyArray
from medseg.io.paths import require_file
from medseg.io.volume import Volume

__all__ = ["HDF5_SUFFIXES", "list_hdf5_datasets", "open_hdf5", "read_hdf5", "write_hdf5"]

logger = logging.getLogger(__name__)

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
DEFAULT_KEY = "data"


def read_hdf5(path: str | Path, key: str | None = None) -> Volume:
    """Read dataset ``key`` of an HDF5 file into a :class:`Volume` ``(C, [Z,] Y, X)``.

    Parameters
    ----------
    path : str or Path
        ``.h5``, ``.hdf5`` or ``.hdf`` file.
    key : str or None
        Dataset path inside the file (``"volumes/raw"``); optional when the file holds
        exactly one dataset.

    Raises
    ------
    DataNotFoundError
        The file or the key does not exist (the message lists the datasets).
    FormatError
        The file is not HDF5 or is corrupt.
    """
    with open_hdf5(path, key) as lazy:
        try:
            array = np.ascontiguousarray(lazy[...])
        except OSError as err:
            raise FormatError(f"cannot read {lazy.path}: {err} (is the file truncated?)") from err
        return make_volume(
            lazy.path,
            array,
            spacing=lazy.spacing,
            origin=lazy.origin,
            direction=lazy.direction,
            meta=lazy.meta,
            unit=lazy.unit,
        )


def open_hdf5(path: str | Path, key: str | None = None) -> LazyArray:
    """Open dataset ``key`` lazily; the file stays open until the result is closed."""
    path = Path(path)
    require_file(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise FormatError(f"cannot open HDF5 file {path}: {err} (is it truncated or not HDF5?)") from err
    try:
        dataset, key = _find_dataset(handle, key, path)
        where = describe_path(path, key)
        meta = {"source": str(path), "format": "hdf5", "key": key}
        return lazy_view(dataset, dataset.attrs, where, meta, close=handle.close)
    except BaseException:
        handle.close()
        raise


def write_hdf5(
    volume: Volume, path: str | Path, key: str | None = None, *, compression: str | None = "gzip"
) -> Path:
    """Write ``volume`` to dataset ``key`` (default ``/data``) of an HDF5 file, atomically.

    Parameters
    ----------
    volume : Volume
        Data and geometry.
    path : str or Path
        Destination file; created with its parent folders.
    key : str or None
        Dataset path. With a key an existing file keeps its other datasets; without
        one the file is replaced by a file holding only ``/data``.
    compression : str or None
        h5py compression filter (``"gzip"``, ``"lzf"`` or ``None``).

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    name = (key or DEFAULT_KEY).strip("/")
    data, axes = layout_for(volume)
    # HDF5 cannot fail cleanly on a full disk (segfaults at exit): check the space first
    with atomic_output(path, copy_existing=key is not None, expected_bytes=data.nbytes + (1 << 20)) as tmp:
        try:
            with h5py.File(tmp, "a") as handle:
                if name in handle:
                    del handle[name]
                dataset = handle.create_dataset(
                    name, data=data, chunks=chunks_for(data.shape, axes), compression=compression
                )
                dataset.attrs.update(attrs_for(volume, axes))
        except OSError as err:
            raise FormatError(f"cannot write dataset {name!r} to HDF5 file {path}: {err}") from err
    logger.debug("wrote %s %s to %s:/%s", data.shape, data.dtype, path, name)
    return path


def list_hdf5_datasets(handle: h5py.Group) -> list[str]:
    """Paths of all datasets below ``handle``, sorted."""
    names: list[str] = []

    def _visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            names.append("/" + name)

    handle.visititems(_visit)
    return sorted(names)


def _find_dataset(handle: h5py.File, key: str | None, path: Path) -> tuple[h5py.Dataset, str]:
    available = list_hdf5_datasets(handle)
    if key is None:
        if len(available) == 1:
            return handle[available[0]], available[0]
        listing = ", ".join(available) if available else "none"
        raise DataNotFoundError(
            f"HDF5 file {path} holds {len(available)} datasets ({listing}); "
            f"name one as '{path}:/group/dataset'"
        )
    name = "/" + key.strip("/")
    obj = handle.get(name)
    if not isinstance(obj, h5py.Dataset):
        what = "is a group, not a dataset" if isinstance(obj, h5py.Group) else "does not exist"
        listing = ", ".join(available) if available else "none"
        raise DataNotFoundError(f"key {name!r} {what} in HDF5 file {path}; available datasets: {listing}")
    return obj, name
