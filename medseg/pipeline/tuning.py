"""Instance post-processing chosen on held-out data, as StarDist's ``optimize_thresholds``.

An instance model's maps (:meth:`Predictor.instance_maps`) are computed once per held-out
case; every point of a grid of seed threshold (flow error threshold for ``flow``
models), foreground threshold and minimum object size is then turned into objects
(:func:`~medseg.infer.postprocess.instances_for_params`: as ``instances_from_maps``
would, with a flow model's flows followed once per foreground threshold) and scored by
the Aggregated Jaccard Index against the case's instance labels. The best point (highest
mean AJI; ties keep the earlier point, the grid starts from the defaults) goes into the
checkpoint as ``metadata["postprocessing"]``, where ``medseg predict`` reads it. Values
set in the pipeline YAML (``infer.postprocessing``) are not searched.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medseg.config import PostProcessingConfig
from medseg.data import Sample
from medseg.data.sample import in_memory, scored_part
from medseg.errors import ConfigError
from medseg.eval.instance import aggregated_jaccard_index
from medseg.infer.postprocess import PostProcessing, instances_for_params
from medseg.infer.predictor import Predictor
from medseg.io import Volume
from medseg.train.checkpoint import update_metadata

__all__ = [
    "FLOW_THRESHOLDS",
    "FOREGROUND_THRESHOLDS",
    "SEED_THRESHOLDS",
    "SPLIT_FACTOR",
    "TunedPostProcessing",
    "instance_score",
    "min_size_candidates",
    "postprocessing_metadata",
    "size_prior",
    "store_postprocessing",
    "tune_postprocessing",
]

logger = logging.getLogger(__name__)

#: Seed thresholds searched (the default 0.5 first).
SEED_THRESHOLDS = (0.5, 0.3, 0.4, 0.6, 0.7, 0.8)
#: Foreground thresholds searched (the default 0.5 first).
FOREGROUND_THRESHOLDS = (0.5, 0.3, 0.4, 0.6, 0.7)
#: Objects above this many times the training labels' median object are split (when tuning keeps it).
SPLIT_FACTOR = 1.5
#: Flow error thresholds searched for ``flow`` models (Cellpose's default 0.4 first).
FLOW_THRESHOLDS = (0.4, 0.2, 0.6, 0.8, 1.2)


@dataclass(frozen=True)
class TunedPostProcessing:
    """Result of :func:`tune_postprocessing`.

    Attributes
    ----------
    params : PostProcessing
        The chosen thresholds.
    aji : float
        Mean held-out AJI with ``params``.
    default_aji : float
        Mean held-out AJI with the YAML values and defaults for the rest (the grid's first point).
    searched : int
        Grid points scored.
    fixed : tuple of str
        Keys set in the YAML, not searched.
    """

    params: PostProcessing
    aji: float
    default_aji: float
    searched: int
    fixed: tuple[str, ...] = field(default_factory=tuple)


def min_size_candidates(typical_object_voxels: float | None, default: int) -> tuple[int, ...]:
    """Minimum object sizes to search: ``default`` first, then fractions of the typical object size."""
    if not typical_object_voxels or typical_object_voxels <= 0:
        return (default, 0, 2 * default, 5 * default)
    fractions = (0.0, 0.05, 0.1, 0.2, 0.35)
    sizes = [round(f * typical_object_voxels) for f in fractions]
    return tuple(dict.fromkeys([default, *sizes]))


def size_prior(
    typical_object_voxels: float | None, typical_object_extent: Sequence[float] | None
) -> dict[str, Any]:
    """The post-processing's splitting from the typical object: ``split_size`` and ``object_extent``.

    Empty when the fingerprint has no objects. ``split_size`` is :data:`SPLIT_FACTOR` times the
    median object's voxels.

    Examples
    --------
    >>> size_prior(400.0, [22.0, 24.0])
    {'split_size': 600, 'object_extent': (22.0, 24.0)}
    """
    if not typical_object_voxels or typical_object_voxels <= 0 or not typical_object_extent:
        return {}
    if min(typical_object_extent) <= 0:
        return {}
    return {
        "split_size": round(SPLIT_FACTOR * typical_object_voxels),
        "object_extent": tuple(float(e) for e in typical_object_extent),
    }


def _cases(samples: Sequence[Sample]) -> list[tuple[Sample, Volume, np.ndarray]]:
    """The labelled ``samples`` in memory: sample, whole image and the scored part's ``(*spatial)`` instance ids.

    The image is predicted and post-processed whole (a held-out region with its context,
    so objects crossing the cut are separated as in a full image); the objects are then
    cropped by :func:`scored_part` to the label's part.
    """
    return [
        (s, in_memory(s.image), scored_part(s, np.asarray(in_memory(s.label).array[0])))
        for s in samples
        if s.label is not None
    ]


def instance_score(
    predictor: Predictor, samples: Sequence[Sample], params: PostProcessing | None = None
) -> float:
    """Mean AJI of ``predictor``'s instances on the scored part of labelled ``samples`` (validation of instance models)."""
    scores = []
    for sample, image, label in _cases(samples):
        logits = predictor.predict_logits(image.array, source=image.meta.get("source"))
        instances = predictor.instances_from_logits(logits, params)
        scores.append(aggregated_jaccard_index(label, scored_part(sample, instances)))
    return float(np.nanmean(scores)) if scores else float("nan")


def tune_postprocessing(
    predictor: Predictor,
    samples: Sequence[Sample],
    settings: PostProcessingConfig,
    *,
    typical_object_voxels: float | None = None,
    typical_object_extent: Sequence[float] | None = None,
) -> TunedPostProcessing:
    """Grid-search the watershed thresholds of ``predictor`` on labelled ``samples`` by mean AJI.

    Searched: the foreground threshold, the minimum size and the seed threshold, or for a
    ``flow`` model the flow error threshold (:data:`FLOW_THRESHOLDS`) instead of seeds; with
    the typical object known, also whether objects above :data:`SPLIT_FACTOR` times its size
    are split (:func:`size_prior`; splitting first).

    Parameters
    ----------
    predictor : Predictor
        An instance-trained model (its ``instance_target`` says which maps it predicts).
    samples : sequence of Sample
        Held-out cases with instance labels; objects are found on the whole image and
        scored on its :attr:`Sample.scored` part.
    settings : PostProcessingConfig
        ``infer.postprocessing``: values set there are kept, the others searched.
    typical_object_voxels : float, optional
        Median object size of the training labels (the data fingerprint); scales the
        minimum sizes searched.
    typical_object_extent : sequence of float, optional
        Median object extent per axis in voxels (the data fingerprint); with
        ``typical_object_voxels``, the scale of the splitting.
    """
    target = predictor.instance_target
    if target is None:
        raise ConfigError("post-processing is tuned for instance models; this one predicts class labels")
    default = PostProcessing()
    fixed = {k: v for k, v in settings.model_dump().items() if k != "tune" and v is not None}
    # the flow target has no seeds: its objects are where the flows end, checked by their flow error
    first = {"flow_threshold": FLOW_THRESHOLDS} if target.has_flows else {"seed_threshold": SEED_THRESHOLDS}
    grid: dict[str, tuple[Any, ...]] = {
        **first,
        "foreground_threshold": FOREGROUND_THRESHOLDS,
        "min_size": min_size_candidates(typical_object_voxels, default.min_size),
    }
    prior = size_prior(typical_object_voxels, typical_object_extent)
    if prior:
        grid["split_size"] = (prior["split_size"], 0)
        grid["object_extent"] = (prior["object_extent"],)
    grid = {k: (fixed[k],) if k in fixed else v for k, v in grid.items()}
    grid.update({k: (v,) for k, v in fixed.items() if k not in grid})
    cases = [
        (
            predictor.instance_maps(predictor.predict_logits(image.array, source=image.meta.get("source"))),
            label,
            sample,
        )
        for sample, image, label in _cases(samples)
    ]
    points = [
        PostProcessing(**dict(zip(grid, values, strict=True))) for values in itertools.product(*grid.values())
    ]
    ajis = np.full((len(points), len(cases)), np.nan)
    for c, (maps, label, sample) in enumerate(cases):
        for i, objects in instances_for_params(maps, target, points):
            ajis[i, c] = aggregated_jaccard_index(label, scored_part(sample, objects))
    scores = [float(np.nanmean(row)) if not np.all(np.isnan(row)) else float("nan") for row in ajis]
    ranked = np.nan_to_num(np.array(scores), nan=-1.0)
    best = int(np.argmax(ranked))  # the first of equal scores: the grid starts from the defaults
    return TunedPostProcessing(points[best], scores[best], scores[0], len(points), tuple(sorted(fixed)))


def postprocessing_metadata(
    settings: PostProcessingConfig,
    tuned: TunedPostProcessing | None,
    held_out: Sequence[str],
    prior: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint's ``metadata["postprocessing"]``: thresholds, and how they were chosen.

    Untuned, the YAML's values, the splitting of :func:`size_prior` (``prior``) and defaults.
    """
    if tuned is None:
        fixed = {k: v for k, v in settings.model_dump().items() if k != "tune" and v is not None}
        params = PostProcessing(**{**(prior or {}), **fixed})
        return {**params.to_dict(), "tuned": False, "set_in_config": sorted(fixed)}
    return {
        **tuned.params.to_dict(),
        "tuned": True,
        "set_in_config": list(tuned.fixed),
        "tuned_on": list(held_out),
        "validation_aji": round(tuned.aji, 4),
        "default_aji": round(tuned.default_aji, 4),
        "grid_points": tuned.searched,
    }


def store_postprocessing(checkpoints: Sequence[Path], entry: dict[str, Any]) -> None:
    """Write ``entry`` as ``metadata["postprocessing"]`` into each existing checkpoint file (atomically)."""
    for path in checkpoints:
        if path.is_file():
            update_metadata(path, postprocessing=entry)
