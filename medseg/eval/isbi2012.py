"""ISBI 2012 EM challenge scores: V_rand and V_info after border thinning, pixel error.

Procedure (Fiji ``trainableSegmentation.metrics``: ``RandError.getMaximalVRandAfterThinning
(0.0, 1.0, 0.1, true)`` and ``VariationOfInformation.getMaximalVInfoAfterThinning(0.0,
1.0, 0.1)``, read in fiji/Trainable_Segmentation), for every threshold t and slice:

1. the proposal (membrane probability map in challenge polarity, 1 = non-membrane)
   is binarised: a pixel is a cell if ``value > t``;
2. reference cells = 4-connected components of the reference foreground;
3. the proposal's membrane is thinned with a watershed flooded from the
   4-connected cell components over the flat membrane (``WatershedTransform2D(
   binary, 4)``): membranes become 1-pixel watershed lines (label 0) where two
   cells meet and are absorbed into the cell elsewhere;
4. scores are restricted to the reference foreground; proposal label-0 pixels that
   fall in it count as singleton segments;
5. the per-slice scores are averaged over slices (macro average, the
   ``perSliceAverage = true`` flag) and the maximum over thresholds is reported.

Thresholds are generated as Fiji does (``t += 0.1`` from 0.0 while ``t <= 1.0``,
11 values, with floating-point accumulation); a binary proposal uses t = 0 only.

Documented differences from Fiji
--------------------------------
* Thinning uses ``skimage.segmentation.watershed(..., connectivity=1,
  watershed_line=True)`` instead of Fiji's Vincent-Soille FIFO flooding. Both
  flood the membrane plateau breadth-first from the cells; they can place the
  watershed line differently where two fronts meet at equal distance (an even-width
  membrane), which moves single line pixels by one position.
* The reference is binarised as ``gt > 0`` (Fiji thresholds it with the same t,
  which is identical for 0/255 labels but empties a 0/1 float reference at t = 1).
* A slice without reference foreground is skipped (Fiji's score becomes NaN and
  the maximum silently falls back to 0); a warning is logged.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import cc3d
import numpy as np
from skimage.segmentation import watershed

from medseg.errors import DataValueError, ShapeError
from medseg.eval.contingency import contingency_table

__all__ = [
    "FIJI_THRESHOLDS",
    "Isbi2012Scores",
    "fiji_thresholds",
    "thin_boundaries",
    "isbi2012_scores",
    "pixel_error",
]

logger = logging.getLogger(__name__)


def fiji_thresholds(start: float = 0.0, stop: float = 1.0, step: float = 0.1) -> tuple[float, ...]:
    """Thresholds exactly as Fiji's ``for (th = min; th <= max; th += step)`` loop makes them."""
    out = []
    th = start
    while th <= stop:
        out.append(th)
        th += step
    return tuple(out)


FIJI_THRESHOLDS = fiji_thresholds()


class Isbi2012Scores(NamedTuple):
    """Maximal thinned scores (higher is better, 1 = perfect) and their thresholds."""

    v_rand: float
    v_info: float
    v_rand_threshold: float
    v_info_threshold: float


def thin_boundaries(cells: np.ndarray) -> np.ndarray:
    """Thin the membrane of a binary 2D cell mask to 1-pixel watershed lines.

    Parameters
    ----------
    cells : np.ndarray of bool, shape ``(Y, X)``
        True = cell (proposal value above threshold).

    Returns
    -------
    np.ndarray of int32
        Cell ids > 0, watershed lines 0. A slice without any cell is one segment
        (Fiji floods it as a new minimum).
    """
    markers = cc3d.connected_components(cells.astype(np.uint8), connectivity=4).astype(np.int32)
    if markers.max() == 0:
        return np.ones(cells.shape, dtype=np.int32)
    landscape = (~cells).astype(np.uint8)
    return watershed(landscape, markers=markers, connectivity=1, watershed_line=True).astype(np.int32)


def _slice_scores(gt_cc: np.ndarray, thinned: np.ndarray) -> tuple[float, float]:
    """Foreground-restricted (V_rand, V_info) of one slice, Fiji N^2 normalisation."""
    fg = gt_cc > 0
    n = float(np.count_nonzero(fg))
    table = contingency_table(gt_cc[fg], thinned[fg])
    p = table.counts / n
    zero = table.pred_ids[table.cols] == 0
    aux = float(p[zero].sum())  # sum_i p_i0: predicted boundary inside reference cells
    a = table.gt_sizes / n
    b = np.bincount(table.cols[~zero], weights=p[~zero], minlength=table.pred_ids.size)
    pn = p[~zero]
    # Rand (RandError.getForegroundRestrictedRandIndexStatsN2)
    sum_a2 = float(a @ a)
    sum_b2 = float(b @ b) + aux / n
    sum_ab2 = float(pn @ pn) + aux / n
    prec, rec = sum_ab2 / sum_b2, sum_ab2 / sum_a2
    v_rand = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    # information theoretic (VariationOfInformation.foregroundRestrictedFscore), natural log

    def xlogx(x: np.ndarray) -> float:
        x = x[x > 0]
        return float(np.sum(x * np.log(x)))

    log_n = np.log(n)
    sum_a = xlogx(a)
    sum_b = xlogx(b) - aux * log_n
    sum_ab = xlogx(pn) - aux * log_n
    ha, hb = -sum_a, -sum_b
    hab, hba = sum_b - sum_ab, sum_a - sum_ab
    prec_i = (ha - hab) / ha if ha != 0 else 0.0
    rec_i = (hb - hba) / hb if hb != 0 else 1.0
    if ha == 0:
        prec_i, rec_i = 0.0, 1.0
    if hb == 0:
        prec_i, rec_i = 1.0, 0.0
    v_info = 2 * prec_i * rec_i / (prec_i + rec_i) if prec_i + rec_i > 0 else 0.0
    return v_rand, v_info


