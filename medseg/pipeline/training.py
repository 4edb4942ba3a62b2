"""Train a segmenter from a pipeline config: normalisation, model, batches, trainer, checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.config import InferConfig, PipelineConfig
from medseg.data import Sample
from medseg.eval.overlap import overlap_metrics
from medseg.infer.normalize import ZScore
from medseg.infer.predictor import Predictor
from medseg.infer.sliding_window import SlidingWindow
from medseg.models import build_model
from medseg.train.batches import patch_batches
from medseg.train.losses import build_loss
from medseg.train.trainer import Trainer, TrainResult, poly_schedule

__all__ = ["TrainedModel", "sliding_window_from_config", "sliding_window_from_infer", "train_from_config"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedModel:
    """Result of :func:`train_from_config`."""

    result: TrainResult
    checkpoint_dir: Path
    device: str

    @property
    def best(self) -> Path:
        return self.checkpoint_dir / "best.pt"


def sliding_window_from_config(config: PipelineConfig, *, progress: bool = False) -> SlidingWindow:
    """The :class:`SlidingWindow` described by ``config.infer``."""
    return sliding_window_from_infer(config.infer, progress=progress)


def sliding_window_from_infer(infer: InferConfig, *, progress: bool = False) -> SlidingWindow:
    """The :class:`SlidingWindow` of an :class:`InferConfig`."""
    return SlidingWindow(
        infer.roi_size,
        overlap=infer.overlap,
        blending=infer.blending,
        batch_size=infer.batch_size,
        device=infer.device,
        precision=infer.precision,
        mirror_axes=infer.mirror_axes,
        progress=progress,
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

    The validation score (for ``best.pt``) is the mean foreground Dice (classes >= 1)
    of sliding-window predictions on ``val_samples``; without validation samples
    ``best.pt`` is the final model.
    """
    torch.manual_seed(config.train.seed)
    checkpoint_dir = Path(out_dir) / "checkpoints"
    normalization = ZScore.fit((s.image for s in train_samples), nonfinite=config.data.nonfinite)
    model = build_model(config.model.name, **config.model.params)
    foreground = list(range(1, len(config.data.classes)))
    metadata: dict[str, Any] = {
        "model": {"name": config.model.name, "params": dict(config.model.params)},
        "normalization": normalization.to_dict(),
        "classes": list(config.data.classes),
        "channels": int(train_samples[0].image.num_channels),
        "axis_order": "C,Z,Y,X" if train_samples[0].image.ndim == 3 else "C,Y,X",
        "config": config.model_dump(mode="json"),
    }
    window = sliding_window_from_config(config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.train.learning_rate, weight_decay=config.train.weight_decay
    )
    trainer = Trainer(
        model,
        build_loss(config.train.loss),
        optimizer,
        scheduler=poly_schedule(optimizer, config.train.iterations),
        device=config.train.device,
        checkpoint_dir=checkpoint_dir,
        validate=_validator(val_samples, window, normalization, foreground) if val_samples else None,
        validate_every=config.train.validate_every,
        checkpoint_every=config.train.checkpoint_every,
        metadata=metadata,
        progress=progress,
    )
    if resume and trainer.resume():
        logger.info("resuming training at iteration %d", trainer.iteration)
    batches = patch_batches(
        train_samples,
        patch_shape=config.data.patch_shape,
        batch_size=config.data.batch_size,
        normalization=normalization,
        classes=foreground,
        seed=config.data.seed,
    )
    result = trainer.fit(batches, config.train.iterations)
    return TrainedModel(result=result, checkpoint_dir=checkpoint_dir, device=str(trainer.device))


def _validator(
    samples: Sequence[Sample], window: SlidingWindow, normalization: ZScore, foreground: list[int]
):
    def validate(model: torch.nn.Module) -> float:
        predictor = Predictor(model, window, normalization)
        scores = []
        for sample in samples:
            labels = predictor.predict(sample.image).labels.array[0]
            per_class = overlap_metrics(sample.label.array[0], labels, labels=foreground)
            scores += [per_class[c]["dice"] for c in foreground]
        return float(np.nanmean(scores)) if scores else float("nan")

    return validate
