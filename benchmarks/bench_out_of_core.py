"""Out-of-core prediction of a large Zarr stack: peak memory of ``medseg predict --block-shape``.

Issue 10's target: a 2 GB Zarr stack segmented with a peak RSS under 1 GB. The script
trains a tiny 2D U-Net on synthetic ISBI 2012 sections (``medseg train``), writes a uint8
Zarr stack of ``--gigabytes`` GiB built from those sections (slice by slice, so the script
itself never holds it), runs ``medseg predict --block-shape`` on it as a user would, and
reads the command's peak RSS from the kernel (``wait4``'s ``ru_maxrss``). It then checks the
block-wise labels of a few sections against in-memory prediction of the same sections.

Usage::

    python benchmarks/bench_out_of_core.py                 # 2 GiB stack under ./out-of-core
    python benchmarks/bench_out_of_core.py --gigabytes 0.1 --work /tmp/ooc

Prints one table: stack shape, size, block shape, wall s, CPU s, Mvox/s, peak RSS MiB,
sections checked against in-memory prediction and how many voxels differ.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
import yaml
import zarr

from medseg.data.synthetic.em import write_isbi2012
from medseg.io import read

SECTION = 1024


def _medseg(*args: str) -> list[str]:
    return [sys.executable, "-m", "medseg", *args]


def _train(work: Path) -> Path:
    data = work / "data"
    write_isbi2012(data, shape=(6, 128, 128), seed=0)
    config = work / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "out-of-core",
                "data": {"dataset": "isbi2012", "root": str(data), "patch_shape": [64, 64], "batch_size": 2},
                "model": {
                    "name": "unet",
                    "params": {
                        "in_channels": 1,
                        "out_channels": 2,
                        "features": 4,
                        "depth": 2,
                        "norm": "batch",
                    },
                },
                "train": {"iterations": 40, "validate_every": 20, "seed": 0},
                "infer": {"roi_size": [256, 256], "overlap": 0.0, "mirror_axes": [], "device": "cpu"},
            }
        )
    )
    run = work / "model"
    if not (run / "checkpoints" / "best.pt").is_file():
        subprocess.run(_medseg("train", str(config), "--out", str(run), "--no-progress"), check=True)
    return run


def _stack(work: Path, gigabytes: float) -> tuple[Path, tuple[int, int, int]]:
    """A uint8 (Z, 1024, 1024) Zarr stack of EM-like sections, written one section at a time."""
    sections = tifffile.imread(work / "data" / "test-volume.tif")
    depth = max(1, round(gigabytes * 2**30 / SECTION**2))
    shape = (depth, SECTION, SECTION)
    path = work / f"stack-{depth}.zarr"
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        array = zarr.open_array(
            str(partial), mode="w", shape=shape, dtype=np.uint8, chunks=(1, SECTION, SECTION)
        )
        reps = -(-SECTION // sections.shape[1])
        for z in range(depth):
            tile = np.tile(sections[z % len(sections)], (reps, reps))[:SECTION, :SECTION]
            array[z] = np.roll(tile, 37 * z, axis=1)
        partial.rename(path)
    return path, shape


def _predict(run: Path, stack: Path, out: Path, block: tuple[int, ...]) -> tuple[float, float, int]:
    """Run ``medseg predict`` block-wise; return wall s, CPU s and peak RSS bytes of that command."""
    command = _medseg(
        "predict", "-m", str(run), "-i", str(stack), "-o", str(out), "--no-progress",
        "--block-shape", *map(str, block), "--halo", "0", "0", "0",
    )  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"medseg predict failed: {' '.join(command)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def _check(run: Path, stack: Path, labels: Path, work: Path, sections: list[int]) -> int:
    """Voxels where block-wise labels differ from in-memory prediction of the same sections."""
    source = zarr.open_array(str(stack), mode="r")
    folder = work / "check"
    folder.mkdir(exist_ok=True)
    images = []
    for z in sections:
        images.append(folder / f"s{z}.tif")
        tifffile.imwrite(images[-1], source[z][None])
    subprocess.run(
        _medseg("predict", "-m", str(run), "-i", *map(str, images), "-o", str(folder / "out"), "--no-progress",
                "--overwrite"),
        check=True,
    )  # fmt: skip
    blockwise = zarr.open_array(str(labels), mode="r")
    return sum(
        int(
            np.count_nonzero(
                read(folder / "out" / f"s{z}.tif").array.reshape(blockwise.shape[1:]) != blockwise[z]
            )
        )
        for z in sections
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=2.0, help="stack size in GiB (uint8; default 2)")
    parser.add_argument("--block", type=int, nargs=3, default=[8, 1024, 1024], help="--block-shape Z Y X")
    parser.add_argument("--work", type=Path, default=Path("out-of-core"), help="working folder (kept)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    run = _train(args.work)
    stack, shape = _stack(args.work, args.gigabytes)
    out = args.work / "pred"
    labels = out / stack.name
    shutil.rmtree(labels, ignore_errors=True)
    wall, cpu, peak = _predict(run, stack, out, tuple(args.block))
    sections = sorted({0, shape[0] // 2, shape[0] - 1})
    differ = _check(run, stack, labels, args.work, sections)
    voxels = int(np.prod(shape))
    print(f"{'stack':<18} {'GiB':>5} {'block':<14} {'wall s':>8} {'cpu s':>8} {'Mvox/s':>7} "
          f"{'peak RSS MiB':>12} {'checked':>7} {'differ':>6}")  # fmt: skip
    print(
        f"{'x'.join(map(str, shape)):<18} {voxels / 2**30:>5.2f} {'x'.join(map(str, args.block)):<14} "
        f"{wall:>8.1f} {cpu:>8.1f} {voxels / wall / 1e6:>7.2f} {peak / 2**20:>12.0f} {len(sections):>7} {differ:>6}"
    )


if __name__ == "__main__":
    main()
