"""The per-case scores shared by several formats: class maps (nnU-Net's keys + surface) and instance maps."""

from __future__ import annotations

import numpy as np

from medseg.eval.formats.base import ScoreOptions
from medseg.eval.geometry import scoring_spacing
from medseg.eval.instance import (
    aggregated_jaccard_index,
    aji_plus,
    ctc_seg,
    detection_scores,
    panoptic_quality,
)
from medseg.eval.overlap import confusion_counts, overlap_metrics
from medseg.eval.surface import surface_metrics
from medseg.io import Volume

__all__ = ["class_scores", "instance_scores"]


def class_scores(pred: Volume, ref: Volume, options: ScoreOptions) -> dict[str, dict[str, float]]:
    """Per class: nnU-Net's ``Dice, IoU, FP, TP, FN, TN, n_pred, n_ref``, precision, recall and surface metrics.

    Distances use the reference's spacing (``options.spacing`` only for references
    without geometry, :func:`medseg.eval.geometry.scoring_spacing`).
    """
    gt, pr = ref.array[0], pred.array[0]
    voxel = scoring_spacing(ref, options.spacing, ref.meta.get("source", "reference"))
    labels = None if options.labels is None else list(options.labels)
    counts = confusion_counts(gt, pr, labels=labels)
    per = overlap_metrics(gt, pr, labels=list(counts))
    surf = surface_metrics(
        gt,
        pr,
        labels=list(counts),
        spacing=voxel,
        tolerance=options.tolerance,
        nsd_method=options.nsd_method,
    )
    out = {}
    for label, (tp, fp, fn) in counts.items():
        out[str(label)] = {
            "Dice": per[label]["dice"],
            "IoU": per[label]["iou"],
            "FP": fp,
            "TP": tp,
            "FN": fn,
            "TN": int(gt.size) - tp - fp - fn,
            "n_pred": tp + fp,
            "n_ref": tp + fn,
            "precision": per[label]["precision"],
            "recall": per[label]["recall"],
            **surf[label],
        }
    return out


def instance_scores(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """AJI, AJI+, PQ/SQ/DQ, F1 at IoU 0.5, CTC SEG and the foreground Dice of one instance map pair."""
    pq = panoptic_quality(gt, pred)
    return {
        "aji": aggregated_jaccard_index(gt, pred),
        "aji_plus": aji_plus(gt, pred),
        **{k: pq[k] for k in ("pq", "sq", "dq")},
        "f1@0.5": detection_scores((gt, pred))[0.5]["f1"],
        "seg": ctc_seg((gt, pred)),
        "dice": overlap_metrics(gt != 0, pred != 0, labels=[1])[1]["dice"],
    }
