"""Peak memory of class-balanced patch sampling from on-disk EM stacks larger than typical patches.

Creates a ~2 GiB uint8 EM-like stack (raw, uncompressed-ish noise + membrane grid)
plus its label map as HDF5 and as Zarr in a temporary folder, written slab by slab,
then samples patches with :class:`medseg.data.sampling.PatchSampler` through
:func:`medseg.data.em.open_em_stack` (lazy ``medseg.io.LazyArray``) in a fresh child
process per format, and prints peak RSS (``VmHWM`` on Linux, else ``resource.getrusage``; psutil is not required) in a table. The
target is < 500 MB. Temporary files are deleted at the end.

Usage::

    python benchmarks/bench_lazy_patches.py [--gib 2] [--patches 200] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
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


def _size_gib(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0, help="size of the raw stack in GiB (default 2)")
    parser.add_argument("--patches", type=int, default=200)
    parser.add_argument("--dir", default=None, help="parent of the temporary folder")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sample_child(args.child, args.patches)
        return 0

    yx = 2048
    nz = max(PATCH[0], round(args.gib * 2**30 / (yx * yx)))
    shape = (nz, yx, yx)
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
