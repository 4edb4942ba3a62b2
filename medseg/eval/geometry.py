"""Geometry of scored files: a prediction must lie on its reference's grid.

Distances (HD, HD95, ASSD, surface Dice) are measured with the **reference's** voxel
spacing. A prediction whose shape, spacing, origin or direction differs from its
reference is refused instead of being scored on a wrong grid: it was resampled,
cropped or written with another image's header. ``--spacing`` on the command line
is only for files that carry no geometry (PNG/BMP/JPEG and TIFF without resolution
tags read with the default spacing 1, origin 0, identity direction).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medseg.errors import ConfigError, FormatError, ShapeError
from medseg.eval._checks import check_spacing
from medseg.io import Volume

__all__ = ["GEOMETRY_RTOL", "check_same_grid", "check_same_shape", "has_geometry", "scoring_spacing"]

GEOMETRY_RTOL = 1e-4
"""Relative tolerance on spacing, origin (relative to the larger of its magnitude and the
voxel size) and direction (unit vectors) when matching a prediction to its reference."""


def _close(got: Sequence[float], want: Sequence[float], scale: np.ndarray) -> bool:
    got_a, want_a = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return bool(np.all(np.abs(got_a - want_a) <= GEOMETRY_RTOL * scale))


def check_same_grid(pred: Volume, reference: Volume, pred_path: Path | str, ref_path: Path | str) -> None:
    """Raise unless ``pred`` has the reference's shape, spacing, origin and direction.

    Raises
    ------
    ShapeError
        Different spatial shapes.
    FormatError
        Spacing, origin or direction differ by more than :data:`GEOMETRY_RTOL` (relative).
    """
    check_same_shape(pred, reference, pred_path, ref_path)
    spacing = np.abs(np.asarray(reference.spacing))
    checks = (
        ("spacing", pred.spacing, reference.spacing, spacing),
        ("origin", pred.origin, reference.origin, np.maximum(np.abs(reference.origin), spacing.max())),
        ("direction", pred.direction.ravel(), reference.direction.ravel(), np.ones(reference.direction.size)),
    )
    for name, got, want, scale in checks:
        if not _close(got, want, scale):
            raise FormatError(
                f"prediction {pred_path} has {name} {_fmt(got)} but its reference {ref_path} has "
                f"{_fmt(want)} (tolerance {GEOMETRY_RTOL:g} relative); write the prediction with the "
                "reference's geometry (copy its header) or resample it onto the reference grid"
            )


def check_same_shape(pred: Volume, reference: Volume, pred_path: Path | str, ref_path: Path | str) -> None:
    """Raise a ShapeError naming both files unless ``pred`` has the reference's spatial shape.

    Formats scored by topology alone (ISBI 2012) check this and not the geometry, as the
    challenge's own scripts do.
    """
    if pred.spatial_shape != reference.spatial_shape:
        raise ShapeError(
            f"prediction {pred_path} has shape {pred.spatial_shape} but its reference {ref_path} has "
            f"{reference.spatial_shape}; resample or crop the prediction to the reference grid"
        )


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):.6g}" for v in np.asarray(values).ravel()) + ")"


def has_geometry(volume: Volume) -> bool:
    """Whether ``volume`` carries geometry other than the defaults (spacing 1, origin 0, identity)."""
    nd = volume.ndim
    return not (
        np.allclose(volume.spacing, 1.0)
        and np.allclose(volume.origin, 0.0)
        and np.allclose(volume.direction, np.eye(nd))
    )


def scoring_spacing(
    reference: Volume, spacing: float | Sequence[float] | None, ref_path: Path | str
) -> tuple[float, ...]:
    """Voxel size used for distances: the reference's, or ``spacing`` for files without geometry.

    Raises
    ------
    ConfigError
        ``spacing`` was given for a reference that carries its own, different spacing.
    """
    own = tuple(float(s) for s in reference.spacing)
    if spacing is None:
        return own
    given = tuple(float(s) for s in np.atleast_1d(spacing))
    if len(given) not in (1, reference.ndim):
        raise ConfigError(
            f"--spacing {_fmt(given)} has {len(given)} values but reference {ref_path} has {reference.ndim} "
            f"axes; give one value or {reference.ndim} (array axis order)"
        )
    given = check_spacing(given if len(given) > 1 else given[0], reference.ndim)
    if has_geometry(reference) and not _close(given, own, np.abs(np.asarray(own))):
        raise ConfigError(
            f"--spacing {_fmt(given)} contradicts the spacing {_fmt(own)} stored in reference {ref_path}; "
            "--spacing is only for files without geometry (PNG, BMP): drop it to use the file's spacing"
        )
    return given
