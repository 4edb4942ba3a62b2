"""Touching objects and their flow maps, true or noisy: the flow post-processing and tuning tests' inputs."""

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


def noisy_maps(labels, seed=0):
    """Maps of ``labels`` a model might predict: each object has its own brightness and flow noise.

    The cell probability of object ``k`` is uniform in [0.45, 0.9] plus noise (0.1 outside),
    so the foreground threshold decides which objects are followed; its flows get Gaussian
    noise of a standard deviation uniform in [0, 0.6], so its flow error spreads over the
    flow thresholds searched (0.2 to 1.2).
    """
    rng = np.random.default_rng(seed)
    count = int(labels.max())
    brightness = np.concatenate([[0.1], rng.uniform(0.45, 0.9, count)])[labels]
    probability = np.clip(brightness + 0.08 * rng.standard_normal(labels.shape), 0.01, 0.99)
    spread = np.concatenate([[0.0], rng.uniform(0.0, 0.6, count)])[labels]
    flows = flows_from_instances(labels) + spread * rng.standard_normal((labels.ndim, *labels.shape))
    return np.concatenate([probability[None], flows]).astype(np.float32)
