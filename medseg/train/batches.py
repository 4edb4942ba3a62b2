"""Endless streams of augmented, normalised training batches drawn from samples."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from medseg.data import Sample
from medseg.data.sampling import PatchSampler
from medseg.data.transforms import augment, build_augmentation
from medseg.errors import LabelError
from medseg.infer.normalize import ZScore

__all__ = ["patch_batches"]

logger = logging.getLogger(__name__)


def patch_batches(
    samples: Sequence[Sample],
    *,
    patch_shape: Sequence[int],
    batch_size: int,
    normalization: ZScore,
    classes: Sequence[int] = (1,),
    augmentation: bool = True,
    seed: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(image, label)`` batches forever: ``(B, C, *patch)`` float32 and ``(B, 1, *patch)`` int64.

    Each patch comes from a sample chosen uniformly at random, is class-balanced by
    :class:`~medseg.data.sampling.PatchSampler` (a third of the patches contain one of
    ``classes``), normalised and augmented (elastic, flips, rotations, intensity).

    Raises
    ------
    LabelError
        A sample has no label, or no label contains any of ``classes`` (empty labels).
    """
    unlabelled = [s.case_id for s in samples if s.label is None]
    if unlabelled:
        raise LabelError(f"cannot train on unlabelled cases {unlabelled[:5]}; drop them or add their labels")
    empty = [s for s in samples if not np.any(np.isin(s.label.array, list(classes)))]
    if len(empty) == len(samples):
        where = ", ".join(f"{s.case_id} ({s.label.meta.get('source', 'in memory')})" for s in empty[:5])
        raise LabelError(
            f"no training label contains any of the classes {list(classes)}: {where}; the label files are "
            "empty or use other values, check the dataset's label convention (medseg/resources/manifests/)"
        )
    rng = np.random.default_rng(seed)
    if empty:
        logger.warning(
            "%d of %d training labels contain none of the classes %s (e.g. %s); their patches are drawn uniformly",
            len(empty),
            len(samples),
            list(classes),
            empty[0].case_id,
        )
    empty_ids = {id(s) for s in empty}
    samplers = [
        PatchSampler(
            s.image.array,
            s.label.array,
            patch_shape=patch_shape,
            classes=classes,
            foreground_probability=0.0 if id(s) in empty_ids else 0.33,
            seed=seed + i,
        )
        for i, s in enumerate(samples)
    ]
    transform = build_augmentation(patch_shape, seed=seed) if augmentation else None
    while True:
        images, labels = [], []
        for index in rng.integers(0, len(samplers), size=batch_size):
            patch = samplers[index].sample()
            image, label = normalization(patch.image), patch.label
            if transform is not None:
                image, label = augment(transform, image, label)
            images.append(image)
            labels.append(np.asarray(label, dtype=np.int64))
        yield torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(labels))
