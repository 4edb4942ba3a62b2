"""Touching objects and their true flow maps: the flow post-processing and tuning tests' inputs (noisy maps: :mod:`medseg.data.synthetic.flow_maps`)."""

from __future__ import annotations

import numpy as np

from medseg.flows import flows_from_instances


def ball(shape, centre, radius):
    """Bool ``shape`` array: the voxels closer than ``radius`` to ``centre``."""
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) < radius**2


def touching(shape, centres, radii):
    """int32 ids 1..N of discs / balls in order; a later one keeps out of the earlier ones, so they touch."""
    labels = np.zeros(shape, dtype=np.int32)
    for k, (centre, radius) in enumerate(zip(centres, radii, strict=True), start=1):
        labels[ball(shape, centre, radius) & (labels == 0)] = k
    return labels


def true_maps(labels):
    """The ``flow`` target's maps of ``labels``: cell probability 1 inside, and the true unit flows."""
    return np.concatenate([(labels > 0)[None].astype(np.float32), flows_from_instances(labels)])
