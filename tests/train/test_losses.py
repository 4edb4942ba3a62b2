from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medseg.errors import ConfigError, ShapeError
from medseg.train.losses import WeightedCrossEntropy, build_loss, unet_weight_map


def test_weight_map_matches_hand_computed_border_term():
    instances = np.zeros((5, 9), dtype=np.int32)
    instances[:, :3] = 1
    instances[:, 6:] = 2  # a 3-px gap at columns 3, 4, 5
    weights = unet_weight_map(instances, w0=10, sigma=5, class_weights=(1.0, 1.0))
    # column 4 is 2 px from both objects: w = 1 + 10 * exp(-(2 + 2)^2 / 50)
    assert weights[2, 4] == pytest.approx(1 + 10 * np.exp(-16 / 50), rel=1e-6)
    assert weights[2, 3] == pytest.approx(1 + 10 * np.exp(-((1 + 3) ** 2) / 50), rel=1e-6)
    assert np.all(weights[:, :3] == 1.0)


def test_weight_map_single_object_has_no_border_term():
    instances = np.zeros((6, 6), dtype=np.int32)
    instances[1:3, 1:3] = 1
    weights = unet_weight_map(instances, class_weights=(0.5, 1.0))
    assert set(np.unique(weights)) == {0.5, 1.0}


def test_weighted_cross_entropy_with_unit_weights_is_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 1, 4, 5))
    value = WeightedCrossEntropy()(logits, target, torch.ones(2, 1, 4, 5))
    torch.testing.assert_close(value, F.cross_entropy(logits, target[:, 0]))
    with pytest.raises(ShapeError, match="do not match"):
        WeightedCrossEntropy()(logits, target, torch.ones(2, 1, 4, 4))


def test_unknown_loss_name():
    with pytest.raises(ConfigError, match="unknown loss 'focal'; choose one of dice_ce, ce"):
        build_loss("focal")
    with pytest.raises(ShapeError, match="2D instance map"):
        unet_weight_map(np.zeros((2, 3, 4)))
