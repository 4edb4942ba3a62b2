"""Objects from a cell probability and flow fields (the ``flow`` target, Cellpose's dynamics).

Cellpose (Stringer, Wang, Michaelos & Pachitariu, Nature Methods 18, 100-106, 2021)
predicts, for every pixel, the probability of being in a cell and a flow vector pointing
along the object's diffusion gradient towards its centre (:mod:`medseg.flows`). Objects
come back as follows (written here from the paper's description):

1. Foreground voxels (``p > foreground_threshold``) move by Euler steps ``x += flow(x)``
   along the interpolated flow field (bilinear / trilinear, positions kept in the image),
   so every voxel of one object ends near that object's centre.
2. The end points are counted in a histogram over the voxel grid; seeds are its local
   maxima (over a window of 5 voxels) holding more than a few end points, grown over
   neighbouring histogram voxels with end points; each voxel joins the seed region its
   end point lies in.
3. Flow error check: the flows of each found mask are recomputed from the mask alone; a
   mask whose mean squared difference to the predicted flows exceeds ``flow_threshold``
   is dropped (a mask the network's flows do not describe).

Steps 1-2 and the flow errors depend on the foreground threshold only (:func:`flow_masks`);
the drop by flow threshold is cheap (:meth:`FlowMasks.kept`), so a grid search over flow
thresholds follows the flows once (:func:`medseg.infer.postprocess.instances_for_params`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from medseg.errors import ConfigError, ShapeError
from medseg.flows import flows_from_instances

__all__ = [
    "FlowMasks",
    "SectionFlowMasks",
    "flow_errors",
    "flow_masks",
    "follow_flows",
    "instances_from_flows",
    "instances_from_section_flows",
    "masks_from_end_points",
    "section_flow_masks",
    "stitch_sections",
]

#: Euler steps of :func:`follow_flows` (Cellpose's default).
STEPS = 200
#: End points a histogram maximum needs to seed an object.
_MIN_SEED_COUNT = 10
#: Histogram voxels with more end points than this are grown into a seed's region.
_MIN_BASIN_COUNT = 2
#: Growth steps of a seed over the histogram.
_GROW_STEPS = 5
#: Objects of neighbouring sections overlapping by more than this IoU are one object (Cellpose's stitching).
STITCH_IOU = 0.25


def follow_flows(flows: np.ndarray, mask: np.ndarray, steps: int = STEPS) -> np.ndarray:
    """End positions ``(N, ndim)`` of the ``N`` voxels of ``mask`` after ``steps`` Euler steps along ``flows``.

    Parameters
    ----------
    flows : np.ndarray
        ``(ndim, *spatial)`` flow field in voxels per step (component ``a`` along axis ``a``);
        it is zeroed outside ``mask`` so voxels stop at the foreground's edge.
    mask : np.ndarray
        ``(*spatial)`` bool: the voxels that move.
    steps : int
        Euler steps.
    """
    ndim = mask.ndim
    shape = torch.tensor(mask.shape, dtype=torch.float32)
    field = torch.from_numpy(np.ascontiguousarray(flows * mask, dtype=np.float32))[None]
    # grid_sample takes (x, y[, z]) in [-1, 1]: the components in reversed axis order
    field = field.flip(1)
    points = torch.from_numpy(np.argwhere(mask).astype(np.float32))
    if not len(points):
        return points.numpy()
    scale = 2.0 / (shape - 1).clamp_min(1)
    upper = shape - 1
    view = (1, 1, len(points), ndim) if ndim == 2 else (1, 1, 1, len(points), ndim)
    for _ in range(steps):
        grid = (points * scale - 1).flip(1).reshape(view)
        step = F.grid_sample(field, grid, mode="bilinear", align_corners=True)
        step = step.reshape(ndim, -1).flip(0).T
        points = torch.minimum(torch.clamp(points + step, min=0), upper)
    return points.numpy()


def masks_from_end_points(end_points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Instance ids ``(*spatial)`` of the voxels of ``mask`` by where their end points gather.

    Seeds are the connected local maxima (window of 5 voxels) of the end-point histogram
    with more than ``_MIN_SEED_COUNT`` end points, grown ``_GROW_STEPS`` voxels over
    histogram voxels holding more than ``_MIN_BASIN_COUNT``; a voxel whose end point lies
    in no region stays background.
    """
    shape = mask.shape
    rounded = np.rint(end_points).astype(np.int64)
    flat = np.ravel_multi_index(tuple(rounded.T), shape)
    counts = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
    peaks = (counts >= ndimage.maximum_filter(counts, size=5)) & (counts > _MIN_SEED_COUNT)
    regions = cc3d.connected_components(peaks, connectivity=8 if mask.ndim == 2 else 26).astype(np.int64)
    basin = counts > _MIN_BASIN_COUNT
    for _ in range(_GROW_STEPS):
        grown = ndimage.grey_dilation(regions, size=(3,) * mask.ndim)
        regions = np.where((regions == 0) & basin, grown, regions)
    instances = np.zeros(shape, dtype=np.int64)
    instances[mask] = regions.ravel()[flat]
    return instances


