"""Argument validation shared by the metric modules (private)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medseg.errors import DataValueError, ShapeError

__all__ = ["as_label_array", "check_pair", "check_spacing", "check_fraction"]


def as_label_array(array: np.ndarray, name: str) -> np.ndarray:
    """Return ``array`` as an integer label array, or raise naming ``name``.

    Booleans become ``uint8``; floats are accepted only when every value is integral
    (a float label map written by some tool), otherwise the caller gets the fix.
    """
    arr = np.asarray(array)
    if arr.dtype == bool:
        return arr.view(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.signedinteger) and arr.size and arr.min() < 0:
            raise DataValueError(
                f"{name} holds negative labels (min {arr.min()}); labels must be >= 0 "
                "(0 = background): shift or relabel them first"
            )
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or (arr.size and arr.min() < 0):
            raise DataValueError(
                f"{name} has dtype {arr.dtype} with non-integral, negative or non-finite values; "
                "pass a label map (threshold/argmax a probability map first)"
            )
        return arr.astype(np.int64)
    raise DataValueError(f"{name} has dtype {arr.dtype}; expected an integer or boolean label map")


def check_pair(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    ndims: tuple[int, ...] = (2, 3),
    names: tuple[str, str] = ("gt", "pred"),
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (reference, prediction) pair of label maps with equal shapes."""
    a = as_label_array(gt, names[0])
    b = as_label_array(pred, names[1])
    if a.shape != b.shape:
        raise ShapeError(
            f"{names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}; "
            "resample or crop the prediction to the reference grid"
        )
    if a.ndim not in ndims:
        raise ShapeError(
            f"{names[0]} must have {' or '.join(map(str, ndims))} spatial dimensions, got shape {a.shape}; "
            "drop channel/batch axes first"
        )
    return a, b


def check_spacing(spacing: float | Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    """Return spacing as a tuple of ``ndim`` positive floats (``None`` = 1.0 each)."""
    if spacing is None:
        return (1.0,) * ndim
    if np.isscalar(spacing):
        values = (float(spacing),) * ndim  # type: ignore[arg-type]
    else:
        values = tuple(float(s) for s in spacing)  # type: ignore[union-attr]
    if len(values) != ndim or not all(np.isfinite(v) and v > 0 for v in values):
        raise DataValueError(
            f"spacing must be one positive number or {ndim} positive numbers (array axis order), got {spacing}"
        )
    return values


def check_fraction(value: float, name: str, *, low: float = 0.0, high: float = 1.0) -> float:
    value = float(value)
    if not (low <= value <= high):
        raise DataValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value
