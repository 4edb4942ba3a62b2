"""ISBI 2012 EM challenge scores: V_rand and V_info after border thinning, pixel error.

Reproduces the official Fiji evaluation (fiji/Trainable_Segmentation,
``metrics/RandError.java`` ``getMaximalVRandAfterThinning(0.0, 1.0, 0.1, true)``,
``metrics/VariationOfInformation.java`` ``getMaximalVInfoAfterThinning(0.0, 1.0, 0.1)``,
``metrics/PixelError.java`` ``getPixelErrorMaximalFScore(0.0, 1.0, 0.1)``). For every
threshold t and slice:

1. both images are binarised, ``(double) value > t``: the proposal is read as float32
   (Fiji's ``convertToFloat``) and compared in double precision with the double t;
2. reference cells = 4-connected components of the binarised reference;
3. the proposal is thinned with Fiji's own Vincent-Soille watershed
   (``WatershedTransform2D(binary, 4)``, see :mod:`medseg.eval._flooding`): membranes
   become 1-pixel watershed lines (label 0) where two cells meet and are absorbed into
   a cell elsewhere;
4. scores are restricted to the reference foreground; proposal line pixels that fall
   in it count as singleton segments;
5. the per-slice scores are averaged over slices (macro average) and the maximum over
   thresholds is reported.

Thresholds are Fiji's loop ``for (th = 0.0; th <= 1.0; th += 0.1)``: 11 doubles with
accumulated rounding (0.30000000000000004, ..., 0.9999999999999999); a binary proposal
uses t = 0 only.

Degenerate slices follow Fiji's arithmetic: a slice without reference foreground scores
V_rand 0 and V_info 0, still counted in the per-slice means (a warning says so); a slice
whose information-theoretic precision and recall are both 0 makes V_info NaN at that
threshold, which then never wins the maximum (Fiji's ``score > max``).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import cc3d
import numpy as np

from medseg.errors import DataValueError, ShapeError
from medseg.eval._flooding import fiji_watershed, flood_xy, pair_counts

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
    """Thin the membrane of a binary 2D cell mask to 1-pixel watershed lines, as Fiji does.

    Parameters
    ----------
    cells : np.ndarray of bool, shape ``(Y, X)``
        True = cell (proposal value above threshold).

    Returns
    -------
    np.ndarray of int32
        Cell ids > 0, watershed lines 0 (Fiji's ``WatershedTransform2D(binary, 4)``). A
        slice without any cell is one segment (Fiji floods it as a new minimum).

    Notes
    -----
    Where two flooding fronts meet on an even-width membrane the line lands on the pixel
    Fiji's FIFO order gives: e.g. the row ``cell, 4 membrane pixels, cell`` becomes
    ``1 1 1 0 2 2`` (the line on the third membrane pixel, x = 3).
    """
    return fiji_watershed(np.asarray(cells, dtype=bool))


def _slice_scores(gt_cc: np.ndarray, thinned: np.ndarray) -> tuple[float, float]:
    """Foreground-restricted (V_rand, V_info) of one slice, Fiji N^2 normalisation.

    Degenerate cases as Fiji's arithmetic gives them: no reference foreground -> V_rand
    0 (``ClassificationStatistics`` of NaN counts) and V_info 0 (H(A) = 0 sets precision
    0, recall 1); V_info is ``nan`` when its precision and recall are both 0 (0/0).
    """
    fg = gt_cc > 0
    n = float(np.count_nonzero(fg))
    if n == 0:
        return 0.0, 0.0
    counts, rows, cols = pair_counts(gt_cc[fg], thinned[fg])
    p = counts / n
    zero = cols == 0
    aux = float(p[zero].sum())  # sum_i p_i0: predicted boundary inside reference cells
    a = np.bincount(rows, weights=p)
    b = np.bincount(cols[~zero], weights=p[~zero])
    pn = p[~zero]
    # Rand (RandError.getForegroundRestrictedRandIndexStatsN2)
    sum_a2 = float(a @ a)
    sum_b2 = float(b @ b) + aux / n
    sum_ab2 = float(pn @ pn) + aux / n
    # as ClassificationStatistics(tp, tn, fp, fn): precision 1 when fp = 0, recall 1 when fn = 0
    n2 = n * n
    tp = n2 * sum_ab2
    fp = n2 * sum_b2 - tp
    fn = n2 * sum_a2 - tp
    prec = 1.0 if fp == 0 else tp / (tp + fp)
    rec = 1.0 if fn == 0 else tp / (tp + fn)
    v_rand = 2.0 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
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
    v_info = 2.0 * prec_i * rec_i / (prec_i + rec_i) if prec_i + rec_i != 0 else float("nan")
    return v_rand, v_info


def _as_stack(arr: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ShapeError(f"{name} must be a (Y, X) image or (Z, Y, X) stack, got shape {a.shape}")
    return a


def _as_fiji_float(arr: np.ndarray, name: str) -> np.ndarray:
    """Values as Fiji compares them: ``convertToFloat`` (float32), then widened to double."""
    a = _as_stack(arr, name)
    if a.dtype == bool:
        a = a.view(np.uint8)
    return a.astype(np.float32).astype(np.float64)


def _is_binary(proposal: np.ndarray) -> bool:
    return bool(np.all((proposal == 0) | (proposal == 1)))


def _checked_pair(gt: np.ndarray, proposal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = _as_fiji_float(gt, "gt")
    prop = _as_fiji_float(proposal, "proposal")
    if g.shape != prop.shape:
        raise ShapeError(f"gt and proposal must have the same shape, got {g.shape} and {prop.shape}")
    if not np.all(np.isfinite(prop)):
        raise DataValueError("proposal holds NaN/inf values; write probabilities in [0, 1]")
    return g, prop


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
    proposal : np.ndarray, same shape
        Membrane probability map in challenge polarity (0 = membrane, 1 = cell), or
        a binary map.
    thresholds : tuple of float, optional
        Default: Fiji's 11 thresholds 0.0 ... 0.9999999999999999 for a probability
        map, ``(0.0,)`` for a binary proposal.

    Returns
    -------
    Isbi2012Scores
        Scores 0 (Fiji's result) when no threshold gives a positive mean, e.g. a stack
        without reference foreground.

    Notes
    -----
    With p_ij the joint fractions over reference-foreground pixels (reference cell i,
    thinned proposal segment j > 0), t_i = sum_j p_ij (j >= 0), s_j = sum_i p_ij and
    c = sum_i p_i0 (proposal line pixels, each a singleton of mass 1/n):
    V_rand = 2PR / (P + R), P = (sum p_ij^2 + c/n) / (sum s_j^2 + c/n),
    R = (sum p_ij^2 + c/n) / sum t_i^2;
    V_info = 2 I / (H(S) + H(T)) (harmonic mean of I/H(T) and I/H(S)).
    See the module docstring for the full procedure.

    References
    ----------
    Arganda-Carreras et al., Front. Neuroanat. 9:142 (2015);
    fiji/Trainable_Segmentation ``metrics/RandError.java``, ``VariationOfInformation.java``,
    ``utils/WatershedTransform2D.java``.
    """
    g, prop = _checked_pair(gt, proposal)
    if thresholds is None:
        thresholds = (0.0,) if _is_binary(prop) else FIJI_THRESHOLDS
    empty = [z for z in range(g.shape[0]) if not np.any(g[z] > thresholds[-1])]
    if empty:
        logger.warning(
            "%d slice(s) without reference foreground: as in Fiji they score V_rand and V_info 0, which "
            "lowers the per-slice means; crop them out to score the others",
            len(empty),
        )
    best = [0.0, 0.0, float(thresholds[0]), float(thresholds[0])]
    # the scores are invariant to transposing a slice, and Fiji's x-major order is C order
    # of the transposed slice: transpose the stacks once instead of every slice per threshold
    g_xy = np.ascontiguousarray(g.transpose(0, 2, 1))
    prop_xy = np.ascontiguousarray(prop.transpose(0, 2, 1))
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def slice_scores(z: int, th: float) -> tuple[float, float]:
        ref = g_xy[z] > th
        if z not in cache or not np.array_equal(cache[z][0], ref):
            cache[z] = (ref, cc3d.connected_components(ref.view(np.uint8), connectivity=4))
        return _slice_scores(cache[z][1], flood_xy((prop_xy[z] > th).view(np.uint8)))

    n_slices = g.shape[0]
    with ThreadPoolExecutor(max_workers=_threads(n_slices)) as pool:
        for th in thresholds:
            scores = list(pool.map(slice_scores, range(n_slices), [th] * n_slices))
            vr, vi = np.mean(scores, axis=0)  # Fiji's macro average over all slices
            if vr > best[0]:  # a nan mean never wins, as Fiji's `score > max`
                best[0], best[2] = float(vr), float(th)
            if vi > best[1]:
                best[1], best[3] = float(vi), float(th)
    return Isbi2012Scores(*best)


def _threads(n_slices: int) -> int:
    return max(1, min(n_slices, os.cpu_count() or 1, 8))


def pixel_error(
    gt: np.ndarray, proposal: np.ndarray, *, thresholds: tuple[float, ...] | None = None
) -> float:
    """ISBI 2012 pixel error: 1 - maximal pixel F-score over thresholds (Fiji ``PixelError``).

    A pixel is positive (cell) when ``value > t`` in the proposal (float32 value
    compared in double precision) and ``> 0`` in the reference; counts are pooled over
    all slices. As Fiji's ``ClassificationStatistics``: precision = 1 when there is no
    false positive, recall = 1 when there is no false negative, F = 0 when both are 0.
    Two all-membrane maps therefore score pixel error 0.

    References
    ----------
    fiji/Trainable_Segmentation ``metrics/PixelError.java`` (``getPixelErrorMaximalFScore``),
    ``metrics/ClassificationStatistics.java``.
    """
    g, prop = _checked_pair(gt, proposal)
    ref = g > 0
    if thresholds is None:
        thresholds = (0.0,) if _is_binary(prop) else FIJI_THRESHOLDS
    best = 0.0
    for th in thresholds:
        p = prop > th
        tp = np.count_nonzero(p & ref)
        fp = np.count_nonzero(p & ~ref)
        fn = np.count_nonzero(~p & ref)
        precision = 1.0 if fp == 0 else tp / (tp + fp)
        recall = 1.0 if fn == 0 else tp / (tp + fn)
        f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        best = max(best, f)
    return float(1.0 - best)
