"""Post-processing of predictions: connected components and seeded watershed instances.

Instance-trained checkpoints (``targets.label_kind: instances``) predict either three
classes (background, inside, boundary: ``instance_target: boundary``) or a foreground
probability and a normalised distance to the object border (``instance_target: distance``).
Objects are split from these by a seeded watershed (seeds: confident interiors, one
connected component each), then objects smaller than ``min_size`` are removed and the ids
renumbered 1..N.
"""

from __future__ import annotations

import cc3d
import fastremap
import numpy as np
from skimage.segmentation import watershed

from medseg.errors import ConfigError, ShapeError

__all__ = ["instances_from_boundary", "instances_from_distance", "label_instances", "remove_small_objects"]


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


def _check_probability(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim not in (2, 3):
        raise ShapeError(f"{name} must be a (Y, X) or (Z, Y, X) map, got shape {array.shape}")
    return array


def instances_from_boundary(
    probabilities: np.ndarray, *, seed_threshold: float = 0.5, min_size: int = 10
) -> np.ndarray:
    """Objects from background / inside / boundary probabilities.

    Parameters
    ----------
    probabilities : np.ndarray
        ``(3, *spatial)`` softmax output of a ``boundary``-target model (channel 0
        background, 1 inside, 2 boundary; ``medseg.data.targets.boundary_target``).
    seed_threshold : float
        Seeds are the connected components of ``p(inside) > seed_threshold``.
    min_size : int
        Objects with fewer voxels are removed.

    Returns
    -------
    np.ndarray
        uint32 instance map ``(*spatial)``: 0 background, objects 1..N. Foreground
        (``p(background) < 0.5``) is flooded from the seeds along rising boundary probability.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim not in (3, 4) or probabilities.shape[0] != 3:
        raise ShapeError(
            f"instances_from_boundary takes (3, *spatial) probabilities (background, inside, boundary), "
            f"got shape {probabilities.shape}"
        )
    if not 0 < seed_threshold < 1:
        raise ConfigError(f"seed_threshold must be in (0, 1), got {seed_threshold}")
    background, inside, boundary = probabilities
    return _seeded_watershed(boundary, inside > seed_threshold, background < 0.5, min_size)


def instances_from_distance(
    foreground_probability: np.ndarray,
    distance: np.ndarray,
    *,
    seed_threshold: float = 0.5,
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
    return _seeded_watershed(-distance, distance > seed_threshold, foreground > 0.5, min_size)
