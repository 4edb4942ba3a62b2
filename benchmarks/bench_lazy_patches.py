"""Peak memory of class-balanced patch sampling from on-disk EM stacks larger than typical patches.

Creates a ~2 GiB uint8 EM-like stack (raw, uncompressed-ish noise + membrane grid)
plus its label map as HDF5 and as Zarr in a temporary folder, written slab by slab,
then samples patches with :class:`medseg.data.sampling.PatchSampler` through
:func:`medseg.data.em.open_em_stack` (lazy ``medseg.io.LazyArray``) in a fresh child
process per format, and prints peak RSS (``VmHWM`` on Linux, else ``resource.getrusage``; psutil is not required) in a table. The
target is < 500 MB. Temporary files are deleted at the end.

``--train`` instead trains through :func:`medseg.pipeline.training.train_from_config`
(the code ``medseg train`` runs after loading its samples: normalisation statistics
read slab by slab, the lazy :class:`medseg.data.dataset.PatchDataset`, DataLoader
workers, the trainer) on the HDF5 stack with a 2D U-Net on single-section patches,
once with 0 and once with 2 data workers, and prints iterations/s and the peak RSS of
the whole process tree (trainer plus workers, PSS sampled every 0.1 s). Target < 1 GB.

Usage::

    python benchmarks/bench_lazy_patches.py [--gib 2] [--patches 200] [--dir /tmp]
    python benchmarks/bench_lazy_patches.py --train [--gib 2] [--iterations 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SLAB = 16  # sections written at a time
CHUNKS = (8, 256, 256)
PATCH = (8, 256, 256)


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    Linux: ``VmHWM`` from ``/proc/self/status`` (reset by exec, so a child does not
    inherit its parent's peak as ``ru_maxrss`` does); elsewhere ``getrusage``.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def _slab(z0: int, n: int, yx: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    raw = rng.integers(90, 200, size=(n, yx, yx), dtype=np.uint8)
    grid = np.zeros((yx, yx), dtype=np.uint8)
    grid[(np.arange(yx) + z0) % 97 < 3, :] = 1
    grid[:, (np.arange(yx) + 2 * z0) % 89 < 3] = 1
    labels = np.broadcast_to(grid, (n, yx, yx)).copy()
    raw[labels == 1] //= 3  # dark membranes
    return raw, labels


def write_hdf5(path: Path, shape: tuple[int, int, int]) -> None:
    import h5py

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        raw = f.create_dataset("raw", shape=shape, dtype=np.uint8, chunks=CHUNKS)
        lab = f.create_dataset(
            "labels", shape=shape, dtype=np.uint8, chunks=CHUNKS, compression="gzip", compression_opts=1
        )
        for z0 in range(0, shape[0], SLAB):
            n = min(SLAB, shape[0] - z0)
            r, lb = _slab(z0, n, shape[1], rng)
            raw[z0 : z0 + n] = r
            lab[z0 : z0 + n] = lb


def write_zarr(path: Path, shape: tuple[int, int, int]) -> None:
    import zarr

    rng = np.random.default_rng(0)
    group = zarr.open_group(str(path), mode="w")
    raw = group.create_array("raw", shape=shape, dtype=np.uint8, chunks=CHUNKS)
    lab = group.create_array("labels", shape=shape, dtype=np.uint8, chunks=CHUNKS)
    for z0 in range(0, shape[0], SLAB):
        n = min(SLAB, shape[0] - z0)
        r, lb = _slab(z0, n, shape[1], rng)
        raw[z0 : z0 + n] = r
        lab[z0 : z0 + n] = lb


def sample_child(path: str, n_patches: int) -> None:
    """Runs in a fresh process: open lazily, sample, print JSON with timings and peak RSS."""
    from medseg.data.em import open_em_stack
    from medseg.data.sampling import PatchSampler

    baseline = _peak_rss_mb()
    raw = open_em_stack(path, "raw")
    labels = open_em_stack(path, "labels")
    sampler = PatchSampler(
        raw, labels, patch_shape=PATCH, classes=(1,), foreground_probability=0.5, min_foreground=0.01, seed=0
    )
    t0 = time.perf_counter()
    total = 0
    for _ in range(n_patches):  # one patch alive at a time
        patch = sampler.sample()
        total += int(patch.image.sum() > 0)
    elapsed = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "baseline_mb": baseline,
                "peak_mb": _peak_rss_mb(),
                "seconds": elapsed,
                "patches": n_patches,
                "shape": list(raw.shape),
            }
        )
    )


def _tree_rss_mb() -> float:
    """Proportional resident memory (PSS) of this process plus its children (DataLoader workers).

    PSS splits pages shared after the fork between the processes, so the sum is the
    memory the tree really occupies (summing RSS would count shared pages per worker).
    """
    pids = {os.getpid()}
    for task in Path("/proc/self/task").iterdir():
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        pids.update(int(c) for c in children)
    total = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024
        except OSError:  # a worker that just exited
            continue
    return total


def train_child(path: str, iterations: int, workers: int) -> None:
    """Runs in a fresh process: ``train_from_config`` on the lazy stack; print JSON with peak tree RSS."""
    from medseg.config import config_from_dict
    from medseg.data import Sample
    from medseg.data.em import open_em_stack
    from medseg.pipeline.training import train_from_config

    peak = [0.0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_mb())
            time.sleep(0.1)

    baseline = _tree_rss_mb()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    config = config_from_dict(
        {
            "data": {
                "dataset": "folder",
                "patch_shape": list(PATCH[1:]),
                "batch_size": 4,
                "num_workers": workers,
            },
            "model": {
                "name": "unet",
                "params": {"in_channels": 1, "out_channels": 2, "features": 8, "depth": 4},
            },
            "train": {"iterations": iterations, "checkpoint_every": 10**6, "device": "cpu"},
            "infer": {"roi_size": list(PATCH[1:])},
        },
        source="bench",
    )
    sample = Sample(open_em_stack(path, "raw"), open_em_stack(path, "labels"), "stack", "em")
    t0 = time.perf_counter()
    result = train_from_config(config, [sample], [], Path(path).parent / f"run-{workers}").result
    done.set()
    thread.join()
    print(
        json.dumps(
            {
                "baseline_mb": baseline,
                "peak_mb": peak[0],
                "seconds": time.perf_counter() - t0,
                "fit_seconds": result.seconds,
                "iterations": result.iterations,
                "shape": list(sample.image.shape),
            }
        )
    )


def _train(args: argparse.Namespace, shape: tuple[int, int, int]) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="medseg-bench-", dir=args.dir))
    rows = []
    try:
        path = tmp / "stack.h5"
        write_hdf5(path, shape)
        for workers in (0, 2):
            cmd = [sys.executable, __file__, "--train-child", str(path), "--iterations", str(args.iterations)]
            out = subprocess.run(
                [*cmd, "--workers", str(workers)], check=True, capture_output=True, text=True
            )
            rows.append((workers, json.loads(out.stdout.strip().splitlines()[-1])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"medseg training (train_from_config) on an HDF5 stack {shape} uint8 ({np.prod(shape) / 2**30:.2f} GiB raw "
        f"+ labels), 2D U-Net (8 features, depth 4), patches {PATCH[1:]}, batch 4, {args.iterations} iterations"
    )
    header = (
        f"{'workers':>7} {'total s':>8} {'fit s':>7} {'it/s':>6} {'PSS at start':>13} {'peak PSS (tree)':>16}"
    )
    print(header)
    print("-" * len(header))
    for workers, r in rows:
        print(
            f"{workers:>7} {r['seconds']:>8.1f} {r['fit_seconds']:>7.1f} {r['iterations'] / r['fit_seconds']:>6.2f} "
            f"{r['baseline_mb']:>10.0f} MB {r['peak_mb']:>13.0f} MB"
        )
    ok = all(r["peak_mb"] < 1024 for _, r in rows)
    print(f"target peak RSS < 1 GB: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


def _size_gib(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0, help="size of the raw stack in GiB (default 2)")
    parser.add_argument("--patches", type=int, default=200)
    parser.add_argument("--dir", default=None, help="parent of the temporary folder")
    parser.add_argument("--train", action="store_true", help="measure medseg training instead of sampling")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--train-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sample_child(args.child, args.patches)
        return 0
    if args.train_child:
        train_child(args.train_child, args.iterations, args.workers)
        return 0

    yx = 2048
    nz = max(PATCH[0], round(args.gib * 2**30 / (yx * yx)))
    shape = (nz, yx, yx)
    if args.train:
        return _train(args, shape)
    tmp = Path(tempfile.mkdtemp(prefix="medseg-bench-", dir=args.dir))
    rows = []
    try:
        for name, suffix, writer in (("HDF5", ".h5", write_hdf5), ("Zarr", ".zarr", write_zarr)):
            path = tmp / f"stack{suffix}"
            t0 = time.perf_counter()
            writer(path, shape)
            write_s = time.perf_counter() - t0
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path), "--patches", str(args.patches)],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((name, _size_gib(path), write_s, result))
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"stack {shape} uint8 raw ({np.prod(shape) / 2**30:.2f} GiB) + uint8 labels, chunks {CHUNKS}, "
        f"patches {PATCH}, {args.patches} patches, foreground_probability=0.5"
    )
    print(f"writer peak RSS (slabs of {SLAB} sections): {_peak_rss_mb():.0f} MB")
    header = f"{'format':<6} {'on disk':>9} {'write s':>8} {'sample s':>9} {'RSS after import':>17} {'peak RSS':>9}"
    print(header)
    print("-" * len(header))
    for name, size, write_s, r in rows:
        print(
            f"{name:<6} {size:>7.2f} G {write_s:>8.1f} {r['seconds']:>9.1f} {r['baseline_mb']:>14.0f} MB "
            f"{r['peak_mb']:>6.0f} MB"
        )
    ok = all(r["peak_mb"] < 500 for *_, r in rows)
    print(f"target peak RSS < 500 MB: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
