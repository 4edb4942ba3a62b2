"""Zarr stores (zarr v3 API; v2 stores read too), addressed as ``store.zarr:/group/array``.

Axis order and geometry attributes follow :mod:`medseg.io._container` (as in
:mod:`medseg.io.hdf5`): a single-channel volume is stored ``(Z, Y, X)``, several
channels ``(C, Z, Y, X)``; ``resolution``, ``offset`` and ``direction`` attributes in
array order. A path inside a store (``store.zarr/volumes/raw``) works like
``store.zarr:/volumes/raw``.

Without a key the store's root array is used, or its only array. Writing without a
key creates a store whose root is the array; writing with a key keeps the store's
other arrays (the store is copied, updated and swapped in; the swap of a directory is
two renames, so the destination is briefly absent but never half-written).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from medseg.errors import DataNotFoundError, FormatError
from medseg.io._common import atomic_output, make_volume
from medseg.io._container import attrs_for, chunks_for, describe_path, layout_for, lazy_view
from medseg.io.lazy import LazyArray
from medseg.io.paths import require_file
from medseg.io.volume import Volume

__all__ = ["ZARR_SUFFIXES", "list_zarr_arrays", "open_zarr", "read_zarr", "write_zarr"]

logger = logging.getLogger(__name__)

ZARR_SUFFIXES = (".zarr", ".ome.zarr")  # OME-Zarr label images read as their array "0"
_ZARR_ERRORS = (ValueError, OSError, TypeError, KeyError)


def read_zarr(path: str | Path, key: str | None = None) -> Volume:
    """Read array ``key`` of a Zarr store into a :class:`Volume` ``(C, [Z,] Y, X)``.

    Raises
    ------
    DataNotFoundError
        The store or the key does not exist (the message lists the arrays).
    FormatError
        The directory is not a Zarr store or its metadata/chunks are corrupt.
    """
    lazy = open_zarr(path, key)
    try:
        array = np.ascontiguousarray(lazy[...])
    except _ZARR_ERRORS as err:
        raise FormatError(f"cannot read Zarr array {lazy.path}: {err} (are chunks corrupt?)") from err
    return make_volume(
        lazy.path,
        array,
        spacing=lazy.spacing,
        origin=lazy.origin,
        direction=lazy.direction,
        meta=lazy.meta,
        unit=lazy.unit,
    )


def open_zarr(path: str | Path, key: str | None = None) -> LazyArray:
    """Open array ``key`` of a Zarr store lazily (chunks are read on indexing)."""
    path = Path(path)
    require_file(path)
    try:
        node = zarr.open(str(path), mode="r")
    except _ZARR_ERRORS as err:
        raise FormatError(f"cannot open Zarr store {path}: {err} (is it a Zarr store?)") from err
    array, key = _find_array(node, key, path)
    where = describe_path(path, key)
    return lazy_view(array, dict(array.attrs), where, {"source": str(path), "format": "zarr", "key": key})


def write_zarr(volume: Volume, path: str | Path, key: str | None = None) -> Path:
    """Write ``volume`` to a Zarr store (root array, or array ``key``), atomically.

    Returns
    -------
    Path
        The store directory.
    """
    path = Path(path)
    if path.name.lower().endswith(".ome.zarr"):
        raise FormatError(
            f"{path}: OME-Zarr label images are written by block-wise prediction "
            "(medseg predict --block-shape ... --ome-zarr); name the output .zarr for a plain store"
        )
    data, axes = layout_for(volume)
    attrs = attrs_for(volume, axes)
    chunks = chunks_for(data.shape, axes)
    with atomic_output(path, copy_existing=key is not None) as tmp:
        try:
            if key is None:
                array = zarr.open_array(
                    store=str(tmp), mode="w", shape=data.shape, dtype=data.dtype, chunks=chunks
                )
            else:
                root = zarr.open_group(str(tmp), mode="a")
                parent, _, name = key.strip("/").rpartition("/")
                group = root.require_group(parent) if parent else root
                create = getattr(group, "create_array", None) or group.create_dataset
                array = create(name, shape=data.shape, dtype=data.dtype, chunks=chunks, overwrite=True)
            array[...] = data
            array.attrs.update(json.loads(json.dumps(attrs)))
        except _ZARR_ERRORS as err:
            raise FormatError(f"cannot write {describe_path(path, key)}: {err}") from err
    logger.debug("wrote %s %s to %s", data.shape, data.dtype, describe_path(path, key))
    return path


def list_zarr_arrays(group: Any, prefix: str = "/") -> list[str]:
    """Paths of all arrays below a Zarr ``group``, sorted."""
    names = [prefix + name for name, _ in group.arrays()]
    for name, sub in group.groups():
        names.extend(list_zarr_arrays(sub, f"{prefix}{name}/"))
    return sorted(names)


def _find_array(node: Any, key: str | None, path: Path) -> tuple[Any, str | None]:
    if isinstance(node, zarr.Array):
        if key and key.strip("/"):
            raise DataNotFoundError(
                f"Zarr store {path} is a single array; it has no key {key!r}: drop the key"
            )
        return node, None
    available = list_zarr_arrays(node)
    listing = ", ".join(available) if available else "none"
    if key is None or not key.strip("/"):
        if len(available) == 1:
            return node[available[0].lstrip("/")], available[0]
        raise DataNotFoundError(
            f"Zarr store {path} holds {len(available)} arrays ({listing}); name one as '{path}:/group/array'"
        )
    name = "/" + key.strip("/")
    try:
        obj = node[name.lstrip("/")]
    except KeyError:
        obj = None
    if not isinstance(obj, zarr.Array):
        what = "is a group, not an array" if obj is not None else "does not exist"
        raise DataNotFoundError(f"key {name!r} {what} in Zarr store {path}; available arrays: {listing}")
    return obj, name
