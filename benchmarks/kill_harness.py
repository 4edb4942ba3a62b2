"""Kill -9 harness: interrupt medseg commands at random points, resume them, compare with an uninterrupted run.

For each command (``predict`` over many files, block-wise ``predict --block-shape`` of class
labels and of instances (``predict-instances``: an instance checkpoint, so the blocks are
stitched and renumbered in a last pass), ``train``) the harness first runs it once uninterrupted (the reference), then N times:
start it, SIGKILL its process group at a random moment between the first output
appearing and the reference's end, start the same command again (``train`` with
``--resume``) and let it finish, then check

- the resumed run exits 0;
- every output equals the reference's (arrays and geometry, read back with medseg.io);
- nothing partial is left (``.medseg-tmp-*``, ``*.incomplete``, ``.*.tmp`` entries);
- for ``train``: the summary reports all iterations, and the validation history lists
  every validation of the uninterrupted run (iteration numbers); whether the final
  weights are bitwise equal to the reference is counted separately (batch sampling
  is not part of the checkpoint, so equality is not expected).

Usage::

    python benchmarks/kill_harness.py --kills 20            # all four commands
    python benchmarks/kill_harness.py --kills 5 --commands train --work /tmp/kills

Prints one line per trial and a table of counts per command; ``--json`` writes them.
Sizes are tiny so that 20 kills per command take minutes on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import tifffile
import torch
import yaml

from medseg.data.synthetic.em import write_isbi2012
from medseg.io import read

PARTIAL_MARKS = (".medseg-tmp-", ".incomplete")
SUPPORTED = (".tif", ".zarr", ".nii.gz", ".h5")


def _medseg(*args: str) -> list[str]:
    return [sys.executable, "-m", "medseg", *args]


def _partial(root: Path) -> list[str]:
    """Temporary or half-written entries anywhere under ``root``."""
    if not root.exists():
        return []
    found = []
    for p in root.rglob("*"):
        if any(mark in p.name for mark in PARTIAL_MARKS) or (
            p.name.startswith(".") and p.name.endswith(".tmp")
        ):
            found.append(str(p.relative_to(root)))
    return sorted(found)


def _run(cmd: list[str], cwd: Path, timeout: float = 900) -> tuple[int, float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, time.perf_counter() - start, proc.stderr


def _run_and_kill(cmd: list[str], cwd: Path, delay: float) -> float | None:
    """Start ``cmd``, SIGKILL its process group after ``delay`` s; its run time when it ended first."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        proc.wait(timeout=delay)
        return time.perf_counter() - start
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def _first_output_time(cmd: list[str], cwd: Path, watch: Path) -> tuple[float, float]:
    """Run ``cmd`` to the end; return (seconds until ``watch`` appeared, total seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = None
    while proc.poll() is None:
        if first is None and watch.exists():
            first = time.perf_counter() - start
        time.sleep(0.02)
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"reference run failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.read()}")
    return (first if first is not None else 0.0), total


def _outputs(root: Path) -> dict[str, Path]:
    return {
        p.name: p
        for p in sorted(root.iterdir())
        if not p.name.startswith(".") and p.name.lower().endswith(SUPPORTED)
    }


def _same_outputs(reference: Path, got: Path) -> str | None:
    """``None`` when every output under ``got`` equals the reference's, else what differs."""
    ref_files, got_files = _outputs(reference), _outputs(got)
    if ref_files.keys() != got_files.keys():
        return f"files differ: missing {sorted(ref_files.keys() - got_files.keys())}, extra {sorted(got_files.keys() - ref_files.keys())}"
    for name, path in ref_files.items():
        a, b = read(path), read(got_files[name])
        if a.array.shape != b.array.shape or not np.array_equal(a.array, b.array):
            wrong = int(np.count_nonzero(a.array != b.array)) if a.array.shape == b.array.shape else -1
            return f"{name}: {wrong} voxels differ"
        if not (np.allclose(a.spacing, b.spacing) and np.allclose(a.origin, b.origin)):
            return f"{name}: geometry differs"
    return None


