"""Every shipped pipeline end to end on synthetic data at smoke size (CPU): ``medseg run NAME --data synthetic --smoke``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.eval.em import cremi_neuron_scores
from medseg.eval.formats import get_format, read_submission
from medseg.io import read
from medseg.pipeline.run import load_run_config
from medseg.resources import list_pipelines
from medseg.train.checkpoint import load_checkpoint

#: Known defects, left open in issue 12: each must be fixed, not skipped for good.
KNOWN_BROKEN: dict[str, str] = {}


def _cases():
    for name in sorted(list_pipelines()):
        reason = KNOWN_BROKEN.get(name)
        yield pytest.param(
            name, marks=pytest.mark.xfail(strict=True, reason=reason) if reason else (), id=name
        )


@pytest.mark.parametrize("name", list(_cases()))
def test_pipeline_runs_on_synthetic_data_at_smoke_size(name, tmp_path, capsys):
    out = tmp_path / "run"
    config = load_run_config(name, [], data="synthetic", smoke=True, out=out)  # a config error raises here
    assert main(["run", name, "--data", "synthetic", "--smoke", "--out", str(out), "--no-progress"]) == 0
    assert "report" in capsys.readouterr().out

    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["iterations"] == 3 and summary["data"] == "synthetic" and summary["smoke"]
    key, dice = _dice(summary["validation_foreground_mean"])
    assert 0.0 <= dice <= 1.0
    if config.data.label_kind == "instances":  # scored as object masks, not instance ids against classes
        for folder in ("predictions", "reference"):
            for path in (out / "validation" / folder).iterdir():
                assert set(np.unique(read(path).array)) <= {0, 1}, path
    fmt = summary["challenge_format"]
    files = [*summary["submission"]]
    held_out = out / "challenge" / "held_out"
    if fmt == "ctc":  # the challenge's layout: XX_RES/maskTTT.tif beside XX_GT/SEG/man_segTTT.tif
        files += [str(p) for p in held_out.glob("*_RES/mask*.tif")]
        assert files and all(
            (Path(p).parent.parent / Path(p).parent.name.replace("_RES", "_GT") / "SEG").is_dir()
            for p in files
        )
        # DET on the held-out frames, from the dataset's tracking markers copied beside SEG
        assert {"seg", "det"} <= set(summary["challenge_held_out_pooled"])
        assert 0.0 <= summary["challenge_held_out_pooled"]["det"] <= 1.0
        assert {p.name.replace("mask", "man_track") for p in held_out.glob("*_RES/mask*.tif")} == {
            p.name for p in held_out.glob("*_GT/TRA/man_track*.tif")
        }
    elif fmt == "cremi":  # CREMI's HDF5 files, scored by the evaluate code: recomputed here from the files
        scored = json.loads((held_out / "evaluation" / "summary.json").read_text())["metric_per_case"]
        assert scored and set(summary["challenge_held_out_mean"]) == {
            "voi_split", "voi_merge", "adapted_rand_error", "cremi_score"
        }  # fmt: skip
        for entry in scored:
            prediction, reference = (
                read_submission("cremi", entry[k]) for k in ("prediction_file", "reference_file")
            )
            assert prediction.array.dtype == np.uint64 and prediction.spacing == reference.spacing
            expected = cremi_neuron_scores(reference.array[0], prediction.array[0])
            assert entry["metrics"]["all"]["cremi_score"] == pytest.approx(expected.cremi_score)
            assert entry["metrics"]["all"]["voi_split"] == pytest.approx(expected.voi_split)
        files += [str(p) for p in (held_out / "predictions").iterdir()]
    elif fmt != "labelmap":
        files += [str(p) for p in (held_out / "predictions").iterdir()]
        assert summary["challenge_held_out_mean"], "challenge metrics missing"
    for path in files:  # every challenge file reads back under the challenge's own format rules
        _check_challenge_file(fmt, path)

    if name == "finetune_lab":  # the synthetic source model was trained, then fine-tuned from
        init = load_checkpoint(out / "checkpoints" / "best.pt")["metadata"]["init"]
        assert Path(init["checkpoint"]) == out / "source" / "checkpoints" / "best.pt"
        assert "head.weight" in init["loaded"] and init["frozen"]

    report = (out / "report.md").read_text()
    assert f"| {key} | {dice:.4g} |" in report  # the measured number, as measured
    assert "## Measured beside published" in report and "Synthetic data" in report
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (out / image).is_file()


def _dice(foreground_mean: dict[str, float]) -> tuple[str, float]:
    """The summary's Dice key and value (``Dice`` in nnU-Net's summary layout, ``dice`` before it)."""
    key = next(k for k in foreground_mean if k.lower() == "dice")
    return key, foreground_mean[key]


def _check_challenge_file(fmt: str, path: str) -> None:
    read = read_submission(fmt, path)
    array = np.asarray(getattr(read, "array", read))  # a Volume once the evaluation branch is merged
    kind = get_format(fmt).kind
    if fmt == "isbi2012":
        assert array.dtype == np.float32 and array.min() >= 0.0 and array.max() <= 1.0
    elif kind == "instances":
        assert np.issubdtype(array.dtype, np.integer) and array.min() >= 0
    else:
        assert np.issubdtype(array.dtype, np.integer) and array.max() < 256
