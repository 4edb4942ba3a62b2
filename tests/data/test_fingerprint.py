"""The data fingerprint: sizes, spacing, intensities and objects, and the defaults derived from them."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.data.fingerprint import data_fingerprint, format_fingerprint
from medseg.data.sample import Sample
from medseg.io import Volume


def _squares(shape=(100, 200), bright=True, spacing=(0.5, 0.5)):
    label = np.zeros(shape, dtype=np.uint16)
    label[10:20, 10:20] = 1  # 100 voxels, 10 x 10
    label[40:50, 60:70] = 2  # 100 voxels
    label[70:90, 100:110] = 3  # 200 voxels, 20 x 10
    image = np.full(shape, 10.0 if bright else 200.0, dtype=np.float32)
    image[label > 0] = 200.0 if bright else 10.0
    return Sample(
        image=Volume(image[None], spacing=spacing, unit="um"),
        label=Volume(label[None], spacing=spacing, unit="um"),
        case_id="squares",
        modality="cells",
    )


def test_fingerprint_of_bright_objects_on_a_dark_background():
    fp = data_fingerprint([_squares()])
    assert fp["cases"] == 1 and fp["spatial_dims"] == 2 and fp["channels"] == 1
    assert fp["median_shape"] == [100, 200] and fp["spacing"] == [0.5, 0.5] and fp["anisotropy"] == 1.0
    assert fp["unit"] == "um"
    assert fp["objects"] == {"count": 3, "median_voxels": 100.0, "median_extent": [10.0, 10.0]}
    assert fp["intensity"]["foreground_median"] == 200.0 and fp["intensity"]["background_median"] == 10.0
    rec = fp["recommended"]
    # fluorescence-like: percentiles; eight objects across = 80 voxels (a multiple of 16), min size a tenth
    assert rec == {"normalization": "percentile", "patch_shape": [80, 80], "min_size": 10}
    table = format_fingerprint(fp)
    assert "objects          3, median 100 voxels, extent 10 x 10" in table
    assert "patch            80 x 80" in table and len(table.splitlines()) == 8
    assert format_fingerprint(fp, [80, 80]) == table  # the run's patch is the recommended one
    set_patch = format_fingerprint(fp, (64, 96)).splitlines()[6]
    assert set_patch == "patch            64 x 96 (data.patch_shape; recommended 80 x 80)"


def test_dark_objects_get_zscore_and_patches_stay_inside_the_image():
    fp = data_fingerprint([_squares(shape=(40, 200), bright=False)], divisor=8)
    assert fp["recommended"]["normalization"] == "zscore"
    assert fp["recommended"]["patch_shape"] == [40, 80]  # Y is capped by the 40-row image


def test_anisotropic_volume_gets_fewer_sections_per_patch():
    label = np.zeros((20, 100, 100), dtype=np.uint16)
    label[5:9, 10:30, 10:30] = 1
    label[10:14, 50:70, 50:70] = 2
    image = (label > 0).astype(np.float32)
    sample = Sample(
        image=Volume(image[None], spacing=(4.0, 1.0, 1.0)),
        label=Volume(label[None], spacing=(4.0, 1.0, 1.0)),
        case_id="v",
        modality="volume",
    )
    fp = data_fingerprint([sample])
    assert fp["anisotropy"] == 4.0 and fp["objects"]["median_extent"] == [4.0, 20.0, 20.0]
    # Z: max(8 * 4, 64) / 4 = 16 sections; Y, X: 8 * 20 = 160 capped at the 100-voxel image -> 96
    assert fp["recommended"]["patch_shape"] == [16, 96, 96]


def test_class_labels_have_no_object_statistics():
    fp = data_fingerprint([_squares()], label_kind="classes")
    assert fp["objects"] is None and fp["recommended"]["min_size"] is None
    assert fp["recommended"]["patch_shape"] == [96, 192]
    assert fp["intensity"]["p50"] == pytest.approx(10.0)
