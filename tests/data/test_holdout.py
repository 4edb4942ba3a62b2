"""Held-out regions for validation when a dataset has too few cases (one annotated image)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from medseg.config import DataConfig
from medseg.data.holdout import hold_out_region, split_cases
from medseg.data.sample import Sample, crop_volume, scored_part
from medseg.data.synthetic.nuclei import write_nuclei_folder
from medseg.errors import ConfigError
from medseg.io import Volume
from medseg.pipeline.datasets import load_training_samples


def _sample(shape, spacing, case_id="cell"):
    image = np.arange(np.prod(shape), dtype=np.float32).reshape((1, *shape))
    label = (np.arange(np.prod(shape)).reshape((1, *shape)) % 5).astype(np.uint16)
    return Sample(
        image=Volume(image, spacing=spacing, origin=(10.0,) * len(shape), unit="um"),
        label=Volume(label, spacing=spacing, origin=(10.0,) * len(shape), unit="um"),
        case_id=case_id,
        modality="cells",
    )


def test_one_2d_image_is_cut_along_its_longest_axis():
    sample = _sample((20, 50), (0.5, 0.25))
    train, held, region = hold_out_region(sample, 0.2)
    # X (50) is the longest axis; 20 % of 50 = 10 columns are held out: 40..49, predicted
    # with the 10 columns before them (30..39) as context
    assert (region.axis, region.start, region.size, region.context) == (1, 40, 50, 10)
    assert train.image.spatial_shape == (20, 40) and held.image.spatial_shape == (20, 20)
    assert train.scored is None and held.scored == (slice(0, 20), slice(10, 20))
    np.testing.assert_array_equal(held.image.array, sample.image.array[:, :, 30:])
    np.testing.assert_array_equal(held.label.array, sample.label.array[:, :, 30:])
    # training part and scored part tile the image without overlap
    for kind in ("image", "label"):
        parts = [getattr(train, kind), scored_part(held, getattr(held, kind))]
        np.testing.assert_array_equal(
            np.concatenate([p.array for p in parts], axis=2), getattr(sample, kind).array
        )
    # both keep their place in the world: origins move by 30 (context) and 40 columns of 0.25
    assert train.image.origin == pytest.approx((10.0, 10.0))
    assert held.image.origin == pytest.approx((10.0, 17.5))
    assert scored_part(held, held.label).origin == pytest.approx((10.0, 20.0))
    assert held.label.spacing == (0.5, 0.25) and held.image.unit == "um"
    assert (train.case_id, held.case_id) == ("cell:train", "cell:held-out")
    assert region.describe(2) == "X 40-49 of 50 with context X 30-39"


def test_one_3d_volume_holds_out_a_slab():
    sample = _sample((6, 30, 12), (2.0, 0.5, 0.5))
    train, held, region = hold_out_region(sample, 0.15)
    # Y (30) is longest: round(4.5) = 4 rows held out, 4 more before them as context
    assert (region.axis, region.start, region.context) == (1, 26, 4)
    assert train.image.spatial_shape == (6, 26, 12) and held.label.spatial_shape == (6, 8, 12)
    assert held.scored == (slice(0, 6), slice(4, 8), slice(0, 12))
    assert held.image.origin == pytest.approx((10.0, 21.0, 10.0))
    np.testing.assert_array_equal(held.image.array, sample.image.array[:, :, 22:])
    np.testing.assert_array_equal(scored_part(held, held.label.array), sample.label.array[:, :, 26:])
    np.testing.assert_array_equal(train.label.array, sample.label.array[:, :, :26])


def test_at_least_one_voxel_each_side_and_bad_fractions():
    train, held, _ = hold_out_region(_sample((1, 3), (1.0, 1.0)), 0.01)
    assert held.image.spatial_shape == (1, 2) and train.image.spatial_shape == (1, 2)
    assert held.scored == (slice(0, 1), slice(1, 2))
    # more held out than trained on: the context is the whole training part
    train, held, region = hold_out_region(_sample((1, 3), (1.0, 1.0)), 0.99)
    assert held.image.spatial_shape == (1, 3) and train.image.spatial_shape == (1, 1)
    assert held.scored == (slice(0, 1), slice(1, 3)) and region.context == 1
    with pytest.raises(ConfigError, match="validation_fraction must be in"):
        hold_out_region(_sample((4, 4), (1.0, 1.0)), 1.0)
    with pytest.raises(ConfigError, match="too small"):
        hold_out_region(_sample((1, 1), (1.0, 1.0)), 0.2)


def test_split_cases_uses_whole_cases_when_there_are_enough(caplog):
    samples = [_sample((8, 8), (1.0, 1.0), f"c{i}") for i in range(3)]
    train, val = split_cases(samples, 1, 0.2)
    assert [s.case_id for s in train] == ["c0", "c1"] and [s.case_id for s in val] == ["c2"]
    train, val = split_cases(samples, 0, 0.2)
    assert len(train) == 3 and val == []
    with caplog.at_level(logging.WARNING, logger="medseg"):
        train, val = split_cases(samples, 3, 0.25)
    assert [s.case_id for s in val] == ["c0:held-out", "c1:held-out", "c2:held-out"]
    assert [s.image.spatial_shape for s in train] == [(6, 8)] * 3  # a tie: the first axis
    [record] = [r for r in caplog.records if r.name == "medseg.data.holdout"]
    assert "3 case(s) for data.validation_slices: 3" in record.getMessage()
    assert "c0 Y 6-7 of 8 with context Y 4-5" in record.getMessage()
    assert "predicted with the part before it as context and scored alone" in record.getMessage()


def test_a_lab_folder_of_one_image_trains_on_the_rest(tmp_path):
    root = write_nuclei_folder(tmp_path / "lab", n_images=1, shape=(40, 60), n_nuclei=4, radius=5.0)
    data = DataConfig(
        dataset="lab_folder",
        root=root,
        label_kind="instances",
        classes=("background", "inside", "boundary"),
        validation_slices=1,
    )
    train, val = load_training_samples(data)
    assert [s.image.spatial_shape for s in train] == [(40, 48)]
    assert [s.label.spatial_shape for s in val] == [(40, 24)]
    assert [scored_part(s, s.label).spatial_shape for s in val] == [(40, 12)]


def test_scored_part_crops_arrays_and_volumes_and_keeps_unscored_cases_whole():
    volume = Volume(np.arange(2 * 4 * 6).reshape(2, 4, 6), spacing=(2.0, 3.0), origin=(1.0, 1.0))
    whole = Sample(volume, None, "c", "cells")
    assert scored_part(whole, volume) is volume and scored_part(whole, volume.array) is volume.array
    part = Sample(volume, None, "c", "cells", scored=(slice(1, 3), slice(4, 6)))
    np.testing.assert_array_equal(scored_part(part, volume.array), volume.array[:, 1:3, 4:6])
    np.testing.assert_array_equal(scored_part(part, volume.array[0]), volume.array[0, 1:3, 4:6])
    cropped = scored_part(part, volume)
    np.testing.assert_array_equal(cropped.array, volume.array[:, 1:3, 4:6])
    assert cropped.origin == pytest.approx((1.0 + 2.0, 1.0 + 4 * 3.0)) and cropped.spacing == (2.0, 3.0)


def test_crop_volume_follows_the_direction_matrix():
    flipped = np.array([[0.0, 1.0], [1.0, 0.0]])  # Y steps along world X and X along world Y
    volume = Volume(np.zeros((1, 5, 5)), spacing=(2.0, 0.5), origin=(0.0, 0.0), direction=flipped)
    cropped = crop_volume(volume, (slice(1, 5), slice(2, 3)))
    assert cropped.spatial_shape == (4, 1)
    # voxel (1, 2) sits at direction @ (1 * 2.0, 2 * 0.5) = (1.0, 2.0)
    assert cropped.origin == pytest.approx((1.0, 2.0))
