"""Per-object measurements: hand-worked centroids, areas in physical units, mean intensities, CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from medseg.errors import ShapeError
from medseg.exchange.measurements import object_table, write_object_csv
from medseg.io import Volume


def test_2d_table_in_physical_units():
    labels = np.zeros((6, 8), np.int32)
    labels[1:3, 1:4] = 4  # 2x3 pixels: centroid (row 1.5, col 2), bbox rows [1,3) cols [1,4)
    labels[4, 6] = 9
    image = np.arange(48, dtype=np.float32).reshape(1, 6, 8)
    geometry = {"spacing": (0.5, 0.25), "origin": (10.0, 20.0), "unit": "um"}
    table = object_table(Volume(labels[None], **geometry), Volume(image, **geometry))
    assert table["id"].tolist() == [4, 9]
    assert table["centroid_y"].tolist() == [10.0 + 1.5 * 0.5, 10.0 + 4 * 0.5]
    assert table["centroid_x"].tolist() == [20.0 + 2 * 0.25, 20.0 + 6 * 0.25]
    assert table["centroid_y_px"].tolist() == [1.5, 4.0]
    assert table["area"].tolist() == [6 * 0.125, 0.125] and table["voxels"].tolist() == [6, 1]
    assert table["mean_intensity"].tolist() == [np.mean([9, 10, 11, 17, 18, 19]), 38.0]
    assert table["bbox_min_y"].tolist() == [1, 4] and table["bbox_max_x"].tolist() == [4, 7]


def test_3d_volume_multichannel_and_csv(tmp_path):
    labels = np.zeros((3, 4, 4), np.int32)
    labels[0:2, 1:3, 1:3] = 1  # 8 voxels
    image = np.stack([np.ones((3, 4, 4)), 2 * np.ones((3, 4, 4))]).astype(np.float32)
    geometry = {"spacing": (2.0, 1.0, 1.0), "unit": "mm"}
    table = object_table(Volume(labels[None], **geometry), Volume(image, **geometry))
    assert table["volume"].tolist() == [16.0] and table["centroid_z"].tolist() == [1.0]
    assert table["mean_intensity_c0"].tolist() == [1.0] and table["mean_intensity_c1"].tolist() == [2.0]
    path = write_object_csv(table, tmp_path / "case_objects.csv", unit="mm")
    rows = list(csv.DictReader(path.open()))
    assert (
        rows[0]["id"] == "1"
        and float(rows[0]["volume_mm3"]) == 16.0
        and float(rows[0]["centroid_z_mm"]) == 1.0
    )
    assert not object_table(Volume(np.zeros((1, 3, 3), np.int32)))["id"].size  # no objects: empty columns


def test_grids_must_match():
    with pytest.raises(ShapeError, match="different grids"):
        object_table(Volume(np.zeros((1, 4, 4), np.int32)), Volume(np.zeros((1, 5, 4), np.float32)))
