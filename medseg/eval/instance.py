"""Instance-segmentation metrics: CTC SEG and DET, detection F1, AJI, AJI+, panoptic quality.

Inputs are instance label maps (0 = background, each object one positive id).
Functions taking ``pairs`` pool objects over a list of ``(gt, pred)`` images, as the
challenges do over a sequence or test set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from medseg.eval._checks import check_pair
from medseg.eval.contingency import contingency_table

__all__ = [
    "ObjectOverlaps",
    "object_overlaps",
    "ctc_seg",
    "ctc_det",
    "detection_scores",
    "aggregated_jaccard_index",
    "aji_plus",
    "panoptic_quality",
]


@dataclass(frozen=True)
class ObjectOverlaps:
    """Dense overlap statistics between reference objects (rows) and predicted objects (cols)."""

    gt_ids: np.ndarray
    pred_ids: np.ndarray
    intersection: np.ndarray  # (n_gt, n_pred) int64
    gt_area: np.ndarray
    pred_area: np.ndarray

    @property
    def union(self) -> np.ndarray:
        return self.gt_area[:, None] + self.pred_area[None, :] - self.intersection

    @property
    def iou(self) -> np.ndarray:
        u = self.union
        return np.divide(self.intersection, u, out=np.zeros(u.shape), where=u > 0)


def object_overlaps(gt: np.ndarray, pred: np.ndarray) -> ObjectOverlaps:
    """Intersection table of all objects of two instance maps (background 0 excluded)."""
    a, b = check_pair(gt, pred)
    t = contingency_table(a, b)
    inter = t.dense()
    gmask, pmask = t.gt_ids != 0, t.pred_ids != 0
    return ObjectOverlaps(
        t.gt_ids[gmask],
        t.pred_ids[pmask],
        inter[np.ix_(gmask, pmask)],
        t.gt_sizes[gmask],
        t.pred_sizes[pmask],
    )


def _pairs(pairs: Iterable[tuple[np.ndarray, np.ndarray]] | tuple[np.ndarray, np.ndarray]) -> list:
    if (
        isinstance(pairs, tuple)
        and len(pairs) == 2
        and isinstance(pairs[0], np.ndarray)
        and pairs[0].ndim >= 2
    ):
        return [pairs]
    return list(pairs)


def ctc_seg(pairs: Sequence[tuple[np.ndarray, np.ndarray]] | tuple[np.ndarray, np.ndarray]) -> float:
    """Cell Tracking Challenge SEG, pooled over all reference objects of all frames.

    Parameters
    ----------
    pairs : (gt, pred) or sequence of (gt, pred)
        Instance maps of the annotated frames (2D or 3D).

    Returns
    -------
    float
        Mean Jaccard over reference objects; 0 when there is none (py-ctcmetrics divides
        by ``max(#reference objects, 1)``).

    Notes
    -----
    R and S match iff |R n S| > 0.5 |R| (at most one S per R); J = |R n S| / |R u S|
    for a match, 0 otherwise; false-positive predictions are not penalised.

    References
    ----------
    Ulman et al., Nat. Methods 14 (2017); py-ctcmetrics ``metrics/technical/seg.py``.
    """
    total, n_ref = 0.0, 0
    for gt, pred in _pairs(pairs):
        ov = object_overlaps(gt, pred)
        n_ref += ov.gt_ids.size
        if ov.gt_ids.size == 0 or ov.pred_ids.size == 0:
            continue
        match = ov.intersection * 2 > ov.gt_area[:, None]
        total += float(ov.iou[match].sum())
    return total / max(n_ref, 1)


def ctc_det(pairs: Sequence[tuple[np.ndarray, np.ndarray]] | tuple[np.ndarray, np.ndarray]) -> float:
    """Cell Tracking Challenge DET over a sequence: 1 - min(AOGM-D, AOGM-D0) / AOGM-D0.

    Parameters
    ----------
    pairs : (markers, pred) or sequence of (markers, pred)
        Per frame, the reference tracking markers (``XX_GT/TRA/man_trackTTT.tif``) and
        the result instance mask (``XX_RES/maskTTT.tif``), for every frame of the sequence.

    Returns
    -------
    float
        DET in [0, 1]; ``nan`` when the sequence has no reference marker (AOGM-D0 = 0).

    Notes
    -----
    A result object detects a marker R iff |R n S| > 0.5 |R|. Markers detected by no
    object are false negatives (FN), objects detecting none are false positives (FP),
    and an object detecting k > 1 markers needs k - 1 splits (NS).
    AOGM-D = 5 NS + 10 FN + 1 FP, AOGM-D0 = 10 * (number of markers).

    References
    ----------
    Matula et al., PLoS ONE 10(12) (2015); Ulman et al., Nat. Methods 14 (2017);
    py-ctcmetrics ``metrics/technical/det.py`` and
    ``utils/representations.py::count_acyclic_graph_correction_operations``.
    """
    ns = fn = fp = n_markers = 0
    for markers, pred in _pairs(pairs):
        ov = object_overlaps(markers, pred)
        n_markers += ov.gt_ids.size
        if ov.pred_ids.size == 0:
            fn += ov.gt_ids.size
            continue
        detects = (
            ov.intersection * 2 > ov.gt_area[:, None] if ov.gt_ids.size else np.zeros((0, ov.pred_ids.size))
        )
        per_marker = detects.sum(axis=1)
        per_object = detects.sum(axis=0)
        fn += int(np.count_nonzero(per_marker == 0))
        fp += int(np.count_nonzero(per_object == 0))
        ns += int(np.sum(np.maximum(per_object - 1, 0)))
    if n_markers == 0:
        return float("nan")
    aogm_d0 = 10.0 * n_markers
    return float(1.0 - min(5 * ns + 10 * fn + fp, aogm_d0) / aogm_d0)


def _unique_matches(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matches with IoU > threshold (greedy-free: Hungarian on IoU)."""
    if iou.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    if threshold >= 0.5:  # IoU > 0.5 matches are unique by construction
        r, c = np.nonzero(iou > threshold)
        return r, c
    cost = np.where(iou > threshold, -iou, 0.0)
    r, c = linear_sum_assignment(cost)
    keep = iou[r, c] > threshold
    return r[keep], c[keep]


def detection_scores(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]] | tuple[np.ndarray, np.ndarray],
    *,
    thresholds: Iterable[float] = (0.5,),
) -> dict[float, dict[str, float]]:
    """Object detection precision/recall/F1 at IoU thresholds, pooled over images.

    A prediction is a true positive when it is matched one-to-one to a reference
    object with IoU > t (Hungarian matching on IoU for t < 0.5). Returns
    ``t -> {"tp", "fp", "fn", "precision", "recall", "f1"}``; a ratio whose denominator
    is 0 (no object on the side it divides by) is ``nan``.
    """
    ths = [float(t) for t in thresholds]
    acc = {t: [0, 0, 0] for t in ths}
    for gt, pred in _pairs(pairs):
        ov = object_overlaps(gt, pred)
        iou = ov.iou
        for t in ths:
            r, _ = _unique_matches(iou, t)
            tp = r.size
            acc[t][0] += tp
            acc[t][1] += ov.pred_ids.size - tp
            acc[t][2] += ov.gt_ids.size - tp
    out = {}
    for t, (tp, fp, fn) in acc.items():
        prec = tp / (tp + fp) if tp + fp else float("nan")
        rec = tp / (tp + fn) if tp + fn else float("nan")
        f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")
        out[t] = {"tp": tp, "fp": fp, "fn": fn, "precision": prec, "recall": rec, "f1": f1}
    return out


