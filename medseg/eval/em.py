"""EM neuron-segmentation metrics: adapted Rand error, variation of information, CREMI.

The ISBI 2012 thinned scores (V_rand / V_info after border thinning) live in
:mod:`medseg.eval.isbi2012`; the warping error in :mod:`medseg.eval.warping`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

from medseg.errors import DataValueError
from medseg.eval._checks import check_fraction, check_pair
from medseg.eval.contingency import Contingency, contingency_table

__all__ = [
    "RandScores",
    "VOIScores",
    "CremiScores",
    "adapted_rand_error",
    "variation_of_information",
    "cremi_border_mask",
    "cremi_adapted_rand_error",
    "cremi_voi",
    "cremi_neuron_scores",
]


class RandScores(NamedTuple):
    """Adapted Rand error with its precision (merge score) and recall (split score)."""

    error: float
    precision: float
    recall: float


class VOIScores(NamedTuple):
    """Conditional entropies in bits: ``split`` = H(pred|gt), ``merge`` = H(gt|pred)."""

    split: float
    merge: float

    @property
    def total(self) -> float:
        return self.split + self.merge


class CremiScores(NamedTuple):
    voi_split: float
    voi_merge: float
    adapted_rand_error: float

    @property
    def voi(self) -> float:
        return self.voi_split + self.voi_merge

    @property
    def cremi_score(self) -> float:
        """sqrt(VOI * ARAND), geometric mean; lower is better."""
        return float(np.sqrt(self.voi * self.adapted_rand_error))


def _ignore_mask(gt: np.ndarray, ignore_labels: Iterable[int]) -> np.ndarray | None:
    ignore = [int(v) for v in ignore_labels]
    if not ignore:
        return None
    return ~np.isin(gt, ignore)


def adapted_rand_error(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    ignore_labels: Iterable[int] = (0,),
    alpha: float = 0.5,
    table: Contingency | None = None,
) -> RandScores:
    """Adapted Rand error of a segmentation (any dimensionality), pair-count form.

    Parameters
    ----------
    gt, pred : np.ndarray of int, same shape
        Reference and predicted segment ids. Voxels whose reference label is in
        ``ignore_labels`` are left out; predicted 0 is an ordinary segment.
    ignore_labels : iterable of int
        Reference labels to ignore (default ``(0,)``).
    alpha : float
        Weight of the merge (precision) term, in [0, 1].
    table : Contingency, optional
        Precomputed table (built with the same mask) to skip recomputation.

    Returns
    -------
    RandScores
        ``(error, precision, recall)``.

    Notes
    -----
    With n_ij the overlap counts, a_i = sum_j n_ij (reference sizes), b_j = sum_i n_ij
    (prediction sizes) and N the number of counted voxels,
    P = sum_ij n_ij^2 - N, A = sum_i a_i^2 - N, B = sum_j b_j^2 - N
    (pairs of distinct voxels); precision = P / B, recall = P / A and
    error = 1 - P / (alpha B + (1 - alpha) A) (Arganda-Carreras et al. 2015, eq. 3).
    Equals ``skimage.metrics.adapted_rand_error`` with skimage's ``alpha`` mirrored
    (skimage weights A by alpha) and its precision/recall swapped back
    (scikit-image issue #6485).

    Empty: with no counted voxel (every reference voxel ignored) all three values are
    ``nan``, as scikit-image's 0/0; a ratio whose pair count is 0 otherwise (all
    segments single voxels) is taken as 1.

    References
    ----------
    Arganda-Carreras et al., "Crowdsourcing the creation of image segmentation
    algorithms for connectomics", Front. Neuroanat. 9:142 (2015).
    """
    alpha = check_fraction(alpha, "alpha")
    if table is None:
        a, b = check_pair(gt, pred, ndims=(1, 2, 3, 4))
        table = contingency_table(a, b, mask=_ignore_mask(a, ignore_labels))
    n = float(table.counts.sum())
    if n == 0:
        return RandScores(float("nan"), float("nan"), float("nan"))
    cnt = table.counts.astype(np.float64)
    sa = table.gt_sizes.astype(np.float64)
    sb = table.pred_sizes.astype(np.float64)
    p = cnt @ cnt - n
    a2 = sa @ sa - n
    b2 = sb @ sb - n
    precision = p / b2 if b2 > 0 else 1.0
    recall = p / a2 if a2 > 0 else 1.0
    den = alpha * b2 + (1 - alpha) * a2
    fscore = p / den if den > 0 else 1.0
    return RandScores(float(1.0 - fscore), float(precision), float(recall))


def _xlogx(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.float64)
    nz = x > 0
    out[nz] = x[nz] * np.log2(x[nz])
    return out


def _voi_from_table(table: Contingency) -> VOIScores:
    n = float(table.counts.sum())
    if n == 0:
        return VOIScores(0.0, 0.0)
    pij = table.counts / n
    pa = table.gt_sizes / n
    pb = table.pred_sizes / n
    h_joint = -_xlogx(pij).sum()
    h_a = -_xlogx(pa).sum()
    h_b = -_xlogx(pb).sum()
    # H(pred|gt) = H(gt,pred) - H(gt); H(gt|pred) = H(gt,pred) - H(pred)
    return VOIScores(float(max(h_joint - h_a, 0.0)), float(max(h_joint - h_b, 0.0)))


def variation_of_information(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    ignore_labels: Iterable[int] = (),
    table: Contingency | None = None,
) -> VOIScores:
    """Split and merge parts of the variation of information, in bits.

    Parameters
    ----------
    gt, pred : np.ndarray of int, same shape
        Reference and predicted segment ids.
    ignore_labels : iterable of int
        Reference labels whose voxels are left out (default: none, as scikit-image).

    Returns
    -------
    VOIScores
        ``split`` = H(pred | gt) (over-segmentation), ``merge`` = H(gt | pred)
        (under-segmentation); same order as ``skimage.metrics.variation_of_information(gt, pred)``.

    Notes
    -----
    VI = H(pred|gt) + H(gt|pred) with H(X|Y) = H(X, Y) - H(Y), base-2 logarithms.
    No counted voxel gives (0, 0), as scikit-image.

    References
    ----------
    Meila, "Comparing clusterings - an information based distance", J. Multivar. Anal.
    98 (2007) 873-895.
    """
    if table is None:
        a, b = check_pair(gt, pred, ndims=(1, 2, 3, 4))
        table = contingency_table(a, b, mask=_ignore_mask(a, ignore_labels))
    return _voi_from_table(table)


# --------------------------------------------------------------------------- CREMI

_UINT64_MAX = np.iinfo(np.uint64).max


def cremi_border_mask(gt: np.ndarray, *, border_threshold: float, resolution: Sequence[float]) -> np.ndarray:
    """Voxels CREMI ignores: within ``border_threshold`` (world units) of a label border.

    Parameters
    ----------
    gt : np.ndarray of int, shape ``(Z, Y, X)``
        Reference neuron ids.
    border_threshold : float
        Distance in world units (nm for CREMI); the challenge example uses 200.
    resolution : sequence of 3 float
        Voxel size ``(z, y, x)`` in the same units; y and x must be equal.

    Returns
    -------
    np.ndarray of bool
        True where the reference is ignored.

    Notes
    -----
    As ``cremi_python``'s ``create_border_mask_2d``, per z-section: a pixel is
    *interior* when its four neighbours (edge-replicated at the image border) carry
    its label; the mask is ``edt(interior) <= border_threshold / resolution[1]`` in
    pixel units, i.e. border pixels and everything within that distance of them.
    """
    arr = np.asarray(gt)
    if arr.ndim != 3:
        raise DataValueError(
            f"gt must be a (Z, Y, X) volume for the CREMI border mask, got shape {arr.shape}"
        )
    res = tuple(float(r) for r in resolution)
    if len(res) != 3 or res[1] != res[2] or res[1] <= 0:
        raise DataValueError(
            f"resolution must be (z, y, x) with equal positive y and x, got {tuple(resolution)} "
            "(CREMI measures the border distance in-plane)"
        )
    max_dist = max(float(border_threshold), 0.0) / res[1]
    mask = np.zeros(arr.shape, dtype=bool)
    for z in range(arr.shape[0]):
        img = arr[z]
        padded = np.pad(img, 1, mode="edge")
        interior = (
            (img == padded[:-2, 1:-1])
            & (img == padded[2:, 1:-1])
            & (img == padded[1:-1, :-2])
            & (img == padded[1:-1, 2:])
        )
        mask[z] = ndi.distance_transform_edt(interior) <= max_dist
    return mask


def _cremi_valid(
    gt: np.ndarray, border_threshold: float | None, resolution: Sequence[float] | None
) -> np.ndarray:
    valid = np.ones(gt.shape, dtype=bool)
    if gt.dtype == np.uint64:
        valid &= gt != _UINT64_MAX  # cremi_python bumps labels by one: uint64(-1) wraps to the ignored 0
    if border_threshold:
        if resolution is None:
            raise DataValueError(
                "resolution (z, y, x) is required with border_threshold; CREMI uses (40, 4, 4) nm"
            )
        valid &= ~cremi_border_mask(gt, border_threshold=border_threshold, resolution=resolution)
        if not valid.any():
            raise DataValueError(
                f"border_threshold {border_threshold:g} masks every reference voxel (voxel size "
                f"{tuple(float(r) for r in resolution)}, sections {gt.shape[1:]}): nothing is left to "
                "score; lower the threshold"
            )
    return valid


def cremi_adapted_rand_error(
    gt: np.ndarray, pred: np.ndarray, *, valid: np.ndarray | None = None
) -> RandScores:
    """Adapted Rand error exactly as ``cremi_python`` (SNEMI3D script) computes it.

    Reference voxels outside ``valid`` are ignored; predicted label 0 is scored as
    singletons (one segment per voxel).

    Notes
    -----
    With counts n_ij over valid voxels, rows i = reference segments, column 0 =
    predicted background, c = sum_i n_i0 and n = the *total* voxel count (valid or
    not): A = sum_i a_i^2, B = sum_{j>0} b_j^2 + c / n, P = sum_{i,j>0} n_ij^2 + c / n,
    precision = P / B, recall = P / A, error = 1 - 2PR / (P + R). The ``c / n`` term
    mixes counts and fractions (cremi_python issue #3, also in the SNEMI3D MATLAB
    script); it is kept so scores match the leaderboard code.
    """
    a, b = check_pair(gt, pred, ndims=(2, 3))
    n = float(a.size)
    table = contingency_table(a, b, mask=valid)
    cnt = table.counts.astype(np.float64)
    zero_col = table.pred_ids[table.cols] == 0
    c = float(cnt[zero_col].sum())
    sa = table.gt_sizes.astype(np.float64)
    sb = np.bincount(table.cols[~zero_col], weights=cnt[~zero_col], minlength=table.pred_ids.size)
    sum_a = float(sa @ sa)
    sum_b = float(sb @ sb) + c / n
    sum_ab = float(cnt[~zero_col] @ cnt[~zero_col]) + c / n
    if sum_a == 0:
        return RandScores(float("nan"), float("nan"), float("nan"))
    precision = sum_ab / sum_b
    recall = sum_ab / sum_a
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return RandScores(float(1 - f), float(precision), float(recall))


def cremi_voi(gt: np.ndarray, pred: np.ndarray, *, valid: np.ndarray | None = None) -> VOIScores:
    """CREMI VOI split/merge (bits): reference voxels outside ``valid`` ignored, prediction 0 kept."""
    a, b = check_pair(gt, pred, ndims=(2, 3))
    return _voi_from_table(contingency_table(a, b, mask=valid))


def cremi_neuron_scores(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    resolution: Sequence[float] | None = None,
    border_threshold: float | None = None,
) -> CremiScores:
    """CREMI neuron-id scores: VOI split, VOI merge, adapted Rand error (and CREMI score).

    Parameters
    ----------
    gt, pred : np.ndarray of int, shape ``(Z, Y, X)``
        Reference and predicted neuron ids.
    resolution : sequence of float, optional
        Voxel size ``(z, y, x)``, e.g. ``(40, 4, 4)`` nm; needed with ``border_threshold``.
    border_threshold : float, optional
        Ignore reference voxels within this world distance of an in-section label
        border (``NeuronIds(gt, border_threshold)``); the leaderboard value is
        unconfirmed (the official example uses 200 nm).

    Returns
    -------
    CremiScores
        ``.voi``, ``.adapted_rand_error`` and ``.cremi_score`` = sqrt(VOI * ARAND).

    Notes
    -----
    Follows ``cremi_python`` ``NeuronIds``: border-masked voxels (and reference
    ``uint64(-1)``) are the only ignored reference voxels; reference label 0 is an
    ordinary segment there (labels are bumped by one before scoring).

    References
    ----------
    https://cremi.org/metrics/ ; github.com/cremi/cremi_python (evaluation/).
    """
    a, b = check_pair(gt, pred, ndims=(3,))
    valid = _cremi_valid(a, border_threshold, resolution)
    voi = cremi_voi(a, b, valid=valid)
    rand = cremi_adapted_rand_error(a, b, valid=valid)
    return CremiScores(voi.split, voi.merge, rand.error)
