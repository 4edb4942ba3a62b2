"""GlaS (MICCAI 2015 gland segmentation) object-level F1, Dice and Hausdorff.

All three pool objects over a whole test part (Test A or Test B): pass the list of
``(gt, pred)`` instance maps of that part. Distances are in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from medseg.eval.instance import ObjectOverlaps, _pairs, object_overlaps

__all__ = ["F1_RULES", "object_f1", "object_dice", "object_hausdorff", "glas_scores"]

Pairs = Sequence[tuple[np.ndarray, np.ndarray]] | tuple[np.ndarray, np.ndarray]


F1_RULES = ("matlab", "web")


def object_f1(pairs: Pairs, *, rule: str = "matlab") -> dict[str, float]:
    """GlaS detection F1 over a test part: ``{"f1", "precision", "recall", "tp", "fp", "fn"}``.

    Parameters
    ----------
    pairs : sequence of (gt, pred) instance maps
        The images of one test part; counts are pooled over them.
    rule : {"matlab", "web"}
        ``"matlab"`` (default) is the challenge's ``F1score.m`` (K. Sirinukunwattana,
        Warwick 2015, in ``evaluation_v6.zip``), which ranked the entries; ``"web"`` is
        the challenge web page's wording.

    Notes
    -----
    Each segmented object S is paired with the reference object G it overlaps most
    (background ignored). ``"matlab"``: S is a true positive iff |S n G| / |G| > 0.5
    (strict; coverage of the reference, not IoU), otherwise a false positive (also
    when S overlaps no reference object); false negatives are the reference objects
    that are **no** segmented object's partner (``setdiff``), so a reference object
    covered 30 % by its partner is neither TP nor FN. ``"web"``: TP iff coverage
    >= 0.5, and every reference object without a TP is a false negative.

    F1 = 2PR / (P + R). Empty cases as ``F1score.m``: no object on either side ->
    F1 = 1; objects on one side only -> F1 = 0; otherwise 0/0 ratios are ``nan``
    (MATLAB's NaN), e.g. F1 is ``nan`` when there is no true positive.
    """
    if rule not in F1_RULES:
        raise ValueError(f"unknown GlaS F1 rule {rule!r}; choose from {F1_RULES}")
    tp = fp = fn = n_seg = n_ref = 0
    for gt, pred in _pairs(pairs):
        ov = object_overlaps(gt, pred)
        n_seg += ov.pred_ids.size
        n_ref += ov.gt_ids.size
        partner = np.zeros(ov.gt_ids.size, dtype=bool)
        hit = np.zeros(ov.gt_ids.size, dtype=bool)
        for j in range(ov.pred_ids.size):
            col = ov.intersection[:, j] if ov.gt_ids.size else np.zeros(0)
            if col.size == 0 or col.max() == 0:
                fp += 1
                continue
            i = int(np.argmax(col))  # first maximum, as MATLAB's max over sorted labels
            partner[i] = True
            covered = col[i] / ov.gt_area[i]
            if covered > 0.5 or (rule == "web" and covered >= 0.5):
                tp += 1
                hit[i] = True
            else:
                fp += 1
        fn += int(np.count_nonzero(~partner if rule == "matlab" else ~hit))
    nan = float("nan")
    if n_seg == 0 or n_ref == 0:
        f1 = 1.0 if n_seg == n_ref == 0 else 0.0
        return {"f1": f1, "precision": nan, "recall": nan, "tp": tp, "fp": fp, "fn": fn}
    prec = tp / (tp + fp) if tp + fp else nan
    rec = tp / (tp + fn) if tp + fn else nan
    f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else nan
    return {"f1": f1, "precision": prec, "recall": rec, "tp": tp, "fp": fp, "fn": fn}


def _dice_terms(ov: ObjectOverlaps, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(weights numerators = object areas, Dice with max-overlap partner) for one side."""
    inter = ov.intersection if axis == 0 else ov.intersection.T
    own = ov.gt_area if axis == 0 else ov.pred_area
    other = ov.pred_area if axis == 0 else ov.gt_area
    dice = np.zeros(own.size)
    if other.size:
        for k in range(own.size):
            j = int(np.argmax(inter[k]))
            if inter[k, j] > 0:
                dice[k] = 2 * inter[k, j] / (own[k] + other[j])
    return own.astype(float), dice


def object_dice(pairs: Pairs) -> float:
    """GlaS object-level Dice over a test part.

    Notes
    -----
    D_obj = 1/2 [sum_i w_i Dice(G_i, S_i) + sum_j w~_j Dice(G~_j, S~_j)], w_i =
    |S_i| / sum |S| over all segmented objects of the part, G_i = the reference
    object overlapping S_i most (none: Dice 0); symmetrically w~_j = |G~_j| / sum |G~|.
    No object on either side -> 1 and objects on one side only -> 0, as ``ObjectDice.m``.
    """
    s_w, s_d, g_w, g_d = [], [], [], []
    for gt, pred in _pairs(pairs):
        ov = object_overlaps(gt, pred)
        w, d = _dice_terms(ov, axis=1)
        s_w.append(w)
        s_d.append(d)
        w, d = _dice_terms(ov, axis=0)
        g_w.append(w)
        g_d.append(d)
    return _weighted_half_sum(s_w, s_d, g_w, g_d, both_empty=1.0)


def _weighted_half_sum(s_w, s_v, g_w, g_v, both_empty: float) -> float:
    sw, sv = np.concatenate(s_w) if s_w else np.zeros(0), np.concatenate(s_v) if s_v else np.zeros(0)
    gw, gv = np.concatenate(g_w) if g_w else np.zeros(0), np.concatenate(g_v) if g_v else np.zeros(0)
    if sw.sum() == 0 and gw.sum() == 0:
        return float(both_empty)
    seg = float(sw @ sv / sw.sum()) if sw.sum() > 0 else 0.0
    ref = float(gw @ gv / gw.sum()) if gw.sum() > 0 else 0.0
    return 0.5 * (seg + ref)


def _hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    """Hausdorff distance (pixels) between two non-empty pixel sets."""
    idx = np.nonzero(a | b)
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
    a, b = a[box], b[box]
    d_to_b = ndi.distance_transform_edt(~b)
    d_to_a = ndi.distance_transform_edt(~a)
    return float(max(d_to_b[a].max(), d_to_a[b].max()))


def _hausdorff_terms(own_map, own_ids, other_map, other_ids, inter) -> np.ndarray:
    out = np.full(own_ids.size, np.inf)
    for k, oid in enumerate(own_ids):
        mask = own_map == oid
        if other_ids.size == 0:
            continue  # no partner anywhere: infinite distance (documented)
        j = int(np.argmax(inter[k]))
        if inter[k, j] > 0:
            out[k] = _hausdorff(mask, other_map == other_ids[j])
        else:  # no overlap: partner = object at minimum Hausdorff distance
            out[k] = min(_hausdorff(mask, other_map == o) for o in other_ids)
    return out


def object_hausdorff(pairs: Pairs) -> float:
    """GlaS object-level Hausdorff distance (pixels) over a test part.

    Notes
    -----
    H_obj = 1/2 [sum_i w_i H(G_i, S_i) + sum_j w~_j H(G~_j, S~_j)] with the weights
    of :func:`object_dice`, H the Hausdorff distance between pixel sets, and the
    partner the maximally overlapping object or, without overlap, the object of the
    other map at minimum Hausdorff distance. No object on either side -> 0 (the
    MATLAB ``Hausdorff`` of two empty sets); an object whose image has no object at
    all on the other side contributes ``inf`` (MATLAB's ``Hausdorff`` of an empty and
    a non-empty set).
    """
    s_w, s_h, g_w, g_h = [], [], [], []
    for gt, pred in _pairs(pairs):
        ov = object_overlaps(gt, pred)
        g_arr, p_arr = np.asarray(gt), np.asarray(pred)
        s_w.append(ov.pred_area.astype(float))
        s_h.append(_hausdorff_terms(p_arr, ov.pred_ids, g_arr, ov.gt_ids, ov.intersection.T))
        g_w.append(ov.gt_area.astype(float))
        g_h.append(_hausdorff_terms(g_arr, ov.gt_ids, p_arr, ov.pred_ids, ov.intersection))
    return _weighted_half_sum(s_w, s_h, g_w, g_h, both_empty=0.0)


def glas_scores(pairs: Pairs) -> dict[str, float]:
    """All three GlaS criteria of one test part: ``{"f1", "object_dice", "object_hausdorff"}``."""
    pairs = _pairs(pairs)
    return {
        "f1": object_f1(pairs)["f1"],
        "object_dice": object_dice(pairs),
        "object_hausdorff": object_hausdorff(pairs),
    }
