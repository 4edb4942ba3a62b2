from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import assert_same_volume, blobs, listing, make_volume
from PIL import Image

from medseg.errors import DataValueError, FormatError, ShapeError
from medseg.io import Volume, open_array, read, write


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((1, 6, 5), np.uint8),
        ((1, 6, 5), np.uint16),  # MoNuSeg-style 16-bit instance labels
        ((1, 6, 5), np.bool_),
        ((2, 6, 5), np.uint8),
        ((3, 6, 5), np.uint8),
        ((4, 6, 5), np.uint8),
    ],
)
def test_png_round_trip_is_exact(tmp_path, shape, dtype):
    volume = make_volume(shape, dtype)
    back = read(write(volume, tmp_path / "img.png"))
    assert_same_volume(back, volume)
    assert listing(tmp_path) == ["img.png"]


def test_uint16_png_keeps_values_above_255(tmp_path):
    labels = np.array([[[0, 1, 300], [65535, 2, 7]]], np.uint16)
    back = read(write(Volume(labels), tmp_path / "labels.png"))
    assert back.array.dtype == np.uint16
    np.testing.assert_array_equal(back.array, labels)
    with Image.open(tmp_path / "labels.png") as image:  # a real 16-bit PNG for other tools
        assert image.mode.startswith("I")


@pytest.mark.parametrize("channels", [1, 3])
def test_bmp_round_trip(tmp_path, channels):
    volume = make_volume((channels, 6, 5), oblique=False)
    volume = Volume(volume.array)  # BMP holds no geometry: default geometry round-trips
    assert_same_volume(read(write(volume, tmp_path / "img.bmp")), volume)


def test_bmp_warns_that_geometry_is_lost(tmp_path, volume2d, caplog):
    with caplog.at_level(logging.WARNING, logger="medseg.io.natural"):
        write(volume2d, tmp_path / "img.bmp")
    assert "BMP cannot store geometry" in caplog.text
    np.testing.assert_array_equal(read(tmp_path / "img.bmp").array, volume2d.array)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg"])
def test_jpeg_round_trip_keeps_geometry_and_approximate_values(tmp_path, suffix):
    smooth = np.tile(np.linspace(0, 200, 16, dtype=np.uint8), (3, 16, 1))
    volume = Volume(
        smooth, spacing=(0.5, 0.7), origin=(1.0, -2.0), direction=np.array([[0.0, 1.0], [1.0, 0.0]])
    )
    back = read(write(volume, tmp_path / f"img{suffix}"))
    assert back.array.shape == (3, 16, 16) and back.array.dtype == np.uint8
    assert np.abs(back.array.astype(int) - smooth).max() <= 8  # JPEG is lossy
    assert back.spacing == volume.spacing and back.origin == volume.origin
    np.testing.assert_array_equal(back.direction, volume.direction)


def test_reads_png_written_by_pillow(tmp_path):
    data = blobs((7, 9), np.uint8)
    Image.fromarray(data).save(tmp_path / "plain.png", dpi=(300, 300))
    volume = read(tmp_path / "plain.png")
    np.testing.assert_array_equal(volume.array, data[None])
    assert volume.spacing == (1.0, 1.0)
    assert volume.meta["dpi"] == pytest.approx((300, 300), abs=0.1)


def test_palette_png_keeps_indices(tmp_path):
    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    image = Image.fromarray(indices, mode="L").convert("P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    image = Image.frombytes("P", (3, 2), indices.tobytes())
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    image.save(tmp_path / "voc.png")
    volume = read(tmp_path / "voc.png")
    np.testing.assert_array_equal(volume.array, indices[None])
    assert volume.meta["palette"][:6] == [0, 0, 0, 255, 0, 0]


def test_3d_into_png_is_a_shape_error_naming_formats(tmp_path, volume3d):
    with pytest.raises(ShapeError, match=r"3D volume .* PNG .*use \.tif, \.nii\.gz"):
        write(volume3d, tmp_path / "vol.png")
    assert listing(tmp_path) == []


def test_five_channels_into_png_is_a_shape_error(tmp_path):
    with pytest.raises(ShapeError, match=r"5 channels to PNG file .*use \.tif, \.h5 or \.zarr"):
        write(make_volume((5, 6, 5)), tmp_path / "img.png")


def test_four_channels_into_jpeg_is_a_shape_error(tmp_path):
    with pytest.raises(ShapeError, match=r"4 channels to JPEG"):
        write(make_volume((4, 6, 5)), tmp_path / "img.jpg")


def test_unsupported_dtype_is_a_data_value_error(tmp_path):
    with pytest.raises(DataValueError, match=r"dtype int64 .*PNG .*astype\(np\.uint8\)"):
        write(Volume(np.zeros((1, 3, 4), np.int64)), tmp_path / "labels.png")


def test_truncated_png_is_a_format_error(tmp_path, volume2d):
    path = write(make_volume((1, 40, 40)), tmp_path / "img.png")
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(FormatError, match=r"cannot read image .*img\.png") as info:
        read(path)
    assert info.value.__cause__ is not None


def test_open_array_wraps_2d_image_in_memory(tmp_path, volume2d):
    path = write(volume2d, tmp_path / "img.png")
    with open_array(path) as lazy:
        assert lazy.shape == (1, 6, 5)
        assert lazy.spacing == volume2d.spacing
        np.testing.assert_array_equal(lazy[0, 2:4], volume2d.array[0, 2:4])
