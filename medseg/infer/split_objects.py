"""Objects much larger than the training labels' typical object, split by its size.

A model trained on a few annotated objects merges some touching objects it was never
shown apart. The data fingerprint knows the typical object (median voxel count and
extent per axis, :mod:`medseg.pipeline.fingerprint`), so an object of more than
``split_size`` voxels is flooded again from the peaks of its own distance transform,
the peaks at least 0.3 of the typical extent apart (0.6 of its radius): the shape
prior of the classic distance watershed (Malpica et al., "Applying watershed
algorithms to the segmentation of clustered nuclei", Cytometry 28, 1997), applied
only where the learned objects are implausibly large. Each piece gets a new id.
"""

from __future__ import annotations

from collections.abc import Sequence

import fastremap
import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

from medseg.errors import ShapeError

__all__ = ["SEED_SPACING", "split_large_objects"]

#: Minimum distance between the seeds of one split object, as a share of the typical extent.
SEED_SPACING = 0.3


def split_large_objects(instances: np.ndarray, split_size: int, extent: Sequence[float]) -> np.ndarray:
    """Split every object of more than ``split_size`` voxels at its distance-transform peaks.

    Parameters
    ----------
    instances : np.ndarray
        ``(Y, X)`` or ``(Z, Y, X)`` integer ids, 0 = background.
    split_size : int
        Objects with more voxels are split; 0 splits none.
    extent : sequence of float
        The typical object's extent per axis in voxels. The distance transform is taken
        in units of it (an anisotropic stack's objects count as round) and seeds are at
        least ``SEED_SPACING`` times its smallest entry apart.

    Returns
    -------
    np.ndarray
        The ids, with each split object's first piece keeping its id and the others
        numbered after the largest id (same dtype when it holds them, else int64).

    Examples
    --------
    >>> two = np.zeros((20, 40), int)
    >>> yy, xx = np.ogrid[:20, :40]
    >>> two[((yy - 10) ** 2 + (xx - 11) ** 2 < 64) | ((yy - 10) ** 2 + (xx - 27) ** 2 < 64)] = 1
    >>> int(split_large_objects(two, 250, (16, 16)).max())
    2
    """
    instances = np.asarray(instances)
    if len(extent) != instances.ndim or min(extent, default=0) <= 0:
        raise ShapeError(
            f"split_large_objects needs a positive extent per axis of the {instances.ndim}D ids, got {tuple(extent)}"
        )
    if split_size <= 0 or not instances.any():
        return instances
    ids, counts = fastremap.unique(instances, return_counts=True)
    large = {int(i) for i, c in zip(ids, counts, strict=True) if i and c > split_size}
    if not large:
        return instances
    out = instances.astype(np.int64)
    next_id = int(out.max()) + 1
    mean = float(np.mean(extent))
    sampling = tuple(mean / e for e in extent)
    spacing = max(1, round(SEED_SPACING * min(extent)))
    inner = (slice(1, -1),) * instances.ndim
    for index, box in enumerate(ndimage.find_objects(out), start=1):
        if box is None or index not in large:
            continue
        mask = out[box] == index
        distance = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=sampling)[inner]
        peaks = peak_local_max(
            distance, min_distance=spacing, labels=mask.astype(np.int32), exclude_border=False
        )
        if len(peaks) < 2:
            continue
        markers = np.zeros(mask.shape, np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        pieces = watershed(-distance, markers, mask=mask)
        region = out[box]
        for piece in range(2, len(peaks) + 1):
            region[pieces == piece] = next_id
            next_id += 1
    if np.can_cast(np.min_scalar_type(next_id - 1), instances.dtype):
        return out.astype(instances.dtype)
    return out
