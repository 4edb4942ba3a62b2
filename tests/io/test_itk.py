from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import assert_same_volume, blobs, listing, make_volume, rotation

from medseg.errors import DataValueError, FormatError
from medseg.io import Volume, read, write


@pytest.mark.parametrize("suffix", [".mha", ".nrrd", ".mhd"])
@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((1, 4, 6, 5), np.int16), ((3, 4, 6, 5), np.float32), ((1, 6, 5), np.uint8), ((2, 6, 5), np.float64)],
)
def test_round_trip_keeps_non_identity_direction(tmp_path, suffix, shape, dtype):
    volume = make_volume(shape, dtype)  # rotated direction, spacing (3.0, 0.5, 0.7)
    back = read(write(volume, tmp_path / f"vol{suffix}"))
    assert_same_volume(back, volume)
    expected = [f"vol{suffix}"] + (["vol.zraw"] if suffix == ".mhd" else [])
    assert listing(tmp_path) == sorted(expected)


def test_reads_file_written_by_simpleitk(tmp_path):
    data = blobs((4, 6, 5), np.int16)  # (z, y, x)
    image = sitk.GetImageFromArray(data)
    image.SetSpacing((0.7, 0.5, 3.0))
    image.SetOrigin((10.0, -20.0, 30.5))
    image.SetDirection(tuple(rotation(3).ravel()))
    sitk.WriteImage(image, str(tmp_path / "ct.nrrd"))
    volume = read(tmp_path / "ct.nrrd")
    assert volume.array.shape == (1, 4, 6, 5)
    np.testing.assert_array_equal(volume.array[0], data)
    assert volume.spacing == pytest.approx((3.0, 0.5, 0.7))
    assert volume.origin == pytest.approx((30.5, -20.0, 10.0))
    np.testing.assert_allclose(volume.direction, rotation(3)[::-1, ::-1], atol=1e-12)
    # the same voxel lands on the same world point
    index_xyz = (1, 2, 3)
    world_xyz = image.TransformIndexToPhysicalPoint(index_xyz)
    world_rev = (volume.affine @ np.r_[index_xyz[::-1], 1.0])[:3]
    np.testing.assert_allclose(world_rev[::-1], world_xyz, atol=1e-9)


def test_vector_image_is_channels_first(tmp_path):
    data = blobs((6, 5, 3), np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(data, isVector=True), str(tmp_path / "rgb.mha"))
    volume = read(tmp_path / "rgb.mha")
    assert volume.array.shape == (3, 6, 5)
    np.testing.assert_array_equal(volume.array, np.moveaxis(data, -1, 0))


def test_float16_is_refused(tmp_path):
    with pytest.raises(DataValueError, match=r"float16 .*cast to float32"):
        write(Volume(np.zeros((1, 2, 3), np.float16)), tmp_path / "half.mha")


def test_corrupt_mha_is_a_format_error(tmp_path):
    (tmp_path / "junk.mha").write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_UCHAR\nElementDataFile = LOCAL\n"
    )
    with pytest.raises(FormatError, match=r"cannot read .*junk\.mha with SimpleITK") as info:
        read(tmp_path / "junk.mha")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_mhd_with_missing_data_file_is_a_format_error(tmp_path, volume3d):
    write(volume3d, tmp_path / "vol.mhd")
    (tmp_path / "vol.zraw").unlink()
    with pytest.raises(FormatError, match=r"vol\.mhd"):
        read(tmp_path / "vol.mhd")
