"""``medseg run`` stages: skipped when their inputs are unchanged, re-run when they change, training resumed."""

from __future__ import annotations

import json

from medseg.pipeline.run import load_run_config, run_pipeline


def _run(out, *overrides):
    config = load_run_config("isbi2012", list(overrides), data="synthetic", smoke=True, out=out)
    return run_pipeline(config, out, data="synthetic", smoke=True)


def test_unchanged_stages_are_skipped_changed_ones_rerun_and_training_resumes(tmp_path):
    out = tmp_path / "run"
    first = _run(out)
    assert first.skipped == ()
    stages = json.loads((out / "stages.json").read_text())
    assert list(stages) == ["fetch", "train", "evaluate", "challenge", "report"]
    assert all(s["done"] for s in stages.values())
    best_mtime = (out / "checkpoints" / "best.pt").stat().st_mtime_ns

    again = _run(out)
    assert again.skipped == ("fetch", "train", "evaluate", "challenge", "report")
    assert again.validation["foreground_mean"] == first.validation["foreground_mean"]

    # new inference settings: predict and score again, keep the trained model
    changed = _run(out, "infer.overlap=0.25")
    assert changed.skipped[:2] == ("fetch", "train") and {"evaluate", "challenge"}.isdisjoint(changed.skipped)
    assert (out / "checkpoints" / "best.pt").stat().st_mtime_ns == best_mtime

    # an interrupted training with the same inputs continues from latest.pt
    stages = json.loads((out / "stages.json").read_text())
    stages["train"]["done"] = False
    (out / "stages.json").write_text(json.dumps(stages))
    resumed = _run(out, "infer.overlap=0.25")
    assert "train" not in resumed.skipped
    info = json.loads((out / "stages.json").read_text())["train"]["info"]
    assert info["resumed"] is True and info["iterations"] == 3

    # a changed training setting trains from scratch
    retrained = _run(out, "infer.overlap=0.25", "train.learning_rate=0.01")
    assert retrained.skipped[:1] == ("fetch",) and "train" not in retrained.skipped
    assert json.loads((out / "stages.json").read_text())["train"]["info"]["resumed"] is False


def test_a_changed_data_file_retrains(tmp_path):
    out = tmp_path / "run"
    _run(out)
    volume = out / "data" / "isbi2012" / "train-volume.tif"
    volume.write_bytes(volume.read_bytes())  # same bytes, new mtime: the fingerprint changes
    config = load_run_config("isbi2012", [], data="synthetic", smoke=True, out=out)
    rerun = run_pipeline(config, out, data="synthetic", smoke=True)
    assert "fetch" in rerun.skipped and "train" not in rerun.skipped
