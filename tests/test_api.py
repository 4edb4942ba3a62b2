from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import medseg

REPO = Path(__file__).resolve().parents[1]


def _readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_import_is_cheap_and_lists_the_entry_points():
    code = "import sys, medseg; print('torch' in sys.modules, sorted(medseg.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    loaded, names = out.stdout.split(" ", 1)
    assert loaded == "False"
    for name in (
        "read",
        "write",
        "Volume",
        "build_model",
        "SlidingWindow",
        "Predictor",
        "train",
        "predict",
        "evaluate",
    ):
        assert name in names and name in dir(medseg)


def test_public_names_are_the_library_objects():
    from medseg.infer.predictor import Predictor
    from medseg.io import read
    from medseg.train.trainer import Trainer

    assert medseg.read is read and medseg.Predictor is Predictor and medseg.infer.Predictor is Predictor
    assert medseg.train.Trainer is Trainer and callable(medseg.train)  # the package, callable
    assert {"Trainer", "Validation", "Checkpointing"} <= set(medseg.train.__all__)
    assert {"SlidingWindow", "Predictor"} <= set(medseg.infer.__all__) and "dice_score" in medseg.eval.__all__


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_readme_example(), "README.md", "exec"), {})
    shape, dice = capsys.readouterr().out.split(")")
    assert shape == "(1, 3, 48, 48"
    assert 0 <= float(dice) <= 1
    labels = medseg.read(tmp_path / "runs/toy/pred/test-volume.tif").array
    assert set(np.unique(labels)) <= {0, 1}
    assert (tmp_path / "runs/toy/checkpoints/best.pt").is_file()
    assert (tmp_path / "runs/toy/eval/summary.json").is_file()
    assert (tmp_path / "runs/toy/train_summary.json").is_file()


def test_train_resume_without_a_checkpoint_is_refused(tmp_path):
    import pytest

    from medseg.errors import ConfigError

    config = REPO / "pipelines" / "isbi2012.yaml"
    with pytest.raises(ConfigError, match=r"no checkpoint to resume at .*typo"):
        medseg.train(config, out=tmp_path / "typo", resume=True, overrides=[f"data.root={tmp_path}"])
    assert not (tmp_path / "typo").exists()