def flow_errors(instances: np.ndarray, flows: np.ndarray) -> np.ndarray:
    """Per object ``k`` (index ``k - 1``), the mean over its voxels of ``|flows - flows of the mask|^2``."""
    recomputed = flows_from_instances(instances)
    squared = ((recomputed - flows) ** 2).sum(axis=0)
    count = int(instances.max())
    sizes = np.bincount(instances.ravel(), minlength=count + 1)[1:]
    totals = np.bincount(instances.ravel(), weights=squared.ravel(), minlength=count + 1)[1:]
    return np.divide(totals, sizes, out=np.zeros(count), where=sizes > 0)


@dataclass(frozen=True)
class FlowMasks:
    """The masks found by following one foreground threshold's flows, before the flow error check.

    Following the flows, clustering the end points and recomputing every mask's flows are
    the expensive steps and depend on the foreground threshold only; dropping masks by
    flow error is cheap, so one :class:`FlowMasks` answers every flow threshold
    (:func:`medseg.infer.postprocess.instances_for_params` shares it over a grid).

    Attributes
    ----------
    instances : np.ndarray
        int64 ids ``(*spatial)``, 0 background, not renumbered.
    errors : np.ndarray
        float ``(instances.max(),)``: the flow error (:func:`flow_errors`) of id ``k`` at ``k - 1``.
    """

    instances: np.ndarray
    errors: np.ndarray

    def kept(self, flow_threshold: float) -> np.ndarray:
        """The ids with the masks whose flow error exceeds ``flow_threshold`` set to 0 (a new array)."""
        bad = np.flatnonzero(self.errors > flow_threshold) + 1
        if not len(bad):
            return self.instances.copy()
        return np.where(np.isin(self.instances, bad), 0, self.instances)


@dataclass(frozen=True)
class SectionFlowMasks:
    """:class:`FlowMasks` of each section of a ``(Z, Y, X)`` stack (a 2D flow model), stitched once filtered."""

    sections: tuple[FlowMasks, ...]

    def kept(self, flow_threshold: float) -> np.ndarray:
        """Each section's masks within ``flow_threshold``, stitched across sections (:func:`stitch_sections`)."""
        return stitch_sections(np.stack([section.kept(flow_threshold) for section in self.sections]))


def _check_flow_threshold(flow_threshold: float) -> None:
    if not 0 < flow_threshold <= 4:
        raise ConfigError(f"flow_threshold must be in (0, 4], got {flow_threshold}")


def flow_masks(
    probability: np.ndarray,
    flows: np.ndarray,
    *,
    foreground_threshold: float = 0.5,
    steps: int = STEPS,
) -> FlowMasks:
    """Masks from a cell probability and unit-scale flows, with their flow errors, before any is dropped.

    Parameters
    ----------
    probability : np.ndarray
        ``(*spatial)`` cell probability (sigmoid of the model's channel 0).
    flows : np.ndarray
        ``(ndim, *spatial)`` predicted flows divided by the training scale (unit vectors
        inside objects), component ``a`` along spatial axis ``a``.
    foreground_threshold : float
        Voxels with ``probability > foreground_threshold`` are followed; in (0, 1).
    steps : int
        Euler steps along the flows.

    Returns
    -------
    FlowMasks
        The masks where the followed voxels end and the flow error of each;
        :meth:`FlowMasks.kept` drops those over a flow threshold.
    """
    probability = np.asarray(probability, dtype=np.float32)
    flows = np.asarray(flows, dtype=np.float32)
    if probability.ndim not in (2, 3) or flows.shape != (probability.ndim, *probability.shape):
        raise ShapeError(
            f"flow masks take a (*spatial) probability and (ndim, *spatial) flows of a 2D or 3D "
            f"image, got {probability.shape} and {flows.shape}"
        )
    if not 0 < foreground_threshold < 1:
        raise ConfigError(f"foreground_threshold must be in (0, 1), got {foreground_threshold}")
    mask = probability > foreground_threshold
    instances = masks_from_end_points(follow_flows(flows, mask, steps), mask)
    errors = flow_errors(instances, flows) if instances.max() else np.zeros(0)
    return FlowMasks(instances, errors)


