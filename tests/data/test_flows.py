"""Cellpose flow targets (``data.instance_target: flow``): direction, length, 2D/3D, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg.data.dataset import PatchDataset, TrainingTargets
from medseg.data.sample import Sample
from medseg.data.targets import flow_target
from medseg.errors import ShapeError
from medseg.flows import flows_from_instances
from medseg.io import Volume


def _ball(shape, centre, radius):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) < radius**2


def _towards_centre(flows, mask, centre):
    """Cosine between each object voxel's flow and its direction to ``centre`` (the centre voxel left out)."""
    coords = np.argwhere(mask)
    to_centre = np.asarray(centre, dtype=float) - coords
    distance = np.linalg.norm(to_centre, axis=1)
    keep = distance > 0
    vectors = flows[(slice(None), *coords.T)].T[keep]
    return (vectors * to_centre[keep]).sum(axis=1) / distance[keep]


@pytest.mark.parametrize(
    ("shape", "centre", "radius"), [((41, 45), (20, 22), 12), ((21, 25, 27), (10, 12, 13), 8)]
)
def test_flows_of_a_disc_or_ball_point_to_its_centre_with_unit_length(shape, centre, radius):
    mask = _ball(shape, centre, radius)
    flows = flows_from_instances(mask.astype(np.int32))
    assert flows.shape == (len(shape), *shape) and flows.dtype == np.float32
    cosine = _towards_centre(flows, mask, centre)
    assert np.mean(cosine > 0.9) > 0.9  # nearly every voxel flows straight to the centre
    assert cosine.min() > 0
    length = np.linalg.norm(flows, axis=0)
    inside = mask.copy()
    inside[centre] = False  # the centre of symmetry has no gradient
    np.testing.assert_allclose(length[inside], 1.0, atol=1e-5)
    assert np.all(flows[:, ~mask] == 0)


def test_a_bar_flows_inwards_along_its_length():
    # 1 x 5 object: heat peaks at its middle voxel, so both ends point inwards, hand-checked
    flows = flows_from_instances(np.array([[0, 3, 3, 3, 3, 3, 0]]))
    assert flows[1].tolist() == [[0.0, 1.0, 1.0, 0.0, -1.0, -1.0, 0.0]]
    assert not flows[0].any()


def test_touching_objects_get_their_own_fields():
    shape = (40, 60)
    left, right = _ball(shape, (20, 18), 12), _ball(shape, (20, 40), 12)
    labels = np.where(left, 1, 0)
    labels[right & ~left] = 2
    flows = flows_from_instances(labels)
    assert np.mean(_towards_centre(flows, labels == 1, (20, 18)) > 0.9) > 0.85
    assert np.mean(_towards_centre(flows, labels == 2, (20, 40)) > 0.9) > 0.85
    # on their shared border each points back into its own object (x grows to the right)
    border = (labels == 1) & np.roll(labels == 2, -1, axis=1)
    assert border.any() and np.all(flows[1][border] < 0)


def _flipped(flows, axis):
    """A vector field flipped along spatial ``axis``: mirrored, and its ``axis`` component negated."""
    out = np.flip(flows, axis + 1).copy()
    out[axis] *= -1
    return out


def _rotated(flows):
    """A 2D vector field rotated as ``np.rot90(image)`` (plane (0, 1)): the components swap, the new y negated."""
    rot = np.rot90(flows, axes=(1, 2))
    return np.stack([-rot[1], rot[0]])


def _objects_2d():
    labels = np.zeros((33, 37), dtype=np.int32)
    labels[3:14, 4:21] = 1  # odd sizes: a unique median voxel, so the centre is mirror-symmetric
    labels[17:30, 9:16] = 2
    labels[_ball((33, 37), (22, 26), 6)] = 3
    return labels


@pytest.mark.parametrize("axis", [0, 1])
def test_flows_of_a_flipped_label_are_the_flipped_negated_flows(axis):
    labels = _objects_2d()
    np.testing.assert_allclose(
        flows_from_instances(np.flip(labels, axis)), _flipped(flows_from_instances(labels), axis), atol=1e-5
    )


def test_flows_of_a_rotated_label_are_the_rotated_permuted_flows():
    labels = _objects_2d()
    np.testing.assert_allclose(
        flows_from_instances(np.rot90(labels)), _rotated(flows_from_instances(labels)), atol=1e-5
    )


def test_flows_of_a_flipped_volume_negate_the_flipped_axis():
    labels = np.zeros((11, 15, 13), dtype=np.int32)
    labels[1:8, 2:11, 3:10] = 4
    labels[8:11, 4:13, 1:8] = 2
    np.testing.assert_allclose(
        flows_from_instances(np.flip(labels, 0)), _flipped(flows_from_instances(labels), 0), atol=1e-5
    )


def test_flow_target_gives_foreground_and_flows_and_checks_shape():
    labels = _objects_2d()
    foreground, flows = flow_target(labels[None])
    assert foreground.shape == (1, 33, 37) and foreground.dtype == np.int64
    np.testing.assert_array_equal(foreground[0], labels > 0)
    np.testing.assert_array_equal(flows, flows_from_instances(labels))
    with pytest.raises(ShapeError, match="label patch"):
        flow_target(labels)


def test_patches_carry_flows_of_their_augmented_label():
    """Targets are made after augmentation: each patch's flows are the flows of the label it was drawn with."""
    rng = np.random.default_rng(0)
    labels = np.zeros((1, 48, 48), dtype=np.int32)
    for k, (y, x) in enumerate([(12, 12), (12, 34), (34, 20), (30, 38)], start=1):
        labels[0][_ball((48, 48), (y, x), 8) & (labels[0] == 0)] = k
    image = (labels > 0).astype(np.float32) + rng.normal(scale=0.1, size=labels.shape).astype(np.float32)
    sample = Sample(Volume(image), Volume(labels), "a", "cells")
    dataset = PatchDataset(
        [sample], patch_shape=(32, 32), classes=None, label_transform=TrainingTargets("flow"), seed=1
    )
    for index in range(4):
        patch, foreground, flows = dataset[index]
        assert patch.shape == (1, 32, 32) and foreground.shape == (1, 32, 32) and flows.shape == (2, 32, 32)
        assert flows.dtype == torch.float32
        length = torch.linalg.vector_norm(flows, dim=0)
        assert torch.all(length[foreground[0] == 0] == 0)
        assert torch.mean((length[foreground[0] == 1] - 1).abs().lt(1e-4).float()) > 0.9


def test_each_piece_of_a_cut_object_flows_to_its_own_centre():
    labels = np.zeros((1, 9, 20), dtype=np.int32)
    labels[0, 2:7, 1:8] = 5
    labels[0, 2:7, 12:19] = 5  # one id, two pieces (a crop or a deformation cut it)
    _, flows = flow_target(labels)
    inside = labels[0] == 5
    inside[4, 4] = inside[4, 15] = False  # the two centres
    np.testing.assert_allclose(np.linalg.norm(flows, axis=0)[inside], 1.0, atol=1e-5)
    assert flows[1, 4, 1] > 0.9 and flows[1, 4, 18] < -0.9
