from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest

from medseg.cli import evaluate as evaluate_cli
from medseg.errors import DataNotFoundError
from medseg.eval.formats import write_submission
from medseg.eval.report import evaluate_folders


def _write(tmp_path, n=2):
    rng = np.random.default_rng(0)
    for k in range(n):
        gt = rng.integers(0, 3, (6, 10, 10))
        write_submission("labelmap", gt, tmp_path / "gt", f"c{k}")
        write_submission("labelmap", np.where(rng.random(gt.shape) < 0.9, gt, 0), tmp_path / "pred", f"c{k}")


def test_cli_writes_report(tmp_path):
    _write(tmp_path)
    parser = argparse.ArgumentParser()
    evaluate_cli.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "evaluate",
            "--pred",
            str(tmp_path / "pred"),
            "--gt",
            str(tmp_path / "gt"),
            "--format",
            "labelmap",
            "-o",
            str(tmp_path / "out"),
            "--workers",
            "2",
        ]
    )
    assert args.func(args) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {"metric_per_case", "mean", "foreground_mean", "config", "versions"} <= set(summary)
    rows = list(csv.DictReader((tmp_path / "out" / "per_case.csv").read_text().splitlines()))
    assert {r["case"] for r in rows} == {"c0", "c1"} and {
        "Dice",
        "TN",
        "hausdorff95",
        "assd",
        "surface_dice",
    } <= {r["metric"] for r in rows}
    assert (tmp_path / "out" / "metrics.png").stat().st_size > 0


def test_unmatched_cases_are_listed(tmp_path):
    _write(tmp_path)
    (tmp_path / "pred" / "c1.nii.gz").unlink()
    with pytest.raises(DataNotFoundError, match=r"\['c1'\]"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", "labelmap", tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()


def test_summary_is_nnunet_v2s_layout_and_aggregation(tmp_path):
    # case a: label 1 perfect, label 2 half found; case b: label 2 absent from both maps
    ref_a = np.zeros((4, 6), np.uint8)
    ref_a[0, :2] = 1
    ref_a[2, :4] = 2
    pred_a = ref_a.copy()
    pred_a[2, 2:4] = 0
    pred_a[3, 5] = 4  # a stray label outside the dataset's label set
    ref_b = np.zeros((4, 6), np.uint8)
    ref_b[1, 1:3] = 1
    for case, ref, pred in (("a", ref_a, pred_a), ("b", ref_b, ref_b)):
        write_submission("labelmap", ref, tmp_path / "gt", case)
        write_submission("labelmap", pred, tmp_path / "pred", case)
    dataset = tmp_path / "dataset.json"
    dataset.write_text(json.dumps({"labels": {"background": 0, "one": 1, "two": 2}}))
    parser = argparse.ArgumentParser()
    evaluate_cli.register(parser.add_subparsers())
    folders = ["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "-o", str(tmp_path / "out")]
    args = parser.parse_args(
        [
            "evaluate",
            *folders,
            "--format",
            "labelmap",
            "--labels",
            str(dataset),
            "--no-plot",
            "--workers",
            "1",
        ]
    )
    assert args.func(args) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    a, b = (c["metrics"] for c in summary["metric_per_case"])
    assert set(a) == set(b) == {"1", "2"}  # every dataset label, the stray 4 left out
    assert {k: a["2"][k] for k in ("Dice", "IoU", "TP", "FP", "FN", "TN", "n_pred", "n_ref")} == {
        "Dice": 2 * 2 / (2 * 2 + 2),
        "IoU": 0.5,
        "TP": 2,
        "FP": 0,
        "FN": 2,
        "TN": 20,
        "n_pred": 2,
        "n_ref": 4,
    }
    assert np.isnan(b["2"]["Dice"]) and b["2"]["TN"] == 24 and b["2"]["n_ref"] == 0
    # nnU-Net: nanmean over cases per label, np.mean over labels
    assert summary["mean"]["2"]["Dice"] == pytest.approx(2 / 3)
    assert summary["foreground_mean"]["Dice"] == pytest.approx((1.0 + 2 / 3) / 2)
    # the both-empty case is counted, not silently dropped, for every ratio and distance
    assert summary["non_finite"]["2"] == {
        k: 1
        for k in ("Dice", "IoU", "precision", "recall", "hausdorff", "hausdorff95", "assd", "surface_dice")
    }
    assert "1" not in summary["non_finite"]