def instances_from_flows(
    probability: np.ndarray,
    flows: np.ndarray,
    *,
    foreground_threshold: float = 0.5,
    flow_threshold: float = 0.4,
    steps: int = STEPS,
) -> np.ndarray:
    """Objects from a cell probability and unit-scale flows (the ``flow`` target's maps).

    :func:`flow_masks`, then the masks whose flow error exceeds ``flow_threshold`` are
    dropped (:meth:`FlowMasks.kept`).

    Parameters
    ----------
    probability : np.ndarray
        ``(*spatial)`` cell probability (sigmoid of the model's channel 0).
    flows : np.ndarray
        ``(ndim, *spatial)`` predicted flows divided by the training scale (unit vectors
        inside objects), component ``a`` along spatial axis ``a``.
    foreground_threshold : float
        Voxels with ``probability > foreground_threshold`` are followed; in (0, 1).
    flow_threshold : float
        Objects whose flow error (:func:`flow_errors`) exceeds it are dropped; in (0, 4].
    steps : int
        Euler steps along the flows.

    Returns
    -------
    np.ndarray
        int64 ids ``(*spatial)`` (0 background), not renumbered and without size filter:
        :func:`medseg.infer.postprocess.instances_from_maps` does both.
    """
    _check_flow_threshold(flow_threshold)
    masks = flow_masks(probability, flows, foreground_threshold=foreground_threshold, steps=steps)
    return masks.kept(flow_threshold)


def stitch_sections(sections: np.ndarray, iou: float = STITCH_IOU) -> np.ndarray:
    """One id per object across the sections of a ``(Z, Y, X)`` stack of per-section ids.

    Section by section, an object takes the id of the object of the previous section it
    overlaps with the highest IoU when that IoU exceeds ``iou`` (Cellpose's stitching of
    2D masks), else a new id.
    """
    out = np.zeros(sections.shape, dtype=np.int64)
    next_id = 1
    for z, section in enumerate(sections):
        previous = out[z - 1] if z else np.zeros_like(out[0])
        previous_sizes = np.bincount(previous.ravel())
        for k, box in enumerate(ndimage.find_objects(section), start=1):
            if box is None:
                continue
            mine = section[box] == k
            below, overlap = np.unique(previous[box][mine & (previous[box] > 0)], return_counts=True)
            scores = overlap / (mine.sum() + previous_sizes[below] - overlap) if len(below) else overlap
            if len(below) and scores.max() > iou:
                out[z][box][mine] = below[np.argmax(scores)]
            else:
                out[z][box][mine] = next_id
                next_id += 1
    return out


def section_flow_masks(
    probability: np.ndarray, flows: np.ndarray, *, foreground_threshold: float = 0.5
) -> SectionFlowMasks:
    """:func:`flow_masks` of each section of a ``(Z, Y, X)`` stack from a 2D flow model's per-section maps.

    ``probability`` is ``(Z, Y, X)``, ``flows`` ``(2, Z, Y, X)``.
    """
    if probability.ndim != 3 or flows.shape != (2, *probability.shape):
        raise ShapeError(
            f"section flows are a (Z, Y, X) probability and (2, Z, Y, X) flows, got {probability.shape} and "
            f"{flows.shape}"
        )
    return SectionFlowMasks(
        tuple(
            flow_masks(probability[z], flows[:, z], foreground_threshold=foreground_threshold)
            for z in range(probability.shape[0])
        )
    )


def instances_from_section_flows(
    probability: np.ndarray,
    flows: np.ndarray,
    *,
    foreground_threshold: float = 0.5,
    flow_threshold: float = 0.4,
) -> np.ndarray:
    """Objects of a ``(Z, Y, X)`` stack from a 2D flow model's per-section maps, stitched across sections.

    ``probability`` is ``(Z, Y, X)``, ``flows`` ``(2, Z, Y, X)``: each section is turned into
    objects as by :func:`instances_from_flows`, then :func:`stitch_sections` joins them.
    """
    _check_flow_threshold(flow_threshold)
    masks = section_flow_masks(probability, flows, foreground_threshold=foreground_threshold)
    return masks.kept(flow_threshold)