def _as_stack(arr: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ShapeError(f"{name} must be a (Y, X) image or (Z, Y, X) stack, got shape {a.shape}")
    return a


def _is_binary(proposal: np.ndarray) -> bool:
    if proposal.dtype == bool:
        return True
    return bool(np.all(np.isin(np.unique(proposal), (0, 1))))


def isbi2012_scores(
    gt: np.ndarray,
    proposal: np.ndarray,
    *,
    thresholds: tuple[float, ...] | None = None,
) -> Isbi2012Scores:
    """Maximal foreground-restricted V_rand and V_info after border thinning.

    Parameters
    ----------
    gt : np.ndarray, shape ``(Z, Y, X)`` or ``(Y, X)``
        Reference labels in challenge polarity: 0 = membrane, > 0 (255) = cell.
    proposal : np.ndarray of float, same shape
        Membrane probability map in challenge polarity (0 = membrane, 1 = cell), or
        a binary map.
    thresholds : tuple of float, optional
        Default: Fiji's 11 thresholds 0.0 ... 1.0 for a probability map, ``(0.0,)``
        for a binary proposal.

    Returns
    -------
    Isbi2012Scores

    Notes
    -----
    With p_ij the joint fractions over reference-foreground pixels (reference cell i,
    thinned proposal segment j > 0), t_i = sum_j p_ij (j >= 0), s_j = sum_i p_ij and
    c = sum_i p_i0 (proposal line pixels, each a singleton of mass 1/n):
    V_rand = 2PR / (P + R), P = (sum p_ij^2 + c/n) / (sum s_j^2 + c/n),
    R = (sum p_ij^2 + c/n) / sum t_i^2;
    V_info = 2 I / (H(S) + H(T)) (harmonic mean of I/H(T) and I/H(S)).
    See the module docstring for the full procedure and the gaps to Fiji.

    References
    ----------
    Arganda-Carreras et al., Front. Neuroanat. 9:142 (2015);
    fiji/Trainable_Segmentation ``metrics/RandError.java``, ``VariationOfInformation.java``.
    """
    g = _as_stack(gt, "gt")
    prop = _as_stack(proposal, "proposal")
    if g.shape != prop.shape:
        raise ShapeError(f"gt and proposal must have the same shape, got {g.shape} and {prop.shape}")
    if not np.all(np.isfinite(prop)):
        raise DataValueError("proposal holds NaN/inf values; write probabilities in [0, 1]")
    if thresholds is None:
        thresholds = (0.0,) if _is_binary(prop) else FIJI_THRESHOLDS
    gt_cc = [cc3d.connected_components((s > 0).astype(np.uint8), connectivity=4) for s in g]
    keep = [z for z in range(g.shape[0]) if gt_cc[z].any()]
    if len(keep) < g.shape[0]:
        logger.warning("%d slice(s) without reference foreground skipped", g.shape[0] - len(keep))
    if not keep:
        return Isbi2012Scores(float("nan"), float("nan"), float("nan"), float("nan"))
    best = [0.0, 0.0, float(thresholds[0]), float(thresholds[0])]
    for th in thresholds:
        scores = np.array([_slice_scores(gt_cc[z], thin_boundaries(prop[z] > th)) for z in keep])
        vr, vi = scores.mean(axis=0)
        if vr > best[0]:
            best[0], best[2] = float(vr), float(th)
        if vi > best[1]:
            best[1], best[3] = float(vi), float(th)
    return Isbi2012Scores(*best)


def pixel_error(
    gt: np.ndarray, proposal: np.ndarray, *, thresholds: tuple[float, ...] | None = None
) -> float:
    """Deprecated ISBI 2012 pixel error: 1 - maximal pixel F-score over thresholds.

    A pixel is positive (cell) when ``value > t`` in the proposal and ``> 0`` in the
    reference; counts are pooled over all slices. Not cross-checked against Fiji's
    ``PixelError.java``.
    """
    g = _as_stack(gt, "gt") > 0
    prop = _as_stack(proposal, "proposal")
    if g.shape != prop.shape:
        raise ShapeError(f"gt and proposal must have the same shape, got {g.shape} and {prop.shape}")
    if thresholds is None:
        thresholds = (0.0,) if _is_binary(prop) else FIJI_THRESHOLDS
    best = 0.0
    for th in thresholds:
        p = prop > th
        tp = np.count_nonzero(p & g)
        fp = np.count_nonzero(p & ~g)
        fn = np.count_nonzero(~p & g)
        f = 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0
        best = max(best, f)
    return float(1.0 - best)
