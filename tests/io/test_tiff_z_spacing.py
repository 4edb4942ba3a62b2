"""A TIFF stack whose resolution is in centimetres has no Z spacing: Z stays 1, not 1 cm in um."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from medseg.io import read


def test_centimetre_resolution_converts_the_plane_only(tmp_path):
    stack = np.zeros((6, 4, 5), np.uint8)  # 6 pages: fewer may read as channels
    tifffile.imwrite(tmp_path / "cm.tif", stack, resolution=(250000.0, 125000.0), resolutionunit="CENTIMETER")
    volume = read(tmp_path / "cm.tif")
    assert volume.unit == "um" and volume.spacing == pytest.approx((1.0, 0.08, 0.04))


def test_imagej_z_spacing_is_converted_with_the_plane(tmp_path):
    stack = np.zeros((6, 4, 5), np.uint8)  # 6 pages: fewer may read as channels
    tifffile.imwrite(
        tmp_path / "ij.tif",
        stack,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"spacing": 3.0, "unit": "nm", "axes": "ZYX"},
    )
    volume = read(tmp_path / "ij.tif")
    assert volume.spacing == pytest.approx((3.0, 0.5, 0.5)) and volume.unit == "nm"
