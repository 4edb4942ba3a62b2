"""Run every shipped pipeline on full-size synthetic data and print one table (issue 12's CPU check).

Each pipeline runs as a user would run it, ``medseg run NAME --data synthetic``, with its
own model, loss and recipe; only the training budget is capped for a CPU
(``--set train.max_minutes=M``, the recipe's iteration count otherwise) and written in
the table. The foreground Dice is the held-out (test split) Dice: the mean over foreground
classes for class-label pipelines, the binary object-mask Dice of the challenge evaluation
for instance pipelines (whose classes are inside/boundary targets, not the objects); the
validation split's where a pipeline has no held-out split.

Usage::

    python benchmarks/run_synthetic_pipelines.py --minutes 4            # all pipelines
    python benchmarks/run_synthetic_pipelines.py --minutes 4 --only isbi2012 cremi

Prints: pipeline, model, foreground Dice, the challenge metric the pipeline reports,
iterations, train s, wall s and CPU s (children). ``--json`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

from medseg.resources import list_pipelines, shipped_pipeline

#: The challenge metric shown per format (pooled value when the challenge pools).
_HEADLINE = {
    "ctc": "seg",
    "monuseg": "aji",
    "glas": "f1",
    "isbi2012": "v_rand",
    "dental": "dice",
    "cremi": "cremi_score",
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _foreground_dice(summary: dict) -> float | None:
    """Held-out (test split) foreground Dice; the validation split's when there is no held-out split."""
    held_out = {k.lower(): v for k, v in (summary.get("challenge_held_out_mean") or {}).items()}
    if held_out.get("dice") is not None:
        return held_out["dice"]
    values = {k.lower(): v for k, v in (summary.get("validation_foreground_mean") or {}).items()}
    return values.get("dice")


def _headline(summary: dict) -> str:
    fmt = summary.get("challenge_format")
    metric = _HEADLINE.get(fmt)
    pooled = summary.get("challenge_held_out_pooled") or {}
    value = pooled.get(metric, (summary.get("challenge_held_out_mean") or {}).get(metric))
    return "-" if value is None else f"{metric} {value:.3f}"


def run_one(name: str, work: Path, minutes: float) -> dict:
    out = work / name
    command = [
        sys.executable, "-m", "medseg", "run", name, "--data", "synthetic", "--out", str(out), "--no-progress",
        "--set", f"train.max_minutes={minutes}",
    ]  # fmt: skip
    cpu0, wall0 = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - wall0, _children_cpu() - cpu0
    model = yaml.safe_load(shipped_pipeline(name).read_text())["model"]["name"]
    row = {"pipeline": name, "model": model, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
    if done.returncode:
        return {**row, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    summary = json.loads((out / "run_summary.json").read_text())
    return {
        **row,
        "foreground_dice": _foreground_dice(summary),
        "challenge": _headline(summary),
        "iterations": summary.get("iterations"),
        "train_s": summary.get("train_seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per pipeline (default 4)")
    parser.add_argument("--only", nargs="+", default=None, help="pipeline names (default: all shipped)")
    parser.add_argument("--work", type=Path, default=Path("synthetic-pipelines"), help="output folder")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args()

    names = args.only or sorted(list_pipelines())
    print(f"{'pipeline':<20} {'model':<10} {'fg Dice':>8} {'challenge':<14} {'iters':>6} {'train s':>8} "
          f"{'wall s':>7} {'cpu s':>7}", flush=True)  # fmt: skip
    rows = []
    for name in names:
        row = run_one(name, args.work, args.minutes)
        rows.append(row)
        if "error" in row:
            print(f"{name:<20} {row['model']:<10} FAILED: {row['error']}", flush=True)
            continue
        dice = row["foreground_dice"]
        print(
            f"{name:<20} {row['model']:<10} {'-' if dice is None else f'{dice:.3f}':>8} {row['challenge']:<14} "
            f"{row['iterations']:>6} {row['train_s']:>8} {row['wall_s']:>7} {row['cpu_s']:>7}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
