"""``medseg run``: train → predict the held-out cases → evaluate → challenge submission, from one YAML."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medseg.config import PipelineConfig
from medseg.data import Sample
from medseg.eval.formats import write_submission
from medseg.eval.report import evaluate_folders
from medseg.infer.predictor import Predictor
from medseg.io import LazyArray, Volume
from medseg.pipeline.datasets import TEST_SPLITS, load_training_samples
from medseg.pipeline.plots import plot_training
from medseg.pipeline.predicting import write_case_submission
from medseg.pipeline.results import write_json, write_yaml
from medseg.pipeline.training import sliding_window_from_config, train_from_config
from medseg.train.checkpoint import load_checkpoint

__all__ = ["RunResult", "run_pipeline"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_pipeline` wrote and measured."""

    out_dir: Path
    validation: dict[str, Any] | None
    submission: list[Path]


def run_pipeline(
    config: PipelineConfig, out_dir: str | Path, *, resume: bool = False, progress: bool = False
) -> RunResult:
    """Run a whole pipeline into ``out_dir``.

    1. train on ``data.dataset`` (``checkpoints/``, ``training_curve.png``);
    2. predict the held-out validation cases and score them against their labels
       (``validation/predictions``, ``validation/reference``, and in
       ``validation/evaluation`` the ``per_case.csv``, ``summary.json`` and plot of
       ``medseg evaluate``);
    3. for datasets with a challenge test split (ISBI 2012), predict it and write the
       submission files (``submission/``).

    ``resume`` continues an interrupted training from ``checkpoints/latest.pt``.
    """
    out = Path(out_dir)
    train_samples, val_samples = load_training_samples(config.data)
    trained = train_from_config(config, train_samples, val_samples, out, resume=resume, progress=progress)
    write_yaml(out / "config.yaml", config.model_dump(mode="json"))
    plot_training(out / "training_curve.png", trained.result.losses, trained.result.validation)
    predictor = Predictor.from_checkpoint(load_checkpoint(trained.best), sliding_window_from_config(config))

    validation = (
        _evaluate_held_out(predictor, val_samples, out / "validation", progress) if val_samples else None
    )
    submission = _test_submission(config, predictor, out / "submission")
    write_json(
        out / "run_summary.json",
        {
            "name": config.name,
            "iterations": trained.result.iterations,
            "train_seconds": round(trained.result.seconds, 2),
            "device": trained.device,
            "validation_foreground_mean": None if validation is None else validation["foreground_mean"],
            "submission": [str(p) for p in submission],
        },
    )
    return RunResult(out_dir=out, validation=validation, submission=submission)


def _evaluate_held_out(
    predictor: Predictor, samples: list[Sample], folder: Path, progress: bool
) -> dict[str, Any]:
    """Predict each held-out case and score it with ``medseg evaluate``'s code.

    The reference is written with its own geometry and the prediction with the image's,
    so the evaluation measures distances in the reference's physical units and refuses
    a prediction that is not on the reference grid.
    """
    for sample in samples:
        labels = predictor.predict(sample.image).labels
        geometry = {"spacing": labels.spacing, "origin": labels.origin, "direction": labels.direction}
        write_submission(
            "labelmap", labels.array[0].astype(np.int64), folder / "predictions", sample.case_id, **geometry
        )
        reference = sample.label
        write_submission(
            "labelmap",
            _label_array(reference)[0].astype(np.int64),
            folder / "reference",
            sample.case_id,
            spacing=reference.spacing,
            origin=reference.origin,
            direction=reference.direction,
        )
    classes = predictor.classes
    return evaluate_folders(
        folder / "predictions",
        folder / "reference",
        "labelmap",
        folder / "evaluation",
        workers=1,
        labels=None if classes is None else range(1, len(classes)),
        progress=progress,
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