class Setup:
    """Tiny data, a trained checkpoint and the three commands with their references."""

    def __init__(self, work: Path, seed: int) -> None:
        self.work = work
        data = work / "data"
        write_isbi2012(data, shape=(6, 96, 96), seed=seed)
        self.config = work / "tiny.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "name": "kill-harness",
                    "data": {
                        "dataset": "isbi2012",
                        "root": str(data),
                        "patch_shape": [32, 32],
                        "batch_size": 2,
                        "validation_slices": 1,
                    },
                    "model": {
                        "name": "unet",
                        "params": {"in_channels": 1, "out_channels": 2, "features": 4, "depth": 2},
                    },
                    "train": {"iterations": 30, "validate_every": 5, "checkpoint_every": 1, "seed": 0},
                    "infer": {"roi_size": [32, 32], "mirror_axes": [], "device": "cpu"},
                }
            )
        )
        code, _, err = _run(
            _medseg("train", str(self.config), "--out", str(work / "model"), "--no-progress"), work
        )
        if code:
            raise SystemExit(f"training the harness model failed:\n{err}")
        self.checkpoint = work / "model" / "checkpoints" / "best.pt"
        stack = tifffile.imread(data / "test-volume.tif")
        self.images = []
        for i in range(10):
            path = work / "images" / f"case{i:02d}.tif"
            path.parent.mkdir(exist_ok=True)
            tifffile.imwrite(path, np.roll(stack[i % len(stack)], 7 * i, axis=-1)[None])
            self.images.append(path)
        big = np.concatenate([stack] * 2, axis=0)  # (12, 96, 96)
        self.stack = work / "images" / "stack.tif"
        tifffile.imwrite(self.stack, big)
        self.instance_checkpoint = _instance_checkpoint(self.checkpoint, work / "instances.pt")

    def command(self, name: str, out: Path, *, resume: bool = False) -> list[str]:
        if name == "predict-files":
            return _medseg(
                "predict", "-m", str(self.checkpoint), "-i", *map(str, self.images), "-o", str(out),
                "--device", "cpu", "--no-progress",
            )  # fmt: skip
        if name == "predict-blocks":
            return _medseg(
                "predict", "-m", str(self.checkpoint), "-i", str(self.stack), "-o", str(out),
                "--block-shape", "4", "48", "48", "--device", "cpu", "--no-progress",
            )  # fmt: skip
        if name == "predict-instances":
            return _medseg(
                "predict", "-m", str(self.instance_checkpoint), "-i", str(self.stack), "-o", str(out),
                "--block-shape", "2", "48", "48", "--device", "cpu", "--no-progress",
            )  # fmt: skip
        if name == "train":
            return _medseg(
                "train",
                str(self.config),
                "--out",
                str(out),
                "--no-progress",
                *(["--resume"] if resume else []),
            )
        raise ValueError(name)


def _instance_checkpoint(trained: Path, path: Path) -> Path:
    """The trained 2-class U-Net as a boundary-instance model: a third head channel (boundary).

    Its instances are plumbing, not accuracy: what the harness checks is that an interrupted
    job stitches and renumbers them exactly as an uninterrupted one.
    """
    checkpoint = torch.load(trained, map_location="cpu", weights_only=True)
    weights = checkpoint["model"]
    weight, bias = weights["head.weight"], weights["head.bias"]
    weights["head.weight"] = torch.cat([weight, 0.5 * (weight[:1] + weight[1:])])
    weights["head.bias"] = torch.cat([bias, bias[:1] - 0.5])
    metadata = checkpoint["metadata"]
    metadata["model"]["params"]["out_channels"] = 3
    metadata["config"]["model"]["params"]["out_channels"] = 3
    metadata["config"]["data"].update(label_kind="instances", instance_target="boundary")
    metadata["targets"] = {"label_kind": "instances", "instance_target": "boundary"}
    torch.save(checkpoint, path)
    return path


def _train_history(out: Path) -> tuple[int, list[int]]:
    summary = json.loads((out / "train_summary.json").read_text())
    return int(summary["iterations"]), [int(it) for it, _ in summary["validation"]]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoints" / "latest.pt", map_location="cpu", weights_only=True)["model"]


