from __future__ import annotations

import numpy as np
import pytest
import tifffile
from conftest import assert_same_volume, blobs, listing, make_volume

from medseg.errors import FormatError
from medseg.io import Volume, open_array, read, write
from medseg.io.tiff import read_tiff


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((1, 4, 6, 5), np.uint8),  # greyscale stack
        ((1, 1, 6, 5), np.uint16),  # a 3D volume with one slice stays 3D
        ((1, 6, 5), np.float32),  # single page
        ((3, 6, 5), np.uint8),  # RGB page
        ((4, 2, 6, 5), np.uint16),  # RGBA stack
        ((5, 3, 6, 5), np.int32),  # 5 channels
        ((2, 6, 5), np.float64),  # 2 channels 2D
    ],
)
@pytest.mark.parametrize("suffix", [".tif", ".tiff", ".ome.tif"])
def test_round_trip_is_exact(tmp_path, shape, dtype, suffix):
    volume = make_volume(shape, dtype)
    path = write(volume, tmp_path / f"vol{suffix}")
    assert path == tmp_path / f"vol{suffix}"
    back = read(path)
    assert_same_volume(back, volume)
    assert back.meta["source"] == str(path)
    assert listing(tmp_path) == [f"vol{suffix}"]


def test_written_tiff_carries_resolution_tags_and_pages_for_other_tools(tmp_path, volume3d):
    path = write(volume3d, tmp_path / "stack.tif")
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 4
        assert tif.pages[0].resolution == pytest.approx((1 / 0.7, 1 / 0.5))
    np.testing.assert_array_equal(tifffile.imread(path), volume3d.array[0])


def test_written_ome_tiff_carries_physical_size(tmp_path, volume3d):
    path = write(volume3d, tmp_path / "stack.ome.tif")
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
        xml = tif.ome_metadata
    assert 'PhysicalSizeX="0.7"' in xml and 'PhysicalSizeZ="3.0"' in xml


def test_reads_isbi_style_plain_stack(tmp_path):
    stack = blobs((5, 8, 6), np.uint8)  # Z pages of Y x X, as the ISBI 2012 train-volume.tif
    tifffile.imwrite(tmp_path / "train-volume.tif", stack)
    volume = read(tmp_path / "train-volume.tif")
    assert volume.array.shape == (1, 5, 8, 6)
    assert volume.array.dtype == np.uint8
    np.testing.assert_array_equal(volume.array[0], stack)
    assert volume.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(volume.direction, np.eye(3))


def test_reads_page_sequence_without_shape_metadata(tmp_path):
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tw:
        for z in range(3):
            tw.write(np.full((4, 6), z, np.uint8), photometric="minisblack", metadata=None)
    volume = read(tmp_path / "pages.tif")
    assert volume.array.shape == (1, 3, 4, 6)
    np.testing.assert_array_equal(volume.array[0, :, 0, 0], [0, 1, 2])


def test_single_page_and_rgb_page_conventions(tmp_path):
    tifffile.imwrite(tmp_path / "grey.tif", blobs((1, 8, 6)), photometric="minisblack")
    tifffile.imwrite(tmp_path / "rgb.tif", blobs((8, 6, 3)), photometric="rgb")
    assert read(tmp_path / "grey.tif").array.shape == (1, 8, 6)
    rgb = read(tmp_path / "rgb.tif")
    assert rgb.array.shape == (3, 8, 6)
    np.testing.assert_array_equal(rgb.array, np.moveaxis(blobs((8, 6, 3)), -1, 0))


def test_reads_ome_tiff_physical_size(tmp_path):
    stack = blobs((3, 8, 6), np.uint16)
    tifffile.imwrite(
        tmp_path / "cells.ome.tif",
        stack,
        ome=True,
        photometric="minisblack",
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.7, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 3.0},
    )
    volume = read(tmp_path / "cells.ome.tif")
    assert volume.array.shape == (1, 3, 8, 6)
    np.testing.assert_array_equal(volume.array[0], stack)
    assert volume.spacing == (3.0, 0.5, 0.7)
    assert volume.unit == "um"


def test_reads_ome_tiff_channels(tmp_path):
    data = blobs((2, 3, 8, 6), np.uint8)
    tifffile.imwrite(
        tmp_path / "multi.ome.tif", data, ome=True, photometric="minisblack", metadata={"axes": "CZYX"}
    )
    volume = read(tmp_path / "multi.ome.tif")
    np.testing.assert_array_equal(volume.array, data)


def test_reads_imagej_spacing(tmp_path):
    stack = blobs((5, 8, 6), np.uint8)
    tifffile.imwrite(
        tmp_path / "ij.tif",
        stack,
        imagej=True,
        resolution=(1 / 0.25, 1 / 0.5),
        metadata={"spacing": 3.0, "unit": "um", "axes": "ZYX"},
    )
    volume = read(tmp_path / "ij.tif")
    np.testing.assert_array_equal(volume.array[0], stack)
    assert volume.spacing == pytest.approx((3.0, 0.5, 0.25))
    assert volume.unit == "um"


