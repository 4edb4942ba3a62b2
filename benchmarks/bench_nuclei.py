"""Nuclei instance segmentation: ``medseg`` vs a plain MONAI BasicUNet + distance watershed, same budget.

Issue 13's comparison. Both methods see the same split of synthetic fluorescence
nuclei images with instance masks (:mod:`medseg.data.synthetic.nuclei`; no real
nuclei image with an instance mask ships offline here) and train for the same number
of minutes of wall-clock time on the same CPU threads, back to back:

- **medseg**: what a user runs, through the CLI: ``medseg train`` on the lab folder
  with ``data.label_kind: instances`` (``--targets distance`` and/or ``boundary``), a
  U-Net of 16 features and depth 3 (0.48 M parameters, about the baseline's 0.50 M),
  then ``medseg predict --format monuseg``;
- **baseline**: a plain MONAI script: ``BasicUNet`` (features (16, 16, 32, 64, 128, 16))
  trained on the binary foreground with ``DiceCELoss``, AdamW, random 128² crops with
  flips, then the classic distance watershed (Euclidean distance transform of the
  predicted foreground, ``peak_local_max`` seeds at least ``radius`` apart, watershed).

Both are scored by the same code, ``medseg evaluate --format monuseg`` on the held-out
images (AJI, pixel Dice of the object masks, objects found). One table: method, AJI,
Dice, objects found / reference objects, training iterations, wall s, CPU s.

Usage::

    python benchmarks/bench_nuclei.py --minutes 3           # the issue's 3-minute run (quiet machine)
    python benchmarks/bench_nuclei.py --minutes 0.2 --size 128   # smoke
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
import torch
import yaml
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.networks.nets import BasicUNet
from PIL import Image
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

from medseg.data.synthetic.nuclei import write_nuclei_folder
from medseg.eval.report import evaluate_folders

RADIUS = 8.0


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _write_data(root: Path, size: int, n_train: int, n_test: int) -> tuple[Path, Path]:
    n_nuclei = int(size * size / 1100)
    lab = write_nuclei_folder(root / "lab", n_images=n_train + n_test, shape=(size, size), n_nuclei=n_nuclei,
                              radius=RADIUS, seed=0)  # fmt: skip
    test = root / "test"
    for kind in ("images", "labels"):
        (test / kind).mkdir(parents=True)
        for path in sorted((lab / kind).iterdir())[n_train:]:
            path.rename(test / kind / path.name)
    return lab, test


def _medseg(lab: Path, test: Path, work: Path, minutes: float, target: str) -> dict:
    config = {
        "name": f"nuclei-{target}",
        "data": {
            "dataset": "lab_folder", "root": str(lab), "label_kind": "instances", "instance_target": target,
            "classes": ["background", "nucleus"], "patch_shape": [128, 128], "batch_size": 4,
            "validation_slices": 1,
        },
        "model": {"name": "unet", "params": {"in_channels": 1, "out_channels": 3, "features": 16, "depth": 3}},
        "train": {"iterations": 100000, "learning_rate": 0.003, "max_minutes": minutes,
                  "validate_every": 100, "checkpoint_every": 100},
        "infer": {"roi_size": [128, 128], "overlap": 0.5, "mirror_axes": [0, 1]},
    }  # fmt: skip
    path = work / f"medseg_{target}.yaml"
    path.write_text(yaml.safe_dump(config))
    run, pred = work / f"run_{target}", work / f"pred_{target}"
    medseg = [sys.executable, "-m", "medseg"]
    subprocess.run(
        [*medseg, "train", str(path), "--out", str(run), "--no-progress"], check=True, capture_output=True
    )
    images = sorted(str(p) for p in (test / "images").iterdir())
    predict = [*medseg, "predict", "-m", str(run), "-i", *images, "-o", str(pred), "--format", "monuseg"]
    subprocess.run([*predict, "--no-progress"], check=True, capture_output=True)
    summary = json.loads((run / "train_summary.json").read_text())
    return {"folder": pred / "monuseg", "iterations": summary.get("iterations")}


def _zscore(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float32)
    return (image - image.mean()) / max(float(image.std()), 1e-6)


def _baseline(lab: Path, test: Path, work: Path, minutes: float) -> dict:
    rng = np.random.default_rng(0)
    names = sorted(p.name for p in (lab / "images").iterdir())[:-1]  # the last is medseg's validation case
    images = [_zscore(tifffile.imread(lab / "images" / n)) for n in names]
    masks = [(tifffile.imread(lab / "labels" / n) > 0).astype(np.float32) for n in names]
    model = BasicUNet(spatial_dims=2, in_channels=1, out_channels=2, features=(16, 16, 32, 64, 128, 16))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    crop, iterations, start = 128, 0, time.perf_counter()
    model.train()
    while time.perf_counter() - start < minutes * 60:
        xs, ys = [], []
        for _ in range(4):
            k = rng.integers(len(images))
            y0, x0 = (rng.integers(0, s - crop + 1) for s in images[k].shape)
            x, y = images[k][y0 : y0 + crop, x0 : x0 + crop], masks[k][y0 : y0 + crop, x0 : x0 + crop]
            for axis in (0, 1):
                if rng.random() < 0.5:
                    x, y = np.flip(x, axis), np.flip(y, axis)
            xs.append(x.copy())
            ys.append(y.copy())
        batch = torch.from_numpy(np.stack(xs)[:, None])
        target = torch.from_numpy(np.stack(ys)[:, None])
        optimizer.zero_grad()
        loss = loss_fn(model(batch), target)
        loss.backward()
        optimizer.step()
        iterations += 1
    model.eval()
    folder = work / "baseline"
    folder.mkdir()
    for path in sorted((test / "images").iterdir()):
        image = torch.from_numpy(_zscore(tifffile.imread(path)))[None, None]
        with torch.inference_mode():
            logits = sliding_window_inference(image, (crop, crop), 4, model, overlap=0.5, mode="gaussian")
        foreground = logits[0].argmax(0).numpy() > 0
        distance = ndimage.distance_transform_edt(foreground)
        peaks = peak_local_max(distance, min_distance=int(RADIUS), labels=ndimage.label(foreground)[0])
        markers = np.zeros(foreground.shape, np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        instances = watershed(-distance, markers, mask=foreground)
        Image.fromarray(instances.astype(np.uint16)).save(folder / f"{path.stem}.png")
    return {"folder": folder, "iterations": iterations}


def _score(folder: Path, test: Path, work: Path, name: str) -> dict:
    summary = evaluate_folders(
        folder, test / "labels", "monuseg", work / f"scores_{name}", workers=1, plot=False
    )
    found = sum(len(np.unique(np.asarray(Image.open(p)))) - 1 for p in sorted(folder.glob("*.png")))
    total = sum(int(tifffile.imread(p).max()) for p in sorted((test / "labels").iterdir()))
    mean = summary["foreground_mean"]
    return {"aji": mean["aji"], "dice": mean["dice"], "found": found, "total": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training minutes per method (default 3)")
    parser.add_argument("--size", type=int, default=256, help="image edge in pixels (default 256)")
    parser.add_argument(
        "--train-images", type=int, default=5, help="training images (the last validates medseg)"
    )
    parser.add_argument("--test-images", type=int, default=3)
    parser.add_argument(
        "--targets", nargs="+", default=["distance", "boundary"], choices=["distance", "boundary"]
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench-nuclei-") as tmp:
        work = Path(tmp)
        lab, test = _write_data(work, args.size, args.train_images, args.test_images)
        runs = [
            (f"medseg ({t} target)", lambda t=t: _medseg(lab, test, work, args.minutes, t))
            for t in args.targets
        ]
        runs.append(
            ("MONAI BasicUNet + distance watershed", lambda: _baseline(lab, test, work, args.minutes))
        )
        print(f"{args.train_images} training / {args.test_images} test images of {args.size}², {args.minutes} min "
              f"training each, {args.threads} threads (synthetic nuclei)", flush=True)  # fmt: skip
        print(f"{'method':<38} {'AJI':>6} {'Dice':>6} {'found':>9} {'iters':>6} {'wall s':>7} {'cpu s':>7}")
        for name, fn in runs:
            cpu0, wall0 = _cpu(), time.perf_counter()
            result = fn()
            wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
            s = _score(result["folder"], test, work, name.split()[0] + str(len(name)))
            print(
                f"{name:<38} {s['aji']:>6.3f} {s['dice']:>6.3f} {s['found']:>4}/{s['total']:<4} "
                f"{result['iterations']:>6} {wall:>7.1f} {cpu:>7.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
