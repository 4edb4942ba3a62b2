"""Nuclei instance segmentation on real annotated images: ``medseg``'s default against other tools, 2D and 3D.

Each data folder (``images/<case>.tif`` + ``labels/<case>.tif``, instance masks; the
data is not part of the repository) holds one annotated image or stack. It is cut in
two halves along its last axis: fold 1 trains on the left half and scores the right
half; with ``--folds 2``, fold 2 trains on the right half and scores the left. Every
learned method trains from scratch on the same half:

- **medseg default**: what a user runs, through the CLI: ``medseg train
  pipelines/lab_folder.yaml --set data.root=HALF`` (``pipelines/lab_folder_3d.yaml`` for
  a stack; one image: medseg holds out the last 20 % for validation and tunes the
  watershed there), then ``medseg predict --format instances``. ``--iterations`` fixes
  the training length. ``--medseg-targets boundary distance …`` adds a row "medseg
  TARGET" per instance target (``--set data.instance_target=TARGET`` and the output
  channels that target needs); the pipeline's own target is the "medseg default" row.
  ``--medseg-set KEY=VALUE`` (repeatable) changes every medseg run, e.g. the 2D default
  before 2026-12-04: ``--medseg-set model.params.features=32 --medseg-set
  "data.patch_shape=[256, 256]" --medseg-set "infer.roi_size=[256, 256]" --medseg-set
  train.learning_rate=0.001``;
- **MONAI script**: ``BasicUNet`` on the binary foreground with ``DiceCELoss``, AdamW,
  random crops with flips, then the classic distance watershed (Euclidean distance
  transform of the predicted foreground in physical units, ``peak_local_max`` seeds,
  watershed). It trains until it has used **the same CPU time** as medseg default's
  training (process CPU seconds, so a busy machine slows both alike);
- **plain watershed** (no learning): Otsu threshold of the smoothed image, distance
  transform, seeds, watershed: the classical baseline;
- **StarDist from scratch** (``_stardist_from_scratch.py``): StarDist needs tensorflow,
  which does not belong in medseg's environment: ``--stardist-python`` names the
  interpreter of a separate venv with ``stardist`` and ``tensorflow-cpu``;
- **Cellpose 3 from scratch** (``_cellpose_from_scratch.py``, its docstring says why
  Cellpose 3 and not 4): ``--cellpose-python`` names a python that imports ``cellpose``
  3.1.x, and ``--cellpose-pythonpath`` (or the environment variable
  ``CELLPOSE_PYTHONPATH``) a folder put on its ``PYTHONPATH``, for a cellpose installed
  with ``pip install --target`` beside an existing torch.

The external tools get the same CPU seconds as medseg default's training and are skipped
(one line on stderr) when their python is not given or does not exist; a tool that fails
prints the end of its error and the table goes on. ``--threads`` sets the threads of every
method (``OMP_NUM_THREADS`` of the subprocesses too).

All methods are scored by the same code (:mod:`medseg.eval.instance`): AJI (MoNuSeg),
PQ, pixel Dice of the object masks. One table per dimensionality: method, mean AJI, PQ,
Dice over the folds, the per-fold AJI, objects found / reference, training CPU s, wall s.
``--json OUT.json`` writes every row of every fold and the means.

Usage (the full run: every learned row trains for about medseg default's training CPU
time, so a fold costs about seven times that; run it unattended with ``nohup``, the table
and ``--json`` come at the end)::

    OMP_NUM_THREADS=2 python benchmarks/bench_nuclei.py --data2d DSB_DIR --data3d STACK_DIR \
        --iterations 400 --iterations-3d 400 --folds 2 --threads 2 \
        --medseg-targets boundary distance both flow \
        --stardist-python STARDIST_VENV/bin/python \
        --cellpose-python .venv/bin/python --cellpose-pythonpath CELLPOSE_SITE \
        --json bench_nuclei.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch
import yaml
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.networks.nets import BasicUNet
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.filters import gaussian, threshold_otsu
from skimage.segmentation import relabel_sequential, watershed

from medseg.config import DataConfig, expected_out_channels
from medseg.eval.instance import aggregated_jaccard_index, panoptic_quality
from medseg.resources import shipped_pipeline

#: The lab pipelines a user trains on a folder of images / of stacks.
PIPELINES = {2: "lab_folder", 3: "lab_folder_3d"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _voxel_size(path: Path) -> dict:
    """``tifffile.imwrite`` arguments that keep an ImageJ TIFF's pixel size and Z spacing."""
    with tifffile.TiffFile(path) as tif:
        meta = tif.imagej_metadata or {}
        resolution = tif.pages[0].tags.get("XResolution"), tif.pages[0].tags.get("YResolution")
    if not meta or None in resolution:
        return {}
    kept = {k: meta[k] for k in ("spacing", "unit") if k in meta}
    if "spacing" in kept:
        kept["axes"] = "ZYX"
    return {"imagej": True, "resolution": tuple(t.value for t in resolution), "metadata": kept}


