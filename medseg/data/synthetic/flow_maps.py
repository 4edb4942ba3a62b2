"""Flow maps a ``flow`` model might predict for known objects: inputs for tuning tests and benchmarks."""

from __future__ import annotations

import numpy as np

from medseg.flows import flows_from_instances

__all__ = ["noisy_flow_maps"]


def noisy_flow_maps(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Cell probability and flows of ``labels`` with per-object brightness and flow noise, ``(1 + ndim, ...)``.

    The cell probability of object ``k`` is uniform in [0.45, 0.9] plus noise (0.1 outside),
    so the foreground threshold decides which objects are followed; its flows get Gaussian
    noise of a standard deviation uniform in [0, 0.6], so its flow error spreads over the
    flow thresholds tuning searches (0.2 to 1.2). float32.
    """
    rng = np.random.default_rng(seed)
    count = int(labels.max())
    brightness = np.concatenate([[0.1], rng.uniform(0.45, 0.9, count)])[labels]
    probability = np.clip(brightness + 0.08 * rng.standard_normal(labels.shape), 0.01, 0.99)
    spread = np.concatenate([[0.0], rng.uniform(0.0, 0.6, count)])[labels]
    flows = flows_from_instances(labels) + spread * rng.standard_normal((labels.ndim, *labels.shape))
    return np.concatenate([probability[None], flows]).astype(np.float32)
