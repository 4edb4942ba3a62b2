from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceLoss
from scipy import ndimage

from medseg.data.weight_map import WeightMap, unet_weight_map
from medseg.errors import ConfigError, ShapeError
from medseg.train.losses import WeightedCrossEntropy, build_loss


def test_weight_map_matches_hand_computed_border_term():
    instances = np.zeros((5, 9), dtype=np.int32)
    instances[:, :3] = 1
    instances[:, 6:] = 2  # a 3-px gap at columns 3, 4, 5
    weights = unet_weight_map(instances, w0=10, sigma=5, class_weights=(1.0, 1.0))
    # column 4 is 2 px from both objects: w = 1 + 10 * exp(-(2 + 2)^2 / 50)
    assert weights[2, 4] == pytest.approx(1 + 10 * np.exp(-16 / 50), rel=1e-6)
    assert weights[2, 3] == pytest.approx(1 + 10 * np.exp(-((1 + 3) ** 2) / 50), rel=1e-6)
    assert np.all(weights[:, :3] == 1.0)


def _full_edt_reference(instances, w0=10.0, sigma=5.0):
    """The definition with one full-image distance transform per object."""
    d = np.sort(
        np.stack([ndimage.distance_transform_edt(instances != i) for i in np.unique(instances)[1:]]), 0
    )
    return np.where(instances > 0, 0.0, w0 * np.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2)))


def test_cropped_distance_transforms_equal_the_full_image_definition():
    rng = np.random.default_rng(0)
    instances = np.zeros((120, 140), dtype=np.int32)
    for i, (y, x) in enumerate(rng.integers(5, 115, size=(7, 2)), start=1):
        instances[y : y + 6, x : x + 9] = i
    weights = unet_weight_map(instances, class_weights=(1.0, 1.0))
    np.testing.assert_allclose(weights - 1.0, _full_edt_reference(instances), atol=1e-4)


def test_weight_map_single_object_has_no_border_term():
    instances = np.zeros((6, 6), dtype=np.int32)
    instances[1:3, 1:3] = 1
    weights = unet_weight_map(instances, class_weights=(0.5, 1.0))
    assert set(np.unique(weights)) == {0.5, 1.0}
    with pytest.raises(ShapeError, match="2D or 3D instance map"):
        unet_weight_map(np.zeros(4))


def test_weight_map_of_a_class_map_separates_its_connected_components():
    label = np.zeros((1, 5, 9), dtype=np.int64)
    label[0, :, :3] = 1
    label[0, :, 6:] = 1  # two components of class 1, 3 px apart
    weights = WeightMap(objects_from_classes=True)(label)
    instances = np.where(np.arange(9) < 3, 1, np.where(np.arange(9) >= 6, 2, 0)) * np.ones((5, 1), dtype=int)
    np.testing.assert_array_equal(weights[0], unet_weight_map(instances))


def test_weighted_cross_entropy_with_unit_weights_is_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 1, 4, 5))
    value = WeightedCrossEntropy()(logits, target, torch.ones(2, 1, 4, 5))
    torch.testing.assert_close(value, F.cross_entropy(logits, target[:, 0]))
    with pytest.raises(ShapeError, match="do not match"):
        WeightedCrossEntropy()(logits, target, torch.ones(2, 1, 4, 4))


def test_named_losses_equal_their_reference_definitions():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 6)
    target = torch.randint(0, 3, (2, 1, 6, 6))
    torch.testing.assert_close(build_loss("ce")(logits, target), F.cross_entropy(logits, target[:, 0]))
    torch.testing.assert_close(
        build_loss("dice")(logits, target), DiceLoss(to_onehot_y=True, softmax=True)(logits, target)
    )
    torch.testing.assert_close(
        build_loss("dice_ce")(logits, target), DiceCELoss(to_onehot_y=True, softmax=True)(logits, target)
    )
    weights = torch.rand(2, 1, 6, 6)
    expected = (F.cross_entropy(logits, target[:, 0], reduction="none") * weights[:, 0]).sum() / weights.sum()
    torch.testing.assert_close(build_loss("unet_weighted_ce")(logits, target, weights), expected)


def test_ignore_label_voxels_contribute_nothing():
    torch.manual_seed(1)
    logits = torch.randn(2, 2, 5, 5)
    target = torch.randint(0, 2, (2, 1, 5, 5))
    target[:, :, :2] = 255
    expected = F.cross_entropy(logits, target[:, 0], ignore_index=255)
    torch.testing.assert_close(build_loss("ce", ignore_label=255)(logits, target), expected)
    # changing the logits of ignored voxels changes no loss
    other = logits.clone()
    other[:, :, :2] = torch.randn(2, 2, 2, 5) * 10
    for name in ("ce", "dice", "dice_ce"):
        loss = build_loss(name, ignore_label=255)
        torch.testing.assert_close(loss(logits, target), loss(other, target))
    weights = torch.ones(2, 1, 5, 5)
    torch.testing.assert_close(
        build_loss("unet_weighted_ce", ignore_label=255)(logits, target, weights), expected
    )


def test_distance_channel_adds_the_mse_of_its_sigmoid():
    torch.manual_seed(2)
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 2, (2, 1, 4, 4))
    distance = torch.rand(2, 1, 4, 4)
    value = build_loss("ce", distance=True)(logits, target, distance)
    expected = F.cross_entropy(logits[:, :2], target[:, 0]) + F.mse_loss(
        torch.sigmoid(logits[:, 2:]), distance
    )
    torch.testing.assert_close(value, expected)


def test_unknown_loss_name():
    with pytest.raises(
        ConfigError, match="unknown loss 'focal'; choose one of ce, dice, dice_ce, unet_weighted_ce"
    ):
        build_loss("focal")


def test_flow_loss_is_cellposes_half_mse_of_5x_flows_plus_bce():
    loss = build_loss("dice_ce", flows=True)
    logits = torch.zeros(1, 3, 2, 2)
    foreground = torch.tensor([[[1, 0], [1, 1]]])
    flows = torch.zeros(1, 2, 2, 2)
    flows[:, 0] = 1.0  # unit flows along y: (0 - 5)^2 on one of the two channels
    expected = 25 / 2 / 2 + math.log(2)
    assert loss(logits, foreground, flows).item() == pytest.approx(expected)
    ignored = build_loss("ce", flows=True, ignore_label=2)
    assert ignored(logits, torch.tensor([[[1, 2], [2, 2]]]), flows).item() == pytest.approx(expected)
    with pytest.raises(ShapeError, match="out_channels"):
        loss(torch.zeros(1, 4, 2, 2), foreground, flows)
    with pytest.raises(ConfigError, match="unet_weighted_ce"):
        build_loss("unet_weighted_ce", flows=True)