def _halves(data: Path, work: Path, fold: int) -> tuple[Path, Path]:
    """Write the training and test halves of the folder's one image (fold 1: train left, fold 2: right).

    The halves keep the image's voxel size (ImageJ TIFF metadata), so every method sees
    the same anisotropy as the whole stack.
    """
    [image_path] = sorted((data / "images").iterdir())
    image = tifffile.imread(image_path)
    voxel = _voxel_size(image_path)
    label = tifffile.imread(data / "labels" / image_path.name)
    cut = image.shape[-1] // 2
    parts = [slice(0, cut), slice(cut, None)]
    if fold == 2:
        parts.reverse()
    folders = []
    for name, part in zip(("train", "test"), parts, strict=True):
        root = work / name
        for kind, array in (("images", image), ("labels", label)):
            (root / kind).mkdir(parents=True, exist_ok=True)
            piece = array[..., part]
            if kind == "labels":
                piece = relabel_sequential(piece)[0].astype(np.uint16)
            tifffile.imwrite(root / kind / image_path.name, np.ascontiguousarray(piece), **voxel)
        folders.append(root)
    return folders[0], folders[1]


def _medseg(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "medseg", *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(
            f"medseg {' '.join(args[:2])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )


def _pipeline(three_d: bool) -> Path:
    return shipped_pipeline(PIPELINES[3 if three_d else 2])


def _default_target(three_d: bool) -> str:
    return str(yaml.safe_load(_pipeline(three_d).read_text())["data"]["instance_target"])


def _run_medseg(
    train: Path,
    test: Path,
    work: Path,
    iterations: int,
    three_d: bool,
    target: str | None = None,
    seed: int = 0,
    extra: tuple[str, ...] = (),
) -> tuple[np.ndarray, float]:
    """Train the lab pipeline as a user would (``target``: ``--set data.instance_target``), predict instances.

    ``extra``: more ``--set KEY=VALUE`` settings, after the benchmark's own.
    """
    pipeline = _pipeline(three_d)
    settings = [
        f"data.root={train}",
        f"train.iterations={iterations}",
        f"train.validate_every={max(1, iterations // 4)}",
        f"train.seed={seed}",
        f"data.seed={seed}",
    ]
    if target is not None:
        data = DataConfig.model_validate(
            {**yaml.safe_load(pipeline.read_text())["data"], "instance_target": target}
        )
        settings += [
            f"data.instance_target={target}",
            f"model.params.out_channels={expected_out_channels(data, 3 if three_d else 2)}",
        ]
    settings += extra
    cpu0 = _children_cpu()
    _medseg(["train", str(pipeline), "--out", str(work / "run"), "--no-progress",
             *[a for s in settings for a in ("--set", s)]])  # fmt: skip
    cpu = _children_cpu() - cpu0
    [image] = sorted((test / "images").iterdir())
    _medseg(["predict", "-m", str(work / "run"), "-i", str(image), "-o", str(work / "pred"), "--format",
             "instances", "--no-progress"])  # fmt: skip
    return tifffile.imread(work / "pred" / "instances" / image.name), cpu


def _normalise(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, (1, 99.8))
    return ((image - low) / max(high - low, 1e-6)).astype(np.float32)


def _distance_watershed(foreground: np.ndarray, min_distance: int) -> np.ndarray:
    distance = ndimage.distance_transform_edt(foreground)
    peaks = peak_local_max(distance, min_distance=min_distance, labels=ndimage.label(foreground)[0])
    markers = np.zeros(foreground.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=foreground)


def _typical_radius(label: np.ndarray) -> int:
    sizes = np.bincount(label.ravel())[1:]
    sizes = sizes[sizes > 0]
    radius = (np.median(sizes) / (np.pi if label.ndim == 2 else 4 / 3 * np.pi)) ** (1 / label.ndim)
    return max(2, int(radius * 0.6))


def _run_monai(
    train: Path, test: Path, cpu_budget: float, three_d: bool, seed: int = 0
) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    [path] = sorted((train / "images").iterdir())
    image = _normalise(tifffile.imread(path))
    label = tifffile.imread(train / "labels" / path.name)
    mask = (label > 0).astype(np.float32)
    crop = (16, 48, 48) if three_d else (128, 128)
    crop = tuple(min(c, s) for c, s in zip(crop, image.shape, strict=True))
    model = BasicUNet(spatial_dims=3 if three_d else 2, in_channels=1, out_channels=2,
                      features=(16, 16, 32, 64, 128, 16))  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    start = time.process_time()
    model.train()
    while time.process_time() - start < cpu_budget:
        xs, ys = [], []
        for _ in range(2 if three_d else 4):
            corner = [rng.integers(0, s - c + 1) for s, c in zip(image.shape, crop, strict=True)]
            box = tuple(slice(c0, c0 + c) for c0, c in zip(corner, crop, strict=True))
            x, y = image[box], mask[box]
            for axis in range(image.ndim):
                if rng.random() < 0.5:
                    x, y = np.flip(x, axis), np.flip(y, axis)
            xs.append(x.copy())
            ys.append(y.copy())
        optimizer.zero_grad()
        loss = loss_fn(
            model(torch.from_numpy(np.stack(xs)[:, None])), torch.from_numpy(np.stack(ys)[:, None])
        )
        loss.backward()
        optimizer.step()
    cpu = time.process_time() - start
    model.eval()
    [test_path] = sorted((test / "images").iterdir())
    test_image = torch.from_numpy(_normalise(tifffile.imread(test_path)))[None, None]
    with torch.inference_mode():
        logits = sliding_window_inference(test_image, crop, 4, model, overlap=0.5, mode="gaussian")
    foreground = logits[0].argmax(0).numpy() > 0
    return _distance_watershed(foreground, _typical_radius(label)), cpu


def _run_plain(train: Path, test: Path) -> tuple[np.ndarray, float]:
    [path] = sorted((train / "images").iterdir())
    radius = _typical_radius(tifffile.imread(train / "labels" / path.name))
    [test_path] = sorted((test / "images").iterdir())
    start = time.process_time()
    smooth = gaussian(tifffile.imread(test_path).astype(np.float32), sigma=1)
    return _distance_watershed(smooth > threshold_otsu(smooth), radius), time.process_time() - start


def _external(
    python: str | None,
    tool: str,
    train: Path,
    test: Path,
    cpu: float,
    work: Path,
    pythonpath: str | None = None,
) -> tuple[np.ndarray, float] | None:
    """Run ``_<tool>_from_scratch.py`` with another python; ``None`` (and why, on stderr) when it cannot."""
    if not python:
        return None
    if not Path(python).is_file():
        print(f"{tool} skipped: no python at {python}", file=sys.stderr)
        return None
    script = Path(__file__).with_name(f"_{tool}_from_scratch.py")
    out = work / tool / f"{tool}.tif"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    start = _children_cpu()
    done = subprocess.run(
        [python, str(script), str(train), str(test), str(out), str(cpu)],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode or not out.is_file():
        print(f"{tool} failed (exit {done.returncode}): {done.stderr[-800:]}", file=sys.stderr)
        return None
    return tifffile.imread(out), _children_cpu() - start


def _score(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    pq = panoptic_quality(gt, pred)
    a, b = pred > 0, gt > 0
    return {
        "aji": aggregated_jaccard_index(gt, pred),
        "pq": pq["pq"],
        "dice": 2 * float((a & b).sum()) / max(1, int(a.sum() + b.sum())),
        "found": len(np.unique(pred)) - 1,
        "total": len(np.unique(gt)) - 1,
    }


def _methods(train: Path, test: Path, work: Path, args: argparse.Namespace, three_d: bool, budget: dict):
    """(row name, runner) in the order they run; the first sets the CPU budget of the others."""
    iterations = args.iterations_3d if three_d and args.iterations_3d else args.iterations
    default = _default_target(three_d)
    seed = args.seed
    extra = tuple(args.medseg_set)
    yield (
        "medseg default",
        lambda: _run_medseg(train, test, work / "medseg", iterations, three_d, seed=seed, extra=extra),
    )
    for target in dict.fromkeys(args.medseg_targets):
        if target != default:
            yield (
                f"medseg {target}",
                lambda t=target: _run_medseg(
                    train, test, work / f"medseg-{t}", iterations, three_d, t, seed, extra
                ),
            )
    yield "plain watershed (Otsu + distance)", lambda: _run_plain(train, test)
    yield (
        "MONAI BasicUNet + distance watershed",
        lambda: _run_monai(train, test, budget["cpu"], three_d, seed),
    )
    yield (
        "StarDist from scratch",
        lambda: _external(args.stardist_python, "stardist", train, test, budget["cpu"], work),
    )
    yield (
        "Cellpose 3 from scratch",
        lambda: _external(
            args.cellpose_python, "cellpose", train, test, budget["cpu"], work, args.cellpose_pythonpath
        ),
    )


def _save(path: Path | None, rows: list[dict]) -> None:
    """Write every row so far and the means (after each row: a long run that stops keeps its rows)."""
    if path is not None:
        path.write_text(json.dumps({"rows": rows, "means": _means(rows)}, indent=1))


def _benchmark(name: str, data: Path, work: Path, args: argparse.Namespace, everything: list[dict]) -> None:
    """Run every method on every fold of one folder, append the rows to ``everything``; print the table."""
    three_d = tifffile.imread(next((data / "images").iterdir())).ndim == 3
    iterations = args.iterations_3d if three_d and args.iterations_3d else args.iterations
    print(f"\n{name}: {data} ({'3D' if three_d else '2D'}), {args.folds} fold(s) (1: train left half, score "
          f"right; 2: the reverse); medseg ({PIPELINES[3 if three_d else 2]}.yaml, target "
          f"{_default_target(three_d)}) {iterations} iterations, the others its training CPU time "
          "(contended machine)", flush=True)  # fmt: skip
    rows: list[dict] = []
    for fold in range(1, args.folds + 1):
        fold_work = work / f"fold{fold}"
        train, test = _halves(data, fold_work, fold)
        gt = tifffile.imread(next((test / "labels").iterdir()))
        budget: dict[str, float] = {}
        for label, fn in _methods(train, test, fold_work, args, three_d, budget):
            wall = time.perf_counter()
            try:
                result = fn()
            except RuntimeError as err:  # a failing extra row (e.g. an unknown target) leaves the others
                if label == "medseg default":
                    raise SystemExit(str(err)) from err
                print(f"{label} failed: {err}", file=sys.stderr)
                continue
            if result is None:
                continue
            budget.setdefault("cpu", result[1])  # medseg default's training CPU seconds: the others' budget
            row = {"data": name, "method": label, "fold": fold, "seed": args.seed, **_score(result[0], gt),
                   "train_cpu_s": round(result[1], 1), "wall_s": round(time.perf_counter() - wall, 1)}  # fmt: skip
            rows.append(row)
            everything.append(row)
            _save(args.json, everything)
            print(f"  fold {fold} | {label} | AJI {row['aji']:.3f} | PQ {row['pq']:.3f} | Dice {row['dice']:.3f} | "
                  f"{row['found']}/{row['total']} | {row['train_cpu_s']:.0f} CPU s | {row['wall_s']:.0f} s",
                  flush=True)  # fmt: skip
    print("| method | AJI | PQ | Dice | AJI per fold | found/ref | train CPU s | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        mean = {
            k: float(np.mean([r[k] for r in mine])) for k in ("aji", "pq", "dice", "train_cpu_s", "wall_s")
        }
        per_fold = " / ".join(f"{r['aji']:.3f}" for r in mine)
        found = " / ".join(f"{r['found']}/{r['total']}" for r in mine)
        print(
            f"| {method} | {mean['aji']:.3f} | {mean['pq']:.3f} | {mean['dice']:.3f} | {per_fold} | {found} | "
            f"{mean['train_cpu_s']:.0f} | {mean['wall_s']:.0f} |"
        )


def _means(rows: list[dict]) -> list[dict]:
    """Per data set and method: the mean of every score over the folds."""
    out = []
    for key in dict.fromkeys((r["data"], r["method"]) for r in rows):
        mine = [r for r in rows if (r["data"], r["method"]) == key]
        out.append({"data": key[0], "method": key[1], "folds": len(mine),
                    **{k: float(np.mean([r[k] for r in mine])) for k in ("aji", "pq", "dice", "train_cpu_s")}})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data2d", type=Path, help="folder with images/ and labels/ of one 2D image")
    parser.add_argument("--data3d", type=Path, help="folder with images/ and labels/ of one 3D stack")
    parser.add_argument(
        "--iterations", type=int, default=200, help="medseg training iterations (default 200)"
    )
    parser.add_argument(
        "--iterations-3d", type=int, help="medseg training iterations in 3D (default --iterations)"
    )
    parser.add_argument(
        "--medseg-targets",
        nargs="+",
        default=[],
        metavar="TARGET",
        help="also train medseg with these data.instance_target values (one row each)",
    )
    parser.add_argument(
        "--medseg-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a --set of every medseg run (repeatable), after the benchmark's own",
    )
    parser.add_argument(
        "--folds", type=int, choices=(1, 2), default=1, help="1: train left half; 2: also right"
    )
    parser.add_argument("--stardist-python", help="python of a venv with stardist (skipped when absent)")
    parser.add_argument("--cellpose-python", help="python that imports cellpose 3.1.x (skipped when absent)")
    parser.add_argument(
        "--cellpose-pythonpath",
        default=os.environ.get("CELLPOSE_PYTHONPATH"),
        help="folder put on the cellpose python's PYTHONPATH (default: $CELLPOSE_PYTHONPATH)",
    )
    parser.add_argument("--threads", type=int, help="threads of every method (default: torch's)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of medseg (train.seed, data.seed) and of the MONAI script (weights, crops); repeat runs "
        "with other seeds to see how far one image's results move",
    )
    parser.add_argument(
        "--json", type=Path, help="write every row and the means to this JSON file (after each row)"
    )
    args = parser.parse_args()
    lab = yaml.safe_load(_pipeline(False).read_text())["data"]
    for target in args.medseg_targets:  # an unknown target stops here, not after hours of training
        try:
            DataConfig.model_validate({**lab, "instance_target": target})
        except ValueError as err:
            parser.error(f"--medseg-targets {target}: {str(err).splitlines()[-2].strip()}")
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the subprocesses: medseg, StarDist, Cellpose
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-nuclei-") as tmp:
        for name, data in (("2D", args.data2d), ("3D", args.data3d)):
            if data is not None:
                _benchmark(name, data, Path(tmp) / name, args, rows)
    if args.json is not None:
        print(f"\nrows written to {args.json}")


if __name__ == "__main__":
    main()
