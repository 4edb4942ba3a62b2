"""Post-processing of predicted class maps."""

from __future__ import annotations

import cc3d
import numpy as np

from medseg.errors import ShapeError

__all__ = ["label_instances"]


def label_instances(labels: np.ndarray, *, connectivity: int | None = None) -> np.ndarray:
    """Instance ids from a class map: connected components of the foreground (class > 0).

    Parameters
    ----------
    labels : np.ndarray
        ``(Y, X)`` or ``(Z, Y, X)`` integer class map.
    connectivity : int, optional
        4 or 8 in 2D, 6, 18 or 26 in 3D; default 4 / 6 (faces only), which keeps
        objects that touch only at a corner apart.

    Returns
    -------
    np.ndarray
        uint32 map, 0 = background, objects numbered 1..N.
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ShapeError(f"label_instances takes a (Y, X) or (Z, Y, X) map, got shape {labels.shape}")
    connectivity = connectivity or (4 if labels.ndim == 2 else 6)
    return cc3d.connected_components(labels > 0, connectivity=connectivity).astype(np.uint32)
