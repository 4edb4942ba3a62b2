"""Metrics (numpy/scipy), challenge file formats and reports. Never imports torch."""

from __future__ import annotations

from medseg.eval.contingency import Contingency, contingency_table
from medseg.eval.em import (
    adapted_rand_error,
    cremi_adapted_rand_error,
    cremi_border_mask,
    cremi_neuron_scores,
    cremi_voi,
    variation_of_information,
)
from medseg.eval.formats import FORMATS, get_format, read_submission, write_submission
from medseg.eval.glas import glas_scores, object_dice, object_f1, object_hausdorff
from medseg.eval.instance import (
    aggregated_jaccard_index,
    aji_plus,
    ctc_seg,
    detection_scores,
    panoptic_quality,
)
from medseg.eval.isbi2012 import isbi2012_scores, pixel_error, thin_boundaries
from medseg.eval.overlap import (
    dice_score,
    foreground_mean,
    iou_score,
    overlap_metrics,
    precision_score,
    recall_score,
)
from medseg.eval.surface import (
    average_symmetric_surface_distance,
    hausdorff_distance,
    normalized_surface_dice,
    surface_distances,
    surface_metrics,
)
from medseg.eval.warping import splits_and_mergers_warping_error, warping_error

__all__ = [
    "Contingency",
    "contingency_table",
    "adapted_rand_error",
    "variation_of_information",
    "cremi_adapted_rand_error",
    "cremi_border_mask",
    "cremi_neuron_scores",
    "cremi_voi",
    "FORMATS",
    "get_format",
    "read_submission",
    "write_submission",
    "glas_scores",
    "object_dice",
    "object_f1",
    "object_hausdorff",
    "aggregated_jaccard_index",
    "aji_plus",
    "ctc_seg",
    "detection_scores",
    "panoptic_quality",
    "isbi2012_scores",
    "pixel_error",
    "thin_boundaries",
    "dice_score",
    "foreground_mean",
    "iou_score",
    "overlap_metrics",
    "precision_score",
    "recall_score",
    "average_symmetric_surface_distance",
    "hausdorff_distance",
    "normalized_surface_dice",
    "surface_distances",
    "surface_metrics",
    "warping_error",
    "splits_and_mergers_warping_error",
]
