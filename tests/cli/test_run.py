from __future__ import annotations

import csv
import json

import numpy as np
import tifffile

from medseg.cli.main import main
from medseg.data.synthetic.em import write_isbi2012


def test_run_trains_evaluates_held_out_cases_and_writes_the_isbi_submission(tmp_path, capsys):
    write_isbi2012(tmp_path / "data", shape=(3, 40, 48), seed=0, write_test_labels=False)
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"""
name: tiny-isbi
data: {{dataset: isbi2012, root: {tmp_path / "data"}, patch_shape: [32, 32], batch_size: 2, validation_slices: 1}}
model: {{name: unet, params: {{in_channels: 1, out_channels: 2, features: 4, depth: 2}}}}
train: {{iterations: 2, validate_every: 2}}
infer: {{roi_size: [32, 32], mirror_axes: []}}
"""
    )
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 0
    assert "held-out foreground mean Dice" in capsys.readouterr().out

    evaluation = out / "validation" / "evaluation"
    with open(evaluation / "per_case.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["case"] for r in rows} == {"isbi2012_train_z02"}  # the last section is held out
    dice = {r["label"]: float(r["value"]) for r in rows if r["metric"] == "Dice"}
    assert set(dice) >= {"1"} and all(0.0 <= v <= 1.0 for v in dice.values())
    summary = json.loads((evaluation / "summary.json").read_text())
    assert {"metric_per_case", "mean", "foreground_mean"} <= set(summary)

    submission = tifffile.imread(out / "submission" / "isbi2012_test.tif")
    assert submission.dtype == np.float32 and submission.shape == (3, 40, 48)
    assert submission.min() >= 0.0 and submission.max() <= 1.0
    run_summary = json.loads((out / "run_summary.json").read_text())
    assert run_summary["iterations"] == 2 and len(run_summary["submission"]) == 1


def test_run_by_an_unknown_pipeline_name_lists_the_shipped_ones(tmp_path, capsys):
    assert main(["run", "no_such_pipeline", "--out", str(tmp_path / "run"), "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "no shipped pipeline 'no_such_pipeline'" in err and "isbi2012_unet_paper" in err
    assert not (tmp_path / "run").exists()  # nothing written before the config is valid


def test_run_on_data_already_in_place_says_nothing_was_fetched_and_reruns_nothing(tmp_path, capsys):
    write_isbi2012(tmp_path / "data", shape=(3, 48, 48), seed=0, write_test_labels=False)
    args = [
        "run",
        "isbi2012",
        "--smoke",
        "--set",
        f"data.root={tmp_path / 'data'}",
        "--out",
        str(tmp_path / "run"),
    ]
    assert main([*args, "--no-progress"]) == 0
    first = capsys.readouterr().out
    assert f"data already under {tmp_path / 'data'}: nothing fetched" in first and "(skipped)" not in first
    assert main([*args, "--no-progress"]) == 0
    assert "(skipped): train, evaluate, challenge, report" in capsys.readouterr().out
