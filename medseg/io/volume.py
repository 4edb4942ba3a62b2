"""The ``Volume`` type: an array with the geometry that places it in the world."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from medseg.errors import DataValueError, ShapeError
from medseg.io.units import normalize_unit

__all__ = ["Volume"]


@dataclass(frozen=True, eq=False)
class Volume:
    """An image or label map with its geometry.

    Axis order is channels first, then spatial axes slowest to fastest:
    ``(C, Z, Y, X)`` for volumes and ``(C, Y, X)`` for 2D images. All geometry is
    given in that same spatial axis order (``(Z, Y, X)`` or ``(Y, X)``), i.e. the
    reverse of ITK's ``(x, y, z)`` order, exactly as ``SimpleITK.GetArrayFromImage``
    lays out the data. World coordinates follow ITK/DICOM (LPS), also reversed.

    Parameters
    ----------
    array : np.ndarray
        Shape ``(C, *spatial)`` with 2 or 3 spatial axes.
    spacing : tuple of float
        Physical size of a voxel along each spatial axis (e.g. mm or nm), > 0.
    origin : tuple of float
        World position of the centre of voxel index 0.
    direction : np.ndarray
        ``(D, D)`` matrix; column ``a`` is the world unit vector of spatial axis ``a``.
    meta : dict
        Free-form provenance: ``source`` path, original dtype, format-specific keys.
    unit : str or None
        Unit of ``spacing`` and ``origin``: ``"nm"``, ``"um"``, ``"mm"`` or ``None`` when
        the file does not say (spacing then counts pixels). See :mod:`medseg.io.units`
        for how each format's metadata becomes a unit.

    The world position of voxel index ``i`` (spatial, array order) is
    ``origin + direction @ (spacing * i)``; see :attr:`affine`.
    """

    array: np.ndarray
    spacing: tuple[float, ...] | None = None
    origin: tuple[float, ...] | None = None
    direction: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    unit: str | None = None

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim not in (3, 4):
            raise ShapeError(
                f"Volume.array must have shape (C, Y, X) or (C, Z, Y, X), got shape {array.shape}; "
                "add a leading channel axis with array[None]"
            )
        nd = array.ndim - 1
        spacing = (1.0,) * nd if self.spacing is None else tuple(float(s) for s in self.spacing)
        origin = (0.0,) * nd if self.origin is None else tuple(float(o) for o in self.origin)
        direction = np.eye(nd) if self.direction is None else np.asarray(self.direction, dtype=np.float64)
        if len(spacing) != nd or len(origin) != nd or direction.shape != (nd, nd):
            raise ShapeError(
                f"geometry does not match {nd} spatial axes: spacing {spacing}, origin {origin}, "
                f"direction shape {direction.shape}"
            )
        if not all(np.isfinite(s) and s > 0 for s in spacing):
            raise DataValueError(f"spacing must be finite and > 0, got {spacing}")
        object.__setattr__(self, "unit", normalize_unit(self.unit))
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(C, *spatial)``, as :attr:`medseg.io.LazyArray.shape`."""
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape[1:])

    @property
    def ndim(self) -> int:
        """Number of spatial axes (2 or 3)."""
        return self.array.ndim - 1

    @property
    def num_channels(self) -> int:
        return int(self.array.shape[0])

    @property
    def affine(self) -> np.ndarray:
        """``(D+1, D+1)`` matrix mapping array-order voxel indices to world coordinates."""
        nd = self.ndim
        out = np.eye(nd + 1)
        out[:nd, :nd] = self.direction @ np.diag(self.spacing)
        out[:nd, nd] = self.origin
        return out

    def with_array(self, array: np.ndarray, **meta: Any) -> Volume:
        """Same geometry, new data (e.g. a prediction for this image)."""
        return replace(self, array=array, meta={**self.meta, **meta})

    def same_geometry(self, other: Volume, *, atol: float = 1e-6) -> bool:
        return (
            self.spatial_shape == other.spatial_shape
            and np.allclose(self.spacing, other.spacing, atol=atol)
            and np.allclose(self.origin, other.origin, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )
