"""Objects from Cellpose flows (``instance_target: flow``): following, clustering, flow error, TTA, blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _flow_maps import touching, true_maps
from scipy import ndimage
from torch import nn

from medseg.data.synthetic.flow_maps import noisy_flow_maps
from medseg.errors import ConfigError, FormatError, ShapeError
from medseg.eval.instance import aggregated_jaccard_index
from medseg.flows import FLOW_SCALE, flows_from_instances
from medseg.infer.blockwise import predict_blockwise
from medseg.infer.flow_masks import (
    flow_errors,
    flow_masks,
    follow_flows,
    instances_from_flows,
    instances_from_section_flows,
    section_flow_masks,
    stitch_sections,
)
from medseg.infer.normalize import ZScore
from medseg.infer.postprocess import PostProcessing, instances_for_params, instances_from_maps
from medseg.infer.predictor import Predictor
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import Volume


@pytest.mark.parametrize(
    "labels",
    [
        touching((64, 80), [(32, 25), (32, 52)], [15, 14]),
        touching((24, 40, 48), [(12, 20, 15), (12, 20, 33)], [10, 9]),
    ],
    ids=["discs", "balls"],
)
def test_true_flows_of_touching_objects_give_them_back(labels):
    assert np.any((labels == 1) & np.roll(labels == 2, -1, axis=-1))  # they touch
    found = instances_from_maps(true_maps(labels), "flow", PostProcessing())
    assert found.dtype == np.uint32 and found.max() == 2
    assert aggregated_jaccard_index(labels, found) >= 0.95


def test_voxels_end_at_their_object_centre():
    labels = touching((41, 41), [(20, 20)], [12])
    mask = labels > 0
    ends = follow_flows(flows_from_instances(labels), mask)
    assert ends.shape == (int(mask.sum()), 2)
    assert np.abs(ends - 20).max() <= 1.5  # every voxel, border ones included, reaches the centre


def test_flow_threshold_drops_a_mask_whose_flows_are_wrong():
    labels = touching((48, 90), [(24, 20), (24, 68)], [12, 12])
    maps = true_maps(labels)
    right = labels == 2
    rng = np.random.default_rng(0)
    # the right disc's flows are scrambled past a (true) centre: it still ends somewhere, but
    # its flows are not the flows of any mask
    angle = rng.uniform(0, 2 * np.pi, size=int(right.sum()))
    maps[1][right], maps[2][right] = np.sin(angle), np.cos(angle)
    maps[1:, 24, 68] = 0
    found = instances_from_flows(maps[0], maps[1:], flow_threshold=0.4)
    assert (found[labels == 1] > 0).all() and not found[right].any()
    kept = instances_from_flows(maps[0], maps[1:], flow_threshold=4.0)
    assert kept[right].any()  # the same voxels pass a lax threshold


#: Six discs in two rows and four balls in a square, each touching its neighbours.
TOUCHING_2D = touching(
    (48, 72), [(13, 13), (13, 30), (13, 50), (32, 18), (32, 37), (32, 56)], [10, 9, 11, 10, 10, 9]
)
TOUCHING_3D = touching((12, 32, 44), [(6, 10, 11), (6, 10, 25), (6, 21, 16), (6, 21, 32)], [7, 8, 7, 8])
#: The flow thresholds tuning searches, and 4 (every mask kept).
FLOW_THRESHOLDS = (0.2, 0.4, 0.6, 0.8, 1.2, 4.0)


def _section_maps(labels):
    """A 2D flow model's maps of a stack: each section's noisy 2D maps, ``(3, Z, Y, X)``."""
    return np.stack([noisy_flow_maps(section, seed=z) for z, section in enumerate(labels)], axis=1)


@pytest.mark.parametrize("labels", [TOUCHING_2D, TOUCHING_3D], ids=["2d", "3d"])
def test_flow_masks_kept_at_a_threshold_are_the_objects_of_instances_from_flows(labels):
    maps = noisy_flow_maps(labels)
    assert np.any((labels == 1) & np.roll(labels == 2, -1, axis=-1))  # they touch
    masks = flow_masks(maps[0], maps[1:], foreground_threshold=0.3)
    found = masks.instances.copy()
    present = np.unique(found)[1:]
    counts = []
    for flow_threshold in FLOW_THRESHOLDS:
        expected = instances_from_flows(
            maps[0], maps[1:], foreground_threshold=0.3, flow_threshold=flow_threshold
        )
        kept = masks.kept(flow_threshold)
        np.testing.assert_array_equal(kept, expected)
        assert kept.dtype == expected.dtype == np.int64
        # the masks kept are those whose flow error is within the threshold, untouched
        within = present[masks.errors[present - 1] <= flow_threshold]
        np.testing.assert_array_equal(np.unique(kept)[1:], within)
        np.testing.assert_array_equal(kept[kept > 0], found[kept > 0])
        counts.append(len(within))
    np.testing.assert_array_equal(masks.instances, found)  # filtering leaves the masks as they were
    assert counts == sorted(counts) and counts[0] < counts[-1] == len(present)  # the threshold matters


def test_section_flow_masks_kept_at_a_threshold_are_the_stitched_objects_of_the_sections():
    labels = touching((8, 40, 56), [(4, 20, 14), (4, 20, 32), (4, 20, 46)], [6, 9, 7])
    maps = _section_maps(labels)
    masks = section_flow_masks(maps[0], maps[1:], foreground_threshold=0.4)
    objects = [len(np.unique(masks.kept(t))) - 1 for t in FLOW_THRESHOLDS]
    for flow_threshold in FLOW_THRESHOLDS:
        expected = instances_from_section_flows(
            maps[0], maps[1:], foreground_threshold=0.4, flow_threshold=flow_threshold
        )
        np.testing.assert_array_equal(masks.kept(flow_threshold), expected)
    # the threshold drops section masks before they are stitched: dropped pieces leave fewer
    # objects, or more where a dropped piece had joined its neighbours
    assert objects[-1] == 3 and len(set(objects)) >= 3


@pytest.mark.parametrize("kind", ["2d", "3d", "sections"])
def test_instances_for_a_grid_of_params_are_those_of_instances_from_maps_point_by_point(kind):
    maps = {
        "2d": lambda: noisy_flow_maps(TOUCHING_2D),
        "3d": lambda: noisy_flow_maps(TOUCHING_3D),
        "sections": lambda: _section_maps(TOUCHING_3D),
    }[kind]()
    grid = [
        PostProcessing(flow_threshold=t, foreground_threshold=f, min_size=s)
        for t in (0.4, 0.2, 1.2)
        for f in (0.5, 0.3, 0.7)
        for s in (10, 0, 300)
    ]
    found = list(instances_for_params(maps, "flow", grid))
    assert sorted(i for i, _ in found) == list(range(len(grid)))  # every point once
    distinct = set()
    for i, objects in found:
        expected = instances_from_maps(maps, "flow", grid[i])
        assert objects.dtype == expected.dtype == np.uint32
        np.testing.assert_array_equal(objects, expected)
        distinct.add(expected.tobytes())
    assert len(distinct) >= 6  # the three thresholds change the objects here


def test_instances_for_params_of_other_targets_run_instances_from_maps_in_order():
    labels = TOUCHING_2D
    distance = np.zeros(labels.shape, np.float32)
    for k in range(1, labels.max() + 1):
        d = ndimage.distance_transform_edt(labels == k)
        distance += (d / d.max()).astype(np.float32)
    maps = np.stack([(labels > 0).astype(np.float32), distance])
    grid = [PostProcessing(seed_threshold=t, min_size=s) for t in (0.5, 0.9) for s in (10, 300)]
    found = list(instances_for_params(maps, "distance", grid))
    assert [i for i, _ in found] == [0, 1, 2, 3]
    for i, objects in found:
        np.testing.assert_array_equal(objects, instances_from_maps(maps, "distance", grid[i]))
    assert found[0][1].max() == 6 and found[3][1].max() == 4  # two objects have under 300 pixels


def test_flow_errors_are_zero_for_the_true_flows_and_hand_checked_for_reversed_ones():
    labels = touching((30, 60), [(15, 15), (15, 44)], [10, 10])
    flows = flows_from_instances(labels)
    np.testing.assert_allclose(flow_errors(labels, flows), [0.0, 0.0], atol=1e-6)
    reversed_right = flows.copy()
    reversed_right[:, labels == 2] *= -1
    inside = labels == 2
    unit = np.isclose(np.linalg.norm(flows[:, inside], axis=0), 1.0)
    expected = 4.0 * unit.mean()  # |v - (-v)|^2 = 4 on unit vectors, 0 at the centre
    np.testing.assert_allclose(flow_errors(labels, reversed_right), [0.0, expected], atol=1e-5)


def test_flow_maps_and_thresholds_are_checked():
    labels = touching((20, 20), [(10, 10)], [6])
    empty = instances_from_maps(np.zeros((3, 20, 20), np.float32), "flow", PostProcessing())
    assert empty.shape == (20, 20) and not empty.any()  # no foreground, no objects
    with pytest.raises(ShapeError, match="flow target has 3 maps"):
        instances_from_maps(true_maps(labels)[:2], "flow", PostProcessing())
    with pytest.raises(ConfigError, match="flow_threshold"):
        instances_from_flows(labels.astype(float), flows_from_instances(labels), flow_threshold=0)


def test_post_processing_keeps_flow_threshold_and_reads_old_checkpoints():
    params = PostProcessing(foreground_threshold=0.4, min_size=5, flow_threshold=0.8)
    assert params.to_dict()["flow_threshold"] == 0.8
    assert PostProcessing.from_dict({**params.to_dict(), "tuned": True}) == params
    old = {"seed_threshold": 0.6, "foreground_threshold": 0.5, "min_size": 10, "tuned": True}
    assert PostProcessing.from_dict(old).flow_threshold == 0.4  # written before flow_threshold existed
    with pytest.raises(ConfigError, match=r"flow_threshold must be in \(0, 4\]"):
        PostProcessing(flow_threshold=5)
    with pytest.raises(FormatError, match="best.pt"):
        PostProcessing.from_dict({"flow_threshold": -1}, source="best.pt")


class LabelFlows(nn.Module):
    """A flow 'model' that reads an instance label image and outputs its exact cell logit and flows.

    It is flip-equivariant as a trained model should be: the flows of a flipped image are the
    flipped flows with the flipped axis's component negated.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for image in x[:, 0].numpy():
            labels = np.rint(image).astype(np.int32)
            flows = FLOW_SCALE * flows_from_instances(labels)
            out.append(np.concatenate([np.where(labels > 0, 10.0, -10.0)[None], flows]))
        return torch.from_numpy(np.stack(out).astype(np.float32))


def _boxes():
    labels = np.zeros((1, 33, 37), dtype=np.float32)
    labels[0, 3:14, 4:21] = 1  # odd sizes: their flows are mirror-symmetric
    labels[0, 17:30, 9:16] = 2
    labels[0, 17:28, 19:34] = 3
    return labels


def test_flip_tta_of_a_flow_model_returns_its_flows():
    labels = _boxes()
    window = SlidingWindow((33, 37), overlap=0, device="cpu", mirror_axes=(0, 1))
    predictor = Predictor(
        LabelFlows(),
        window,
        ZScore((0.0,), (1.0,)),
        targets={"label_kind": "instances", "instance_target": "flow"},
    )
    assert predictor.window.vector_start == 1
    logits = predictor.predict_logits(labels)
    expected = FLOW_SCALE * flows_from_instances(labels[0].astype(np.int32))
    np.testing.assert_allclose(logits[1:].numpy(), expected, atol=1e-4)
    # without negating the flipped components the flows would average towards 0
    plain = SlidingWindow((33, 37), overlap=0, device="cpu", mirror_axes=(0, 1))(LabelFlows(), labels[None])[
        0
    ]
    assert np.abs(plain[1:].numpy() - expected).max() > 1
    prediction = predictor.predict(Volume(labels), probabilities=True)
    assert aggregated_jaccard_index(labels[0].astype(np.int32), prediction.instances.array[0]) >= 0.95
    assert prediction.probabilities.array.shape == (2, 33, 37)
    np.testing.assert_array_equal(prediction.labels.array[0], labels[0] > 0)


def test_block_wise_prediction_refuses_a_flow_model(tmp_path):
    predictor = Predictor(
        LabelFlows(),
        SlidingWindow((16, 16), device="cpu"),
        ZScore((0.0,), (1.0,)),
        targets={"label_kind": "instances", "instance_target": "flow"},
    )
    with pytest.raises(ConfigError, match=r"--block-shape .* flow.*drop --block-shape"):
        predict_blockwise(
            predictor,
            np.zeros((1, 4, 32, 32), np.float32),
            tmp_path / "out.zarr",
            block_shape=(2, 16, 16),
            halo=(0, 4, 4),
        )
    assert not (tmp_path / "out.zarr").exists()


def test_a_2d_flow_model_on_a_stack_follows_each_section_and_stitches_them():
    labels = touching((12, 40, 48), [(6, 20, 15), (6, 20, 33)], [6, 8])
    flows = np.stack([flows_from_instances(section) for section in labels], axis=1)  # per-section 2D flows
    maps = np.concatenate([(labels > 0)[None].astype(np.float32), flows])
    assert maps.shape == (3, 12, 40, 48)
    found = instances_from_maps(maps, "flow", PostProcessing(min_size=0))
    assert found.max() == 2  # two objects through the sections, not one per section
    assert aggregated_jaccard_index(labels, found) >= 0.9


def test_stitching_joins_overlapping_masks_of_neighbouring_sections_only():
    sections = np.zeros((3, 4, 8), dtype=np.int64)
    sections[0, :, 0:4] = 5
    sections[1, :, 1:4] = 2  # IoU 3/4 with the first: the same object
    sections[1, :, 6:8] = 7
    sections[2, :, 3:7] = 1  # IoU 1/6 with id 2 and 1/5 with id 7 (under 0.25): a new object
    stitched = stitch_sections(sections)
    assert stitched[0, 0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert stitched[1, 0].tolist() == [0, 1, 1, 1, 0, 0, 2, 2]
    assert stitched[2, 0].tolist() == [0, 0, 0, 3, 3, 3, 3, 0]
