"""Metrics (numpy/scipy), challenge file formats and reports. Never imports torch.

The names below are imported from their modules on first use, so that importing one
module of the package (a file format, say) does not load numba and scipy.optimize for the
metrics that need them.
"""

from __future__ import annotations

from typing import Any

from medseg._lazy import lazy_attribute, lazy_dir

#: Public name -> the module that defines it.
_EXPORTS = {
    "Contingency": "medseg.eval.contingency",
    "contingency_table": "medseg.eval.contingency",
    "adapted_rand_error": "medseg.eval.em",
    "variation_of_information": "medseg.eval.em",
    "cremi_adapted_rand_error": "medseg.eval.em",
    "cremi_border_mask": "medseg.eval.em",
    "cremi_neuron_scores": "medseg.eval.em",
    "cremi_voi": "medseg.eval.em",
    "FORMATS": "medseg.eval.formats",
    "ChallengeFormat": "medseg.eval.formats",
    "FormatKind": "medseg.eval.options",
    "NsdMethod": "medseg.eval.options",
    "get_format": "medseg.eval.formats",
    "register_format": "medseg.eval.formats",
    "read_submission": "medseg.eval.formats",
    "write_submission": "medseg.eval.formats",
    "glas_scores": "medseg.eval.glas",
    "object_dice": "medseg.eval.glas",
    "object_f1": "medseg.eval.glas",
    "object_hausdorff": "medseg.eval.glas",
    "aggregated_jaccard_index": "medseg.eval.instance",
    "aji_plus": "medseg.eval.instance",
    "ctc_seg": "medseg.eval.instance",
    "detection_scores": "medseg.eval.instance",
    "panoptic_quality": "medseg.eval.instance",
    "isbi2012_scores": "medseg.eval.isbi2012",
    "pixel_error": "medseg.eval.isbi2012",
    "thin_boundaries": "medseg.eval.isbi2012",
    "dice_score": "medseg.eval.overlap",
    "foreground_mean": "medseg.eval.overlap",
    "iou_score": "medseg.eval.overlap",
    "overlap_metrics": "medseg.eval.overlap",
    "precision_score": "medseg.eval.overlap",
    "recall_score": "medseg.eval.overlap",
    "average_symmetric_surface_distance": "medseg.eval.surface",
    "hausdorff_distance": "medseg.eval.surface",
    "normalized_surface_dice": "medseg.eval.surface",
    "surface_distances": "medseg.eval.surface",
    "surface_metrics": "medseg.eval.surface",
    "warping_error": "medseg.eval.warping",
    "splits_and_mergers_warping_error": "medseg.eval.warping",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, name)


def __dir__() -> list[str]:
    return lazy_dir(__name__, _EXPORTS)
