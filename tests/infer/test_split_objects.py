"""Splitting objects far larger than the typical training object (the size prior of the watershed)."""

from __future__ import annotations

import numpy as np
import pytest
from _flow_maps import ball, touching, true_maps

from medseg.errors import ConfigError, ShapeError
from medseg.infer.postprocess import PostProcessing, instances_for_params, instances_from_maps
from medseg.infer.split_objects import split_large_objects


def _best_iou(truth, pred, i):
    mask = truth == i
    ids, counts = np.unique(pred[mask], return_counts=True)
    j = ids[np.argmax(counts)]
    other = pred == j
    return (mask & other).sum() / (mask | other).sum()


def test_two_merged_discs_are_split_back_and_typical_objects_are_left_alone():
    truth = touching((40, 80), [(20, 20), (20, 37), (20, 64)], [9, 9, 9])  # 1 and 2 touch, 3 apart
    merged = np.where(truth == 2, 1, truth).astype(np.uint32)
    disc = int((truth == 3).sum())
    split = split_large_objects(merged, round(1.5 * disc), (18.0, 18.0))
    assert split.dtype == merged.dtype
    assert len(np.unique(split)) - 1 == 3
    for i in (1, 2, 3):
        assert _best_iou(truth, split, i) > 0.9
    np.testing.assert_array_equal(split[truth == 3], merged[truth == 3])  # the typical disc keeps its id
    np.testing.assert_array_equal(split_large_objects(merged, 0, (18.0, 18.0)), merged)
    # above the size but round: one distance peak, nothing to split
    big = ball((40, 40), (20, 20), 14).astype(np.int32)
    np.testing.assert_array_equal(split_large_objects(big, disc, (18.0, 18.0)), big)
    with pytest.raises(ShapeError, match="positive extent per axis of the 2D ids"):
        split_large_objects(merged, 10, (18.0,))


def test_an_anisotropic_stack_is_split_in_units_of_the_typical_extent():
    """Two balls of 16 voxels in Y/X but 6 in Z (Z sampled coarser), merged, come apart."""
    zz, yy, xx = np.indices((12, 24, 50))
    truth = np.zeros(zz.shape, np.int32)
    for k, cx in enumerate((14, 29), start=1):
        inside = ((zz - 6) / 3.2) ** 2 + ((yy - 12) / 8.5) ** 2 + ((xx - cx) / 8.5) ** 2 < 1
        truth[inside & (truth == 0)] = k
    merged = (truth > 0).astype(np.int32)
    one = int((truth == 1).sum())
    split = split_large_objects(merged, round(1.5 * one), (6.0, 16.0, 16.0))
    assert len(np.unique(split)) - 1 == 2
    assert min(_best_iou(truth, split, i) for i in (1, 2)) > 0.85


def test_flow_objects_merged_by_the_model_are_split_by_the_post_processing():
    truth = touching((40, 60), [(20, 18), (20, 35)], [9, 9])
    maps = true_maps((truth > 0).astype(np.int32))  # a model that flows both discs to one centre
    disc = int((truth == 1).sum())
    plain = PostProcessing(min_size=0)
    assert instances_from_maps(maps, "flow", plain).max() == 1
    params = PostProcessing(min_size=0, split_size=round(1.5 * disc), object_extent=(18, 18))
    split = instances_from_maps(maps, "flow", params)
    assert split.max() == 2 and min(_best_iou(truth, split, i) for i in (1, 2)) > 0.9
    # the tuning path gives the same objects for every point
    points = [
        plain,
        params,
        PostProcessing(min_size=disc + 1, split_size=round(1.5 * disc), object_extent=(18, 18)),
    ]
    for i, objects in instances_for_params(maps, "flow", points):
        np.testing.assert_array_equal(objects, instances_from_maps(maps, "flow", points[i]))


def test_split_size_needs_the_typical_extent_and_round_trips_through_a_dict():
    params = PostProcessing(split_size=600, object_extent=[22, 24])
    assert params.object_extent == (22.0, 24.0)
    assert PostProcessing.from_dict({**params.to_dict(), "tuned": True}) == params
    assert PostProcessing.from_dict({"min_size": 5}).split_size == 0  # checkpoints from before: no splitting
    with pytest.raises(ConfigError, match="split_size 600 needs the typical object's extent"):
        PostProcessing(split_size=600)
    with pytest.raises(ConfigError, match="split_size must be >= 0"):
        PostProcessing(split_size=-1)
