from __future__ import annotations

import numpy as np
import pytest

from medseg.eval.glas import object_dice, object_f1, object_hausdorff


def _pair():
    gt = np.zeros((6, 10), int)
    gt[1:3, 1:3] = 1  # 4 px
    gt[1:5, 5:9] = 2  # 16 px
    pred = np.zeros_like(gt)
    pred[1:3, 1:2] = 1  # covers 50% of G1 -> TP (>= 50 %)
    pred[1:3, 5:9] = 2  # covers 50% of G2 -> TP
    return gt, pred


def test_object_f1_counts_coverage_not_iou():
    # exactly 50 % coverage is not a detection for F1score.m (strict > 0.5), it is for the web text
    res = object_f1([_pair()])
    assert (res["tp"], res["fp"], res["fn"]) == (0, 2, 0) and np.isnan(res["f1"])
    web = object_f1([_pair()], rule="web")
    assert (web["tp"], web["fp"], web["fn"]) == (2, 0, 0) and web["f1"] == 1.0
    gt, pred = _pair()
    pred[1:3, 1:3] = 1  # now covers G1 fully
    pred[5, 0] = 3  # isolated false positive
    res = object_f1([(gt, pred)])
    assert (res["tp"], res["fp"], res["fn"]) == (1, 2, 0)
    assert res["f1"] == pytest.approx(2 * (1 / 3) / (1 / 3 + 1))


def test_partly_covered_reference_is_not_a_false_negative():
    # G1, G2 10x10; S1 = G1, S2 covers 30 % of G2: TP 1, FP 1, FN 0 (G2 is S2's partner)
    gt = np.zeros((12, 24), int)
    gt[1:11, 1:11] = 1
    gt[1:11, 13:23] = 2
    pred = np.zeros_like(gt)
    pred[1:11, 1:11] = 1
    pred[1:4, 13:23] = 2
    res = object_f1([(gt, pred)])
    assert (res["tp"], res["fp"], res["fn"]) == (1, 1, 0)
    assert res["f1"] == pytest.approx(2 / 3)
    assert round(res["f1"], 3) == 0.667
    assert object_f1([(gt, pred)], rule="web")["f1"] == pytest.approx(0.5)


def test_empty_conventions_follow_the_matlab_code():
    empty = np.zeros((5, 5), int)
    one = empty.copy()
    one[1:3, 1:3] = 1
    assert object_f1([(empty, empty)])["f1"] == 1.0
    assert object_f1([(one, empty)])["f1"] == 0.0 and object_f1([(empty, one)])["f1"] == 0.0
    assert object_dice([(empty, empty)]) == 1.0 and object_dice([(one, empty)]) == 0.0
    assert object_hausdorff([(empty, empty)]) == 0.0 and object_hausdorff([(one, empty)]) == np.inf


def test_object_dice_and_hausdorff_pooled():
    gt, pred = _pair()
    d1, d2 = 2 * 2 / (4 + 2), 2 * 8 / (16 + 8)
    seg = (2 * d1 + 8 * d2) / 10
    ref = (4 * d1 + 16 * d2) / 20
    assert object_dice([(gt, pred)]) == pytest.approx(0.5 * (seg + ref))
    # pooling over two images is not the mean of per-image scores
    gt2 = np.zeros_like(gt)
    gt2[0:6, 0:10] = 1
    both = object_dice([(gt, pred), (gt2, gt2)])
    assert both == pytest.approx(0.5 * ((2 * d1 + 8 * d2 + 60) / 70 + (4 * d1 + 16 * d2 + 60) / 80))
    # Hausdorff: H(G1,S1) = 1, H(G2,S2) = 2
    h_seg = (2 * 1 + 8 * 2) / 10
    h_ref = (4 * 1 + 16 * 2) / 20
    assert object_hausdorff([(gt, pred)]) == pytest.approx(0.5 * (h_seg + h_ref))
