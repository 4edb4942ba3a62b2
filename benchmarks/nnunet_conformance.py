"""Compare ``medseg evaluate``'s summary.json with nnU-Net v2's, key by key.

nnunetv2 is not a medseg dependency (its import chain pulls blosc2, acvl-utils,
batchgenerators, httpx...), so this check is a script, not a test. Install it next to
medseg and run::

    pip install nnunetv2==2.8.1
    python benchmarks/nnunet_conformance.py

It writes NIfTI reference and prediction folders (three labels; one label absent from
both maps in one case; a stray label 4 in one prediction), scores them with nnU-Net's
``compute_metrics_on_folder`` and with :func:`medseg.eval.report.evaluate_folders`
for the same label set, and compares every per-case ``metrics[label][key]``, every
``mean[label][key]`` and every ``foreground_mean[key]`` of nnU-Net's summary. Exit
status 1 on any difference.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from medseg.eval.formats import write_submission
from medseg.eval.report import evaluate_folders

LABELS = [1, 2, 3]
KEYS = ("Dice", "IoU", "FP", "TP", "FN", "TN", "n_pred", "n_ref")


def _write_cases(root: Path) -> None:
    rng = np.random.default_rng(0)
    for k in range(3):
        ref = rng.integers(0, 4 if k != 1 else 3, (8, 24, 20))  # case 1 has no label 3
        pred = np.where(rng.random(ref.shape) < 0.8, ref, rng.integers(0, 3, ref.shape))
        if k == 2:
            pred[0, :4, :4] = 4  # a label the dataset does not have
        geometry = {"spacing": (3.0, 0.8, 0.8)}
        write_submission("labelmap", ref, root / "ref", f"case{k}", **geometry)
        write_submission("labelmap", pred, root / "pred", f"case{k}", **geometry)


def _same(a: float, b: float) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return abs(float(a) - float(b)) <= 1e-12


def main() -> int:
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_cases(root)
        compute_metrics_on_folder(
            str(root / "ref"),
            str(root / "pred"),
            str(root / "nnunet.json"),
            SimpleITKIO(),
            ".nii.gz",
            LABELS,
            num_processes=1,
        )
        evaluate_folders(
            root / "pred", root / "ref", "labelmap", root / "medseg", labels=LABELS, workers=1, plot=False
        )
        theirs = json.loads((root / "nnunet.json").read_text())
        ours = json.loads((root / "medseg" / "summary.json").read_text())

    problems, compared = [], 0
    ours_by_file = {Path(c["prediction_file"]).name: c for c in ours["metric_per_case"]}
    for case in theirs["metric_per_case"]:
        mine = ours_by_file[Path(case["prediction_file"]).name]
        if set(case["metrics"]) != set(mine["metrics"]):
            problems.append(
                f"{case['prediction_file']}: labels {sorted(case['metrics'])} vs {sorted(mine['metrics'])}"
            )
        for label, metrics in case["metrics"].items():
            for key, value in metrics.items():
                compared += 1
                if not _same(value, mine["metrics"][label][key]):
                    problems.append(
                        f"case {case['prediction_file']} label {label} {key}: {value} vs {mine['metrics'][label][key]}"
                    )
    for label, metrics in theirs["mean"].items():
        for key, value in metrics.items():
            compared += 1
            if not _same(value, ours["mean"][label][key]):
                problems.append(f"mean label {label} {key}: {value} vs {ours['mean'][label][key]}")
    for key, value in theirs["foreground_mean"].items():
        compared += 1
        if not _same(value, ours["foreground_mean"][key]):
            problems.append(f"foreground_mean {key}: {value} vs {ours['foreground_mean'][key]}")
    assert set(KEYS) == set(theirs["foreground_mean"]), "nnU-Net's key set changed"
    print(f"compared {compared} values of nnU-Net's summary.json: {len(problems)} difference(s)")
    for line in problems:
        print("  " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
