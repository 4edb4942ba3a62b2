"""GlaS files as the challenge ships them: BMP annotations beside the images, Test A and Test B."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medseg.eval.formats import read_submission, write_submission
from medseg.eval.glas import glas_scores
from medseg.eval.report import evaluate_folders


def _glands(shape=(40, 48), boxes=((4, 4, 14, 16), (20, 24, 34, 44))):
    out = np.zeros(shape, np.int32)
    for i, (y0, x0, y1, x1) in enumerate(boxes, start=1):
        out[y0:y1, x0:x1] = i
    return out


def test_colour_coded_24bit_annotation_is_read_as_one_id_per_colour(tmp_path):
    ids = _glands()
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 128, 255]], np.uint8)
    Image.fromarray(colours[ids]).save(tmp_path / "testA_1_anno.bmp")  # 24-bit RGB BMP
    read = read_submission("glas", tmp_path / "testA_1_anno.bmp").array[0]
    assert len(np.unique(read)) == 3
    np.testing.assert_array_equal(read == 0, ids == 0)
    for i in (1, 2):  # each gland one id
        assert len(np.unique(read[ids == i])) == 1
    write_submission("glas", ids, tmp_path / "pred", "testA_1")
    summary = evaluate_folders(tmp_path / "pred", tmp_path, "glas", tmp_path / "out", workers=1, plot=False)
    assert summary["metric_per_case"][0]["metrics"]["all"]["f1"] == 1.0


def test_images_named_predictions_and_test_parts_scored_separately(tmp_path):
    gt_dir, pred_dir = tmp_path / "Warwick QU Dataset", tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    rng = np.random.default_rng(0)
    refs, preds = {}, {}
    for case, shift in (("testA_1", 0), ("testA_2", 3), ("testB_1", 6)):
        refs[case] = _glands()
        preds[case] = np.roll(refs[case], shift, axis=1)
        write_submission("glas", refs[case], gt_dir, case)  # testA_1_anno.bmp
        # the H&E image beside its annotation, as in the released archive
        Image.fromarray(rng.integers(0, 255, (*refs[case].shape, 3), dtype=np.uint8)).save(
            gt_dir / f"{case}.bmp"
        )
        # predictions named like the images
        Image.fromarray(preds[case].astype(np.uint8)).save(pred_dir / f"{case}.bmp")
    summary = evaluate_folders(pred_dir, gt_dir, "glas", tmp_path / "out", workers=1, plot=False)
    assert [c["case"] for c in summary["metric_per_case"]] == ["testA_1", "testA_2", "testB_1"]
    for entry in summary["metric_per_case"]:  # per-case rows hold the GlaS criteria
        expected = glas_scores((refs[entry["case"]], preds[entry["case"]]))
        assert entry["metrics"]["all"] == pytest.approx(expected)
    part_a = glas_scores([(refs[c], preds[c]) for c in ("testA_1", "testA_2")])
    part_b = glas_scores([(refs["testB_1"], preds["testB_1"])])
    assert summary["pooled"] == pytest.approx(
        {**{f"testA.{k}": v for k, v in part_a.items()}, **{f"testB.{k}": v for k, v in part_b.items()}}
    )
    assert part_a["f1"] != part_b["f1"]


def test_a_single_part_keeps_the_plain_keys(tmp_path):
    ids = _glands()
    write_submission("glas", ids, tmp_path / "gt", "testB_3")
    write_submission("glas", ids, tmp_path / "pred", "testB_3")
    summary = evaluate_folders(
        tmp_path / "pred", tmp_path / "gt", "glas", tmp_path / "out", workers=1, plot=False
    )
    assert summary["pooled"] == {"f1": 1.0, "object_dice": 1.0, "object_hausdorff": 0.0}
