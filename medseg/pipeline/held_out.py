"""The held-out stages of ``medseg run``: class-label scoring, challenge files and the test submission.

:func:`evaluate_held_out` predicts the held-out cases and scores them with
``medseg evaluate``'s code; :func:`challenge_files` writes them again in the
challenge's own format and layout (CTC: ``XX_RES`` beside ``XX_GT/SEG``, per
sequence), scores them with the challenge's metrics, and writes the test-split
submission where medseg has one.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from medseg.config import PipelineConfig
from medseg.data import Sample
from medseg.errors import ConfigError
from medseg.eval.formats import write_submission
from medseg.eval.report import evaluate_folders
from medseg.infer.predictor import Predictor
from medseg.io import LazyArray, Volume
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
    classes are inside/boundary targets, not the reference's instance ids.
    """
    objects = predictor.is_instance_model
    for sample in samples:
        prediction = predictor.predict(_as_volume(sample.image))
        labels = prediction.labels
        predicted = prediction.instances.array[0] > 0 if objects else labels.array[0]
        geometry = {"spacing": labels.spacing, "origin": labels.origin, "direction": labels.direction}
        write_submission(
            "labelmap", predicted.astype(np.int64), folder / "predictions", sample.case_id, **geometry
        )
        reference = sample.label
        expected = _label_array(reference)[0]
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


def _as_volume(image: Volume | LazyArray) -> Volume:
    """``image`` in memory with its geometry: a held-out case is predicted whole, like a file."""
    if isinstance(image, Volume):
        return image
    return Volume(
        image.read(),
        spacing=image.spacing,
        origin=image.origin,
        direction=image.direction,
        meta=dict(image.meta),
    )


def _label_array(label: Volume | LazyArray) -> np.ndarray:
    return label.read() if isinstance(label, LazyArray) else label.array


def _test_submission(config: PipelineConfig, predictor: Predictor, folder: Path) -> list[Path]:
    if config.data.dataset not in TEST_SPLITS:
        logger.info(
            "dataset %s has no challenge test split in medseg; no submission written", config.data.dataset
        )
        return []
    load, fmt = TEST_SPLITS[config.data.dataset]
    written = []
    for sample in load(Path(config.data.root)):
        prediction = predictor.predict(sample.image, probabilities=fmt == "isbi2012")
        written.append(write_case_submission(fmt, prediction, folder, sample.case_id, predictor))
    return written


def challenge_files(
    config: PipelineConfig, predictor: Predictor, samples: list[Sample], out: Path, fmt: str, progress: bool
) -> dict[str, Any]:
    """Held-out cases in the challenge format scored with its metrics, and the test-split submission."""
    held_out = None
    if samples and fmt == "ctc":
        held_out = _ctc_held_out(predictor, samples, out / "challenge" / "held_out", progress)
    elif samples and fmt != "labelmap":  # labelmap scoring is the evaluate stage already
        if fmt == "cremi" and not predictor.is_instance_model:
            raise ConfigError(
                "CREMI scores neuron ids: set data.label_kind: instances (and data.instance_target) for cremi"
            )
        folder = out / "challenge" / "held_out"
        for sample in samples:
            prediction = predictor.predict(_as_volume(sample.image), probabilities=fmt == "isbi2012")
            write_case_submission(fmt, prediction, folder / "predictions", sample.case_id, predictor)
            _write_reference(fmt, sample, folder / "reference")
        held_out = evaluate_folders(
            folder / "predictions",
            folder / "reference",
            fmt,
            folder / "evaluation",
            workers=1,
            progress=progress,
        )
    submission = _test_submission(config, predictor, out / "submission")
    return {"held_out": held_out, "submission": [str(p) for p in submission]}


def _ctc_held_out(
    predictor: Predictor, samples: list[Sample], folder: Path, progress: bool
) -> dict[str, Any]:
    """Held-out CTC frames in the challenge's own layout, scored per sequence as the challenge does.

    Case ids are ``<sequence>_t<frame>``: predictions go to ``<sequence>_RES/mask<frame>.tif``
    and references to ``<sequence>_GT/SEG/man_seg<frame>.tif`` (with the dataset's
    tracking markers in ``<sequence>_GT/TRA``, for DET), and each sequence is scored on its own (``evaluation/<sequence>``; SEG pools the objects of one sequence).
    With several sequences the returned summary averages their foreground means and
    pooled values over the sequences and keeps each under ``sequences``.
    """
    by_sequence: dict[str, list[Sample]] = {}
    for sample in samples:
        sequence, _, frame = sample.case_id.rpartition("_")
        if not sequence or not frame.lstrip("t").isdigit():
            raise ConfigError(f"CTC case id {sample.case_id!r} is not '<sequence>_t<frame>'")
        by_sequence.setdefault(sequence, []).append(sample)
    summaries = {}
    for sequence, members in sorted(by_sequence.items()):
        res, gt = folder / f"{sequence}_RES", folder / f"{sequence}_GT"
        for sample in members:
            frame = int(sample.case_id.rpartition("_")[2].lstrip("t"))
            write_case_submission("ctc", predictor.predict(sample.image), res, frame, predictor)
            _write_reference("ctc", sample, gt / "SEG", case_id=frame)
            _copy_markers(sample, gt / "TRA")
        summaries[sequence] = evaluate_folders(
            res, gt, "ctc", folder / "evaluation" / sequence, workers=1, progress=progress
        )
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


def _copy_markers(sample: Sample, folder: Path) -> Path | None:
    """The dataset's tracking markers of a held-out frame, so DET is scored on the same frames.

    A CTC frame ``<root>/<seq>/tTTT.tif`` has its markers in
    ``<root>/<seq>_GT/TRA/man_trackTTT.tif``; nothing is copied when there are none.
    """
    source = sample.image.meta.get("source") if hasattr(sample.image, "meta") else None
    if not source:
        return None
    frame = Path(source)
    markers = frame.parent.with_name(f"{frame.parent.name}_GT") / "TRA" / f"man_track{frame.stem[1:]}.tif"
    if not markers.is_file():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(markers, folder / markers.name))


def _write_reference(fmt: str, sample: Sample, folder: Path, case_id: str | int | None = None) -> Path:
    """A held-out label in the challenge's file format (CTC: ``man_segTTT.tif``)."""
    label = sample.label
    array = np.asarray(_label_array(label))[0]
    case_id = sample.case_id if case_id is None else case_id
    if fmt == "isbi2012":  # class 0 = cell -> 1.0, membrane -> 0.0 (the challenge's polarity)
        return write_submission(fmt, (array == 0).astype(np.float32), folder, case_id)
    if fmt == "cremi":  # neuron ids as stored (uint64), with the volume's resolution as the prediction's
        geometry = {"spacing": label.spacing, "origin": label.origin, "direction": label.direction}
        return write_submission(fmt, array, folder, case_id, **geometry)
    path = write_submission(fmt, array.astype(np.int64), folder, case_id)
    if fmt == "ctc":
        path = path.rename(path.with_name(path.name.replace("mask", "man_seg", 1)))
    return path
