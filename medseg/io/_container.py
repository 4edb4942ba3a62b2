"""Axis layout and geometry attributes shared by the HDF5 and Zarr formats.

A single-channel volume is stored spatial-only (``(Z, Y, X)`` / ``(Y, X)``, as CREMI
and most EM tools expect); a multi-channel one as ``(C, Z, Y, X)`` / ``(C, Y, X)``.
The attribute ``medseg_axes`` names the stored layout; without it a 2D/3D array is
read as spatial-only (single channel) and a 4D array as ``(C, Z, Y, X)`` (a 3D array
is therefore never read as ``(C, Y, X)`` unless ``medseg_axes`` says so).

Geometry attributes, all in array order ``(z, y, x)``: ``resolution`` (spacing, the
CREMI name; ``spacing`` and ``element_size_um`` are read too), ``offset`` (origin,
CREMI; ``origin`` is read too), ``direction`` (``D x D``) and ``unit`` (``nm``, ``um``,
``mm``; absent when unknown, ``um`` implied by ``element_size_um``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import DataValueError, FormatError
from medseg.io._common import geometry_from_attrs
from medseg.io.lazy import LazyArray
from medseg.io.units import convert_spacing
from medseg.io.volume import Volume

__all__ = [
    "AXES_ATTR",
    "UNIT_ATTR",
    "attrs_for",
    "chunks_for",
    "geometry_of",
    "layout_for",
    "lazy_view",
    "plan_layout",
]

AXES_ATTR = "medseg_axes"
UNIT_ATTR = "unit"
_DEFAULT_AXES = {2: "YX", 3: "ZYX", 4: "CZYX"}


def plan_layout(attrs: Mapping[str, Any], shape: tuple[int, ...], where: str) -> tuple[list[int | None], int]:
    """Output-axis plan (see :class:`~medseg.io.lazy.LazyArray`) and number of spatial axes."""
    axes = attrs.get(AXES_ATTR)
    if isinstance(axes, bytes):
        axes = axes.decode()
    if axes is None:
        axes = _DEFAULT_AXES.get(len(shape))
        if axes is None:
            raise FormatError(
                f"{where} has shape {shape}; medseg reads 2D (Y, X), 3D (Z, Y, X) or 4D (C, Z, Y, X) "
                f"arrays; set the attribute {AXES_ATTR!r} (e.g. 'CYX') to describe other layouts"
            )
    axes = str(axes).upper()
    if len(axes) != len(shape) or set(axes) - set("CZYX") or "Y" not in axes or "X" not in axes:
        raise FormatError(f"{where}: attribute {AXES_ATTR}={axes!r} does not describe shape {shape}")
    spatial = "ZYX" if "Z" in axes else "YX"
    return [axes.index(c) if c in axes else None for c in "C" + spatial], len(spatial)


def layout_for(volume: Volume) -> tuple[np.ndarray, str]:
    """The array to store and its axes string (spatial-only when single-channel)."""
    spatial = "ZYX"[-volume.ndim :]
    if volume.num_channels == 1:
        return volume.array[0], spatial
    return volume.array, "C" + spatial


def attrs_for(volume: Volume, axes: str) -> dict[str, Any]:
    """Attributes written next to the data: layout, ``resolution``, ``offset``, ``direction``, ``unit``."""
    attrs: dict[str, Any] = {
        AXES_ATTR: axes,
        "resolution": [float(s) for s in volume.spacing],
        "offset": [float(o) for o in volume.origin],
        "direction": [[float(v) for v in row] for row in volume.direction],
    }
    if volume.unit is not None:
        attrs[UNIT_ATTR] = volume.unit
    return attrs


def unit_of(attrs: Mapping[str, Any]) -> str | None:
    """The ``unit`` attribute as stored (``"um"`` when only ``element_size_um`` gives the spacing)."""
    unit = attrs.get(UNIT_ATTR)
    if isinstance(unit, bytes):
        unit = unit.decode()
    if unit is None:
        return "um" if "element_size_um" in attrs and not {"spacing", "resolution"} & set(attrs) else None
    return str(unit)


def geometry_of(attrs: Mapping[str, Any], ndim: int, where: str) -> dict[str, Any]:
    spacing, origin, direction = geometry_from_attrs(attrs, ndim, where)
    return {"spacing": spacing, "origin": origin, "direction": direction}


def chunks_for(shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
    """Chunk shape suited to block reads: whole channels, 32-slice by 128x128 blocks in 3D."""
    limits = {"C": 1 << 30, "Z": 32, "Y": 128 if "Z" in axes else 512, "X": 128 if "Z" in axes else 512}
    return tuple(max(1, min(n, limits[a])) for n, a in zip(shape, axes, strict=True))


def describe_path(path: Path, key: str | None) -> str:
    return f"{path}:{key}" if key else str(path)


def lazy_view(
    array: Any,
    attrs: Mapping[str, Any],
    where: str,
    meta: dict[str, Any],
    *,
    close: Any = None,
) -> LazyArray:
    """A :class:`LazyArray` over an HDF5 dataset or Zarr array, laid out and placed by its attributes."""
    plan, ndim = plan_layout(attrs, tuple(array.shape), where)
    geometry = geometry_of(attrs, ndim, where)
    spacing_attr = next((k for k in ("spacing", "resolution", "element_size_um") if k in attrs), None)
    stored_unit = unit_of(attrs)
    try:  # a unit other than nm/um/mm (e.g. "cm") converts spacing and origin
        spacing, unit = convert_spacing(geometry["spacing"] or (1.0,) * ndim, stored_unit)
        origin, _ = convert_spacing(geometry["origin"] or (0.0,) * ndim, stored_unit)
    except DataValueError as err:
        raise FormatError(f"{where}: attribute {UNIT_ATTR}={stored_unit!r}: {err}") from err
    if spacing_attr is None:  # no spacing stored: pixels, whatever a unit attribute says
        spacing, unit = (1.0,) * ndim, None
    return LazyArray(
        array,
        plan,
        spacing=spacing,
        origin=origin,
        direction=np.eye(ndim) if geometry["direction"] is None else geometry["direction"],
        path=where,
        meta={**meta, "spacing_attr": spacing_attr},
        unit=unit,
        close=close,
    )
