"""Held-out regions for validation when a dataset has too few cases (one annotated image)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from medseg.config import DataConfig
from medseg.data.holdout import hold_out_region, split_cases
from medseg.data.sample import Sample
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
    # X (50) is the longest axis; 20 % of 50 = 10 columns are held out: 40..49
    assert (region.axis, region.start, region.size) == (1, 40, 50)
    assert train.image.spatial_shape == (20, 40) and held.image.spatial_shape == (20, 10)
    np.testing.assert_array_equal(
        np.concatenate([train.image.array, held.image.array], axis=2), sample.image.array
    )
    np.testing.assert_array_equal(
        np.concatenate([train.label.array, held.label.array], axis=2), sample.label.array
    )
    # the held-out part keeps its place in the world: origin moves by 40 columns of 0.25
    assert held.image.origin == pytest.approx((10.0, 20.0)) and train.image.origin == pytest.approx(
        (10.0, 10.0)
    )
    assert held.label.spacing == (0.5, 0.25) and held.image.unit == "um"
    assert (train.case_id, held.case_id) == ("cell:train", "cell:held-out")
    assert region.describe(2) == "X 40-49 of 50"


def test_one_3d_volume_holds_out_a_slab():
    sample = _sample((6, 30, 12), (2.0, 0.5, 0.5))
    train, held, region = hold_out_region(sample, 0.15)
    # Y (30) is longest: round(4.5) = 4 rows held out
    assert (region.axis, region.start) == (1, 26)
    assert train.image.spatial_shape == (6, 26, 12) and held.label.spatial_shape == (6, 4, 12)
    assert held.image.origin == pytest.approx((10.0, 23.0, 10.0))
    np.testing.assert_array_equal(held.image.array, sample.image.array[:, :, 26:])


def test_at_least_one_voxel_each_side_and_bad_fractions():
    train, held, _ = hold_out_region(_sample((1, 3), (1.0, 1.0)), 0.01)
    assert held.image.spatial_shape == (1, 1) and train.image.spatial_shape == (1, 2)
    train, held, _ = hold_out_region(_sample((1, 3), (1.0, 1.0)), 0.99)
    assert held.image.spatial_shape == (1, 2) and train.image.spatial_shape == (1, 1)
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
    assert "c0 Y 6-7 of 8" in record.getMessage()


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
    assert [s.label.spatial_shape for s in val] == [(40, 12)]
