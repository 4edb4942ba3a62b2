"""Post-processing thresholds tuned on held-out data, stored in the checkpoint and read back by predict."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
from _flow_maps import touching, true_maps
from scipy import ndimage
from torch import nn

from medseg.config import PostProcessingConfig, config_from_dict
from medseg.data.holdout import hold_out_region
from medseg.data.sample import Sample, scored_part
from medseg.data.synthetic.flow_maps import noisy_flow_maps
from medseg.eval.instance import aggregated_jaccard_index
from medseg.flows import FLOW_SCALE, flows_from_instances
from medseg.infer.normalize import ZScore
from medseg.infer.postprocess import PostProcessing, instances_from_maps
from medseg.infer.predictor import Predictor
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import Volume
from medseg.models import build_model
from medseg.pipeline.tuning import (
    FLOW_THRESHOLDS,
    FOREGROUND_THRESHOLDS,
    SPLIT_FACTOR,
    instance_score,
    min_size_candidates,
    postprocessing_metadata,
    size_prior,
    store_postprocessing,
    tune_postprocessing,
)
from medseg.train.checkpoint import load_checkpoint, save_checkpoint


class Channels(nn.Module):
    """The input channels are the logits."""

    def forward(self, x):
        return x


def _held_out_case():
    """Three separate discs whose predicted distance peaks at 0.45: the default seed threshold 0.5 finds none."""
    yy, xx = np.indices((40, 64))
    truth = np.zeros((40, 64), dtype=np.uint16)
    for i, (cy, cx) in enumerate([(12, 12), (20, 32), (28, 52)], start=1):
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 <= 49] = i
    distance = np.zeros(truth.shape, dtype=np.float32)
    for i in (1, 2, 3):
        d = ndimage.distance_transform_edt(truth == i)
        distance += (0.45 * d / d.max()).astype(np.float32)
    foreground = (truth > 0).astype(np.float32)
    logits = np.stack([-6 * foreground, 6 * foreground, np.log(distance + 1e-4) - np.log1p(-distance)])
    return Sample(
        image=Volume(logits.astype(np.float32)),
        label=Volume(truth[None]),
        case_id="c:held-out",
        modality="cells",
    )


def _predictor():
    return Predictor(
        Channels(),
        SlidingWindow((32, 32), device="cpu", mirror_axes=()),
        ZScore((0.0,) * 3, (1.0,) * 3),
        targets={"label_kind": "instances", "instance_target": "distance"},
    )


def test_tuning_finds_thresholds_that_the_defaults_miss_and_they_round_trip(tmp_path):
    case = _held_out_case()
    tuned = tune_postprocessing(_predictor(), [case], PostProcessingConfig(), typical_object_voxels=149)
    assert tuned.default_aji == 0.0  # no distance above 0.5: no seeds, no objects
    assert tuned.params.seed_threshold < 0.45 and tuned.aji == pytest.approx(1.0)
    assert tuned.searched == 6 * 5 * len(min_size_candidates(149, 10))
    # stored in the checkpoint as metadata, read back by the predictor medseg predict builds
    model = build_model("unet", in_channels=3, out_channels=3, features=4, depth=2)
    spec = {"name": "unet", "params": {"in_channels": 3, "out_channels": 3, "features": 4, "depth": 2}}
    metadata = {
        "model": spec,
        "normalization": ZScore((0.0,) * 3, (1.0,) * 3).to_dict(),
        "targets": {"label_kind": "instances", "instance_target": "distance"},
    }
    best = save_checkpoint(tmp_path / "best.pt", model=model, metadata=metadata)
    entry = postprocessing_metadata(PostProcessingConfig(), tuned, [case.case_id])
    store_postprocessing([best, tmp_path / "latest.pt"], entry)  # a missing file is skipped
    stored = load_checkpoint(best)["metadata"]
    assert stored["postprocessing"]["tuned"] is True and stored["postprocessing"]["tuned_on"] == [
        "c:held-out"
    ]
    assert stored["postprocessing"]["validation_aji"] == pytest.approx(1.0)
    assert stored["targets"] == metadata["targets"]  # the rest of the metadata is kept
    predictor = Predictor.from_checkpoint(load_checkpoint(best), SlidingWindow((32, 32), device="cpu"))
    assert predictor.postprocessing == tuned.params
    assert not (tmp_path / "latest.pt").exists()


def test_values_set_in_the_yaml_are_kept_and_not_searched():
    settings = config_from_dict(
        {
            "data": {"label_kind": "instances", "classes": ["background", "nucleus"]},
            "model": {"params": {"out_channels": 3}},
            "infer": {"postprocessing": {"seed_threshold": 0.6, "min_size": 3}},
        }
    ).infer.postprocessing
    tuned = tune_postprocessing(_predictor(), [_held_out_case()], settings)
    assert tuned.params.seed_threshold == 0.6 and tuned.params.min_size == 3
    assert tuned.fixed == ("min_size", "seed_threshold") and tuned.searched == 5
    assert tuned.aji == 0.0  # the YAML's 0.6 finds no seed here, and is kept anyway
    untuned = postprocessing_metadata(settings, None, [])
    assert untuned == {
        **PostProcessing(seed_threshold=0.6, min_size=3).to_dict(),
        "tuned": False,
        "set_in_config": ["min_size", "seed_threshold"],
    }


def test_min_sizes_follow_the_typical_object():
    assert min_size_candidates(400, 10) == (10, 0, 20, 40, 80, 140)
    assert min_size_candidates(None, 10) == (10, 0, 20, 50)


def test_flow_models_search_the_flow_threshold_instead_of_seeds():
    """True flows of three discs behind a cell probability of 0.45: the default foreground 0.5 finds none."""
    truth = _held_out_case().label.array[0].astype(np.int32)
    probability = np.where(truth > 0, 0.45, 0.01)
    logits = np.concatenate(
        [np.log(probability / (1 - probability))[None], FLOW_SCALE * flows_from_instances(truth)]
    )
    case = Sample(Volume(logits.astype(np.float32)), Volume(truth[None]), "c:flows", "cells")
    predictor = Predictor(
        Channels(),
        SlidingWindow((32, 32), device="cpu", mirror_axes=()),
        ZScore((0.0,) * 3, (1.0,) * 3),
        targets={"label_kind": "instances", "instance_target": "flow"},
    )
    settings = PostProcessingConfig(min_size=10)
    tuned = tune_postprocessing(predictor, [case], settings)
    assert tuned.default_aji == 0.0 and tuned.aji == pytest.approx(1.0)
    assert tuned.params.foreground_threshold < 0.45 and tuned.params.flow_threshold == 0.4
    assert tuned.searched == len(FLOW_THRESHOLDS) * len(FOREGROUND_THRESHOLDS)
    assert postprocessing_metadata(settings, tuned, ["c:flows"])["flow_threshold"] == 0.4
    # infer.postprocessing.flow_threshold set in the YAML is kept, not searched
    fixed = tune_postprocessing(predictor, [case], PostProcessingConfig(min_size=10, flow_threshold=0.7))
    assert fixed.params.flow_threshold == 0.7 and fixed.searched == len(FOREGROUND_THRESHOLDS)
    assert fixed.fixed == ("flow_threshold", "min_size")


def _flow_case(labels, seed):
    """A held-out case whose 'image' is the logits a flow model gives for ``noisy_flow_maps(labels)``."""
    maps = noisy_flow_maps(labels, seed=seed).astype(np.float64)
    logits = np.concatenate([np.log(maps[:1] / (1 - maps[:1])), FLOW_SCALE * maps[1:]])
    return Sample(Volume(logits.astype(np.float32)), Volume(labels[None]), f"c:flows-{seed}", "cells")


def _per_point_scores(predictor, cases, points):
    """The mean AJI of every point, each turned into objects on its own by ``instances_from_maps``."""
    maps = [predictor.instance_maps(predictor.predict_logits(c.image.array)) for c in cases]
    return [
        float(
            np.mean(
                [
                    aggregated_jaccard_index(c.label.array[0], instances_from_maps(m, "flow", params))
                    for m, c in zip(maps, cases, strict=True)
                ]
            )
        )
        for params in points
    ]


@pytest.mark.parametrize(
    ("labels", "seeds"),
    [
        (
            touching(
                (48, 72), [(13, 13), (13, 30), (13, 50), (32, 18), (32, 37), (32, 56)], [10, 9, 11, 10, 10, 9]
            ),
            (0, 1),
        ),
        (touching((12, 32, 44), [(6, 10, 11), (6, 10, 25), (6, 21, 16), (6, 21, 32)], [7, 8, 7, 8]), (0,)),
    ],
    ids=["2d-two-cases", "3d"],
)
def test_flow_tuning_follows_each_foreground_threshold_once_and_chooses_as_point_by_point(labels, seeds):
    """Touching objects with noisy flows: the grid's result equals scoring every point on its own."""
    cases = [_flow_case(labels, seed) for seed in seeds]
    ndim = labels.ndim
    predictor = Predictor(
        Channels(),
        SlidingWindow(labels.shape, device="cpu", mirror_axes=()),
        ZScore((0.0,) * (ndim + 1), (1.0,) * (ndim + 1)),
        targets={"label_kind": "instances", "instance_target": "flow"},
    )
    typical = float(np.median(np.bincount(labels.ravel())[1:]))
    tuned = tune_postprocessing(predictor, cases, PostProcessingConfig(), typical_object_voxels=typical)
    sizes = min_size_candidates(typical, 10)
    points = [
        PostProcessing(flow_threshold=t, foreground_threshold=f, min_size=s)
        for t, f, s in itertools.product(FLOW_THRESHOLDS, FOREGROUND_THRESHOLDS, sizes)
    ]
    scores = _per_point_scores(predictor, cases, points)
    best = int(np.argmax(scores))
    assert tuned.searched == len(points)
    assert tuned.params == points[best] and tuned.aji == scores[best] and tuned.default_aji == scores[0]
    # not a trivial search: the best point is not the default, and at its foreground threshold
    # and minimum size the flow threshold changes the score
    assert tuned.aji > tuned.default_aji
    by_flow = {
        score
        for params, score in zip(points, scores, strict=True)
        if (params.foreground_threshold, params.min_size)
        == (tuned.params.foreground_threshold, tuned.params.min_size)
    }
    assert len(by_flow) >= 2


