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
from medseg.pipeline.training_data import training_targets
from medseg.pipeline.tuning import (
    instance_score,
    min_size_candidates,
    postprocessing_metadata,
    size_prior,
    store_postprocessing,
    tune_postprocessing,
)
from medseg.pipeline.windows import sliding_window_from_infer
from medseg.train.trainer import Validation

__all__ = ["MIN_TUNING_THICKNESS", "store_tuned_postprocessing", "thin_held_out", "validation_policy"]

logger = logging.getLogger(__name__)

#: A held-out region cut from a training image is tuned on only when it is at least this
#: many typical objects thick along the cut: in a thinner one most objects are cut, and
#: thresholds that suit cut objects drop whole ones elsewhere (benchmarks/README.md: a
#: 20-section slab of nuclei 16.5 sections tall, tuned 0.63 against 0.70 untuned, 3 seeds).
MIN_TUNING_THICKNESS = 2.0


def thin_held_out(samples: Sequence[Sample], extent: Sequence[float] | None) -> str | None:
    """Why held-out regions of ``samples`` are too thin to tune on, or ``None``.

    ``extent``: the typical object's extent per spatial axis in voxels (the fingerprint's
    ``objects.median_extent``). Whole held-out cases (no :attr:`Sample.scored`) are never thin.
    """
    if not extent:
        return None
    for sample in samples:
        if sample.scored is None:
            continue
        shape = sample.image.spatial_shape
        names = (
            ("Z", "Y", "X")[-len(shape) :] if len(shape) <= 3 else tuple(str(a) for a in range(len(shape)))
        )
        for axis, (part, size) in enumerate(zip(sample.scored, shape, strict=True)):
            thickness = len(range(*part.indices(size)))
            if thickness < size and thickness < MIN_TUNING_THICKNESS * extent[axis]:
                return (
                    f"the held-out part of {sample.case_id.removesuffix(':held-out')} is {thickness} voxels "
                    f"along {names[axis]}, under {MIN_TUNING_THICKNESS:g} typical objects "
                    f"({extent[axis]:g} voxels each)"
                )
    return None


def store_tuned_postprocessing(
    config: PipelineConfig,
    checkpoint_dir: Path,
    val_samples: Sequence[Sample],
    fingerprint: dict[str, Any] | None,
) -> None:
    """Tune the instance watershed of ``best.pt`` on the held-out samples; store it in both checkpoints.

    Held-out regions thinner than :data:`MIN_TUNING_THICKNESS` typical objects keep the
    defaults (and the entry says why, under ``not_tuned``).
    """
    settings = config.infer.postprocessing
    tuned = None
    best = checkpoint_dir / "best.pt"
    objects = (fingerprint or {}).get("objects") or {}
    thin = thin_held_out(val_samples, objects.get("median_extent")) if settings.tune else None
    if thin is not None:
        logger.info("post-processing not tuned: %s; the defaults are kept", thin)
    elif settings.tune and val_samples and best.is_file():
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
    if thin is not None:
        entry["not_tuned"] = thin
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
