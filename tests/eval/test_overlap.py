from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import compute_dice, compute_iou

from medseg.errors import ShapeError
from medseg.eval.overlap import dice_score, foreground_mean, overlap_metrics


def _onehot(a, k):
    return torch.from_numpy(np.stack([a == c for c in range(k)])[None].astype(np.float32))


@pytest.mark.parametrize("shape", [(20, 24), (6, 10, 12)])
def test_matches_monai(shape):
    rng = np.random.default_rng(3)
    gt, pred = rng.integers(0, 4, shape), rng.integers(0, 4, shape)
    ours = overlap_metrics(gt, pred)
    d = compute_dice(_onehot(pred, 4), _onehot(gt, 4), include_background=True)[0].numpy()
    j = compute_iou(_onehot(pred, 4), _onehot(gt, 4), include_background=True)[0].numpy()
    for c in (1, 2, 3):
        assert ours[c]["dice"] == pytest.approx(d[c], abs=1e-6)
        assert ours[c]["iou"] == pytest.approx(j[c], abs=1e-6)


def test_hand_worked_and_empty():
    gt = np.array([[1, 1, 0, 0]])
    pred = np.array([[1, 0, 0, 2]])
    res = overlap_metrics(gt, pred, labels=[1, 2, 3])
    assert res[1] == {"dice": pytest.approx(2 / 3), "iou": 0.5, "precision": 1.0, "recall": 0.5}
    assert res[2]["dice"] == 0.0 and res[2]["precision"] == 0.0 and np.isnan(res[2]["recall"])
    assert np.isnan(res[3]["dice"])  # empty vs empty -> empty_score (nan)
    assert overlap_metrics(gt, pred, labels=[3], empty_score=1.0)[3]["dice"] == 1.0
    assert dice_score(gt > 0, pred > 0) == pytest.approx(2 * 1 / (2 + 2))
    assert foreground_mean(res)["dice"] == pytest.approx((2 / 3 + 0) / 2)


def test_shape_mismatch_names_arguments():
    with pytest.raises(ShapeError, match="gt and pred"):
        overlap_metrics(np.zeros((3, 3), int), np.zeros((3, 4), int))
