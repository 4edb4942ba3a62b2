"""Augmentation: the same spatial transform on image and label, nearest for labels, intensity on image only."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medseg.data.transforms import augment, build_augmentation, unet_elastic_spacing
from medseg.errors import ConfigError


def _pair(shape, seed=0):
    """Piecewise-constant image whose label is a function of the image: label = (image - 10) / 50."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 3, size=tuple(max(2, s // 8) for s in shape))
    label = ndimage.zoom(coarse, [s / c for s, c in zip(shape, coarse.shape, strict=True)], order=0)
    label = label.astype(np.uint8)
    return (10.0 + 50.0 * label)[None].astype(np.float32), label[None]


@pytest.mark.parametrize("shape", [(64, 64), (12, 32, 32)])
def test_label_still_matches_image_after_augmentation(shape):
    image, label = _pair(shape)
    compose = build_augmentation(
        shape,
        elastic_probability=1.0,
        flip_probability=0.5,
        rotate90_probability=0.5,
        intensity_probability=0.0,
        seed=3,
    )
    changed = False
    for _ in range(3):
        new_image, new_label = augment(compose, image, label)
        assert new_image.shape == image.shape and new_label.shape == label.shape
        assert new_label.dtype == np.uint8 and set(np.unique(new_label)) <= {
            0,
            1,
            2,
        }  # nearest: no new values
        derived = np.rint((new_image[0] - 10.0) / 50.0)
        # away from class borders (where bilinear mixes values) the label derived from the image must match
        interior = ndimage.minimum_filter(new_label[0], 3) == ndimage.maximum_filter(new_label[0], 3)
        assert interior.mean() > 0.5
        assert np.mean(derived[interior] == new_label[0][interior]) > 0.99
        changed |= not np.array_equal(new_label, label)
    assert changed


def test_intensity_jitter_leaves_label_alone():
    image, label = _pair((32, 32))
    compose = build_augmentation(
        (32, 32),
        elastic_probability=0.0,
        flip_probability=0.0,
        rotate90_probability=0.0,
        intensity_probability=1.0,
        seed=0,
    )
    new_image, new_label = augment(compose, image, label)
    assert np.array_equal(new_label, label) and not np.allclose(new_image, image)


def test_seeded_and_unet_grid():
    image, label = _pair((48, 48))
    a = augment(build_augmentation((48, 48), seed=5), image, label)
    b = augment(build_augmentation((48, 48), seed=5), image, label)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert unet_elastic_spacing((65, 65)) == (32.0, 32.0)
    with pytest.raises(ConfigError, match="flip_probability must be in"):
        build_augmentation((8, 8), flip_probability=2.0)
    with pytest.raises(ConfigError, match="2 or 3 axes"):
        build_augmentation((8,))
