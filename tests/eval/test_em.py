from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import adapted_rand_error as sk_are
from skimage.metrics import variation_of_information as sk_voi

from medseg.errors import DataValueError
from medseg.eval.em import (
    adapted_rand_error,
    cremi_adapted_rand_error,
    cremi_border_mask,
    cremi_neuron_scores,
    variation_of_information,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rand_voi_match_skimage(segments, seed):
    gt = segments((4, 30, 30), seed, 20)
    pred = segments((4, 30, 30), seed + 5, 25)
    gt[0, :5] = 0
    are, prec, rec = sk_are(gt, pred)
    ours = adapted_rand_error(gt, pred)
    assert ours.error == pytest.approx(are, abs=1e-9)
    # scikit-image issue #6485: its precision/recall are swapped
    assert ours.precision == pytest.approx(rec, abs=1e-9) and ours.recall == pytest.approx(prec, abs=1e-9)
    assert adapted_rand_error(gt, pred, alpha=0.2).error == pytest.approx(
        sk_are(gt, pred, alpha=0.8)[0], abs=1e-9
    )
    for ignore in ((), (0,)):
        ref = sk_voi(gt, pred, ignore_labels=ignore)
        split, merge = variation_of_information(gt, pred, ignore_labels=ignore)
        assert (split, merge) == pytest.approx(tuple(ref), abs=1e-9)


def test_perfect_and_hand_worked():
    a = np.array([[1, 1, 2, 2]])
    assert adapted_rand_error(a, a * 7).error == pytest.approx(0.0)
    assert variation_of_information(a, a).total == 0.0
    # one reference segment split in two halves: H(pred|gt) = 1 bit, no merge
    split, merge = variation_of_information(np.ones((1, 4), int), a)
    assert (split, merge) == (pytest.approx(1.0), pytest.approx(0.0))


def test_cremi_border_mask_and_singletons():
    gt = np.zeros((1, 6, 6), np.uint64)
    gt[0, :, 3:] = 1
    mask = cremi_border_mask(gt, border_threshold=4.0, resolution=(40, 4, 4))
    # border pixels (cols 2, 3) plus everything within 4 nm = 1 px of them
    assert mask[0, :, 1:5].all() and not mask[0, :, [0, 5]].any()
    pred = gt.astype(np.int64) + 1
    pred[0, 0, 0] = 0  # one predicted-background voxel -> singleton term c/n
    r = cremi_adapted_rand_error(gt + 1, pred)
    n, c = 36.0, 1.0
    sum_a = 18.0**2 * 2
    sum_ab = 17.0**2 + 18.0**2 + c / n
    sum_b = 17.0**2 + 18.0**2 + c / n
    prec, rec = sum_ab / sum_b, sum_ab / sum_a
    assert r.error == pytest.approx(1 - 2 * prec * rec / (prec + rec))
    s = cremi_neuron_scores(gt, gt.astype(np.int64) + 5, resolution=(40, 4, 4), border_threshold=4.0)
    assert s.cremi_score == pytest.approx(0.0, abs=1e-12)


def test_nothing_to_count_is_nan_as_skimage():
    background = np.zeros((4, 4), np.uint32)
    ours = adapted_rand_error(background, np.ones_like(background))
    assert all(np.isnan(v) for v in ours)
    assert all(np.isnan(v) for v in sk_are(background, np.ones_like(background)))


def test_cremi_border_threshold_that_masks_everything_is_an_error():
    gt = np.arange(4 * 6 * 6).reshape(4, 6, 6) % 3  # borders everywhere
    with pytest.raises(DataValueError, match="masks every reference voxel"):
        cremi_neuron_scores(gt, gt, resolution=(40, 4, 4), border_threshold=200)
