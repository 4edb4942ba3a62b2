"""The held-out stages of ``medseg run``: class-label scoring, challenge files and the test submission.

:func:`evaluate_held_out` predicts the held-out cases and scores them with
``medseg evaluate``'s code; :func:`challenge_files` writes them again in the
challenge's own format and layout (CTC: ``XX_RES`` beside ``XX_GT/SEG``, per
sequence), scores them with the challenge's metrics, and writes the test-split
submission where medseg has one.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np

from medseg.config import PipelineConfig
from medseg.data import Sample
from medseg.data.sample import in_memory, scored_part
from medseg.errors import ConfigError
from medseg.eval.formats import ChallengeFormat, get_format, write_submission
from medseg.eval.report import evaluate_folders
from medseg.infer.predictor import Prediction, Predictor
from medseg.pipeline.datasets import TEST_SPLITS
from medseg.pipeline.predicting import write_case_submission

__all__ = ["challenge_files", "evaluate_held_out"]

logger = logging.getLogger(__name__)


def evaluate_held_out(
    predictor: Predictor, samples: list[Sample], folder: Path, progress: bool
) -> dict[str, Any]:
    """Predict each held-out case and score it with ``medseg evaluate``'s code.

    The reference is written with its own geometry and the prediction with the image's,
    so the evaluation measures distances in the reference's physical units and refuses
    a prediction that is not on the reference grid. Instance models are scored on their
    object masks (predicted instances > 0 against reference instances > 0, label 1): their
    classes are inside/boundary targets, not the reference's instance ids. A held-out
    region is predicted with its context and both files hold only its scored part.
    """
    objects = predictor.is_instance_model
    for sample in samples:
        prediction = _scored_prediction(sample, predictor.predict(in_memory(sample.image)))
        labels = prediction.labels
        predicted = prediction.instances.array[0] > 0 if objects else labels.array[0]
        geometry = {"spacing": labels.spacing, "origin": labels.origin, "direction": labels.direction}
        write_submission(
            "labelmap", predicted.astype(np.int64), folder / "predictions", sample.case_id, **geometry
        )
        reference = scored_part(sample, in_memory(sample.label))
        expected = reference.array[0]
        write_submission(
            "labelmap",
            (expected > 0 if objects else expected).astype(np.int64),
            folder / "reference",
            sample.case_id,
            spacing=reference.spacing,
            origin=reference.origin,
            direction=reference.direction,
        )
    classes = predictor.classes
    if objects:
        scored = [1]
    else:
        scored = None if classes is None else range(1, len(classes))
    return evaluate_folders(
        folder / "predictions",
        folder / "reference",
        "labelmap",
        folder / "evaluation",
        workers=1,
        labels=scored,
        progress=progress,
    )


def _scored_prediction(sample: Sample, prediction: Prediction) -> Prediction:
    """``prediction`` of the whole ``sample`` (context included) cropped to its scored part."""
    if sample.scored is None:
        return prediction
    return dataclasses.replace(
        prediction,
        labels=scored_part(sample, prediction.labels),
        probabilities=None
        if prediction.probabilities is None
        else scored_part(sample, prediction.probabilities),
        instances=None if prediction.instances is None else scored_part(sample, prediction.instances),
    )


def _test_submission(config: PipelineConfig, predictor: Predictor, folder: Path) -> list[Path]:
    if config.data.dataset not in TEST_SPLITS:
        logger.info(
            "dataset %s has no challenge test split in medseg; no submission written", config.data.dataset
        )
        return []
    load, name = TEST_SPLITS[config.data.dataset]
    fmt = get_format(name)
    written = []
    for sample in load(Path(config.data.root)):
        prediction = predictor.predict(sample.image, probabilities=fmt.needs_probabilities)
        written.append(write_case_submission(fmt, prediction, folder, sample.case_id, predictor))
    return written


def challenge_files(
    config: PipelineConfig,
    predictor: Predictor,
    samples: list[Sample],
    out: Path,
    fmt: str | ChallengeFormat,
    progress: bool,
) -> dict[str, Any]:
    """Held-out cases in the challenge format scored with its metrics, and the test-split submission."""
    fmt = get_format(fmt)
    held_out = None
    if samples and fmt.scored_as_challenge:
        if fmt.needs_instance_model and not predictor.is_instance_model:
            raise ConfigError(
                f"format {fmt.name} scores instance ids: set data.label_kind: instances (and "
                f"data.instance_target) for {config.data.dataset}"
            )
        held_out = _score_held_out(fmt, predictor, samples, out / "challenge" / "held_out", progress)
    submission = _test_submission(config, predictor, out / "submission")
    return {"held_out": held_out, "submission": [str(p) for p in submission]}


def _score_held_out(
    fmt: ChallengeFormat, predictor: Predictor, samples: list[Sample], folder: Path, progress: bool
) -> dict[str, Any]:
    """Held-out cases in the format's own layout, scored as the challenge scores them.

    Each case goes where :meth:`ChallengeFormat.held_out_layout` says (CTC:
    ``<sequence>_RES/maskTTT.tif`` and ``<sequence>_GT/SEG/man_segTTT.tif``, with the
    dataset's tracking markers in ``<sequence>_GT/TRA`` for DET); each group of cases
    (CTC: a sequence) is scored on its own into ``evaluation/<group>``, or
    ``evaluation`` without groups. With several groups the returned summary averages
    their foreground means and pooled values over the groups and keeps each under
    ``sequences``.
    """
    groups: dict[str | None, tuple[Path, Path]] = {}
    for sample in samples:
        layout = fmt.held_out_layout(folder, sample.case_id)
        image = in_memory(sample.image)
        prediction = predictor.predict(image, probabilities=fmt.needs_probabilities)
        write_case_submission(
            fmt, _scored_prediction(sample, prediction), layout.predictions, layout.case, predictor
        )
        _write_reference(fmt, sample, layout.references, layout.case)
        fmt.copy_reference_companions(image.meta.get("source"), layout.references)
        groups[layout.group] = (layout.predictions, layout.references)
    summaries = {
        group: evaluate_folders(
            pred_dir,
            ref_dir,
            fmt,
            folder / "evaluation" if group is None else folder / "evaluation" / group,
            workers=1,
            progress=progress,
        )
        for group, (pred_dir, ref_dir) in sorted(groups.items(), key=lambda kv: kv[0] or "")
    }
    if len(summaries) == 1:
        return next(iter(summaries.values()))

    def mean_of(part: str) -> dict[str, float]:
        keys = set.intersection(*(set(s.get(part) or {}) for s in summaries.values()))
        return {k: float(np.mean([s[part][k] for s in summaries.values()])) for k in sorted(keys)}

    return {
        "foreground_mean": mean_of("foreground_mean"),
        "pooled": mean_of("pooled"),
        "sequences": summaries,
    }


def _write_reference(fmt: ChallengeFormat, sample: Sample, folder: Path, case_id: str | int) -> Path:
    """A held-out label's scored part in the challenge's file format, with its geometry."""
    label = scored_part(sample, in_memory(sample.label))
    geometry = {"spacing": label.spacing, "origin": label.origin, "direction": label.direction}
    return fmt.write_reference(np.asarray(label.array)[0], folder, case_id, **geometry)