def test_too_many_axes_is_a_format_error(tmp_path):
    tifffile.imwrite(
        tmp_path / "tzyx.ome.tif",
        blobs((2, 3, 8, 6)),
        ome=True,
        photometric="minisblack",
        metadata={"axes": "TZYX"},
    )
    with pytest.raises(FormatError, match=r"tzyx\.ome\.tif.*axes 'TZYX'.*split the file"):
        read(tmp_path / "tzyx.ome.tif")


def test_truncated_tiff_is_a_format_error(tmp_path, volume3d):
    path = write(volume3d, tmp_path / "stack.tif")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(FormatError, match=r"cannot read TIFF .*stack\.tif") as info:
        read(path)
    assert info.value.__cause__ is not None


def test_garbage_tiff_is_a_format_error(tmp_path):
    path = tmp_path / "junk.tif"
    path.write_bytes(b"this is not a tiff file at all")
    with pytest.raises(FormatError, match=r"junk\.tif") as info:
        read(path)
    assert info.value.__cause__ is not None


def test_nonfinite_values_are_kept(tmp_path):
    array = np.zeros((1, 2, 3, 4), np.float32)
    array[0, 0, 0, :2] = [np.nan, np.inf]
    path = write(Volume(array), tmp_path / "nan.tif")
    np.testing.assert_array_equal(read(path).array, array)


def test_bool_tiff_write_is_refused_with_a_fix(tmp_path):
    with pytest.raises(FormatError, match=r"cast to uint8"):
        write(Volume(np.zeros((1, 3, 4), bool)), tmp_path / "mask.tif")
    assert listing(tmp_path) == []


def test_open_array_memory_maps_contiguous_stack(tmp_path, volume3d):
    path = write(volume3d, tmp_path / "stack.tif")
    with open_array(path) as lazy:
        assert lazy.shape == (1, 4, 6, 5)
        assert lazy.ndim == 3  # spatial axes, as Volume.ndim
        assert lazy.dtype == np.uint8
        assert lazy.spacing == volume3d.spacing
        np.testing.assert_array_equal(lazy.direction, volume3d.direction)
        np.testing.assert_array_equal(lazy[0, 1:3], volume3d.array[0, 1:3])
        assert isinstance(lazy._source, np.memmap)


def test_open_array_reads_compressed_tiff_through_zarr(tmp_path):
    stack = blobs((4, 8, 6), np.uint16)
    tifffile.imwrite(tmp_path / "zlib.tif", stack, photometric="minisblack", compression="zlib")
    with open_array(tmp_path / "zlib.tif") as lazy:
        assert lazy.shape == (1, 4, 8, 6)
        np.testing.assert_array_equal(lazy[0, 2], stack[2])
        np.testing.assert_array_equal(lazy[:, ::-1, 1:5, -2:], stack[None, ::-1, 1:5, -2:])


def test_read_tiff_direct_call(tmp_path, volume2d):
    assert_same_volume(read_tiff(write(volume2d, tmp_path / "img.tif")), volume2d)


def test_tiff_truncated_inside_pixel_data_is_a_format_error(tmp_path):
    path = write(make_volume((1, 4, 16, 16)), tmp_path / "half.tif")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FormatError, match=r"cannot read TIFF .*half\.tif.*truncated") as info:
        read(path)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(("slices", "dtype"), [(3, np.uint8), (4, np.uint8), (3, np.uint16), (4, np.uint16)])
def test_planar_rgb_page_of_tifffile_defaults_is_a_stack_where_greyscale_is_required(tmp_path, slices, dtype):
    from medseg.io import read_greyscale

    stack = (np.arange(slices * 6 * 5).reshape(slices, 6, 5) % 7).astype(dtype)
    path = tmp_path / "labels.tif"
    tifffile.imwrite(path, stack)  # defaults: one RGB(A) page with separate sample planes
    assert read(path).array.shape == (slices, 6, 5)  # as stored: a colour page
    volume = read_greyscale(path)
    assert volume.array.shape == (1, slices, 6, 5) and volume.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(volume.array[0], stack)
    np.testing.assert_array_equal(volume.direction, np.eye(3))


def test_contiguous_rgb_and_medseg_files_are_not_read_as_stacks(tmp_path):
    from medseg.io import read_greyscale

    rgb = np.zeros((6, 5, 3), np.uint8)
    tifffile.imwrite(tmp_path / "photo.tif", rgb, photometric="rgb")  # contiguous samples: colour
    assert read_greyscale(tmp_path / "photo.tif").array.shape == (3, 6, 5)
    written = write(Volume(np.ones((3, 6, 5), np.uint8)), tmp_path / "colour.tif")  # medseg's own record
    assert read_greyscale(written).array.shape == (3, 6, 5)