def run_command(setup: Setup, name: str, kills: int, rng: random.Random, log) -> Counter:
    counts: Counter = Counter()
    reference = setup.work / f"{name}-reference"
    watch = {
        "train": reference / "checkpoints" / "latest.pt",
        "predict-blocks": reference / "stack.zarr.incomplete",  # the job's store: kills land in its work
        "predict-instances": reference / "stack.zarr.incomplete",
    }.get(name, reference)
    first, total = _first_output_time(setup.command(name, reference), setup.work, watch)
    ref_first, ref_total = first, total
    log(f"{name}: reference run {total:.1f} s wall, first output after {first:.1f} s")
    if name == "train":
        ref_iterations, ref_validation = _train_history(reference)
        ref_weights = _weights(reference)
    attempts = 0
    while counts["kills"] < kills and attempts < 4 * kills:
        attempts += 1
        out = setup.work / f"{name}-trial"
        shutil.rmtree(out, ignore_errors=True)
        delay = rng.uniform(first, total)
        ran = _run_and_kill(setup.command(name, out), setup.work, delay)
        if ran is not None:
            counts["finished before the kill"] += 1
            # runs are faster than the (contended) reference: aim within this run's time, the
            # first output coming at the same fraction of it as in the reference
            first, total = ref_first * ran / ref_total, 0.95 * ran
            continue
        counts["kills"] += 1
        left = _partial(out)
        counts["partial entries right after the kill"] += bool(left)
        # train resumes what the killed run saved; killed before its first checkpoint, it starts afresh
        resume = name != "train" or (out / "checkpoints" / "latest.pt").is_file()
        code, _, err = _run(setup.command(name, out, resume=resume), setup.work)
        problems = []
        if code != 0:
            problems.append(f"resume exited {code}: {err.strip().splitlines()[-1:] if err.strip() else ''}")
        else:
            counts["resumed ok"] += 1
        still = _partial(out)
        if still:
            problems.append(f"partial entries left after resume: {still[:3]}")
        else:
            counts["nothing partial left"] += 1
        if name == "train" and code == 0:
            iterations, validation = _train_history(out)
            if iterations == ref_iterations and validation == ref_validation:
                counts["history complete"] += 1
            else:
                problems.append(
                    f"history: {iterations} iterations, validations at {validation} "
                    f"(uninterrupted: {ref_iterations}, {ref_validation})"
                )
            weights = _weights(out)
            counts["weights bitwise equal"] += all(
                torch.equal(weights[k], ref_weights[k]) for k in ref_weights
            )
        elif code == 0:
            diff = _same_outputs(reference, out)
            if diff is None:
                counts["outputs equal"] += 1
            else:
                problems.append(diff)
        counts["losses"] += bool(problems)
        log(
            f"{name} kill {counts['kills']:2d} at {delay:5.1f} s: "
            + ("ok" if not problems else "; ".join(problems))
        )
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per command (default 20)")
    parser.add_argument(
        "--commands", nargs="+", default=["predict-files", "predict-blocks", "predict-instances", "train"],
        choices=["predict-files", "predict-blocks", "predict-instances", "train"],
    )  # fmt: skip
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the counts here")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="medseg-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)

    def log(line: str) -> None:
        print(line, flush=True)

    start = time.perf_counter()
    setup = Setup(work, args.seed)
    results = {name: run_command(setup, name, args.kills, rng, log) for name in args.commands}
    keys = sorted({k for c in results.values() for k in c})
    print(f"\nkill -9 harness, {time.perf_counter() - start:.0f} s wall, work folder {work}")
    print(f"{'':38}" + "".join(f"{name:>16}" for name in results))
    for key in keys:
        print(f"{key:38}" + "".join(f"{results[name].get(key, 0):>16}" for name in results))
    if args.json:
        args.json.write_text(json.dumps({name: dict(c) for name, c in results.items()}, indent=2))
    return int(any(c["losses"] for c in results.values()))


if __name__ == "__main__":
    sys.exit(main())
