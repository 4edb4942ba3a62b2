from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg.borders import reflect_index
from medseg.data.sampling import PatchSampler
from medseg.models.constraints import mirror_pad


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_reflect_index_equals_numpy_reflect_padding_for_numpy_and_torch(size):
    axis = np.arange(size) * 10
    pad = 3 * size + 2  # wider than the axis: reflected again and again
    expected = np.pad(axis, pad, mode="reflect") if size > 1 else np.zeros(size + 2 * pad, int)
    positions = np.arange(-pad, size + pad)
    np.testing.assert_array_equal(axis[reflect_index(positions, size)], expected)
    got = reflect_index(torch.arange(-pad, size + pad), size)
    assert got.dtype == torch.int64
    np.testing.assert_array_equal(axis[got.numpy()], expected)


def test_training_patches_and_inference_padding_share_the_border_rule():
    # a (Z=1, 5, 6) volume: the old sampler switched every axis to 'edge' because Z has length 1
    image = np.arange(30, dtype=np.float32).reshape(1, 1, 5, 6)
    sampler = PatchSampler(image, patch_shape=(1, 9, 8), foreground_probability=0.0, seed=0)
    for patch in sampler.take(5):
        _, y0, x0 = patch.start
        padded = mirror_pad(torch.from_numpy(image)[None], [(0, 0), (-y0, y0 + 9 - 5), (-x0, x0 + 8 - 6)])[0]
        np.testing.assert_array_equal(patch.image, padded.numpy())
    # by hand: Y and X reflect (position -1 reads 1) although Z has length 1
    patch = next(p for p in sampler.take(50) if p.start[1] < 0 and p.start[2] < 0)
    _, y0, x0 = patch.start
    assert patch.image[0, 0, -y0 - 1, -x0] == image[0, 0, 1, 0]
    assert patch.image[0, 0, -y0, -x0 - 1] == image[0, 0, 0, 1]
