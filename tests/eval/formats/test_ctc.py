from __future__ import annotations

import numpy as np
import pytest
import tifffile

from medseg.errors import DataNotFoundError
from medseg.eval.instance import ctc_det
from medseg.eval.report import evaluate_folders

ctc_metrics = pytest.importorskip("ctc_metrics")

CENTRES = {1: (8, 8), 2: (8, 26), 3: (28, 16)}


def _disc(shape, centre, radius):
    yy, xx = np.indices(shape[-2:])
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def _frame(shape, labels: dict[int, tuple[int, int]], radius=5, depth=None):
    out = np.zeros(shape[-2:], np.uint16)
    for label, centre in labels.items():
        out[_disc(shape, centre, radius)] = label
    return out if depth is None else np.repeat(out[None], depth, axis=0)


def _sequence(root, depth=None):
    """5 frames; RES: cell 3 lost from frame 2, cells 1+2 merged in frame 3, a false positive in frame 4."""
    shape = (40, 40)
    gt, res, tra = root / "01_GT" / "SEG", root / "01_RES", root / "01_GT" / "TRA"
    for d in (gt, res, tra):
        d.mkdir(parents=True)
    for t in range(5):
        tifffile.imwrite(tra / f"man_track{t:03d}.tif", _frame(shape, CENTRES, radius=1, depth=depth))
        labels = {1: CENTRES[1], 2: CENTRES[2]} if t < 3 else {1: CENTRES[1], 5: CENTRES[2]}
        if t == 3:
            del labels[5]
        if t < 2:
            labels[3] = CENTRES[3]
        mask = _frame(shape, labels, depth=depth)
        if t == 3:  # one object over cells 1 and 2
            mask[..., 6:11, 8:27] = 1
        if t == 4:
            mask[..., 34:38, 2:6] = 6
        tifffile.imwrite(res / f"mask{t:03d}.tif", mask)
    (tra / "man_track.txt").write_text("1 0 4 0\n2 0 4 0\n3 0 4 0\n")
    (res / "res_track.txt").write_text("1 0 4 0\n2 0 2 0\n3 0 1 0\n5 4 4 0\n6 4 4 0\n")
    for t in (1, 3):  # only frames 1 and 3 are annotated (cells slightly smaller than in the result)
        ref = _frame(shape, CENTRES, radius=4)
        if depth is None:
            tifffile.imwrite(gt / f"man_seg{t:03d}.tif", ref)
        else:  # 3D data annotated on single slices 1 and 2
            for z in (1, 2):
                tifffile.imwrite(gt / f"man_seg_{t:03d}_{z:03d}.tif", ref)
    return res, root / "01_GT"


@pytest.mark.parametrize("depth", [None, 4])
def test_real_layout_equals_py_ctcmetrics(tmp_path, depth):
    from ctc_metrics import evaluate_sequence

    res, gt = _sequence(tmp_path, depth)
    reference = evaluate_sequence(str(res), str(gt), metrics=["SEG", "DET"], threads=1)
    summary = evaluate_folders(res, gt, "ctc", tmp_path / "out", workers=1, plot=False)
    # annotated frames only; a frame annotated on slices 1 and 2 is one case per slice file
    cases = ["001", "003"] if depth is None else ["001_001", "001_002", "003_001", "003_002"]
    assert [c["case"] for c in summary["metric_per_case"]] == cases
    assert summary["pooled"]["seg"] == pytest.approx(reference["SEG"], abs=1e-12)
    assert summary["pooled"]["det"] == pytest.approx(reference["DET"], abs=1e-12)
    # hand-worked DET: 15 markers; FN: cell 3 in frames 2-4 (3); NS: the merge in frame 3 (1); FP: 1
    assert summary["pooled"]["det"] == pytest.approx(1 - (5 * 1 + 10 * 3 + 1) / 150)
    # SEG over the 6 annotated cells: frame 1 three matches (J = 49/81 each: radius-4 cells in
    # radius-5 objects), frame 3 cell 3 missing and the merged object covers cells 1 and 2
    # (> 50 % of each) but only one object can be a cell's match: R1 and R2 both match it
    assert 0 < summary["pooled"]["seg"] < 49 / 81


def test_missing_result_for_an_annotated_frame_is_named(tmp_path):
    res, gt = _sequence(tmp_path)
    (res / "mask003.tif").unlink()
    with pytest.raises(DataNotFoundError, match="003"):
        evaluate_folders(res, gt, "ctc", tmp_path / "out", workers=1, plot=False)


def test_det_definition():
    markers = np.zeros((10, 10), np.uint16)
    markers[1, 1], markers[1, 8], markers[8, 8] = 1, 2, 3
    pred = np.zeros_like(markers)
    pred[0:3, 0:10] = 5  # one object over markers 1 and 2: one split needed
    pred[6:9, 0:3] = 7  # detects nothing: a false positive
    # marker 3 undetected: FN = 1, NS = 1, FP = 1 -> AOGM-D = 5 + 10 + 1 over AOGM-D0 = 30
    assert ctc_det((markers, pred)) == pytest.approx(1 - 16 / 30)
    assert np.isnan(ctc_det((np.zeros_like(markers), pred)))


def _slice_annotated(root):
    """Frame 0 of a 3D sequence annotated on slices 1 and 2: one cell, matched exactly in 1, twice as wide in 2."""
    res, seg, tra = root / "01_RES", root / "01_GT" / "SEG", root / "01_GT" / "TRA"
    for d in (res, seg, tra):
        d.mkdir(parents=True)
    mask = np.zeros((4, 20, 20), np.uint16)
    mask[1, 4:8, 4:8] = 1
    mask[2, 4:8, 4:12] = 1
    tifffile.imwrite(res / "mask000.tif", mask)
    tifffile.imwrite(tra / "man_track000.tif", (mask > 0).astype(np.uint16))
    (tra / "man_track.txt").write_text("1 0 0 0\n")
    (res / "res_track.txt").write_text("1 0 0 0\n")
    cell = np.zeros((20, 20), np.uint16)
    cell[4:8, 4:8] = 1
    for z in (1, 2):
        tifffile.imwrite(seg / f"man_seg_000_{z:03d}.tif", cell)
    return res, root / "01_GT"


def test_slice_annotations_are_scored_per_slice_as_the_official_seg_measure(tmp_path):
    from ctc_metrics import evaluate_sequence

    res, gt = _slice_annotated(tmp_path)
    summary = evaluate_folders(res, gt, "ctc", tmp_path / "out", workers=1, plot=False)
    per_case = {c["case"]: c["metrics"]["all"]["seg"] for c in summary["metric_per_case"]}
    # SEGMeasure compares each slice file with that slice of the result as a 2D image:
    # slice 1 J = 16/16, slice 2 J = 16/32, and SEG is the mean over the two slice objects
    assert per_case == {"000_001": 1.0, "000_002": 0.5}
    assert summary["pooled"]["seg"] == pytest.approx(0.75)
    # py-ctcmetrics stacks the slices into one 3D object (J = 32/48) and counts the frame once
    # per slice file, which gives the same mean here
    reference = evaluate_sequence(str(res), str(gt), metrics=["SEG"], threads=1)
    assert reference["SEG"] == pytest.approx(32 / 48)
