"""What a pipeline config trains on: targets, loss, the patch data set and the images' statistics."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from medseg.checkpoint_meta import Targets
from medseg.config import PipelineConfig
from medseg.data import Sample
from medseg.data.dataset import PatchDataset, TrainingTargets
from medseg.data.fingerprint import data_fingerprint
from medseg.data.weight_map import WeightMap
from medseg.errors import ConfigError
from medseg.infer.normalize import ZScore
from medseg.io import Volume
from medseg.io.lazy import LazyArray
from medseg.models.constraints import constraints_of
from medseg.train.losses import build_loss, needs_weight_map

__all__ = [
    "build_dataset",
    "check_channels",
    "image_blocks",
    "training_fingerprint",
    "training_loss",
    "training_targets",
]

logger = logging.getLogger(__name__)


#: Voxels per block when statistics are gathered from lazy images.
_BLOCK_VOXELS = 1 << 22


def training_targets(config: PipelineConfig) -> Targets:
    """What the model is trained to output, interpreted once from ``config.data``."""
    return Targets.of(config.data.label_kind, config.data.instance_target)


def image_blocks(samples: Sequence[Sample]) -> Iterator[Volume]:
    """Every training image, lazy ones as slabs of bounded size, each named by its file for errors."""
    for sample in samples:
        image = sample.image
        if not isinstance(image, LazyArray):
            yield image
            continue
        per_slab = max(1, int(np.prod(image.shape[2:])) * image.shape[0])
        step = max(1, _BLOCK_VOXELS // per_slab)
        for start in range(0, image.shape[1], step):
            block = image[:, start : start + step]
            stop = start + block.shape[1]
            yield Volume(block, meta={"source": f"{image.path} (sections {start}-{stop - 1})"})


def _median_spacing(samples: Sequence[Sample], dims: int) -> tuple[float, ...] | None:
    """The median voxel size of the patches' ``dims`` axes (anisotropic distance targets); ``None``: isotropic."""
    sizes = [np.asarray(s.image.spacing, dtype=float)[-dims:] for s in samples]
    spacing = tuple(float(v) for v in np.median(sizes, axis=0))
    return None if len(set(spacing)) == 1 else spacing


def build_dataset(
    config: PipelineConfig,
    samples: Sequence[Sample],
    normalization: ZScore,
    *,
    loss: torch.nn.Module | None = None,
    seed_offset: int = 0,
) -> PatchDataset:
    """The :class:`PatchDataset` a config trains on (class-balanced, augmented, with its targets).

    ``loss`` (default: the config's) says which extra targets it needs (a border weight map).
    Distance targets are measured in the training images' median voxel size.
    """
    targets = training_targets(config)
    loss = loss if loss is not None else training_loss(config)
    weight_map = WeightMap(objects_from_classes=not targets.is_instances) if needs_weight_map(loss) else None
    transform = (
        TrainingTargets(
            targets.instance_target,
            weight_map,
            spacing=_median_spacing(samples, len(config.data.patch_shape)),
        )
        if targets.is_instances or weight_map is not None
        else None
    )
    instances = targets.is_instances
    return PatchDataset(
        samples,
        patch_shape=config.data.patch_shape,
        classes=None if instances else list(range(1, len(config.data.classes))),
        num_classes=None if instances else len(config.data.classes),
        ignore_label=config.train.ignore_label,
        normalize=normalization,
        label_transform=transform,
        seed=config.data.seed + seed_offset,
        border=config.data.patch_border,
    )


def training_loss(config: PipelineConfig) -> torch.nn.Module:
    """The loss ``train.loss`` names, with the ignore label and a distance channel where the targets have one.

    The ``flow`` target trains with Cellpose's loss (:class:`medseg.train.losses.FlowLoss`).
    """
    return build_loss(
        config.train.loss,
        ignore_label=config.train.ignore_label,
        distance=training_targets(config).has_distance_channel,
        flows=training_targets(config).has_flows,
    )


def check_channels(model: torch.nn.Module, samples: Sequence[Sample]) -> int:
    """The training images' channels, checked against the model's ``in_channels`` before any heavy work.

    Raises
    ------
    ConfigError
        They differ; the message gives the setting to use.
    """
    channels = int(samples[0].image.num_channels)
    expected = constraints_of(model).in_channels
    if channels != expected:
        raise ConfigError(
            f"the training images have {channels} channel(s) but model.params.in_channels is "
            f"{expected}: set model.params.in_channels: {channels}"
        )
    return channels


def training_fingerprint(config: PipelineConfig, samples: Sequence[Sample]) -> dict[str, Any] | None:
    """The data fingerprint of the training samples (labelled data in memory only).

    It reads whole images, so lazily opened ones (volumes larger than memory, read in
    blocks everywhere else) get none.
    """
    if not samples or any(s.label is None for s in samples):
        return None
    if any(isinstance(x, LazyArray) for s in samples for x in (s.image, s.label)):
        logger.info("no data fingerprint: the training images are opened lazily (it reads whole images)")
        return None
    return data_fingerprint(samples, label_kind=config.data.label_kind)
