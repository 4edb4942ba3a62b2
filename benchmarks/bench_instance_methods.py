"""Instance methods of ``medseg`` compared on real annotated images: boundary, distance, both heads, flows.

Each image of ``--data`` (``images/<case>.tif`` + ``labels/<case>.tif``, instance masks)
is cut into two halves along its last axis; each half trains once (a lab folder of one
image: medseg holds out its last 20 % for validation and tunes the post-processing
there) and the other half is predicted and scored (two folds per image). Every method
trains for the same number of iterations with the same model, so a busy machine changes
the times but not the comparison. The run uses the CLI as a user would:
``medseg train pipelines/lab_folder.yaml --set data.instance_target=T …``, ``medseg
predict --format instances``, ``medseg evaluate --format instances``.

Prints one table: method, mean AJI, PQ, Dice over the folds, training iterations, CPU
seconds and wall seconds of training (per fold), and the data source line given with
``--source``. The data is not part of the repository: pass its folder, e.g. the 2018
Data Science Bowl image shipped in the ``stardist`` wheel
(``stardist/data/images/img2d.tif`` and ``mask2d.tif``).

Usage::

    python benchmarks/bench_instance_methods.py --data DIR --iterations 300 \\
        [--targets boundary distance both] [--folds left|right] [--work WORK] [--source "DSB 2018 (stardist wheel)"]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
from skimage.segmentation import relabel_sequential

from medseg.resources import shipped_pipeline

OUT_CHANNELS = {"boundary": 3, "distance": 3, "both": 4, "flow": 3}  # flow: cell probability + 2 flows (2D)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _folds(data: Path, work: Path) -> list[tuple[str, Path, Path]]:
    """(name, train folder, test folder) for each half of each image."""
    folds = []
    for image_path in sorted((data / "images").iterdir()):
        image = tifffile.imread(image_path)
        label = tifffile.imread(data / "labels" / image_path.name)
        cut = image.shape[-1] // 2
        halves = {"left": (slice(None), slice(0, cut)), "right": (slice(None), slice(cut, None))}
        for name, index in halves.items():
            root = work / "data" / f"{image_path.stem}_{name}"
            for kind, array in (("images", image), ("labels", label)):
                (root / kind).mkdir(parents=True, exist_ok=True)
                part = array[(Ellipsis, *index)]
                if kind == "labels":
                    part = relabel_sequential(part)[0].astype(np.uint16)
                tifffile.imwrite(root / kind / f"{image_path.stem}.tif", part)
        for train, test in (("left", "right"), ("right", "left")):
            folds.append(
                (
                    f"{image_path.stem}:{train}->{test}",
                    work / "data" / f"{image_path.stem}_{train}",
                    work / "data" / f"{image_path.stem}_{test}",
                )
            )
    return folds


def _medseg(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "medseg", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"medseg {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def _run(target: str, train: Path, test: Path, work: Path, args: argparse.Namespace) -> dict:
    run = work / "runs" / f"{target}_{train.name}"
    pred = work / "pred" / f"{target}_{train.name}"
    score = work / "scores" / f"{target}_{train.name}"
    params = f"{{in_channels: 1, out_channels: {OUT_CHANNELS[target]}, features: {args.features}, depth: 3, norm: instance}}"
    cpu0, wall0 = _children_cpu(), time.perf_counter()
    _medseg(
        [
            "train", str(shipped_pipeline("lab_folder")), "--out", str(run), "--no-progress",
            "--set", f"data.root={train}", "--set", f"data.instance_target={target}",
            "--set", f"model.params={params}", "--set", f"train.iterations={args.iterations}",
            "--set", f"data.patch_shape=[{args.patch}, {args.patch}]",
            "--set", f"infer.roi_size=[{args.patch}, {args.patch}]",
            "--set", f"train.validate_every={max(1, args.iterations // 4)}",
        ]
    )  # fmt: skip
    cpu, wall = _children_cpu() - cpu0, time.perf_counter() - wall0
    images = [str(p) for p in sorted((test / "images").iterdir())]
    _medseg(
        ["predict", "-m", str(run), "-i", *images, "-o", str(pred), "--format", "instances", "--no-progress"]
    )
    _medseg(
        ["evaluate", "--pred", str(pred / "instances"), "--gt", str(test / "labels"), "--format", "instances",
         "-o", str(score), "--no-plot", "--no-progress", "--workers", "1"]
    )  # fmt: skip
    summary = json.loads((score / "summary.json").read_text())
    mean = summary["foreground_mean"]
    return {"aji": mean["aji"], "pq": mean["pq"], "dice": mean["dice"], "cpu": cpu, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="folder with images/ and labels/ (instance masks)"
    )
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument(
        "--targets", nargs="+", default=["boundary", "distance", "both"], choices=list(OUT_CHANNELS)
    )
    parser.add_argument(
        "--folds",
        choices=["both", "left", "right"],
        default="both",
        help="left/right: train on those halves only",
    )
    parser.add_argument("--work", type=Path, help="keep runs here (default: a temporary folder)")
    parser.add_argument("--source", default="", help="where the images come from (printed with the table)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-instance-") as tmp:
        work = args.work or Path(tmp)
        folds = _folds(args.data, work)
        if args.folds != "both":
            folds = [f for f in folds if f":{args.folds}->" in f[0]]
        print(f"{len(folds)} folds, {args.iterations} iterations of {args.patch}² patches, U-Net features "
              f"{args.features} depth 3; data: {args.source or args.data}", flush=True)  # fmt: skip
        print("| method | AJI | PQ | Dice | train CPU s | train wall s | per fold AJI |")
        print("|---|---|---|---|---|---|---|")
        for target in args.targets:
            rows = [_run(target, train, test, work, args) for _, train, test in folds]
            mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
            per_fold = ", ".join(f"{r['aji']:.3f}" for r in rows)
            print(
                f"| {target} | {mean['aji']:.3f} | {mean['pq']:.3f} | {mean['dice']:.3f} | {mean['cpu']:.0f} | "
                f"{mean['wall']:.0f} | {per_fold} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
