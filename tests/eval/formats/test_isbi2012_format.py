"""ISBI 2012 files as users have them: labels with a resolution, and slices that are all cells."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from medseg.errors import ShapeError
from medseg.eval.formats import read_submission
from medseg.eval.isbi2012 import pixel_error
from medseg.eval.report import evaluate_folders
from medseg.eval.warping import fiji_8bit_reference, splits_and_mergers_warping_error


def _stack():
    """Five 7 x 7 sections (fewer pages would read as channels): section 1 is all cell (255), split by the proposal."""
    labels = np.full((5, 7, 7), 255, np.uint8)
    labels[:, :, 3] = 0
    labels[1] = 255
    proposal = (labels > 0).astype(np.float32)
    proposal[1, :, 3] = 0.0  # a membrane across the all-cell section
    return labels, proposal


def test_labels_with_a_resolution_are_scored_against_a_submission_without(tmp_path):
    labels, proposal = _stack()
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    # train-labels.tif as saved by Fiji: a pixel size in cm; the submission carries none
    tifffile.imwrite(
        tmp_path / "gt" / "train.tif", labels, resolution=(250000.0, 250000.0), resolutionunit="CENTIMETER"
    )
    tifffile.imwrite(tmp_path / "pred" / "train.tif", proposal, photometric="minisblack")
    reference = read_submission("isbi2012", tmp_path / "gt" / "train.tif")
    assert reference.spacing == pytest.approx((1.0, 0.04, 0.04))  # 0.04 um pixels; Z unknown: 1, not 10000
    summary = evaluate_folders(
        tmp_path / "pred", tmp_path / "gt", "isbi2012", tmp_path / "out", workers=1, plot=False
    )
    scores = summary["metric_per_case"][0]["metrics"]["all"]
    assert scores["pixel_error"] == pytest.approx(pixel_error(labels, proposal))
    # Fiji's 8-bit conversion turns the all-cell section into 0: its split is an object addition
    assert scores["warping_error"] == 0.0


def test_a_shape_mismatch_is_still_refused(tmp_path):
    labels, proposal = _stack()
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    tifffile.imwrite(tmp_path / "gt" / "a.tif", labels)
    tifffile.imwrite(tmp_path / "pred" / "a.tif", proposal[:, :6], photometric="minisblack")
    with pytest.raises(ShapeError, match=r"shape \(5, 6, 7\) but its reference .*a\.tif has \(5, 7, 7\)"):
        evaluate_folders(
            tmp_path / "pred", tmp_path / "gt", "isbi2012", tmp_path / "out", workers=1, plot=False
        )


def test_fiji_8bit_reference_zeroes_constant_sections_only():
    labels, proposal = _stack()
    converted = fiji_8bit_reference(labels)
    np.testing.assert_array_equal(converted[[0, 2, 3, 4]], labels[[0, 2, 3, 4]])
    assert not converted[1].any()
    assert labels[1].all()  # the input is left as it was
    # the plain warping error counts the split of the all-cell section: 1 pixel of 245
    assert splits_and_mergers_warping_error(labels, proposal) == pytest.approx(1 / 245)
    assert splits_and_mergers_warping_error(converted, proposal) == 0.0
