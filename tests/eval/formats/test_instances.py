from __future__ import annotations

import numpy as np
import pytest

from medseg.errors import FormatError
from medseg.eval.formats import read_submission, write_submission
from medseg.eval.report import evaluate_folders


@pytest.mark.parametrize("suffix", [".tif", ".nii.gz", ".zarr"])
def test_3d_instance_maps_round_trip_with_geometry(tmp_path, suffix):
    ids = np.zeros((3, 6, 7), np.int64)
    ids[0:2, 1:3, 1:3] = 70000  # above uint16: stored as uint32
    ids[2, 4:6, 4:7] = 2
    path = write_submission("instances", ids, tmp_path, "cells", spacing=(2.0, 0.5, 0.5), suffix=suffix)
    assert path.name == f"cells{suffix}"
    volume = read_submission("instances", path)
    np.testing.assert_array_equal(volume.array[0], ids)
    np.testing.assert_allclose(volume.spacing, (2.0, 0.5, 0.5), rtol=1e-6)
    with pytest.raises(FormatError, match="suffix"):
        write_submission("instances", ids, tmp_path, "bad", suffix=".png")


def test_evaluate_3d_instance_maps_without_ctc(tmp_path):
    gt = np.zeros((4, 10, 10), np.uint16)
    gt[0:2, 1:5, 1:5] = 1  # 32 voxels
    gt[2:4, 5:9, 5:9] = 2  # 32 voxels
    pred = gt.copy()
    pred[2:4, 5:9, 5:9] = 0  # object 2 missed
    pred[0:2, 1:5, 1:3] = 0  # object 1 half found: 16 of 32 voxels
    write_submission("instances", gt, tmp_path / "gt", "vol", suffix=".zarr")
    write_submission("instances", pred, tmp_path / "pred", "vol", suffix=".zarr")
    summary = evaluate_folders(tmp_path / "pred", tmp_path / "gt", "instances", tmp_path / "out", plot=False)
    row = summary["metric_per_case"][0]["metrics"]["all"]
    assert row["seg"] == 0.0  # 16 is not > 32 / 2: no match, SEG counts object 1 and 2 as 0
    assert row["aji"] == pytest.approx(16 / 64)  # C = 16, U = 32 (object 1) + 32 (object 2)
    assert row["pq"] == 0.0  # IoU 0.5 is not > 0.5
