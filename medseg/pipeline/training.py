"""Train a segmenter from a pipeline config: data set, model, trainer phases, checkpoints.

What it trains on (targets, loss, patch data set, image statistics) is
:mod:`medseg.pipeline.training_data`; its validation score and the post-processing
tuned afterwards, :mod:`medseg.pipeline.validation`. The other pieces are separate
too: the patch data set and its index stream
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

from medseg.checkpoint_meta import Checkpoint, CheckpointMeta, ModelSpec, read_checkpoint
from medseg.config import PipelineConfig, config_defaults
from medseg.data import Sample
from medseg.data.dataset import PatchDataset
from medseg.device import resolve_device
from medseg.errors import ConfigError
from medseg.infer.normalize import ZScore
from medseg.infer.sliding_window import SlidingWindow
from medseg.models import build_model
from medseg.models.constraints import constraints_of
from medseg.pipeline.training_data import (
    build_dataset,
    check_channels,
    image_blocks,
    training_fingerprint,
    training_loss,
    training_targets,
)
from medseg.pipeline.validation import store_tuned_postprocessing, validation_policy
from medseg.pipeline.windows import sliding_window_from_infer
from medseg.train.distributed import Distributed
from medseg.train.finetune import (
    InitReport,
    class_index_map,
    freeze_encoder_stages,
    initialize_from,
    parameter_groups,
)
from medseg.train.precision import StepPolicy
from medseg.train.pretrain import pretrain_layerwise, supports_layerwise_pretraining
from medseg.train.resume import apply_learning_rate, check_resumable
from medseg.train.stream import batch_loader
from medseg.train.trainer import Checkpointing, Stopping, Trainer, TrainResult, poly_schedule

__all__ = [
    "TrainedModel",
    "run_training",
    "set_deterministic",
    "sliding_window_from_config",
    "train_from_config",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedModel:
    """Result of :func:`train_from_config`."""

    result: TrainResult
    checkpoint_dir: Path
    device: str
    world_size: int = 1
    init: InitReport | None = None
    fingerprint: dict[str, Any] | None = None

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
    and stored in the checkpoints, :mod:`medseg.pipeline.tuning`); without validation
    samples ``best.pt`` is the final model. The data fingerprint of ``train_samples``
    (:mod:`medseg.data.fingerprint`) is stored in every checkpoint. ``resume``
    continues ``latest.pt`` exactly (same batches, optimiser state and history) and
    refuses a config changed in non-resumable keys (:mod:`medseg.train.resume`).

    Raises
    ------
    ConfigError
        ``out_dir`` is a file, the config cannot resume the checkpoint, the data's
        channels do not match ``model.params.in_channels``, or a phase does not fit
        the model.
    """
    checkpoint_dir = prepare_output_dir(out_dir) / "checkpoints"
    previous = _previous_run(checkpoint_dir / "latest.pt", config) if resume else None
    if config.train.deterministic:
        set_deterministic(config.train.seed)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model.name, **config.model.params)
    channels = check_channels(model, train_samples)
    normalization = (
        ZScore.from_dict(dict(previous.meta.normalization))
        if previous is not None
        else ZScore.fit(image_blocks(train_samples), nonfinite=config.data.nonfinite)
    )
    init = None
    if config.train.init is not None and previous is None:
        init = _initialize(model, config, config.train.init)
    frozen = freeze_encoder_stages(model, config.train.freeze_encoder_stages)
    record = None if init is None else {**init.to_dict(), "frozen": frozen}
    fingerprint = training_fingerprint(config, train_samples)
    meta = _checkpoint_meta(config, channels, train_samples, normalization, record, fingerprint)
    device = resolve_device(config.train.device, option="train.device")
    distributed = Distributed.from_environment(device.type)
    loss = training_loss(config)
    if config.train.pretrain == "layerwise" and previous is None:
        pretraining = build_dataset(config, train_samples, normalization, loss=loss, seed_offset=1)
        _pretrain(model, config, pretraining, device)
    optimizer = _optimizer(model, config, init)
    scheduler = poly_schedule(optimizer, config.train.iterations)
    trainer = Trainer(
        model,
        loss,
        optimizer,
        scheduler=scheduler,
        device=str(device),
        validation=validation_policy(val_samples, normalization, config) if val_samples else None,
        checkpoints=Checkpointing(
            checkpoint_dir, config.train.checkpoint_every, meta, keep_best=config.train.final_model == "best"
        ),
        stopping=Stopping(config.train.max_minutes, config.train.early_stopping_patience),
        step=StepPolicy(config.train.precision, config.train.grad_clip),
        distributed=distributed,
        progress=progress,
    )
    if previous is not None:
        _resume(trainer, previous, config, scheduler)
    dataset = build_dataset(config, train_samples, normalization, loss=loss)
    result = _fit(trainer, dataset, config, distributed)
    if training_targets(config).is_instances and distributed.rank == 0:
        store_tuned_postprocessing(config, checkpoint_dir, val_samples, fingerprint)
    return TrainedModel(
        result=result,
        checkpoint_dir=checkpoint_dir,
        device=str(trainer.device),
        world_size=distributed.world_size,
        init=init,
        fingerprint=fingerprint,
    )


