from __future__ import annotations

import json

import numpy as np
import tifffile

from medseg.pipeline.demo import run_demo

TINY = {
    "data": {"patch_shape": [32, 32], "batch_size": 2, "validation_slices": 1},
    "model": {"params": {"in_channels": 1, "out_channels": 2, "features": 4, "depth": 2}},
    "train": {"iterations": 3, "validate_every": 3, "checkpoint_every": 1},
    "infer": {"roi_size": [32, 32], "mirror_axes": [1]},
}


def test_demo_writes_every_output_with_consistent_values(tmp_path):
    result = run_demo(tmp_path, overrides=TINY, stack_shape=(3, 48, 40))
    names = {"prediction", "isbi_submission", "overlay", "training_curve", "config", "checkpoint", "metrics"}
    assert set(result.outputs) == names
    assert all(path.is_file() for path in result.outputs.values())

    labels = tifffile.imread(result.outputs["prediction"])
    assert labels.shape == (3, 48, 40) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 255}  # ISBI polarity: 255 cell, 0 membrane
    submission = tifffile.imread(result.outputs["isbi_submission"])
    assert submission.dtype == np.float32 and submission.shape == (3, 48, 40)
    assert submission.min() >= 0.0 and submission.max() <= 1.0
    # thresholding the submission at 0.5 gives the label stack back
    assert (
        np.array_equal(np.where(submission > 0.5, 255, 0), labels)
        or np.mean(np.where(submission > 0.5, 255, 0) == labels) > 0.999
    )

    metrics = json.loads(result.outputs["metrics"].read_text())
    assert metrics["classes"] == ["cell", "membrane"]
    assert len(metrics["per_section"]) == 3
    for name in ("cell", "membrane"):
        dice = [s[name]["dice"] for s in metrics["per_section"]]
        assert metrics["mean"][name]["dice"] == np.mean(dice)
        iou = metrics["mean"][name]["iou"]
        assert 0 <= iou <= metrics["mean"][name]["dice"] <= 1
    assert metrics["train"]["iterations"] == 3


def test_demo_resumes_from_its_latest_checkpoint(tmp_path):
    run_demo(tmp_path, overrides=TINY, stack_shape=(3, 48, 40))
    longer = {**TINY, "train": {**TINY["train"], "iterations": 5}}
    result = run_demo(tmp_path, overrides=longer, stack_shape=(3, 48, 40), resume=True)
    assert result.metrics["train"]["iterations"] == 5
    # the history spans both runs: iteration 3 from the first, 5 validated anew
    assert [it for it, _ in result.metrics["train"]["validation_foreground_dice"]] == [3, 5]
