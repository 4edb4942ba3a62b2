"""``medseg demo``: the main job end to end on a bundled, generated EM dataset.

1. write a synthetic ISBI-2012-like dataset (train and held-out test stacks) in
   ISBI's on-disk layout and load it back through the ISBI loader;
2. train a small 2D U-Net on CPU (or GPU) with class-balanced, augmented patches;
3. predict the held-out test stack with Gaussian-blended sliding windows and flip TTA;
4. score every section (Dice, IoU per class) and write the predicted label stack,
   the ISBI submission file, an overlay picture, a training curve and ``metrics.json``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medseg.config import config_from_dict
from medseg.data.em import (
    EM_CLASSES,
    classes_to_isbi,
    isbi_labels_to_classes,
    load_isbi2012_samples,
)
from medseg.data.synthetic.em import write_isbi2012
from medseg.eval.formats import write_submission
from medseg.eval.overlap import overlap_metrics
from medseg.infer.predictor import Predictor
from medseg.io import Volume, read, write
from medseg.pipeline.datasets import load_training_samples
from medseg.pipeline.overlay import write_overlay
from medseg.pipeline.plots import plot_training
from medseg.pipeline.results import write_json, write_yaml
from medseg.pipeline.training import sliding_window_from_config, train_from_config
from medseg.train.checkpoint import load_checkpoint

__all__ = ["DEMO_CONFIG", "DemoResult", "run_demo"]

logger = logging.getLogger(__name__)

#: The demo's embedded default configuration (validated as a :class:`PipelineConfig`).
DEMO_CONFIG: dict[str, Any] = {
    "name": "demo-synthetic-isbi2012",
    "data": {
        "dataset": "isbi2012",
        "classes": list(EM_CLASSES),
        "patch_shape": [128, 128],
        "batch_size": 8,
        "validation_slices": 2,
        "seed": 0,
    },
    "model": {"name": "unet", "params": {"in_channels": 1, "out_channels": 2, "features": 16, "depth": 4}},
    "train": {"iterations": 300, "learning_rate": 3e-3, "validate_every": 100, "checkpoint_every": 50},
    "infer": {"roi_size": [128, 128], "overlap": 0.5, "blending": "gaussian", "mirror_axes": [0, 1]},
}
#: ``(Z, Y, X)`` of the generated train and test stacks.
DEMO_STACK_SHAPE = (10, 256, 256)


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its outputs and what it measured."""

    outputs: dict[str, Path]
    metrics: dict[str, Any]


def run_demo(
    out_dir: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    stack_shape: tuple[int, int, int] = DEMO_STACK_SHAPE,
    resume: bool = False,
    progress: bool = False,
) -> DemoResult:
    """Run the demo; see the module docstring.

    Parameters
    ----------
    out_dir : path
        Output folder (created).
    overrides : dict, optional
        Nested config values replacing :data:`DEMO_CONFIG`'s (e.g. ``{"train": {"iterations": 5}}``).
    stack_shape : (int, int, int)
        Size of the generated train and test stacks.
    resume : bool
        Continue from ``checkpoints/latest.pt`` if an earlier run left one.
    progress : bool
        Show progress bars.
    """
    start = time.perf_counter()
    out = Path(out_dir)
    data_root = out / "data"
    defaults = _merge(DEMO_CONFIG, {"data": {"root": str(data_root)}})
    config = config_from_dict(_merge(defaults, overrides or {}), source="demo config")
    out.mkdir(parents=True, exist_ok=True)
    if not (data_root / "test-labels.tif").is_file():
        logger.info("writing a synthetic ISBI 2012 dataset to %s", data_root)
        write_isbi2012(data_root, shape=stack_shape, seed=config.data.seed)
    train_samples, val_samples = load_training_samples(config.data)

    trained = train_from_config(config, train_samples, val_samples, out, resume=resume, progress=progress)
    train_result = trained.result

    predictor = Predictor.from_checkpoint(
        load_checkpoint(trained.best), sliding_window_from_config(config, progress=progress)
    )
    test = load_isbi2012_samples(data_root, "test", per_section=False)[0]
    truth = isbi_labels_to_classes(
        read(data_root / "test-labels.tif").array[0], source=data_root / "test-labels.tif"
    )
    predict_start = time.perf_counter()
    prediction = predictor.predict(test.image, probabilities=True)
    predict_seconds = time.perf_counter() - predict_start

    labels = prediction.labels.array[0]
    metrics = _section_metrics(truth, labels, config.data.classes)
    metrics.update(
        {
            "dataset": "synthetic ISBI 2012 (medseg.data.synthetic.em), held-out test stack",
            "train": {
                "iterations": train_result.iterations,
                "seconds": round(train_result.seconds, 2),
                "final_loss": float(np.mean(train_result.losses[-20:])) if train_result.losses else None,
                "validation_foreground_dice": train_result.validation,
            },
            "predict_seconds": round(predict_seconds, 2),
            "wall_seconds": round(time.perf_counter() - start, 2),
            "device": trained.device,
        }
    )
    outputs = _write_outputs(out, config, test.image, truth, prediction, metrics, train_result)
    return DemoResult(outputs=outputs, metrics=metrics)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = (
            _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return merged


def _section_metrics(truth: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
    """Dice and IoU per class for every section, and their means."""
    ids = list(range(len(classes)))
    per_section = []
    for z in range(truth.shape[0]):
        scores = overlap_metrics(truth[z], labels[z], labels=ids)
        per_section.append(
            {"section": z, **{classes[c]: {m: scores[c][m] for m in ("dice", "iou")} for c in ids}}
        )
    mean = {
        classes[c]: {m: float(np.nanmean([s[classes[c]][m] for s in per_section])) for m in ("dice", "iou")}
        for c in ids
    }
    return {"classes": list(classes), "per_section": per_section, "mean": mean}


def _write_outputs(out, config, image: Volume, truth, prediction, metrics, train_result) -> dict[str, Path]:
    labels = prediction.labels.array[0]
    membrane = list(config.data.classes).index("membrane")
    middle = labels.shape[0] // 2
    outputs = {
        "prediction": write(
            prediction.labels.with_array(classes_to_isbi(labels)[None]), out / "prediction.tif"
        ),
        "isbi_submission": write_submission(
            "isbi2012", 1.0 - prediction.probabilities.array[membrane], out, "isbi2012-submission"
        ),
        "overlay": write_overlay(out / "overlay.png", image.array[0, middle], truth[middle], labels[middle]),
        "training_curve": plot_training(
            out / "training_curve.png", train_result.losses, train_result.validation
        ),
        "config": write_yaml(out / "config.yaml", config.model_dump(mode="json")),
        "checkpoint": out / "checkpoints" / "best.pt",
    }
    outputs["metrics"] = write_json(
        out / "metrics.json", {**metrics, "outputs": {k: str(v) for k, v in outputs.items()}}
    )
    return outputs
