"""Training targets from instance label maps (``data.label_kind: instances``).

Applied to an (augmented) instance-label patch ``(1, *P)``, 2D or 3D, 0 = background,
each object one positive id. Pure numpy (plus ``edt`` for the distance transform), so
they run in data-loader workers.

- :func:`boundary_target` (``data.instance_target: boundary``, the DCAN / MoNuSeg
  three-class recipe): 0 background, 1 inside, 2 boundary. A boundary voxel is an
  object voxel with a face neighbour of another id (background or another object), so
  touching objects are separated by their boundaries. The patch edge is not a boundary
  (the object continues outside the crop). The model then has 3 output classes.
- :func:`distance_target` (``data.instance_target: distance``): foreground (0/1) plus,
  inside each object, the Euclidean distance to the object's border divided by that
  object's largest distance, so every object peaks at 1 at its centre and falls to
  ``1 / max`` at its border. The model has 2 classes and 1 regression channel.
- :func:`flow_target` (``data.instance_target: flow``, Cellpose, Stringer et al. 2021,
  Nature Methods): foreground (0/1) plus unit flow vectors towards each object's centre
  (:func:`medseg.flows.flows_from_instances`). Computed from the augmented patch, so
  flips, rotations and elastic deformation act on the objects before their flows exist.
  The model has 1 cell-probability logit and one flow channel per spatial axis.

They are what :mod:`medseg.infer.postprocess` turns back into instances (seeded
watershed on the boundary or distance channel; flow following for ``flow``).
"""

from __future__ import annotations

import cc3d
import edt
import numpy as np

from medseg.errors import LabelError, ShapeError
from medseg.flows import flows_from_instances

__all__ = ["boundary_target", "distance_target", "flow_target"]


def _check(instances: np.ndarray) -> np.ndarray:
    instances = np.asarray(instances)
    if instances.ndim not in (3, 4) or instances.shape[0] != 1:
        raise ShapeError(
            f"instance targets take a (1, Y, X) or (1, Z, Y, X) label patch, got shape {instances.shape}"
        )
    if instances.dtype.kind not in "iub":
        raise LabelError(f"instance labels must be integer ids, got dtype {instances.dtype}")
    if instances.size and instances.dtype.kind == "i" and instances.min() < 0:
        raise LabelError(f"instance ids must be >= 0 (0 = background), got {int(instances.min())}")
    return instances[0]


def boundary_target(instances: np.ndarray) -> np.ndarray:
    """Background (0) / inside (1) / boundary (2) classes of an instance patch ``(1, *P)``.

    Returns
    -------
    np.ndarray
        ``(1, *P)`` int64.

    Examples
    --------
    >>> boundary_target(np.array([[[0, 1, 1, 1, 2, 2]]]))
    array([[[0, 2, 1, 2, 2, 1]]])
    """
    ids = _check(instances)
    padded = np.pad(ids, 1, mode="edge")
    centre = tuple(slice(1, -1) for _ in range(ids.ndim))
    edge = np.zeros(ids.shape, dtype=bool)
    for axis in range(ids.ndim):
        for step in (-1, 1):
            shifted = tuple(
                slice(1 + step, padded.shape[a] - 1 + step) if a == axis else centre[a]
                for a in range(ids.ndim)
            )
            edge |= padded[shifted] != ids
    target = np.where(ids > 0, 1, 0).astype(np.int64)
    target[(ids > 0) & edge] = 2
    return target[None]


def distance_target(
    instances: np.ndarray, spacing: tuple[float, ...] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and per-object normalised distance to the border of an instance patch ``(1, *P)``.

    Parameters
    ----------
    instances : np.ndarray
        ``(1, *P)`` integer instance ids.
    spacing : tuple of float, optional
        Voxel size per spatial axis: distances are measured in physical units, so the
        distance of an anisotropic volume (e.g. sections 4x thicker than the pixels) peaks
        at the object's physical centre and its seeds keep their shape. Default isotropic.

    Returns
    -------
    foreground : np.ndarray
        ``(1, *P)`` int64 in {0, 1}.
    distance : np.ndarray
        ``(1, *P)`` float32 in [0, 1]: inside object ``k``, the Euclidean distance (in
        voxels, or in ``spacing`` units) to the nearest voxel not in ``k`` divided by its maximum over ``k``; 0 on
        background. Touching objects each get their own peak.

    Examples
    --------
    >>> fg, dist = distance_target(np.array([[[0, 1, 1, 1, 0]]]))
    >>> dist.round(2).tolist()
    [[[0.0, 0.5, 1.0, 0.5, 0.0]]]
    """
    ids = _check(instances)
    foreground = (ids > 0).astype(np.int64)[None]
    if not foreground.any():
        return foreground, np.zeros(foreground.shape, dtype=np.float32)
    labels = np.ascontiguousarray(ids.astype(np.uint32 if ids.max() < 2**32 else np.uint64))
    # multi-label EDT: each voxel's distance to the nearest voxel of another id; the patch
    # edge is not a border (black_border=False), as for a crop of a larger image
    anisotropy = tuple(float(s) for s in spacing) if spacing is not None else (1.0,) * ids.ndim
    if len(anisotropy) != ids.ndim:
        raise ShapeError(f"spacing {spacing} must give one size per spatial axis of the {ids.ndim}D patch")
    distance = np.asarray(
        edt.edt(labels, anisotropy=anisotropy, black_border=False, parallel=1), dtype=np.float32
    )
    distance[ids == 0] = 0.0
    flat_ids = ids.ravel()
    peak = np.zeros(int(flat_ids.max()) + 1, dtype=np.float32)
    np.maximum.at(peak, flat_ids, distance.ravel())
    scale = peak[ids]
    normalised = np.divide(distance, scale, out=np.zeros_like(distance), where=scale > 0)
    return foreground, normalised[None].astype(np.float32)


def flow_target(instances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and Cellpose flows of an instance patch ``(1, *P)`` (Stringer et al. 2021).

    Returns
    -------
    foreground : np.ndarray
        ``(1, *P)`` int64 in {0, 1}.
    flows : np.ndarray
        ``(ndim, *P)`` float32 unit vectors (component ``a`` along spatial axis ``a``)
        pointing along each object's diffusion gradient towards its centre; 0 on background.
        Each connected piece of an object (a crop or a deformation can cut one in two) gets
        its own centre, so no voxel of the foreground is left without a flow.

    Examples
    --------
    >>> fg, flows = flow_target(np.array([[[0, 1, 1, 1, 0]]]))
    >>> fg.tolist(), flows[1].round(2).tolist()
    ([[[0, 1, 1, 1, 0]]], [[0.0, 1.0, 0.0, -1.0, 0.0]])
    """
    ids = _check(instances)
    pieces = cc3d.connected_components(ids, connectivity=4 if ids.ndim == 2 else 6)
    return (ids > 0).astype(np.int64)[None], flows_from_instances(pieces)
