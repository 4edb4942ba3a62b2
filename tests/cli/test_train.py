"""`medseg train` options: --resume rules and history, --out checks, --deterministic, --init."""

from __future__ import annotations

import json

import pytest
import yaml

from medseg.cli.main import main
from medseg.data.synthetic.em import write_isbi2012
from medseg.train.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_cli")
    write_isbi2012(root / "data", shape=(3, 40, 48), seed=0)
    pipeline = {
        "data": {
            "dataset": "isbi2012",
            "root": str(root / "data"),
            "patch_shape": [32, 32],
            "batch_size": 2,
            "validation_slices": 1,
        },
        "model": {"name": "unet", "params": {"in_channels": 1, "out_channels": 2, "features": 4, "depth": 2}},
        "train": {"iterations": 3, "validate_every": 3, "checkpoint_every": 1},
        "infer": {"roi_size": [32, 32], "mirror_axes": []},
    }
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(pipeline))
    assert main(["train", str(config), "--out", str(root / "run"), "--no-progress", "--deterministic"]) == 0
    return root, config


def test_summary_records_history_world_size_and_determinism(setup):
    root, _ = setup
    summary = json.loads((root / "run" / "train_summary.json").read_text())
    assert summary["world_size"] == 1 and len(summary["losses"]) == 3 and summary["stopped"] is None
    meta = load_checkpoint(root / "run" / "checkpoints" / "latest.pt")["metadata"]
    assert meta["config"]["train"]["deterministic"] is True
    assert meta["targets"] == {"label_kind": "classes", "instance_target": None}


def test_resume_extends_a_finished_run_and_keeps_its_history(setup, tmp_path):
    _, config = setup
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out), "--no-progress"]) == 0
    first = json.loads((out / "train_summary.json").read_text())
    args = [
        "train",
        str(config),
        "--out",
        str(out),
        "--no-progress",
        "--resume",
        "--set",
        "train.iterations=5",
    ]
    assert main(args) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["iterations"] == 5 and summary["losses"][:3] == first["losses"]
    assert summary["seconds"] > first["seconds"]  # the time of both runs
    assert [it for it, _ in summary["validation"]] == [3, 5]


def test_final_model_last_keeps_the_last_iteration_for_predict(setup, tmp_path, capsys):
    _, config = setup
    out = tmp_path / "run"
    settings = ["train.iterations=4", "train.validate_every=2", "train.final_model=last"]
    assert (
        main(
            [
                "train",
                str(config),
                "--out",
                str(out),
                "--no-progress",
                *[a for s in settings for a in ("--set", s)],
            ]
        )
        == 0
    )
    assert f"model for predict (train.final_model: last, iteration 4): {out / 'checkpoints' / 'best.pt'}" in (
        capsys.readouterr().out
    )
    summary = json.loads((out / "train_summary.json").read_text())
    assert [it for it, _ in summary["validation"]] == [2, 4]  # still validated: the curve and early stopping
    assert load_checkpoint(out / "checkpoints" / "best.pt")["iteration"] == 4


def test_resume_with_a_changed_model_is_one_error_line_naming_the_key(setup, capsys):
    root, config = setup
    args = ["train", str(config), "--out", str(root / "run"), "--resume", "--set", "model.params.features=8"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("medseg train: error: cannot resume") and "model.params.features: 4 -> 8" in err


def test_out_that_is_a_file_fails_before_loading_data(setup, tmp_path, capsys):
    _, config = setup
    target = tmp_path / "taken"
    target.write_text("")
    with pytest.raises(SystemExit) as exit_info:  # refused by the --out argument type, before any work
        main(["train", str(config), "--out", str(target)])
    assert exit_info.value.code == 2
    assert "is an existing file, not a folder" in capsys.readouterr().err
    assert not (tmp_path / "taken" / "checkpoints").exists()


def test_init_fine_tunes_and_reports_what_was_loaded(setup, tmp_path, capsys):
    root, config = setup
    ckpt = root / "run" / "checkpoints" / "best.pt"
    args = ["train", str(config), "--out", str(tmp_path / "ft"), "--no-progress", "--init", str(ckpt)]
    assert main(args) == 0
    assert "tensors loaded, 0 remapped by class, 0 new" in capsys.readouterr().out
    summary = json.loads((tmp_path / "ft" / "train_summary.json").read_text())
    assert summary["init"]["checkpoint"] == str(ckpt) and "head.weight" in summary["init"]["loaded"]


def test_model_too_deep_for_the_patch_fails_at_config_validation(setup, capsys):
    root, config = setup
    args = ["train", str(config), "--out", str(root / "deep"), "--set", "model.params.depth=20"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "'data.patch_shape'" in err and "model.params.depth: 20" in err
    assert not (root / "deep").exists()
