"""Nuclei instance segmentation on real annotated images: ``medseg``'s default against other tools, 2D and 3D.

Each data folder (``images/<case>.tif`` + ``labels/<case>.tif``, instance masks; the
data is not part of the repository) holds one annotated image or stack. It is cut in
two halves along its last axis: the left half trains, the right half is predicted and
scored. Every learned method trains from scratch on the same half:

- **medseg default**: what a user runs, through the CLI: ``medseg train
  pipelines/lab_folder.yaml --set data.root=HALF`` (one image: medseg holds out the last
  20 % for validation and tunes the watershed there), then ``medseg predict --format
  instances``. 3D stacks use the same pipeline with a 3D U-Net (``--set`` lines in
  :data:`THREE_D`). ``--iterations`` fixes the training length;
- **MONAI script**: ``BasicUNet`` on the binary foreground with ``DiceCELoss``, AdamW,
  random crops with flips, then the classic distance watershed (Euclidean distance
  transform of the predicted foreground in physical units, ``peak_local_max`` seeds,
  watershed). It trains until it has used **the same CPU time** as medseg's training
  (process CPU seconds, so a busy machine slows both alike);
- **plain watershed** (no learning): Otsu threshold of the smoothed image, distance
  transform, seeds, watershed: the classical baseline.

StarDist needs tensorflow, which does not belong in medseg's environment:
``--stardist-python`` names the interpreter of a separate venv with ``stardist`` and
``tensorflow-cpu`` (``_stardist_from_scratch.py`` trains it with the same CPU seconds;
skipped when not given). Cellpose is not wired in yet (it needs its own torch venv).

All methods are scored by the same code (:mod:`medseg.eval.instance`): AJI (MoNuSeg),
PQ, pixel Dice of the object masks. One table per dimensionality: method, AJI, PQ, Dice,
objects found / reference, training CPU s, wall s.

Usage::

    python benchmarks/bench_nuclei.py --data2d DSB_FOLDER --data3d STACK_FOLDER --iterations 200
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.networks.nets import BasicUNet
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.filters import gaussian, threshold_otsu
from skimage.segmentation import relabel_sequential, watershed

from medseg.eval.instance import aggregated_jaccard_index, panoptic_quality

PIPELINE = Path(__file__).resolve().parents[1] / "medseg" / "resources" / "pipelines" / "lab_folder.yaml"
#: The lab pipeline with a 3D U-Net: the settings a user gives for a stack.
THREE_D = [
    "model.params={in_channels: 1, out_channels: OUT, spatial_dims: 3, features: 16, depth: 3, norm: instance}",
    "data.patch_shape=[16, 48, 48]",
    "infer.roi_size=[16, 48, 48]",
    "infer.mirror_axes=[0, 1, 2]",
    "data.batch_size=2",
]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _halves(data: Path, work: Path) -> tuple[Path, Path]:
    """Write the left half (training) and the right half (test) of the folder's one image."""
    [image_path] = sorted((data / "images").iterdir())
    image = tifffile.imread(image_path)
    label = tifffile.imread(data / "labels" / image_path.name)
    cut = image.shape[-1] // 2
    folders = []
    for name, part in (("train", slice(0, cut)), ("test", slice(cut, None))):
        root = work / name
        for kind, array in (("images", image), ("labels", label)):
            (root / kind).mkdir(parents=True, exist_ok=True)
            piece = array[..., part]
            if kind == "labels":
                piece = relabel_sequential(piece)[0].astype(np.uint16)
            tifffile.imwrite(root / kind / image_path.name, piece)
        folders.append(root)
    return folders[0], folders[1]


def _medseg(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "medseg", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"medseg {' '.join(args[:2])} failed:\n{done.stdout}\n{done.stderr}")


def _run_medseg(
    train: Path, test: Path, work: Path, iterations: int, three_d: bool
) -> tuple[np.ndarray, float]:
    import yaml

    target = yaml.safe_load(PIPELINE.read_text())["data"]["instance_target"]
    out = "4" if target == "both" else "3"
    settings = [
        f"data.root={train}",
        f"train.iterations={iterations}",
        f"train.validate_every={max(1, iterations // 4)}",
    ]
    if three_d:
        settings += [s.replace("OUT", out) for s in THREE_D]
    cpu0 = _children_cpu()
    _medseg(["train", str(PIPELINE), "--out", str(work / "run"), "--no-progress",
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


def _run_monai(train: Path, test: Path, cpu_budget: float, three_d: bool) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(0)
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


def _external(python: str | None, tool: str, train: Path, test: Path, cpu: float, work: Path):
    if not python or not Path(python).is_file():
        return None
    script = Path(__file__).with_name(f"_{tool}_from_scratch.py")
    out = work / f"{tool}.tif"
    start = _children_cpu()
    done = subprocess.run(
        [python, str(script), str(train), str(test), str(out), str(cpu)], capture_output=True, text=True
    )
    if done.returncode:
        print(f"{tool} failed: {done.stderr[-500:]}", file=sys.stderr)
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


def _benchmark(name: str, data: Path, work: Path, args: argparse.Namespace) -> None:
    three_d = tifffile.imread(next((data / "images").iterdir())).ndim == 3
    train, test = _halves(data, work)
    gt = tifffile.imread(next((test / "labels").iterdir()))
    print(f"\n{name}: {data} ({'3D' if three_d else '2D'}), train left half, score right half; "
          f"medseg {args.iterations_3d if three_d and args.iterations_3d else args.iterations} iterations, "
          "the others the same CPU time (contended machine)")  # fmt: skip
    print("| method | AJI | PQ | Dice | found/ref | train CPU s | wall s |")
    print("|---|---|---|---|---|---|---|", flush=True)
    iterations = args.iterations_3d if three_d and args.iterations_3d else args.iterations

    def medseg() -> tuple[np.ndarray, float]:
        return _run_medseg(train, test, work / "medseg", iterations, three_d)

    budget = {}
    for label, fn in (
        ("medseg default", medseg),
        ("plain watershed (Otsu + distance)", lambda: _run_plain(train, test)),
        ("MONAI BasicUNet + distance watershed", lambda: _run_monai(train, test, budget["cpu"], three_d)),
        (
            "StarDist from scratch",
            lambda: _external(args.stardist_python, "stardist", train, test, budget["cpu"], work),
        ),
    ):
        wall = time.perf_counter()
        result = fn()
        if result is None:
            continue
        budget.setdefault("cpu", result[1])  # medseg's training CPU seconds: the others' budget
        s = _score(result[0], gt)
        print(f"| {label} | {s['aji']:.3f} | {s['pq']:.3f} | {s['dice']:.3f} | {s['found']}/{s['total']} | "
              f"{result[1]:.0f} | {time.perf_counter() - wall:.0f} |", flush=True)  # fmt: skip


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
    parser.add_argument("--stardist-python", help="python of a venv with stardist (skipped when absent)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-nuclei-") as tmp:
        for name, data in (("2D", args.data2d), ("3D", args.data3d)):
            if data is not None:
                _benchmark(name, data, Path(tmp) / name, args)


if __name__ == "__main__":
    main()