def aggregated_jaccard_index(gt: np.ndarray, pred: np.ndarray) -> float:
    """Aggregated Jaccard Index as the official MoNuSeg ``AJI.m`` computes it.

    Notes
    -----
    For every reference nucleus G_i the overlapping prediction S_j with maximal IoU
    is chosen (predictions may be chosen by several nuclei and are then counted
    each time); C += |G_i n S_j|, U += |G_i u S_j|; a nucleus without overlap adds
    |G_i| to U; every prediction never chosen adds its area to U. AJI = C / U.
    Both maps empty gives ``nan`` (``AJI.m`` divides 0 by 0); an empty reference with
    predictions gives 0.

    References
    ----------
    Kumar et al., IEEE TMI 36(7):1550-1560 (2017).
    """
    ov = object_overlaps(gt, pred)
    if ov.gt_ids.size == 0:
        return 0.0 if ov.pred_ids.size else float("nan")
    c = u = 0.0
    used = np.zeros(ov.pred_ids.size, dtype=bool)
    iou = ov.iou
    for i in range(ov.gt_ids.size):
        if ov.pred_ids.size == 0 or ov.intersection[i].max() == 0:
            u += ov.gt_area[i]
            continue
        j = int(np.argmax(iou[i]))
        c += ov.intersection[i, j]
        u += ov.gt_area[i] + ov.pred_area[j] - ov.intersection[i, j]
        used[j] = True
    u += float(ov.pred_area[~used].sum())
    return float(c / u) if u else float("nan")


