"""Patch sampler: seeded, 2D/3D, class-balanced, lazy arrays, bounded retries."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from medseg.data.sampling import PatchSampler
from medseg.errors import ConfigError, LabelError, ShapeError


def _toy(shape=(40, 50)):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, *shape)).astype(np.float32)
    label = np.zeros((1, *shape), np.uint8)
    label[0, 5:8, 5:8] = 1  # rare class 1
    label[0, 20:, 20:] = 2
    return image, label


def test_seeded_and_aligned():
    image, label = _toy()
    a = PatchSampler(image, label, patch_shape=(16, 16), seed=7).take(5)
    b = PatchSampler(image, label, patch_shape=(16, 16), seed=7).take(5)
    assert [p.start for p in a] == [p.start for p in b]
    for p in a:
        assert p.image.shape == (2, 16, 16) and p.label.shape == (1, 16, 16)
        assert np.array_equal(p.image, image[(slice(None), *p.slices)])
        assert np.array_equal(p.label, label[(slice(None), *p.slices)])


def test_class_balancing_finds_rare_class():
    image, label = _toy()
    sampler = PatchSampler(
        image, label, patch_shape=(10, 10), classes=(1,), foreground_probability=1.0, seed=1
    )
    assert all((p.label == 1).any() for p in sampler.take(10))
    mixed = PatchSampler(
        image, label, patch_shape=(10, 10), classes=(1, 2), foreground_probability=1.0, seed=1
    )
    patches = mixed.take(20)
    assert any((p.label == 1).any() for p in patches) and any((p.label == 2).any() for p in patches)
    assert all(((p.label == 1) | (p.label == 2)).any() for p in patches)


def test_min_foreground_fraction_and_instances():
    image, label = _toy()
    sampler = PatchSampler(
        image,
        label,
        patch_shape=(10, 10),
        classes=None,
        foreground_probability=1.0,
        min_foreground=0.5,
        seed=0,
    )
    assert all((p.label != 0).mean() >= 0.5 for p in sampler.take(5))


def test_missing_class_raises_after_bounded_attempts():
    image, label = _toy()
    sampler = PatchSampler(
        image,
        label,
        patch_shape=(10, 10),
        classes=(3,),
        foreground_probability=1.0,
        max_sampling_attempts=25,
        seed=0,
    )
    with pytest.raises(LabelError, match=r"no \(10, 10\) patch with class 3 .* in 25 attempts"):
        sampler.sample()


def test_3d_lazy_hdf5(tmp_path):
    data = np.arange(6 * 20 * 24, dtype=np.uint16).reshape(6, 20, 24)
    labels = np.zeros_like(data, dtype=np.uint8)
    labels[3:5, 10:14, 2:6] = 1
    with h5py.File(tmp_path / "stack.h5", "w") as f:
        f.create_dataset("raw", data=data, chunks=(1, 8, 8))
        f.create_dataset("labels", data=labels, chunks=(1, 8, 8))
    with h5py.File(tmp_path / "stack.h5", "r") as f:
        sampler = PatchSampler(
            f["raw"], f["labels"], patch_shape=(2, 8, 8), foreground_probability=1.0, seed=3
        )
        for p in sampler.take(4):
            assert p.image.shape == (1, 2, 8, 8) and (p.label == 1).any()
            assert np.array_equal(p.image[0], data[p.slices])


def test_a_patch_larger_than_the_image_mirrors_it():
    image = np.arange(5 * 6, dtype=np.float32).reshape(1, 5, 6)
    label = (image > 10).astype(np.uint8)
    sampler = PatchSampler(image, label, patch_shape=(9, 4), foreground_probability=0.0, seed=0)
    for patch in sampler.take(10):
        (y0, x0) = patch.start
        assert -4 <= y0 <= 0 and 0 <= x0 <= 2  # Y holds the whole axis, X lies inside
        rows = np.abs(np.arange(y0, y0 + 9))  # reflect: -1 -> 1, ..., and 5 -> 3 past the end
        rows = np.where(rows > 4, 8 - rows, rows)
        np.testing.assert_array_equal(patch.image[0], image[0][rows][:, x0 : x0 + 4])
        np.testing.assert_array_equal(patch.label[0], label[0][rows][:, x0 : x0 + 4])


def test_a_border_lets_patches_reach_past_the_faces_mirrored():
    image = np.arange(20 * 30, dtype=np.float32).reshape(1, 20, 30)
    label = np.ones((1, 20, 30), np.uint8)
    inside = PatchSampler(image, label, patch_shape=(8, 10), foreground_probability=0.0, seed=3)
    assert all(0 <= y <= 12 and 0 <= x <= 20 for y, x in (p.start for p in inside.take(200)))
    # border 0 is the sampling without the option: the same patches for the same seed
    default = PatchSampler(image, label, patch_shape=(8, 10), foreground_probability=0.0, seed=3, border=0.0)
    assert [p.start for p in default.take(20)] == [
        p.start
        for p in PatchSampler(image, label, patch_shape=(8, 10), foreground_probability=0.0, seed=3).take(20)
    ]
    sampler = PatchSampler(image, label, patch_shape=(8, 10), foreground_probability=0.0, seed=3, border=0.5)
    starts = [p.start for p in sampler.take(400)]
    ys, xs = zip(*starts, strict=True)
    assert (min(ys), max(ys), min(xs), max(xs)) == (-4, 16, -5, 25)  # half a patch past every face
    for patch in sampler.take(20):
        y0, x0 = patch.start
        rows = np.abs(np.arange(y0, y0 + 8))
        rows = np.where(rows > 19, 38 - rows, rows)
        cols = np.abs(np.arange(x0, x0 + 10))
        cols = np.where(cols > 29, 58 - cols, cols)
        np.testing.assert_array_equal(patch.image[0], image[0][np.ix_(rows, cols)])


def test_argument_errors():
    image, label = _toy()
    with pytest.raises(ShapeError, match="label spatial shape"):
        PatchSampler(image, label[:, :-1], patch_shape=(8, 8))
    with pytest.raises(ConfigError, match=r"data.patch_border must be in \[0, 0.5\], got 0.6"):
        PatchSampler(image, label, patch_shape=(8, 8), border=0.6)
    with pytest.raises(ConfigError, match="foreground_probability must be in"):
        PatchSampler(image, label, patch_shape=(8, 8), foreground_probability=1.5)
    with pytest.raises(ShapeError, match="expected 3 spatial axes"):
        PatchSampler(image[0, 0], None, patch_shape=(4, 4, 4))
