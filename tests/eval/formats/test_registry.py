"""A format is one object found by name: a toy format registered here is scored by ``medseg evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.errors import ConfigError
from medseg.eval.formats import (
    FORMATS,
    ChallengeFormat,
    FormatKind,
    ScoreOptions,
    get_format,
    register_format,
    unregister_format,
)
from medseg.io import Volume


class ToyFormat(ChallengeFormat):
    """Class maps saved as ``NAME.npy``; scored by the fraction of equal pixels, pooled over all pixels."""

    name = "toy_npy"
    kind = FormatKind.CLASSES
    description = "toy: NAME.npy class maps"
    pred_pattern = r"(?P<case>.+?)\.npy"
    gt_pattern = pred_pattern

    def read(self, path: Path) -> Volume:
        return Volume(np.load(path)[None])

    def write(self, array: np.ndarray, out_dir: Path, case_id: str | int, **geometry) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        np.save(out_dir / f"{case_id}.npy", np.asarray(array))
        return out_dir / f"{case_id}.npy"

    def score(self, pred: Volume, ref: Volume, options: ScoreOptions) -> dict[str, dict[str, float]]:
        return {"all": {"agreement": float(np.mean(pred.array == ref.array))}}

    def pool(self, cases, per_case) -> dict[str, float]:
        equal = total = 0
        for pred_path, ref_path in cases.values():
            pred, ref = self.read_pair(pred_path, ref_path)
            equal += int(np.sum(pred.array == ref.array))
            total += ref.array.size
        return {"agreement": equal / total}


@pytest.fixture
def toy():
    fmt = register_format(ToyFormat())
    yield fmt
    unregister_format(fmt.name)


def test_a_toy_format_registered_in_a_test_is_scored_by_medseg_evaluate(toy, tmp_path, capsys):
    gt = {"a": np.zeros((4, 4), np.uint8), "b": np.ones((2, 8), np.uint8)}
    pred = {"a": gt["a"].copy(), "b": gt["b"].copy()}
    pred["a"][0, :2] = 1  # 2 of 16 pixels wrong
    pred["b"][:, :4] = 0  # 8 of 16 pixels wrong
    for case in gt:
        toy.write(gt[case], tmp_path / "gt", case)
        toy.write(pred[case], tmp_path / "pred", case)
    out = tmp_path / "out"
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--format", "toy_npy"]
    assert main([*args, "-o", str(out), "--workers", "1", "--no-plot", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    per_case = {c["case"]: c["metrics"]["all"]["agreement"] for c in summary["metric_per_case"]}
    assert per_case == {"a": 14 / 16, "b": 8 / 16}
    assert summary["foreground_mean"]["agreement"] == pytest.approx((14 / 16 + 8 / 16) / 2)
    assert summary["pooled"] == {"agreement": 22 / 32}
    assert summary["config"]["format"] == "toy_npy"
    assert "pooled agreement: 0.6875" in capsys.readouterr().out


def test_unknown_format_name_suggests_the_closest(capsys, tmp_path):
    with pytest.raises(ConfigError, match=r"did you mean 'labelmap'"):
        get_format("labelmpa")
    code = main(
        [
            "evaluate",
            "--pred",
            str(tmp_path),
            "--gt",
            str(tmp_path),
            "--format",
            "isbi212",
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "did you mean 'isbi2012'" in capsys.readouterr().err


def test_registry_refuses_a_taken_name_and_unnamed_formats():
    with pytest.raises(ConfigError, match="registered already"):
        register_format(FORMATS["ctc"].__class__())
    with pytest.raises(ConfigError, match="named ChallengeFormat"):
        register_format(ChallengeFormat())


def test_every_builtin_format_says_what_it_needs():
    expected = {
        "isbi2012": (FormatKind.PROBABILITY, True, False),
        "ctc": (FormatKind.INSTANCES, False, True),
        "glas": (FormatKind.INSTANCES, False, True),
        "monuseg": (FormatKind.INSTANCES, False, True),
        "dental": (FormatKind.CLASSES, False, True),
        "cremi": (FormatKind.INSTANCES, False, True),
        "instances": (FormatKind.INSTANCES, False, True),
        "labelmap": (FormatKind.CLASSES, False, True),
    }
    got = {
        name: (fmt.kind, fmt.needs_probabilities, fmt.geometry_must_match)
        for name, fmt in FORMATS.items()
        if name in expected
    }
    assert got == expected