def run_training(
    config: PipelineConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = False,
    write_results: bool = True,
) -> TrainedModel:
    """Train on ``config.data``'s dataset and write the run folder (``medseg train``, :func:`medseg.train`).

    Writes ``checkpoints/`` (:func:`train_from_config`) and, with ``write_results`` (rank
    0 under torchrun), the resolved ``config.yaml``, ``train_summary.json``,
    ``training_curve.png`` and the data fingerprint ``fingerprint.json``.

    Raises
    ------
    ConfigError, DataNotFoundError
        A bad output folder, dataset root or config (checked before training).
    """
    from medseg.pipeline.datasets import load_training_samples
    from medseg.pipeline.plots import plot_training
    from medseg.pipeline.results import write_json, write_yaml

    latest = Path(out_dir) / "checkpoints" / "latest.pt"
    if resume and not latest.is_file():  # a mistyped --out must not silently restart a long run
        raise ConfigError(
            f"--resume: there is no checkpoint to resume at {latest}; check --out (the folder of the run "
            "to continue), or drop --resume to start a fresh run there"
        )
    out = prepare_output_dir(out_dir)
    train_samples, val_samples = load_training_samples(config.data)
    trained = train_from_config(config, train_samples, val_samples, out, resume=resume, progress=progress)
    if not write_results:
        return trained
    result = trained.result
    write_yaml(out / "config.yaml", config.model_dump(mode="json"))
    if trained.fingerprint is not None:
        write_json(out / "fingerprint.json", trained.fingerprint)
    plot_training(out / "training_curve.png", result.losses, result.validation)
    summary = {
        "iterations": result.iterations,
        "seconds": round(result.seconds, 2),
        "data_wait_seconds": round(result.data_seconds, 2),
        "best_validation": result.best_score,
        "validation": result.validation,
        "losses": result.losses,
        "stopped": result.stopped,
        "device": trained.device,
        "world_size": trained.world_size,
    }
    if trained.init is not None:
        summary["init"] = {"checkpoint": str(config.train.init), **trained.init.to_dict()}
    write_json(out / "train_summary.json", summary)
    return trained


def _checkpoint_meta(
    config: PipelineConfig,
    channels: int,
    samples: Sequence[Sample],
    normalization: ZScore,
    init: dict[str, Any] | None,
    fingerprint: dict[str, Any] | None = None,
) -> CheckpointMeta:
    """What every checkpoint of this run says about the model (``init``: the fine-tuning record).

    The post-processing entry starts empty (the defaults); :func:`store_tuned_postprocessing`
    fills it in once the instance model is trained.
    """
    return CheckpointMeta(
        model=ModelSpec(config.model.name, dict(config.model.params)),
        normalization=normalization.to_dict(),
        channels=channels,
        classes=tuple(config.data.classes),
        targets=training_targets(config),
        data_fingerprint=fingerprint,
        config=config.model_dump(mode="json"),
        axis_order="C,Z,Y,X" if len(samples[0].image.spatial_shape) == 3 else "C,Y,X",
        init=None if init is None else {"checkpoint": str(config.train.init), **init},
    )


def _optimizer(
    model: torch.nn.Module, config: PipelineConfig, init: InitReport | None
) -> torch.optim.Optimizer:
    """AdamW, with a lower rate for tensors loaded by fine-tuning (``train.pretrained_lr_factor``)."""
    groups = parameter_groups(
        model,
        init.loaded + init.remapped if init is not None else [],
        learning_rate=config.train.learning_rate,
        pretrained_factor=config.train.pretrained_lr_factor,
    )
    return torch.optim.AdamW(groups, lr=config.train.learning_rate, weight_decay=config.train.weight_decay)


def _resume(
    trainer: Trainer,
    previous: Checkpoint,
    config: PipelineConfig,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> None:
    """Continue ``previous`` (already loaded) and apply a learning rate changed since."""
    trainer.resume(previous)
    old_lr = (previous.meta.config or {})["train"]["learning_rate"]
    if old_lr != config.train.learning_rate:
        apply_learning_rate(trainer.optimizer, scheduler, old=old_lr, new=config.train.learning_rate)


def _fit(
    trainer: Trainer, dataset: PatchDataset, config: PipelineConfig, distributed: Distributed
) -> TrainResult:
    """Run the trainer on batches of ``dataset`` (sharded per rank), releasing DDP whatever happens."""

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
    return result


def _previous_run(latest: Path, config: PipelineConfig) -> Checkpoint | None:
    """The checkpoint to resume (``None`` when there is none), after checking the config may resume it."""
    if not latest.is_file():
        return None
    previous = read_checkpoint(latest)
    if previous.meta.config is None:
        raise ConfigError(f"cannot resume {latest}: it records no config; train into a new --out")
    old_config = previous.meta.training_config()
    changes = check_resumable(
        old_config, config.model_dump(mode="json"), checkpoint=str(latest), defaults=config_defaults()
    )
    for key, (old, new) in changes.items():
        logger.info("resuming with %s changed: %r -> %r", key, old, new)
    return previous


def _initialize(model: torch.nn.Module, config: PipelineConfig, init: Path) -> InitReport:
    checkpoint = read_checkpoint(init)
    old_classes = list(checkpoint.meta.classes)
    report = initialize_from(
        model,
        checkpoint.weights,
        class_map=class_index_map(config.data.classes, old_classes, config.train.label_map),
        num_classes=constraints_of(model).out_channels,
        checkpoint_num_classes=checkpoint.meta.out_channels or len(old_classes),
    )
    if not report.loaded and not report.remapped:  # fine-tuning from nothing is training from scratch
        name, why = next(iter(report.initialized.items()))
        raise ConfigError(
            f"--init (train.init) {init}: none of its tensors fits model {config.model.name!r} "
            f"(e.g. {name}: {why}); pass a checkpoint of this model, or drop --init to train from scratch"
        )
    return report


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
