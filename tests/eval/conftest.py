from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi


@pytest.fixture
def blobs():
    """Factory: smooth random binary masks / label maps (seeded)."""

    def make(shape, seed=0, sigma=2.0, level=0.5):
        rng = np.random.default_rng(seed)
        return ndi.gaussian_filter(rng.random(shape), sigma) > level

    return make


@pytest.fixture
def segments():
    """Factory: random segmentations (labelled cells) of a shape."""

    def make(shape, seed=0, n=30):
        rng = np.random.default_rng(seed)
        seeds = np.zeros(shape, np.int32)
        idx = tuple(rng.integers(0, s, n) for s in shape)
        seeds[idx] = np.arange(1, n + 1)
        _, ind = ndi.distance_transform_edt(seeds == 0, return_indices=True)
        return seeds[tuple(ind)]

    return make