def _distance_case(centres, shape=(40, 64)):
    """Discs of radius 7 at ``centres`` and logits of their true foreground and distance (peak 0.45)."""
    yy, xx = np.indices(shape)
    truth = np.zeros(shape, dtype=np.uint16)
    for i, (cy, cx) in enumerate(centres, start=1):
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 <= 49] = i
    distance = np.zeros(shape, dtype=np.float32)
    for i in range(1, len(centres) + 1):
        d = ndimage.distance_transform_edt(truth == i)
        distance += (0.45 * d / d.max()).astype(np.float32)
    foreground = (truth > 0).astype(np.float32)
    logits = np.stack([-6 * foreground, 6 * foreground, np.log(distance + 1e-4) - np.log1p(-distance)])
    return logits.astype(np.float32), truth


def test_a_held_out_region_is_post_processed_with_its_context_and_scored_without_it():
    # X 48-63 held out, X 32-47 its context; disc 2 (x 39-53) crosses the cut with its
    # centre in the context, disc 1 (x 21-35) and the blob below lie in the context only
    logits, truth = _distance_case([(12, 28), (28, 46)])
    sample = Sample(Volume(logits), Volume(truth[None]), "c", "cells")
    _, held, region = hold_out_region(sample, 0.25)
    assert (region.start, region.context) == (48, 16) and held.scored == (slice(0, 40), slice(16, 32))
    # the prediction is wrong only in the context: a false object at X 32-40, rows 2-6
    wrong = held.image.array.copy()
    wrong[:, 2:7, 0:9] = np.array([-6.0, 6.0, 0.0])[:, None, None]
    held = dataclasses.replace(held, image=Volume(wrong))
    # the crossing disc's distance passes 0.4 only left of the cut: its seed is in the context
    params = PostProcessing(seed_threshold=0.4)
    cut = Sample(Volume(np.ascontiguousarray(logits[:, :, 48:])), Volume(truth[None, :, 48:]), "c", "cells")
    assert instance_score(_predictor(), [cut], params) == 0.0  # the held-out part alone: no seed
    # with its context the crossing disc is found whole, then scored as its part right of the cut
    assert instance_score(_predictor(), [held], params) == pytest.approx(1.0)
    instances = _predictor().instances_from_logits(torch.from_numpy(wrong), params)
    np.testing.assert_array_equal(scored_part(held, instances) > 0, truth[:, 48:] == 2)
    tuned = tune_postprocessing(_predictor(), [held], PostProcessingConfig(min_size=10))
    assert tuned.aji == pytest.approx(1.0) and tuned.default_aji == 0.0
    # the same case scored whole counts the false object and the context's labels
    whole = dataclasses.replace(held, scored=None)
    assert instance_score(_predictor(), [whole], params) < 0.9


