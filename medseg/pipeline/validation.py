"""How a run is scored while it trains, and the instance post-processing tuned once it is trained."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.checkpoint_meta import read_checkpoint
from medseg.config import PipelineConfig
from medseg.data import Sample
from medseg.data.sample import in_memory, scored_part
from medseg.eval.overlap import overlap_metrics
from medseg.infer.normalize import ZScore
from medseg.infer.predictor import Predictor
from medseg.pipeline.predicting import sliding_window_from_infer
from medseg.pipeline.training_data import training_targets
from medseg.pipeline.tuning import (
    instance_score,
    min_size_candidates,
    postprocessing_metadata,
    size_prior,
    store_postprocessing,
    tune_postprocessing,
)
from medseg.train.trainer import Validation

__all__ = ["store_tuned_postprocessing", "validation_policy"]

logger = logging.getLogger(__name__)


def store_tuned_postprocessing(
    config: PipelineConfig,
    checkpoint_dir: Path,
    val_samples: Sequence[Sample],
    fingerprint: dict[str, Any] | None,
) -> None:
    """Tune the instance watershed of ``best.pt`` on the held-out samples; store it in both checkpoints."""
    settings = config.infer.postprocessing
    tuned = None
    best = checkpoint_dir / "best.pt"
    objects = (fingerprint or {}).get("objects") or {}
    if settings.tune and val_samples and best.is_file():
        window = sliding_window_from_infer(config.infer, compile=False)
        predictor = Predictor.from_checkpoint(read_checkpoint(best), window)
        tuned = tune_postprocessing(
            predictor,
            val_samples,
            settings,
            typical_object_voxels=objects.get("median_voxels"),
            typical_object_extent=objects.get("median_extent"),
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
    prior = size_prior(objects.get("median_voxels"), objects.get("median_extent"))
    entry = postprocessing_metadata(settings, tuned, [s.case_id for s in val_samples], prior)
    store_postprocessing([best, checkpoint_dir / "latest.pt"], entry)


def validation_policy(samples: Sequence[Sample], normalization: ZScore, config: PipelineConfig) -> Validation:
    """The validation score on ``samples``, every ``train.validate_every``.

    Class models: the mean foreground Dice of sliding-window predictions. Instance
    models: the mean AJI of their watershed objects (default thresholds), the score the
    post-processing is tuned on afterwards. Each case is predicted whole and scored on
    its :attr:`Sample.scored` part (a held-out region without its context).
    """
    targets = training_targets(config)
    # validation follows the weights as they change: never a compiled (frozen) model
    window = sliding_window_from_infer(config.infer, compile=False)
    labelled = [s for s in samples if s.label is not None]
    if targets.is_instances:

        def aji(model: torch.nn.Module) -> float:
            return instance_score(Predictor(model, window, normalization, targets=targets), labelled)

        return Validation(aji, every=config.train.validate_every)
    cases = [
        (s, in_memory(s.image), scored_part(s, np.asarray(in_memory(s.label).array)))
        for s in samples
        if s.label is not None
    ]
    foreground = list(range(1, len(config.data.classes)))

    def score(model: torch.nn.Module) -> float:
        predictor = Predictor(model, window, normalization, targets=targets)
        scores = []
        for sample, image, label in cases:
            labels = predictor.predict_label_array(image.array, source=image.meta.get("source"))
            per_class = overlap_metrics(label[0], scored_part(sample, labels), labels=foreground)
            scores += [per_class[c]["dice"] for c in foreground]
        return float(np.nanmean(scores)) if scores else float("nan")

    return Validation(score, every=config.train.validate_every)
