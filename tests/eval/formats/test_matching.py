"""Folder matching: one file per case on each side, references only where the format keeps them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from medseg.errors import ConfigError, DataNotFoundError, DataValueError
from medseg.eval.formats import write_submission
from medseg.eval.report import evaluate_folders


def _case(tmp_path, shift=0):
    gt = np.zeros((8, 8), np.uint8)
    gt[2:6, 2:6] = 1
    write_submission("labelmap", gt, tmp_path / "gt", "c1", suffix=".tif")
    write_submission("labelmap", np.roll(gt, shift, axis=1), tmp_path / "pred", "c1", suffix=".tif")
    return gt


def test_two_prediction_files_for_one_case_are_refused_naming_both(tmp_path):
    gt = _case(tmp_path)
    # a stale copy of the same case in another suffix
    write_submission("labelmap", np.zeros_like(gt), tmp_path / "pred", "c1", suffix=".nii.gz")
    with pytest.raises(ConfigError, match=r"two prediction files for case 'c1'") as info:
        evaluate_folders(
            tmp_path / "pred", tmp_path / "gt", "labelmap", tmp_path / "out", workers=1, plot=False
        )
    assert str(tmp_path / "pred" / "c1.tif") in str(info.value)
    assert str(tmp_path / "pred" / "c1.nii.gz") in str(info.value)
    assert not (tmp_path / "out").exists()


def test_two_reference_files_for_one_case_are_refused(tmp_path):
    gt = _case(tmp_path)
    write_submission("labelmap", gt, tmp_path / "gt", "c1", suffix=".nii.gz")
    with pytest.raises(ConfigError, match=r"two reference files for case 'c1'"):
        evaluate_folders(
            tmp_path / "pred", tmp_path / "gt", "labelmap", tmp_path / "out", workers=1, plot=False
        )


def test_a_reference_in_a_subfolder_does_not_replace_the_one_in_the_folder(tmp_path):
    gt = _case(tmp_path)
    old = tmp_path / "gt" / "old"
    old.mkdir()
    tifffile.imwrite(old / "c1.tif", np.zeros_like(gt))  # an old copy: scoring against it gives Dice 0
    summary = evaluate_folders(
        tmp_path / "pred", tmp_path / "gt", "labelmap", tmp_path / "out", workers=1, plot=False
    )
    entry = summary["metric_per_case"][0]
    assert entry["reference_file"] == str(tmp_path / "gt" / "c1.tif")
    assert entry["metrics"]["1"]["Dice"] == 1.0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["foreground_mean"]["Dice"] == 1.0


def test_a_folder_without_reference_files_of_the_format_says_so(tmp_path):
    _case(tmp_path)  # TIFF label maps: no dental PNG anywhere
    with pytest.raises(
        DataNotFoundError, match=r"no reference file of format 'dental' in --gt .*gt \(dental"
    ):
        evaluate_folders(
            tmp_path / "pred", tmp_path / "gt", "dental", tmp_path / "out", workers=1, plot=False
        )


def test_predictions_missing_are_named_not_counted_as_zero(tmp_path):
    _case(tmp_path)
    (tmp_path / "pred" / "c1.tif").unlink()
    with pytest.raises(DataNotFoundError, match=r"no prediction file of format 'labelmap' in --pred"):
        evaluate_folders(
            tmp_path / "pred", tmp_path / "gt", "labelmap", tmp_path / "out", workers=1, plot=False
        )


@pytest.mark.parametrize(
    ("values", "what"),
    [
        (np.array([[0.0, 0.5], [1.0, 1.0]], np.float32), "non-integral"),
        (np.array([[0.0, np.nan], [1.0, 1.0]], np.float32), "non-finite"),
        (np.array([[0, -1], [1, 1]], np.int16), "negative labels"),
    ],
)
def test_label_values_that_are_no_labels_name_the_file(tmp_path, values, what):
    write_submission("labelmap", np.array([[0, 0], [1, 1]]), tmp_path / "gt", "c1", suffix=".tif")
    (tmp_path / "pred").mkdir()
    tifffile.imwrite(tmp_path / "pred" / "c1.tif", values)
    with pytest.raises(DataValueError, match=what) as info:
        evaluate_folders(
            tmp_path / "pred", tmp_path / "gt", "labelmap", tmp_path / "out", workers=1, plot=False
        )
    assert f"prediction {tmp_path / 'pred' / 'c1.tif'}" in str(info.value)
