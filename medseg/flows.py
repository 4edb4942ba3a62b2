"""Cellpose flow fields of instance label maps: the ``flow`` instance target's geometry.

The representation is Cellpose's (Stringer, Wang, Michaelos & Pachitariu, "Cellpose: a
generalist algorithm for cellular segmentation", Nature Methods 18, 100-106, 2021),
written here from the paper's description: inside every object a heat diffusion runs
from the object's centre (the object voxel nearest its median coordinate, re-fed at
every step), confined to the object's mask; the spatial gradient of ``log(1 + T)``,
normalised to unit length, is the object's flow. Following the flows from any object
voxel ends at that object's centre, so objects that touch are told apart by where their
voxels flow to (:mod:`medseg.infer.flow_masks`). The diffusion steps over face neighbours
on the voxel grid, so voxels count as isotropic whatever the images' spacing (Cellpose
resamples anisotropic stacks first; the distance target is the one measured in physical units).

Pure numpy/scipy and free of other medseg packages, so both the data layer (training
targets, :func:`medseg.data.targets.flow_target`) and the inference layer (the flow
error check of predicted masks) use this one implementation.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["FLOW_SCALE", "flows_from_instances"]

#: A model's flow channels are trained to ``FLOW_SCALE`` times the unit flows (Cellpose's
#: scale); its predictions are divided by it before they are followed.
FLOW_SCALE = 5.0


def _centre(mask: np.ndarray) -> tuple[int, ...]:
    """The voxel of ``mask`` nearest the median of its coordinates."""
    coords = np.argwhere(mask)
    median = np.median(coords, axis=0)
    return tuple(int(c) for c in coords[np.argmin(((coords - median) ** 2).sum(axis=1))])


def _object_flow(mask: np.ndarray) -> np.ndarray:
    """``(ndim, *mask.shape)`` unit flows of one object whose ``mask`` has a False border of 1 voxel."""
    ndim = mask.ndim
    centre = _centre(mask)
    inner = tuple(slice(1, -1) for _ in range(ndim))
    shifts = []
    for axis in range(ndim):
        for step in (-1, 1):
            shifts.append(
                tuple(
                    slice(1 + step, s - 1 + step) if a == axis else inner[a] for a, s in enumerate(mask.shape)
                )
            )
    heat = np.zeros(mask.shape, dtype=np.float64)
    keep = mask[inner].astype(np.float64) / (2 * ndim + 1)
    iterations = 2 * sum(mask.shape)
    for _ in range(iterations):
        heat[centre] += 1.0
        total = heat[inner].copy()
        for view in shifts:
            total += heat[view]
        heat[inner] = total * keep
    heat = np.log1p(heat)
    flow = np.zeros((ndim, *mask.shape), dtype=np.float64)
    for axis in range(ndim):
        ahead = shifts[2 * axis + 1]
        behind = shifts[2 * axis]
        flow[axis][inner] = heat[ahead] - heat[behind]
    norm = np.sqrt((flow**2).sum(axis=0))
    flow = np.divide(flow, norm, out=np.zeros_like(flow), where=norm > 0)
    return flow * mask


def flows_from_instances(instances: np.ndarray) -> np.ndarray:
    """Unit flow vectors towards each object's centre (Cellpose's flow target).

    Parameters
    ----------
    instances : np.ndarray
        ``(Y, X)`` or ``(Z, Y, X)`` integer ids, 0 = background.

    Returns
    -------
    np.ndarray
        ``(ndim, *spatial)`` float32: component ``a`` is the flow along spatial axis ``a``
        (``(dy, dx)`` or ``(dz, dy, dx)``), of unit length on object voxels that are not an
        object's centre of symmetry, 0 on background. Each object's diffusion is confined to
        its own voxels, so touching objects get their own fields.

    Examples
    --------
    >>> flows = flows_from_instances(np.array([[0, 1, 1, 1, 0]]))
    >>> flows[1].round(2).tolist()
    [[0.0, 1.0, 0.0, -1.0, 0.0]]
    """
    ids = np.asarray(instances)
    flows = np.zeros((ids.ndim, *ids.shape), dtype=np.float32)
    for index, box in enumerate(ndimage.find_objects(ids.astype(np.int64, copy=False)), start=1):
        if box is None:
            continue
        mask = np.pad(ids[box] == index, 1)
        flow = _object_flow(mask)[(slice(None), *(slice(1, -1) for _ in range(ids.ndim)))]
        inside = mask[tuple(slice(1, -1) for _ in range(ids.ndim))]
        region = flows[(slice(None), *box)]
        region[:, inside] = flow[:, inside].astype(np.float32)
    return flows