def test_tuning_splits_objects_the_model_merged_when_the_held_out_data_says_so():
    """A 'model' that flows each pair of touching discs to one centre: splitting by size wins."""
    truth = touching((40, 120), [(20, 18), (20, 35), (20, 70), (20, 87)], [9, 9, 9, 9])
    merged = np.select([truth == 2, truth == 4], [1, 3], truth).astype(np.int32)
    maps = true_maps(merged)
    logits = np.concatenate([np.log(0.95 / 0.05) * (2 * maps[:1] - 1), FLOW_SCALE * maps[1:]])
    case = Sample(Volume(logits.astype(np.float32)), Volume(truth[None]), "c:merged", "cells")
    predictor = Predictor(
        Channels(),
        SlidingWindow(truth.shape, device="cpu", mirror_axes=()),
        ZScore((0.0,) * 3, (1.0,) * 3),
        targets={"label_kind": "instances", "instance_target": "flow"},
    )
    disc = float((truth == 1).sum())
    tuned = tune_postprocessing(
        predictor, [case], PostProcessingConfig(), typical_object_voxels=disc, typical_object_extent=(18, 18)
    )
    assert tuned.params.split_size == round(SPLIT_FACTOR * disc) and tuned.params.object_extent == (
        18.0,
        18.0,
    )
    assert tuned.aji > 0.9  # split: the 4 discs; unsplit (below): 2 merged pairs
    off = tune_postprocessing(
        predictor,
        [case],
        PostProcessingConfig(split_size=0),
        typical_object_voxels=disc,
        typical_object_extent=(18, 18),
    )
    assert off.params.split_size == 0 and off.aji < 0.6
    assert size_prior(None, (18, 18)) == {} and size_prior(disc, None) == {}
