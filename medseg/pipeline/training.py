"""Train a segmenter from a pipeline config: data set, model, trainer phases, checkpoints.

The pieces are small and separate: the patch data set and its index stream
(:mod:`medseg.data.dataset`, :mod:`medseg.train.stream`), fine-tuning
(:mod:`medseg.train.finetune`), pre-training (:mod:`medseg.train.pretrain`), resume
rules (:mod:`medseg.train.resume`), precision and DDP inside the
:class:`~medseg.train.trainer.Trainer`; this module only wires them from a config.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.config import PipelineConfig
from medseg.data import Sample
from medseg.data.dataset import PatchDataset, TrainingTargets
from medseg.data.fingerprint import data_fingerprint
from medseg.data.weight_map import WeightMap
from medseg.device import resolve_device
from medseg.errors import ConfigError
from medseg.eval.overlap import overlap_metrics
from medseg.infer.normalize import ZScore
from medseg.infer.predictor import Predictor
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import Volume
from medseg.io.lazy import LazyArray
from medseg.models import build_model
from medseg.pipeline.predicting import sliding_window_from_infer
from medseg.pipeline.results import write_json
from medseg.pipeline.tuning import (
    instance_score,
    min_size_candidates,
    postprocessing_metadata,
    store_postprocessing,
    tune_postprocessing,
)
from medseg.train.checkpoint import load_checkpoint
from medseg.train.distributed import Distributed
from medseg.train.finetune import (
    InitReport,
    class_index_map,
    freeze_encoder_stages,
    initialize_from,
    parameter_groups,
)
from medseg.train.losses import build_loss
from medseg.train.pretrain import pretrain_layerwise, supports_layerwise_pretraining
from medseg.train.resume import apply_learning_rate, check_resumable
from medseg.train.stream import batch_loader
from medseg.train.trainer import Stopping, Trainer, TrainResult, poly_schedule

__all__ = [
    "TrainedModel",
    "set_deterministic",
    "sliding_window_from_config",
    "train_from_config",
]

logger = logging.getLogger(__name__)

#: Voxels per block when statistics are gathered from lazy images.
_BLOCK_VOXELS = 1 << 22


@dataclass(frozen=True)
class TrainedModel:
    """Result of :func:`train_from_config`."""

    result: TrainResult
    checkpoint_dir: Path
    device: str
    world_size: int = 1
    init: InitReport | None = None

    @property
    def best(self) -> Path:
        return self.checkpoint_dir / "best.pt"


def sliding_window_from_config(config: PipelineConfig, *, progress: bool = False) -> SlidingWindow:
    """The :class:`SlidingWindow` described by ``config.infer``."""
    return sliding_window_from_infer(config.infer, progress=progress)


def set_deterministic(seed: int) -> None:
    """Seed Python, numpy and torch and switch torch to deterministic kernels (``--deterministic``)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def prepare_output_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` (and ``checkpoints/``) before any heavy work.

    Raises
    ------
    ConfigError
        ``out_dir`` is a file or lies under one.
    """
    out = Path(out_dir)
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        raise ConfigError(
            f"--out {out} is not a folder ({out if out.is_file() else 'a parent'} is a file); "
            "pass a folder path for the outputs"
        ) from err
    return out


def _targets(config: PipelineConfig) -> dict[str, Any]:
    """The checkpoint's ``"targets"`` entry (contracts, interface 2)."""
    kind = config.data.label_kind
    return {
        "label_kind": kind,
        "instance_target": config.data.instance_target if kind == "instances" else None,
    }


def _image_blocks(samples: Sequence[Sample]) -> Iterator[Volume]:
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


def _in_memory(x: Volume | LazyArray) -> Volume:
    if isinstance(x, Volume):
        return x
    return Volume(x.read(), spacing=x.spacing, origin=x.origin, direction=x.direction, meta=dict(x.meta))


def _median_spacing(samples: Sequence[Sample], dims: int) -> tuple[float, ...] | None:
    """The median voxel size of the patches' ``dims`` axes (anisotropic distance targets); ``None``: isotropic."""
    spacing = tuple(float(v) for v in np.median([s.image.spacing[-dims:] for s in samples], axis=0))
    return None if len(set(spacing)) == 1 else spacing


def build_dataset(
    config: PipelineConfig, samples: Sequence[Sample], normalization: ZScore, *, seed_offset: int = 0
) -> PatchDataset:
    """The :class:`PatchDataset` a config trains on (class-balanced, augmented, with its targets)."""
    targets = _targets(config)
    instances = targets["label_kind"] == "instances"
    weight_map = (
        WeightMap(objects_from_classes=not instances) if config.train.loss == "unet_weighted_ce" else None
    )
    transform = (
        TrainingTargets(
            targets["instance_target"],
            weight_map,
            spacing=_median_spacing(samples, len(config.data.patch_shape)),
        )
        if instances or weight_map is not None
        else None
    )
    return PatchDataset(
        samples,
        patch_shape=config.data.patch_shape,
        classes=None if instances else list(range(1, len(config.data.classes))),
        num_classes=None if instances else len(config.data.classes),
        ignore_label=config.train.ignore_label,
        normalize=normalization,
        label_transform=transform,
        seed=config.data.seed + seed_offset,
    )


def train_from_config(
    config: PipelineConfig,
    train_samples: Sequence[Sample],
    val_samples: Sequence[Sample],
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = False,
) -> TrainedModel:
    """Train ``config.model`` on the samples; checkpoints go to ``out_dir/checkpoints``.

    The validation score (for ``best.pt`` and early stopping) is the mean foreground
    Dice of sliding-window predictions on ``val_samples`` (instance models: the mean
    AJI of their watershed objects, whose thresholds are then tuned on the same samples
    and stored in the checkpoints, :mod:`medseg.pipeline.tuning`); without validation samples
    ``best.pt`` is the final model. ``resume`` continues ``latest.pt`` exactly (same
    batches, optimiser state and history) and refuses a config changed in
    non-resumable keys (:mod:`medseg.train.resume`).

    Raises
    ------
    ConfigError
        ``out_dir`` is a file, the config cannot resume the checkpoint, the data's
        channels do not match ``model.params.in_channels``, or a phase does not fit
        the model.
    """
    checkpoint_dir = prepare_output_dir(out_dir) / "checkpoints"
    fingerprint = _fingerprint(config, train_samples, Path(out_dir))
    config_dump = config.model_dump(mode="json")
    previous = _previous_run(checkpoint_dir / "latest.pt", config_dump) if resume else None
    if config.train.deterministic:
        set_deterministic(config.train.seed)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model.name, **config.model.params)
    channels = int(train_samples[0].image.num_channels)
    if channels != model.constraints.in_channels:
        raise ConfigError(
            f"the training images have {channels} channel(s) but model.params.in_channels is "
            f"{model.constraints.in_channels}: set model.params.in_channels: {channels}"
        )
    normalization = (
        ZScore.from_dict(previous["metadata"]["normalization"])
        if previous is not None
        else ZScore.fit(_image_blocks(train_samples), nonfinite=config.data.nonfinite)
    )
    init = None
    if config.train.init is not None and previous is None:
        init = _initialize(model, config)
    frozen = freeze_encoder_stages(model, config.train.freeze_encoder_stages)
    metadata: dict[str, Any] = {
        "model": {"name": config.model.name, "params": dict(config.model.params)},
        "normalization": normalization.to_dict(),
        "classes": list(config.data.classes),
        "channels": channels,
        "axis_order": "C,Z,Y,X" if len(train_samples[0].image.spatial_shape) == 3 else "C,Y,X",
        "targets": _targets(config),
        "config": config_dump,
    }
    if fingerprint is not None:
        metadata["fingerprint"] = fingerprint
    if init is not None:
        metadata["init"] = {"checkpoint": str(config.train.init), **init.to_dict(), "frozen": frozen}
    device = resolve_device(config.train.device, option="train.device")
    distributed = Distributed.from_environment(device.type)
    dataset = build_dataset(config, train_samples, normalization)
    if config.train.pretrain == "layerwise" and previous is None:
        _pretrain(model, config, build_dataset(config, train_samples, normalization, seed_offset=1), device)
    optimizer = torch.optim.AdamW(
        parameter_groups(
            model,
            init.loaded + init.remapped if init is not None else [],
            learning_rate=config.train.learning_rate,
            pretrained_factor=config.train.pretrained_lr_factor,
        ),
        lr=config.train.learning_rate,
        weight_decay=config.train.weight_decay,
    )
    scheduler = poly_schedule(optimizer, config.train.iterations)
    foreground = list(range(1, len(config.data.classes)))
    trainer = Trainer(
        model,
        build_loss(
            config.train.loss,
            ignore_label=config.train.ignore_label,
            distance=_targets(config)["instance_target"] in ("distance", "both"),
        ),
        optimizer,
        scheduler=scheduler,
        device=str(device),
        checkpoint_dir=checkpoint_dir,
        validate=_validator(
            # validation follows the weights as they change: never a compiled (frozen) model
            val_samples,
            sliding_window_from_infer(config.infer, compile=False),
            normalization,
            foreground,
            config,
        )
        if val_samples
        else None,
        validate_every=config.train.validate_every,
        checkpoint_every=config.train.checkpoint_every,
        stopping=Stopping(config.train.max_minutes, config.train.early_stopping_patience),
        precision=config.train.precision,
        grad_clip=config.train.grad_clip,
        distributed=distributed,
        metadata=metadata,
        progress=progress,
    )
    if previous is not None:
        trainer.resume(checkpoint_dir / "latest.pt")
        old_lr = previous["metadata"]["config"]["train"]["learning_rate"]
        if old_lr != config.train.learning_rate:
            apply_learning_rate(optimizer, scheduler, old=old_lr, new=config.train.learning_rate)

    def batches(start: int) -> Iterator[tuple[torch.Tensor, ...]]:
        return batch_loader(
            dataset,
            config.data.batch_size,
            start_iteration=start,
            num_workers=config.data.num_workers,
            rank=distributed.rank,
            world_size=distributed.world_size,
            pin_memory=trainer.device.type == "cuda",
        )

    try:
        result = trainer.fit(batches, config.train.iterations)
        distributed.barrier()
    finally:
        trainer.release_distributed()
        distributed.close()
    if _targets(config)["label_kind"] == "instances" and distributed.rank == 0:
        _store_postprocessing(config, checkpoint_dir, val_samples, fingerprint)
    return TrainedModel(
        result=result,
        checkpoint_dir=checkpoint_dir,
        device=str(trainer.device),
        world_size=distributed.world_size,
        init=init,
    )


def _fingerprint(config: PipelineConfig, samples: Sequence[Sample], out: Path) -> dict[str, Any] | None:
    """The data fingerprint of the training samples, written to ``out/fingerprint.json`` (labelled data only)."""
    if not samples or any(s.label is None for s in samples):
        return None
    fingerprint = data_fingerprint(samples, label_kind=config.data.label_kind)
    if int(os.environ.get("RANK", "0")) == 0:
        write_json(out / "fingerprint.json", fingerprint)
    return fingerprint


def _store_postprocessing(
    config: PipelineConfig,
    checkpoint_dir: Path,
    val_samples: Sequence[Sample],
    fingerprint: dict[str, Any] | None,
) -> None:
    """Tune the instance watershed of ``best.pt`` on the held-out samples; store it in both checkpoints."""
    settings = config.infer.postprocessing
    tuned = None
    best = checkpoint_dir / "best.pt"
    if settings.tune and val_samples and best.is_file():
        window = sliding_window_from_infer(config.infer, compile=False)
        predictor = Predictor.from_checkpoint(load_checkpoint(best), window)
        objects = (fingerprint or {}).get("objects") or {}
        tuned = tune_postprocessing(
            predictor, val_samples, settings, typical_object_voxels=objects.get("median_voxels")
        )
        logger.info(
            "post-processing tuned on %d held-out case(s): %s (AJI %.3f; defaults %.3f; %d grid points; "
            "min sizes from %s)",
            len(val_samples),
            tuned.params.to_dict(),
            tuned.aji,
            tuned.default_aji,
            tuned.searched,
            min_size_candidates(objects.get("median_voxels"), 10),
        )
    entry = postprocessing_metadata(settings, tuned, [s.case_id for s in val_samples])
    store_postprocessing([best, checkpoint_dir / "latest.pt"], entry)


def _previous_run(latest: Path, config_dump: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint to resume (``None`` when there is none), after checking the config may resume it."""
    if not latest.is_file():
        return None
    previous = load_checkpoint(latest)
    old_config = previous["metadata"].get("config")
    if old_config is None:
        raise ConfigError(f"cannot resume {latest}: it records no config; train into a new --out")
    changes = check_resumable(old_config, config_dump, checkpoint=str(latest))
    for key, (old, new) in changes.items():
        logger.info("resuming with %s changed: %r -> %r", key, old, new)
    return previous


def _initialize(model: torch.nn.Module, config: PipelineConfig) -> InitReport:
    checkpoint = load_checkpoint(config.train.init)
    old_classes = checkpoint["metadata"].get("classes") or []
    return initialize_from(
        model,
        checkpoint["model"],
        class_map=class_index_map(config.data.classes, old_classes, config.train.label_map),
        num_classes=model.constraints.out_channels,
        checkpoint_num_classes=int(
            checkpoint["metadata"].get("model", {}).get("params", {}).get("out_channels", len(old_classes))
        ),
    )


def _pretrain(
    model: torch.nn.Module, config: PipelineConfig, dataset: PatchDataset, device: torch.device
) -> None:
    if not supports_layerwise_pretraining(model):
        raise ConfigError(
            f"train.pretrain: layerwise, but model {config.model.name!r} has no layer-wise pre-training; "
            "use model.name: sdae or train.pretrain: none"
        )
    stream = batch_loader(dataset, config.data.batch_size, num_workers=config.data.num_workers)
    model.to(device)
    history = pretrain_layerwise(
        model, _Images(stream), steps_per_layer=config.train.pretrain_steps, seed=config.train.seed
    )
    logger.info("layer-wise pre-training: final reconstruction losses %s", [round(h[-1], 5) for h in history])


class _Images:
    """A re-iterable view of an endless batch stream (what :func:`pretrain_layerwise` takes)."""

    def __init__(self, stream: Iterator[tuple[torch.Tensor, ...]]) -> None:
        self.stream = stream

    def __iter__(self) -> Iterator[torch.Tensor]:
        for batch in self.stream:
            yield batch[0]


def _validator(
    samples: Sequence[Sample],
    window: SlidingWindow,
    normalization: ZScore,
    foreground: list[int],
    config: PipelineConfig,
):
    targets = _targets(config)
    if targets["label_kind"] == "instances":  # instance models are chosen by held-out AJI

        def validate_instances(model: torch.nn.Module) -> float:
            return instance_score(Predictor(model, window, normalization, targets=targets), samples)

        return validate_instances
    cases = [(_in_memory(s.image), np.asarray(_in_memory(s.label).array)) for s in samples]

    def validate(model: torch.nn.Module) -> float:
        predictor = Predictor(model, window, normalization)
        scores = []
        for image, label in cases:
            labels = predictor.predict(image).labels.array[0]
            per_class = overlap_metrics(label[0], labels, labels=foreground)
            scores += [per_class[c]["dice"] for c in foreground]
        return float(np.nanmean(scores)) if scores else float("nan")

    return validate
