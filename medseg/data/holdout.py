"""Validation from a region of the training images when there are too few cases to hold one out.

A lab often starts with one annotated image. ``data.validation_slices`` asks for whole
held-out cases; when the dataset has no more cases than that, :func:`split_cases`
instead holds out the last ``fraction`` of every case along its longest spatial axis
(a slab of the 3D volume, a band of the 2D image) and trains on the rest.

The held-out sample is predicted with context: its image also holds up to as many
voxels of the training part before the cut as are held out, so objects crossing the
cut are seen whole and the model's view near the cut matches a full image. Only the
held-out part is scored (:attr:`Sample.scored`, cropped by :func:`scored_part` in every
metric), so no training label is ever counted. The training part never sees the
held-out voxels. Both parts keep their physical geometry (origins move with them) and
are named ``<case>:train`` and ``<case>:held-out``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medseg.data.em import split_sections
from medseg.data.sample import Sample, crop_volume, in_memory
from medseg.errors import ConfigError

__all__ = ["HeldOutRegion", "hold_out_region", "split_cases"]

logger = logging.getLogger(__name__)

_AXIS_NAMES = {2: ("Y", "X"), 3: ("Z", "Y", "X")}


@dataclass(frozen=True)
class HeldOutRegion:
    """Where a case was cut.

    Spatial ``axis`` (array order), the first held-out index ``start`` of ``size``, and
    ``context``: how many voxels before ``start`` the held-out sample's image also holds.
    """

    axis: int
    start: int
    size: int
    context: int = 0

    def describe(self, ndim: int) -> str:
        name = _AXIS_NAMES.get(ndim, tuple(str(i) for i in range(ndim)))[self.axis]
        text = f"{name} {self.start}-{self.size - 1} of {self.size}"
        if self.context:
            text += f" with context {name} {self.start - self.context}-{self.start - 1}"
        return text


def hold_out_region(sample: Sample, fraction: float) -> tuple[Sample, Sample, HeldOutRegion]:
    """Split one labelled case into a training part and the held-out last ``fraction`` of its longest axis.

    Parameters
    ----------
    sample : Sample
        A labelled case, ``(C, [Z,] Y, X)``; lazily opened images are read into memory.
    fraction : float
        Share of the longest spatial axis held out, in ``(0, 1)``; at least one voxel
        is held out and at least one kept for training.

    Returns
    -------
    train, held_out : Sample
        The two parts, named ``<case>:train`` and ``<case>:held-out``. ``train`` is
        ``[0, start)`` along the cut axis. ``held_out`` is ``[start - context, size)``
        with ``context = min(held, start)`` voxels of the training part as context
        for the prediction, and ``scored`` naming the held-out ``[start, size)`` in its
        own coordinates (its label there is the only label scored).
    region : HeldOutRegion
        The cut.

    Raises
    ------
    ConfigError
        ``fraction`` outside ``(0, 1)``, the case has no label, or its longest axis has a single voxel.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"data.validation_fraction must be in (0, 1), got {fraction}")
    if sample.label is None:
        raise ConfigError(f"case {sample.case_id!r} has no label: cannot hold out a labelled region")
    shape = sample.image.spatial_shape
    axis = int(np.argmax(shape))
    size = int(shape[axis])
    if size < 2:
        raise ConfigError(
            f"case {sample.case_id!r} of shape {tuple(shape)} is too small to hold out a region for "
            "validation: add a second annotated case or set data.validation_slices: 0"
        )
    held = min(size - 1, max(1, round(size * fraction)))
    start = size - held
    # as much context as is held out: an object crossing the cut is seen whole when it is
    # no larger than the held-out part, and the scored part stays the held-out one
    context = min(held, start)
    image, label = in_memory(sample.image), in_memory(sample.label)

    def box(part: slice) -> tuple[slice, ...]:
        return tuple(part if a == axis else slice(0, n) for a, n in enumerate(shape))

    train_box, held_box = box(slice(0, start)), box(slice(start - context, size))
    train = Sample(
        image=crop_volume(image, train_box),
        label=crop_volume(label, train_box),
        case_id=f"{sample.case_id}:train",
        modality=sample.modality,
    )
    held_out = Sample(
        image=crop_volume(image, held_box),
        label=crop_volume(label, held_box),
        case_id=f"{sample.case_id}:held-out",
        modality=sample.modality,
        scored=box(slice(context, context + held)),
    )
    return train, held_out, HeldOutRegion(axis, start, size, context)


def split_cases(
    samples: Sequence[Sample], validation_cases: int, fraction: float
) -> tuple[list[Sample], list[Sample]]:
    """Training and validation samples: the last ``validation_cases`` cases, or regions when too few.

    With more cases than ``validation_cases`` the last ones validate (:func:`split_sections`).
    With ``validation_cases > 0`` but no more cases than that, every case is cut by
    :func:`hold_out_region` and one log line says where.
    """
    if validation_cases == 0 or len(samples) > validation_cases:
        train_ids, val_ids = split_sections(len(samples), validation_cases)
        return [samples[i] for i in train_ids], [samples[i] for i in val_ids]
    train, held_out, cuts = [], [], []
    for sample in samples:
        part, region_sample, region = hold_out_region(sample, fraction)
        train.append(part)
        held_out.append(region_sample)
        cuts.append(f"{sample.case_id} {region.describe(len(sample.image.spatial_shape))}")
    logger.warning(
        "%d case(s) for data.validation_slices: %d, so the last %.0f %% of each case along its longest axis "
        "is held out for validation and post-processing tuning; it is predicted with the part before it as "
        "context and scored alone (%s)",
        len(samples),
        validation_cases,
        100 * fraction,
        "; ".join(cuts),
    )
    return train, held_out
