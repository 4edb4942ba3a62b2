"""Endless streams of augmented, normalised training batches drawn from samples."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from medseg.data import Sample
from medseg.data.sampling import PatchSampler
from medseg.data.transforms import augment, build_augmentation
from medseg.errors import LabelError
from medseg.infer.normalize import ZScore

__all__ = ["patch_batches"]


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
        A sample has no label.
    """
    unlabelled = [s.case_id for s in samples if s.label is None]
    if unlabelled:
        raise LabelError(f"cannot train on unlabelled cases {unlabelled[:5]}; drop them or add their labels")
    rng = np.random.default_rng(seed)
    samplers = [
        PatchSampler(s.image.array, s.label.array, patch_shape=patch_shape, classes=classes, seed=seed + i)
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
