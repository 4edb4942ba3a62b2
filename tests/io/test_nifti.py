from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import assert_same_volume, blobs, listing, make_volume, rotation

from medseg.errors import FormatError
from medseg.io import Volume, open_array, read, write
from medseg.io.nifti import geometry_to_ras_affine, ras_affine_to_geometry

F32 = float(np.finfo(np.float32).eps) * 200  # float32 sform: a few ulps of values up to ~100


def oblique_affine() -> np.ndarray:
    """RAS affine with rotation, anisotropic voxels (0.7, 0.5, 3.0) and a shear-free offset."""
    affine = np.eye(4)
    affine[:3, :3] = rotation(3, 0.4) @ np.diag([0.7, 0.5, 3.0])
    affine[:3, 3] = [-90.25, 12.5, 33.0]
    return affine


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((1, 4, 6, 5), np.int16), ((3, 4, 6, 5), np.float32), ((1, 6, 5), np.uint8), ((1, 4, 6, 5), np.int64)],
)
def test_write_read_matches_to_float32_precision(tmp_path, suffix, shape, dtype):
    volume = make_volume(shape, dtype)  # oblique direction, anisotropic spacing
    back = read(write(volume, tmp_path / f"vol{suffix}"))
    assert_same_volume(back, volume, atol=F32)
    assert listing(tmp_path) == [f"vol{suffix}"]


def test_read_write_read_is_bit_identical(tmp_path):
    data = blobs((5, 6, 4), np.int16)
    sheared = oblique_affine()
    sheared[0, 1] += 0.1  # non-orthogonal: only the sform can hold it
    nib.save(nib.Nifti1Image(data, sheared), tmp_path / "in.nii.gz")
    first = read(tmp_path / "in.nii.gz")
    second = read(write(first, tmp_path / "out.nii.gz"))
    assert_same_volume(second, first)
    out_affine = nib.load(tmp_path / "out.nii.gz").affine
    np.testing.assert_array_equal(out_affine, nib.load(tmp_path / "in.nii.gz").affine)
    np.testing.assert_array_equal(out_affine.astype(np.float32), sheared.astype(np.float32))


def test_axes_and_lps_geometry_match_simpleitk(tmp_path):
    data = blobs((5, 6, 4), np.float32)  # nibabel (i, j, k)
    image = nib.Nifti1Image(data, oblique_affine())
    image.set_qform(oblique_affine(), code=1)
    nib.save(image, tmp_path / "ct.nii.gz")
    volume = read(tmp_path / "ct.nii.gz")
    assert volume.array.shape == (1, 4, 6, 5)
    np.testing.assert_array_equal(volume.array[0], data.transpose(2, 1, 0))
    reference = sitk.ReadImage(str(tmp_path / "ct.nii.gz"))
    np.testing.assert_array_equal(volume.array[0], sitk.GetArrayFromImage(reference))
    np.testing.assert_allclose(volume.spacing, reference.GetSpacing()[::-1], atol=1e-5)
    np.testing.assert_allclose(volume.origin, reference.GetOrigin()[::-1], atol=1e-4)
    itk_direction = np.reshape(reference.GetDirection(), (3, 3))
    np.testing.assert_allclose(volume.direction, itk_direction[::-1, ::-1], atol=1e-5)
    assert volume.meta["orientation"] == "".join(nib.aff2axcodes(oblique_affine()))


def test_world_coordinates_agree_with_nibabel(tmp_path):
    nib.save(nib.Nifti1Image(blobs((5, 6, 4), np.uint8), oblique_affine()), tmp_path / "a.nii")
    volume = read(tmp_path / "a.nii")
    ijk = np.array([3, 2, 1])
    ras = nib.affines.apply_affine(oblique_affine(), ijk)
    lps_reversed = (volume.affine @ np.r_[ijk[::-1], 1.0])[:3]  # array order (k, j, i)
    np.testing.assert_allclose(lps_reversed[::-1], [-ras[0], -ras[1], ras[2]], atol=1e-4)


