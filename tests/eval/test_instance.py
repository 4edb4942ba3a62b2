from __future__ import annotations

import numpy as np
import pytest
import tifffile
from ctc_metrics.metrics.technical.seg import seg as ctc_seg_ref
from ctc_metrics.utils.representations import match

from medseg.eval.instance import (
    aggregated_jaccard_index,
    aji_plus,
    ctc_seg,
    detection_scores,
    panoptic_quality,
)


@pytest.mark.parametrize("seed", [0, 1])
def test_ctc_seg_matches_py_ctcmetrics(tmp_path, segments, seed):
    pairs, refs, ious = [], [], []
    for k in range(2):
        gt = segments((40, 40), seed * 10 + k, 12).astype(np.uint16)
        gt[gt % 4 == 0] = 0
        pred = np.roll(segments((40, 40), seed * 10 + k, 12), 2, axis=1).astype(np.uint16)
        pred[pred % 5 == 0] = 0  # py-ctcmetrics' index arithmetic assumes both masks hold background
        gpath, ppath = tmp_path / f"g{k}.tif", tmp_path / f"p{k}.tif"
        tifffile.imwrite(gpath, gt)
        tifffile.imwrite(ppath, pred)
        labels_ref, _, _, _, iou = match(str(gpath), str(ppath))
        refs.append(labels_ref)
        ious.append(iou)
        pairs.append((gt, pred))
    assert ctc_seg(pairs) == pytest.approx(ctc_seg_ref(refs, ious), abs=1e-9)


def test_ctc_seg_definition():
    gt = np.zeros((4, 8), int)
    gt[:, :4] = 1
    gt[:, 4:] = 2
    pred = np.zeros_like(gt)
    pred[:, :3] = 5  # covers 75% of object 1 -> match, J = 12/16
    pred[:, 6:] = 6  # covers 50% of object 2 -> not > 50%: J = 0
    pred[0, 0] = 9  # false positive, not penalised
    assert ctc_seg((gt, pred)) == pytest.approx((11 / 16 + 0) / 2)


def test_aji_pq_hand_worked():
    gt = np.zeros((2, 6), int)
    gt[:, :3] = 1
    gt[:, 3:] = 2
    pred = np.zeros_like(gt)
    pred[:, 1:5] = 7  # one prediction over both nuclei
    # AJI: both nuclei pick prediction 7 (IoU 4/10 each); it is counted twice
    assert aggregated_jaccard_index(gt, pred) == pytest.approx((4 + 4) / (10 + 10))
    # AJI+: 7 pairs with one nucleus only; the other adds its area
    assert aji_plus(gt, pred) == pytest.approx(4 / (10 + 6))
    pq = panoptic_quality(gt, pred)
    assert (pq["tp"], pq["fp"], pq["fn"], pq["pq"]) == (0, 1, 2, 0.0)
    pred2 = gt.copy()
    pred2[0, 0] = 0  # nucleus 1 IoU 5/6
    pq = panoptic_quality(gt, pred2)
    assert pq["sq"] == pytest.approx((5 / 6 + 1) / 2) and pq["dq"] == 1.0
    det = detection_scores((gt, pred2), thresholds=(0.5, 0.9))
    assert det[0.5]["f1"] == 1.0 and det[0.9]["tp"] == 1


def test_both_empty_conventions_follow_the_references():
    empty = np.zeros((6, 6), np.uint16)
    assert ctc_seg((empty, empty)) == 0.0  # py-ctcmetrics: total / max(n_ref, 1)
    assert panoptic_quality(empty, empty)["pq"] == 0.0  # MONAI: 0 / (0 + smooth)
    assert np.isnan(aggregated_jaccard_index(empty, empty))  # AJI.m: 0 / 0
