"""Voxel-overlap metrics of class label maps: Dice, IoU (Jaccard), precision, recall.

Empty-vs-empty convention
-------------------------
When a class is absent from both the reference and the prediction, every ratio
below is 0/0. medseg returns ``empty_score`` for it (default ``nan``, as nnU-Net
does, so the case is left out of means); pass ``empty_score=1.0`` to count a
correctly-absent class as perfect. A class absent from the reference but present
in the prediction scores 0 (Dice, IoU, precision); recall is then 0/0 and also
gets ``empty_score``. A class present in the reference but absent from the
prediction scores 0 for every metric (precision included: nothing was found).
``foreground_mean`` averages the labels > 0 of one case with ``np.nanmean`` (``nan``
when every label is ``nan``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from medseg.eval._checks import check_pair

__all__ = [
    "OVERLAP_METRICS",
    "confusion_counts",
    "dice_score",
    "iou_score",
    "precision_score",
    "recall_score",
    "overlap_metrics",
    "foreground_mean",
]

OVERLAP_METRICS = ("dice", "iou", "precision", "recall")


def _labels_of(gt: np.ndarray, pred: np.ndarray, labels: Iterable[int] | None) -> list[int]:
    if labels is not None:
        return [int(v) for v in labels]
    present = np.union1d(np.unique(gt), np.unique(pred))
    return [int(v) for v in present if v != 0]


def confusion_counts(
    gt: np.ndarray, pred: np.ndarray, *, labels: Iterable[int] | None = None
) -> dict[int, tuple[int, int, int]]:
    """Per-class ``(tp, fp, fn)`` voxel counts.

    Parameters
    ----------
    gt, pred : np.ndarray of int, shape ``(Y, X)`` or ``(Z, Y, X)``
        Class label maps (0 = background).
    labels : iterable of int, optional
        Classes to count; default every label > 0 present in either map.

    Returns
    -------
    dict
        ``label -> (tp, fp, fn)``.
    """
    a, b = check_pair(gt, pred)
    wanted = _labels_of(a, b, labels)
    k = int(max([int(a.max(initial=0)), int(b.max(initial=0)), *wanted])) + 1
    if k <= 4096:
        table = np.bincount((a.astype(np.int64) * k + b).ravel(), minlength=k * k).reshape(k, k)
        gt_sizes, pred_sizes = table.sum(1), table.sum(0)
        return {
            c: (int(table[c, c]), int(pred_sizes[c] - table[c, c]), int(gt_sizes[c] - table[c, c]))
            for c in wanted
        }
    out = {}
    for c in wanted:
        ga, pb = a == c, b == c
        tp = int(np.count_nonzero(ga & pb))
        out[c] = (tp, int(np.count_nonzero(pb)) - tp, int(np.count_nonzero(ga)) - tp)
    return out


def _ratio(num: float, den: float, empty_score: float) -> float:
    return float(num / den) if den > 0 else float(empty_score)


def _metric(name: str, tp: int, fp: int, fn: int, empty_score: float) -> float:
    if name == "dice":
        return _ratio(2 * tp, 2 * tp + fp + fn, empty_score)
    if name == "iou":
        return _ratio(tp, tp + fp + fn, empty_score)
    if name == "precision":
        if tp + fp == 0:
            return 0.0 if fn > 0 else float(empty_score)
        return tp / (tp + fp)
    if name == "recall":
        return _ratio(tp, tp + fn, empty_score)
    raise ValueError(f"unknown overlap metric {name!r}; choose from {OVERLAP_METRICS}")


def overlap_metrics(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    labels: Iterable[int] | None = None,
    metrics: Iterable[str] = OVERLAP_METRICS,
    empty_score: float = float("nan"),
) -> dict[int, dict[str, float]]:
    """Dice, IoU, precision and recall for every class.

    Parameters
    ----------
    gt, pred : np.ndarray of int, shape ``(Y, X)`` or ``(Z, Y, X)``
        Reference and predicted class label maps.
    labels : iterable of int, optional
        Classes to score (default: labels > 0 present in either map).
    metrics : iterable of str
        Subset of ``("dice", "iou", "precision", "recall")``.
    empty_score : float
        Value for a class absent from both maps (see module docstring).

    Returns
    -------
    dict
        ``label -> {metric: value}``.

    Notes
    -----
    Dice = 2TP / (2TP + FP + FN); IoU = TP / (TP + FP + FN);
    precision = TP / (TP + FP); recall = TP / (TP + FN).
    """
    names = tuple(metrics)
    for n in names:
        if n not in OVERLAP_METRICS:
            raise ValueError(f"unknown overlap metric {n!r}; choose from {OVERLAP_METRICS}")
    counts = confusion_counts(gt, pred, labels=labels)
    return {c: {n: _metric(n, *tpfpfn, empty_score) for n in names} for c, tpfpfn in counts.items()}


def _single(name: str, gt, pred, label, empty_score) -> float:
    a, b = check_pair(gt, pred)
    if label is None:
        a, b = (a != 0).view(np.uint8), (b != 0).view(np.uint8)
        label = 1
    tp, fp, fn = confusion_counts(a, b, labels=[label])[label]
    return _metric(name, tp, fp, fn, empty_score)


def dice_score(gt, pred, *, label: int | None = None, empty_score: float = float("nan")) -> float:
    """Dice of one class (``label``) or of the foreground (``label=None``: any label > 0)."""
    return _single("dice", gt, pred, label, empty_score)


def iou_score(gt, pred, *, label: int | None = None, empty_score: float = float("nan")) -> float:
    """IoU (Jaccard) of one class or of the foreground (``label=None``)."""
    return _single("iou", gt, pred, label, empty_score)


def precision_score(gt, pred, *, label: int | None = None, empty_score: float = float("nan")) -> float:
    """Voxel precision TP/(TP+FP) of one class or of the foreground."""
    return _single("precision", gt, pred, label, empty_score)


def recall_score(gt, pred, *, label: int | None = None, empty_score: float = float("nan")) -> float:
    """Voxel recall (sensitivity) TP/(TP+FN) of one class or of the foreground."""
    return _single("recall", gt, pred, label, empty_score)


def foreground_mean(per_label: dict[int, dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over the labels > 0 of one case, ignoring ``nan``.

    A per-case summary; the folder summary (:mod:`medseg.eval.report`) aggregates as
    nnU-Net does instead (``nanmean`` over cases per label, then ``mean`` over labels).
    """
    fg = [v for k, v in per_label.items() if k != 0]
    if not fg:
        return {}
    out = {}
    for name in fg[0]:
        vals = np.array([d[name] for d in fg], dtype=float)
        out[name] = float(np.nanmean(vals)) if np.any(~np.isnan(vals)) else float("nan")
    return out