def test_affine_conversion_round_trips_in_float64():
    spacing, origin, direction = ras_affine_to_geometry(oblique_affine(), 3)
    np.testing.assert_allclose(
        geometry_to_ras_affine(spacing, origin, direction), oblique_affine(), atol=1e-12
    )
    assert spacing == pytest.approx((3.0, 0.5, 0.7))


def test_4d_file_is_channels_first(tmp_path):
    data = blobs((5, 6, 4, 2), np.float32)  # (i, j, k, modality)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "multi.nii.gz")
    volume = read(tmp_path / "multi.nii.gz")
    assert volume.array.shape == (2, 4, 6, 5)
    np.testing.assert_array_equal(volume.array, data.transpose(3, 2, 1, 0))
    assert volume.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(volume.direction, np.diag([1.0, -1.0, -1.0]))  # RAS identity in LPS


def test_bool_is_written_as_uint8(tmp_path):
    mask = Volume(blobs((1, 3, 4, 5), np.bool_))
    back = read(write(mask, tmp_path / "mask.nii.gz"))
    assert back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, mask.array)


def test_garbage_nii_gz_is_a_format_error(tmp_path):
    (tmp_path / "junk.nii.gz").write_bytes(b"definitely not gzip")
    with pytest.raises(FormatError, match=r"cannot read NIfTI file .*junk\.nii\.gz") as info:
        read(tmp_path / "junk.nii.gz")
    assert info.value.__cause__ is not None


def test_truncated_nii_gz_is_a_format_error(tmp_path, volume3d):
    path = write(make_volume((1, 8, 16, 16), np.float32), tmp_path / "cut.nii.gz")
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    with pytest.raises(FormatError, match=r"cut\.nii\.gz") as info:
        read(path)
    assert info.value.__cause__ is not None


def test_nonfinite_values_are_kept_as_nibabel_reads_them(tmp_path):
    data = np.zeros((1, 2, 3, 4), np.float32)
    data.flat[[0, 5, 7]] = [np.nan, -np.inf, np.nan]
    path = write(Volume(data), tmp_path / "nan.nii.gz")
    got = read(path).array
    reference = np.asarray(nib.load(path).dataobj).transpose(2, 1, 0)[None]
    np.testing.assert_array_equal(got, reference)
    assert np.isnan(got).sum() == 2 and np.isneginf(got).sum() == 1


def test_open_array_is_lazy_and_channels_first(tmp_path):
    data = blobs((5, 6, 4), np.int16)
    nib.save(nib.Nifti1Image(data, oblique_affine()), tmp_path / "a.nii")
    with open_array(tmp_path / "a.nii") as lazy:
        assert lazy.shape == (1, 4, 6, 5) and lazy.dtype == np.int16
        assert lazy.spacing == pytest.approx((3.0, 0.5, 0.7))
        np.testing.assert_array_equal(lazy[0, 1:3, 2], data[:, 2, 1:3].T)
        np.testing.assert_array_equal(lazy[...], data.transpose(2, 1, 0)[None])


def test_truncated_files_are_refused_naming_the_file(tmp_path):
    rng = np.random.default_rng(0)
    whole = write(Volume(rng.random((1, 4, 20, 24)).astype(np.float32)), tmp_path / "whole.nii")
    data = whole.read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[: len(data) // 2])
    with (
        open_array(tmp_path / "cut.nii") as lazy,  # opening reads the header only
        pytest.raises(FormatError, match=r"cut\.nii is truncated: its header declares a 24 x 20 x 4 float32"),
    ):
        lazy[0, 0]
    packed = gzip.compress(data)
    (tmp_path / "cut.nii.gz").write_bytes(packed[: len(packed) // 2])
    with open_array(tmp_path / "cut.nii.gz") as lazy, pytest.raises(FormatError, match=r"cut\.nii\.gz: "):
        lazy[0, 3]
