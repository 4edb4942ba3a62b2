"""Post-processing of predictions: connected components and seeded watershed instances.

Instance-trained checkpoints (``targets.label_kind: instances``) predict three classes
(background, inside, boundary: ``instance_target: boundary``), a foreground probability
and a normalised distance to the object border (``instance_target: distance``), or both
heads together (``instance_target: both``), or Cellpose's cell probability and flows
(``instance_target: flow``, :mod:`medseg.infer.flow_masks`). Objects are split from
these by a seeded watershed (seeds: confident interiors, one connected component each)
or by following the flows, objects far larger than the training data's typical object
are split by its size (:mod:`medseg.infer.split_objects`), then objects
smaller than ``min_size`` are removed and the ids renumbered 1..N. The thresholds are a
:class:`PostProcessing`, tuned per checkpoint on held-out data (``medseg train``) and
applied by :func:`instances_from_maps`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import cc3d
import fastremap
import numpy as np
from skimage.segmentation import watershed

from medseg.errors import ConfigError, FormatError, ShapeError
from medseg.infer.flow_masks import FlowMasks, SectionFlowMasks, flow_masks, section_flow_masks
from medseg.infer.split_objects import split_large_objects
from medseg.options import InstanceTarget

__all__ = [
    "PostProcessing",
    "instances_for_params",
    "instances_from_boundary",
    "instances_from_both",
    "instances_from_distance",
    "instances_from_maps",
    "label_instances",
    "remove_small_objects",
]


@dataclass(frozen=True)
class PostProcessing:
    """Thresholds that turn an instance model's maps into objects.

    Attributes
    ----------
    seed_threshold : float
        Seeds are the connected components above it: of ``p(inside)`` (boundary target)
        or of the predicted distance (distance and both targets); in (0, 1).
    foreground_threshold : float
        A voxel is foreground when ``p(foreground) > foreground_threshold``; in (0, 1).
    min_size : int
        Objects with fewer voxels are removed (>= 0).
    flow_threshold : float
        ``flow`` target only (Cellpose's flow error threshold): an object is dropped when the
        mean squared difference between its predicted flows and the flows recomputed from
        its mask exceeds it. In (0, 4]: unit vectors differ by at most 4 squared, so 4
        keeps almost every object; Cellpose's default 0.4.
    split_size : int
        Objects of more voxels are split at the peaks of their distance transform
        (:func:`medseg.infer.split_objects.split_large_objects`); 0 (default) splits none.
        ``medseg train`` sets it to 1.5 times the training labels' median object.
    object_extent : tuple of float
        The training labels' typical object extent per axis in voxels (the data
        fingerprint's), the splitting's scale; needed when ``split_size`` is set.
    """

    seed_threshold: float = 0.5
    foreground_threshold: float = 0.5
    min_size: int = 10
    flow_threshold: float = 0.4
    split_size: int = 0
    object_extent: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in ("seed_threshold", "foreground_threshold"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ConfigError(f"post-processing {name} must be in (0, 1), got {value}")
        if self.min_size < 0:
            raise ConfigError(f"post-processing min_size must be >= 0, got {self.min_size}")
        if not 0 < self.flow_threshold <= 4:
            raise ConfigError(f"post-processing flow_threshold must be in (0, 4], got {self.flow_threshold}")
        object.__setattr__(self, "object_extent", tuple(float(e) for e in self.object_extent))
        if self.split_size < 0:
            raise ConfigError(f"post-processing split_size must be >= 0, got {self.split_size}")
        if self.split_size and (not self.object_extent or min(self.object_extent) <= 0):
            raise ConfigError(
                f"post-processing split_size {self.split_size} needs the typical object's extent per axis "
                f"(object_extent, from the training data's fingerprint), got {self.object_extent}"
            )

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["object_extent"] = list(self.object_extent)
        return values

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any] | None, *, source: str | Path = "checkpoint"
    ) -> PostProcessing:
        """From a checkpoint's post-processing entry (``CheckpointMeta.postprocessing``).

        Other keys are ignored; missing ones keep their defaults (checkpoints written before
        ``flow_threshold`` existed load as they did).

        Raises
        ------
        FormatError
            A threshold or size that is not valid; the message names ``source``.
        """
        values = dict(values or {})
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in values.items() if k in names and v is not None})
        except (TypeError, ConfigError) as err:
            raise FormatError(
                f"{source}: checkpoint post-processing {values!r} is not valid: {err}; retrain, or fix "
                "metadata.postprocessing"
            ) from err


def _connectivity(ndim: int) -> int:
    return 4 if ndim == 2 else 6


def label_instances(labels: np.ndarray, *, connectivity: int | None = None) -> np.ndarray:
    """Instance ids from a class map: connected components of the foreground (class > 0).

    Parameters
    ----------
    labels : np.ndarray
        ``(Y, X)`` or ``(Z, Y, X)`` integer class map.
    connectivity : int, optional
        4 or 8 in 2D, 6, 18 or 26 in 3D; default 4 / 6 (faces only), which keeps
        objects that touch only at a corner apart.

    Returns
    -------
    np.ndarray
        uint32 map, 0 = background, objects numbered 1..N.
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ShapeError(f"label_instances takes a (Y, X) or (Z, Y, X) map, got shape {labels.shape}")
    connectivity = connectivity or _connectivity(labels.ndim)
    return cc3d.connected_components(labels > 0, connectivity=connectivity).astype(np.uint32)


def remove_small_objects(instances: np.ndarray, min_size: int) -> np.ndarray:
    """Set objects with fewer than ``min_size`` voxels to 0 and renumber the rest 1..N (uint32)."""
    instances = np.asarray(instances)
    if min_size > 1:
        ids, counts = fastremap.unique(instances, return_counts=True)
        small = [int(i) for i, c in zip(ids, counts, strict=True) if i and c < min_size]
        if small:
            instances = fastremap.mask(instances, small)
    return fastremap.renumber(instances.astype(np.uint32), in_place=False)[0].astype(np.uint32)


def _seeded_watershed(
    elevation: np.ndarray, seeds: np.ndarray, mask: np.ndarray, min_size: int
) -> np.ndarray:
    markers = cc3d.connected_components(seeds & mask, connectivity=_connectivity(seeds.ndim))
    instances = watershed(elevation, markers=markers, mask=mask)
    return remove_small_objects(instances, min_size)


def instances_from_both(
    probabilities: np.ndarray,
    distance: np.ndarray,
    *,
    seed_threshold: float = 0.5,
    foreground_threshold: float = 0.5,
    min_size: int = 10,
) -> np.ndarray:
    """Objects from background / inside / boundary probabilities and a distance map (both heads).

    Seeds are the components of ``distance > seed_threshold`` inside the foreground
    (``1 - p(background) > foreground_threshold``); the foreground is flooded from them
    along ``p(boundary) - distance``, so both heads place the cut between touching objects.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    distance = _check_probability("distance", distance)
    if probabilities.shape != (3, *distance.shape):
        raise ShapeError(
            f"instances_from_both takes (3, *spatial) probabilities and a (*spatial) distance, got "
            f"{probabilities.shape} and {distance.shape}"
        )
    background, _, boundary = probabilities
    mask = 1.0 - background > foreground_threshold
    return _seeded_watershed(boundary - distance, distance > seed_threshold, mask, min_size)


def _checked_maps(
    maps: np.ndarray, instance_target: InstanceTarget | str
) -> tuple[InstanceTarget, np.ndarray]:
    """The target parsed and ``maps`` as float32, their count checked against it."""
    target = InstanceTarget.parse(instance_target, option="instance_target")
    maps = np.asarray(maps, dtype=np.float32)
    expected = target.maps(2 if _section_flows(target, maps) else maps.ndim - 1)
    if maps.shape[0] != expected:
        raise ShapeError(f"the {target.value} target has {expected} maps, got shape {maps.shape}")
    return target, maps


def _section_flows(target: InstanceTarget, maps: np.ndarray) -> bool:
    """Whether ``maps`` are a 2D flow model's maps of a ``(Z, Y, X)`` stack (followed per section)."""
    return target is InstanceTarget.FLOW and maps.ndim == 4 and maps.shape[0] == target.maps(2)


def _flow_masks(maps: np.ndarray, foreground_threshold: float) -> FlowMasks | SectionFlowMasks:
    """The flow target's masks and flow errors at ``foreground_threshold`` (checked ``maps``)."""
    if _section_flows(InstanceTarget.FLOW, maps):
        return section_flow_masks(maps[0], maps[1:], foreground_threshold=foreground_threshold)
    return flow_masks(maps[0], maps[1:], foreground_threshold=foreground_threshold)


def instances_from_maps(
    maps: np.ndarray, instance_target: InstanceTarget | str, params: PostProcessing
) -> np.ndarray:
    """Objects from an instance model's maps with the thresholds ``params``.

    Parameters
    ----------
    maps : np.ndarray
        ``(M, *spatial)`` float: ``boundary``: background, inside, boundary
        probabilities (M = 3); ``distance``: foreground probability, distance (M = 2);
        ``both``: background, inside, boundary probabilities, distance (M = 4); ``flow``:
        cell probability and the unit-scale flows (M = 1 + ndim,
        :func:`medseg.infer.flow_masks.instances_from_flows`; a 2D model's 3 maps of a
        stack are followed section by section and stitched,
        :func:`~medseg.infer.flow_masks.instances_from_section_flows`).
    instance_target : InstanceTarget or str
        ``boundary``, ``distance``, ``both`` or ``flow``.
    params : PostProcessing
        Thresholds and minimum object size.

    Returns
    -------
    np.ndarray
        uint32 instance map ``(*spatial)``.
    """
    target, maps = _checked_maps(maps, instance_target)
    if target is InstanceTarget.FLOW:
        objects = _flow_masks(maps, params.foreground_threshold).kept(params.flow_threshold)
        return remove_small_objects(_split(objects, params), params.min_size)
    if target is InstanceTarget.BOUNDARY:
        objects = instances_from_boundary(
            maps,
            seed_threshold=params.seed_threshold,
            foreground_threshold=params.foreground_threshold,
            min_size=params.min_size,
        )
    elif target is InstanceTarget.DISTANCE:
        objects = instances_from_distance(
            maps[0],
            maps[1],
            seed_threshold=params.seed_threshold,
            foreground_threshold=params.foreground_threshold,
            min_size=params.min_size,
        )
    else:
        objects = instances_from_both(
            maps[:3],
            maps[3],
            seed_threshold=params.seed_threshold,
            foreground_threshold=params.foreground_threshold,
            min_size=params.min_size,
        )
    if not params.split_size:
        return objects
    return remove_small_objects(_split(objects, params), params.min_size)


def _split(objects: np.ndarray, params: PostProcessing) -> np.ndarray:
    """``objects`` with those above ``params.split_size`` voxels split (unchanged when it is 0)."""
    if not params.split_size:
        return objects
    return split_large_objects(objects, params.split_size, params.object_extent)


def instances_for_params(
    maps: np.ndarray, instance_target: InstanceTarget | str, params: Sequence[PostProcessing]
) -> Iterator[tuple[int, np.ndarray]]:
    """``instances_from_maps(maps, instance_target, params[i])`` for every ``i``, sharing work between them.

    A grid search (:func:`medseg.pipeline.tuning.tune_postprocessing`) turns one case's maps
    into objects with many thresholds. For the ``flow`` target, following the flows and the
    flow error of every mask depend on the foreground threshold only: they run once per
    foreground threshold, the flow threshold's drop once per pair, and only the splitting and size filter
    per entry of ``params``. The other targets run :func:`instances_from_maps` per entry.

    Parameters
    ----------
    maps : np.ndarray
        ``(M, *spatial)`` maps, as :func:`instances_from_maps` takes them.
    instance_target : InstanceTarget or str
        ``boundary``, ``distance``, ``both`` or ``flow``.
    params : sequence of PostProcessing
        The thresholds to apply.

    Yields
    ------
    tuple of (int, np.ndarray)
        The index ``i`` into ``params`` and the uint32 instance map it gives, equal to
        ``instances_from_maps(maps, instance_target, params[i])``; every index once, grouped
        by foreground threshold (not in ``params`` order for ``flow``).
    """
    target, maps = _checked_maps(maps, instance_target)
    if target is not InstanceTarget.FLOW:
        for i, point in enumerate(params):
            yield i, instances_from_maps(maps, target, point)
        return
    groups: dict[float, dict[float, list[int]]] = {}
    for i, point in enumerate(params):
        groups.setdefault(point.foreground_threshold, {}).setdefault(point.flow_threshold, []).append(i)
    for foreground_threshold, by_flow_threshold in groups.items():
        masks = _flow_masks(maps, foreground_threshold)
        for flow_threshold, indices in by_flow_threshold.items():
            objects = masks.kept(flow_threshold)
            for i in indices:
                yield i, remove_small_objects(_split(objects, params[i]), params[i].min_size)


def _check_probability(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim not in (2, 3):
        raise ShapeError(f"{name} must be a (Y, X) or (Z, Y, X) map, got shape {array.shape}")
    return array


def instances_from_boundary(
    probabilities: np.ndarray,
    *,
    seed_threshold: float = 0.5,
    foreground_threshold: float = 0.5,
    min_size: int = 10,
) -> np.ndarray:
    """Objects from background / inside / boundary probabilities.

    Parameters
    ----------
    probabilities : np.ndarray
        ``(3, *spatial)`` softmax output of a ``boundary``-target model (channel 0
        background, 1 inside, 2 boundary; ``medseg.data.targets.boundary_target``).
    seed_threshold : float
        Seeds are the connected components of ``p(inside) > seed_threshold``.
    foreground_threshold : float
        Foreground is ``1 - p(background) > foreground_threshold``.
    min_size : int
        Objects with fewer voxels are removed.

    Returns
    -------
    np.ndarray
        uint32 instance map ``(*spatial)``: 0 background, objects 1..N. Foreground
        is flooded from the seeds along rising boundary probability.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim not in (3, 4) or probabilities.shape[0] != 3:
        raise ShapeError(
            f"instances_from_boundary takes (3, *spatial) probabilities (background, inside, boundary), "
            f"got shape {probabilities.shape}"
        )
    if not 0 < seed_threshold < 1:
        raise ConfigError(f"seed_threshold must be in (0, 1), got {seed_threshold}")
    if not 0 < foreground_threshold < 1:
        raise ConfigError(f"foreground_threshold must be in (0, 1), got {foreground_threshold}")
    background, inside, boundary = probabilities
    return _seeded_watershed(
        boundary, inside > seed_threshold, 1.0 - background > foreground_threshold, min_size
    )


def instances_from_distance(
    foreground_probability: np.ndarray,
    distance: np.ndarray,
    *,
    seed_threshold: float = 0.5,
    foreground_threshold: float = 0.5,
    min_size: int = 10,
) -> np.ndarray:
    """Objects from a foreground probability and a normalised distance-to-border map.

    Parameters
    ----------
    foreground_probability : np.ndarray
        ``(*spatial)`` probability of foreground (softmax channel 1 of a ``distance`` model).
    distance : np.ndarray
        ``(*spatial)`` predicted distance to the object border, normalised per object to
        ``[0, 1]`` (``sigmoid`` of channel 2; ``medseg.data.targets.distance_target``).
    seed_threshold : float
        Seeds are the connected components of ``distance > seed_threshold`` in the foreground.
    foreground_threshold : float
        Foreground is ``foreground_probability > foreground_threshold``.
    min_size : int
        Objects with fewer voxels are removed.

    Returns
    -------
    np.ndarray
        uint32 instance map: foreground flooded from the seeds down the distance map.
    """
    foreground = _check_probability("foreground_probability", foreground_probability)
    distance = _check_probability("distance", distance)
    if foreground.shape != distance.shape:
        raise ShapeError(
            f"foreground_probability {foreground.shape} and distance {distance.shape} must have one shape"
        )
    if not 0 < seed_threshold < 1:
        raise ConfigError(f"seed_threshold must be in (0, 1), got {seed_threshold}")
    if not 0 < foreground_threshold < 1:
        raise ConfigError(f"foreground_threshold must be in (0, 1), got {foreground_threshold}")
    return _seeded_watershed(
        -distance, distance > seed_threshold, foreground > foreground_threshold, min_size
    )
