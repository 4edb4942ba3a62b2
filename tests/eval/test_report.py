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
    assert {r["case"] for r in rows} == {"c0", "c1"} and {"dice", "hausdorff95", "assd"} <= {
        r["metric"] for r in rows
    }
    assert (tmp_path / "out" / "metrics.png").stat().st_size > 0


def test_unmatched_cases_are_listed(tmp_path):
    _write(tmp_path)
    (tmp_path / "pred" / "c1.nii.gz").unlink()
    with pytest.raises(DataNotFoundError, match=r"\['c1'\]"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", "labelmap", tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()
