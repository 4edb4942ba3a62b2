"""The ``Sample`` type: one case of a dataset."""

from __future__ import annotations

from dataclasses import dataclass

from medseg.io.lazy import LazyArray
from medseg.io.volume import Volume

__all__ = ["Sample", "in_memory"]


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
    """

    image: Volume | LazyArray
    label: Volume | LazyArray | None
    case_id: str
    modality: str


def in_memory(x: Volume | LazyArray) -> Volume:
    """``x`` as a :class:`Volume`: a lazily opened image is read, keeping its geometry, unit and meta."""
    if isinstance(x, Volume):
        return x
    return Volume(
        x.read(), spacing=x.spacing, origin=x.origin, direction=x.direction, meta=dict(x.meta), unit=x.unit
    )
