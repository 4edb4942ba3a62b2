"""The ``Sample`` type: one case of a dataset, and the part of it that is scored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import EllipsisType
from typing import overload

import numpy as np

from medseg.io.lazy import LazyArray
from medseg.io.volume import Volume

__all__ = ["Sample", "crop_volume", "in_memory", "scored_part"]


@dataclass(frozen=True)
class Sample:
    """An image, its label map if there is one, and where it came from.

    Parameters
    ----------
    image : Volume or LazyArray
        ``(C, [Z,] Y, X)`` image, in memory or opened lazily (large stacks); both have
        ``shape``, ``spatial_shape``, ``num_channels``, ``ndim``, ``spacing``, ``unit``, ``dtype``.
    label : Volume, LazyArray or None
        ``(1, [Z,] Y, X)`` integer label map on the image's grid (class ids or
        instance ids, as the dataset's manifest says), ``None`` for unlabelled cases.
    case_id : str
        Stable name of the case (used to match predictions and ground truth).
    modality : str
        ``"em"``, ``"histo"``, ``"dental"``, ``"volume"``, ``"cells"``...
    scored : tuple of slice or None
        The spatial box (one ``slice(start, stop)`` per spatial axis) that metrics score;
        the rest of the image is context the model predicts with but no metric counts
        (a held-out region of a training image, :mod:`medseg.data.holdout`). ``None``:
        the whole case is scored. Crop with :func:`scored_part`.
    """

    image: Volume | LazyArray
    label: Volume | LazyArray | None
    case_id: str
    modality: str
    scored: tuple[slice, ...] | None = None


def in_memory(x: Volume | LazyArray) -> Volume:
    """``x`` as a :class:`Volume`: a lazily opened image is read, keeping its geometry, unit and meta."""
    if isinstance(x, Volume):
        return x
    return Volume(
        x.read(), spacing=x.spacing, origin=x.origin, direction=x.direction, meta=dict(x.meta), unit=x.unit
    )


def crop_volume(volume: Volume, box: Sequence[slice]) -> Volume:
    """The part of ``volume`` in the spatial ``box``, placed where it lies in the world (origin moved).

    ``box`` holds one ``slice`` (step 1) per spatial axis, array order; all channels are kept.
    """
    first = np.zeros(volume.ndim + 1)  # homogeneous index of the part's first voxel
    first[:-1] = [part.indices(size)[0] for part, size in zip(box, volume.spatial_shape, strict=True)]
    first[-1] = 1.0
    origin = tuple(float(o) for o in (volume.affine @ first)[:-1])
    return Volume(
        np.ascontiguousarray(volume.array[(slice(None), *box)]),
        spacing=volume.spacing,
        origin=origin,
        direction=volume.direction,
        meta=dict(volume.meta),
        unit=volume.unit,
    )


@overload
def scored_part(sample: Sample, x: Volume) -> Volume: ...
@overload
def scored_part(sample: Sample, x: np.ndarray) -> np.ndarray: ...
def scored_part(sample: Sample, x: Volume | np.ndarray) -> Volume | np.ndarray:
    """The part of ``x`` (a prediction or the label of ``sample``, on its image's grid) that is scored.

    Every metric on a :class:`Sample` goes through this, so the context around a held-out
    region (:attr:`Sample.scored`) is predicted but never counted.

    Parameters
    ----------
    sample : Sample
        The case ``x`` belongs to.
    x : Volume or np.ndarray
        A :class:`Volume` (cropped with its geometry, :func:`crop_volume`) or an array
        whose last axes are the spatial axes (``(*spatial)`` or ``(C, *spatial)``).

    Returns
    -------
    Volume or np.ndarray
        ``x`` cropped to ``sample.scored``; ``x`` itself when the whole case is scored.
    """
    box = sample.scored
    if box is None:
        return x
    if isinstance(x, Volume):
        return crop_volume(x, box)
    index: tuple[EllipsisType | slice, ...] = (Ellipsis, *box)
    return x[index]