def aji_plus(gt: np.ndarray, pred: np.ndarray) -> float:
    """AJI+ (HoVer-Net): AJI with a unique one-to-one pairing (Hungarian on IoU).

    Paired objects (IoU > 0) add their intersection to C and union to U; unpaired
    reference and predicted objects add their areas to U.

    References
    ----------
    Graham et al., "HoVer-Net", Med. Image Anal. 58 (2019).
    """
    ov = object_overlaps(gt, pred)
    if ov.gt_ids.size == 0 and ov.pred_ids.size == 0:
        return float("nan")
    iou = ov.iou
    r, c_idx = linear_sum_assignment(-iou) if iou.size else (np.zeros(0, int), np.zeros(0, int))
    keep = iou[r, c_idx] > 0 if iou.size else np.zeros(0, bool)
    r, c_idx = r[keep], c_idx[keep]
    inter = float(ov.intersection[r, c_idx].sum())
    union = float(ov.union[r, c_idx].sum())
    gt_left = np.ones(ov.gt_ids.size, bool)
    gt_left[r] = False
    pred_left = np.ones(ov.pred_ids.size, bool)
    pred_left[c_idx] = False
    union += float(ov.gt_area[gt_left].sum() + ov.pred_area[pred_left].sum())
    return inter / union if union else float("nan")


def panoptic_quality(gt: np.ndarray, pred: np.ndarray, *, threshold: float = 0.5) -> dict[str, float]:
    """Panoptic quality of one instance map: ``{"pq", "sq", "dq", "tp", "fp", "fn"}``.

    Notes
    -----
    Match iff IoU > 0.5 (unique); DQ = TP / (TP + FP/2 + FN/2); SQ = sum of matched
    IoU / TP; PQ = DQ * SQ. No match gives 0, and so does no object in either map
    (MONAI ``compute_panoptic_quality``: 0 / (0 + smooth)).

    References
    ----------
    Kirillov et al., "Panoptic segmentation", CVPR 2019.
    """
    ov = object_overlaps(gt, pred)
    iou = ov.iou
    r, c = _unique_matches(iou, threshold)
    tp = r.size
    fp = ov.pred_ids.size - tp
    fn = ov.gt_ids.size - tp
    if tp + fp + fn == 0:
        return {"pq": 0.0, "sq": 0.0, "dq": 0.0, "tp": 0, "fp": 0, "fn": 0}
    dq = tp / (tp + 0.5 * fp + 0.5 * fn)
    sq = float(iou[r, c].sum() / tp) if tp else 0.0
    return {"pq": dq * sq, "sq": sq, "dq": dq, "tp": tp, "fp": fp, "fn": fn}
