"""Validation scores and held-out files of a run: a held-out region is predicted with context, scored without it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from torch import nn

from medseg.config import config_from_dict
from medseg.data.holdout import hold_out_region
from medseg.data.sample import Sample
from medseg.infer.normalize import ZScore
from medseg.infer.predictor import Predictor
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import Volume, read
from medseg.pipeline.held_out import evaluate_held_out
from medseg.pipeline.validation import store_tuned_postprocessing, thin_held_out, validation_policy


class Channels(nn.Module):
    """The input channels are the logits."""

    def forward(self, x):
        return x


def _config():
    return config_from_dict(
        {
            "data": {"dataset": "folder", "classes": ["background", "disk"], "patch_shape": [16, 16]},
            "model": {"params": {"in_channels": 2, "out_channels": 2, "features": 4, "depth": 2}},
            "infer": {"roi_size": [16, 16], "batch_size": 4, "mirror_axes": []},
        },
        source="test config",
    )


def _held_out_with_wrong_context():
    """A 24x40 case whose X 32-39 is held out (X 24-31 context); the prediction is wrong only in the context.

    The image is the logits of the true classes, except a false disk at rows 2-9, X 24-29.
    """
    truth = np.zeros((24, 40), dtype=np.uint8)
    truth[4:12, 6:14] = 1
    truth[14:20, 26:37] = 1  # crosses the cut at X 32
    logits = np.stack([-4.0 * truth, 4.0 * truth]).astype(np.float32)
    logits[:, 2:10, 24:30] = np.array([-4.0, 4.0])[:, None, None]
    geometry = {"spacing": (0.5, 0.5), "origin": (3.0, 1.0), "unit": "um"}
    sample = Sample(Volume(logits, **geometry), Volume(truth[None], **geometry), "c", "cells")
    _, held, region = hold_out_region(sample, 0.2)
    assert (region.start, region.context) == (32, 8) and held.scored == (slice(0, 24), slice(8, 16))
    return held, truth


def test_validation_dice_of_a_held_out_region_ignores_its_context():
    held, _ = _held_out_with_wrong_context()
    policy = validation_policy([held], ZScore((0.0, 0.0), (1.0, 1.0)), _config())
    assert policy.score(Channels()) == pytest.approx(1.0)
    # scored whole, the context's 48 false pixels count against the 66 of the crossing disk
    whole = validation_policy(
        [dataclasses.replace(held, scored=None)], ZScore((0.0, 0.0), (1.0, 1.0)), _config()
    )
    assert whole.score(Channels()) == pytest.approx(2 * 66 / (66 + 66 + 48))


def test_run_evaluation_writes_and_scores_only_the_held_out_part(tmp_path):
    held, truth = _held_out_with_wrong_context()
    predictor = Predictor(
        Channels(), SlidingWindow((16, 16), device="cpu", mirror_axes=()), ZScore((0.0, 0.0), (1.0, 1.0))
    )
    summary = evaluate_held_out(predictor, [held], tmp_path, progress=False)
    # the 6 x 5 pixels of the crossing disk right of the cut, none of the context's false disk
    scores = summary["foreground_mean"]
    assert (scores["Dice"], scores["TP"], scores["FP"], scores["TN"]) == (1.0, 30, 0, 24 * 8 - 30)
    # both files hold the held-out X 32-39 only, placed where it lies: origin X 1 + 32 * 0.5
    for folder in ("predictions", "reference"):
        [path] = (tmp_path / folder).iterdir()
        written = read(path)
        np.testing.assert_array_equal(written.array[0], truth[:, 32:])
        assert written.origin == pytest.approx((3.0, 17.0)) and written.spacing == pytest.approx((0.5, 0.5))
    per_case = json.loads((tmp_path / "evaluation" / "summary.json").read_text())["metric_per_case"]
    assert [case["case"] for case in per_case] == ["c:held-out"]


def test_held_out_regions_thinner_than_two_objects_are_not_tuned_on():
    image = np.zeros((1, 100, 30, 20), dtype=np.float32)
    sample = Sample(Volume(image), Volume(image.astype(np.uint8)), "stack", "nuclei")
    _, held, region = hold_out_region(sample, 0.2)  # Z 80-99: 20 sections
    assert region.axis == 0 and held.scored[0] == slice(20, 40)
    # nuclei 16.5 sections tall: 20 < 2 x 16.5
    assert thin_held_out([held], [16.5, 25.0, 22.0]) == (
        "the held-out part of stack is 20 voxels along Z, under 2 typical objects (16.5 voxels each)"
    )
    assert thin_held_out([held], [10.0, 25.0, 22.0]) is None  # 20 = 2 x 10: thick enough
    assert thin_held_out([held], None) is None  # no objects in the fingerprint
    whole = Sample(Volume(image), Volume(image.astype(np.uint8)), "other", "nuclei")  # a held-out case
    assert thin_held_out([whole], [50.0, 50.0, 50.0]) is None


def test_a_thin_held_out_region_keeps_the_default_post_processing_and_says_why(tmp_path):
    from medseg.models import build_model
    from medseg.train.checkpoint import load_checkpoint, save_checkpoint

    config = config_from_dict(
        {
            "data": {
                "dataset": "lab_folder",
                "label_kind": "instances",
                "instance_target": "distance",
                "classes": ["background", "nucleus"],
                "patch_shape": [16, 16, 16],
            },
            "model": {
                "params": {"in_channels": 1, "out_channels": 3, "features": 4, "depth": 2, "spatial_dims": 3}
            },
            "infer": {"roi_size": [16, 16, 16]},
        },
        source="test config",
    )
    image = np.zeros((1, 100, 30, 20), dtype=np.float32)
    _, held, _ = hold_out_region(
        Sample(Volume(image), Volume(image.astype(np.uint8)), "stack", "nuclei"), 0.2
    )
    model = build_model("unet", in_channels=1, out_channels=3, features=4, depth=2)
    metadata = {
        "model": {"name": "unet", "params": {}},
        "normalization": ZScore((0.0,), (1.0,)).to_dict(),
        "targets": {"label_kind": "instances", "instance_target": "distance"},
    }
    save_checkpoint(tmp_path / "best.pt", model=model, metadata=metadata)
    fingerprint = {"objects": {"median_voxels": 4000.0, "median_extent": [16.5, 25.0, 22.0]}}
    store_tuned_postprocessing(config, tmp_path, [held], fingerprint)
    entry = load_checkpoint(tmp_path / "best.pt")["metadata"]["postprocessing"]
    assert entry["tuned"] is False and entry["not_tuned"].endswith(
        "under 2 typical objects (16.5 voxels each)"
    )
    assert entry["split_size"] == 6000 and entry["object_extent"] == [
        16.5,
        25.0,
        22.0,
    ]  # the size prior stays
