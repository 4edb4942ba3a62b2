"""Training throughput and Dice: ``medseg train``'s loop vs a plain MONAI training script, in one run.

The MONAI side is the script a MONAI user writes for 2D segmentation (after MONAI's
``unet_training_dict.py`` tutorial): one PNG per section, a list of ``{"image", "label"}``
dicts, MONAI dict transforms (``LoadImaged``, ``EnsureChannelFirstd``, ``ScaleIntensityd``,
``RandCropByPosNegLabeld`` with 4 patches per image, ``RandFlipd``, ``RandRotate90d``,
``Rand2DElasticd``), ``monai.data.Dataset`` and ``DataLoader`` with 2 workers, ``DiceCELoss``
and ``AdamW``. The medseg side is :func:`medseg.pipeline.training.train_from_config`,
exactly what ``medseg train`` runs (class-balanced patches, elastic + flips + rotations +
intensity jitter, history, checkpoints). Both train the same network (the demo's U-Net
unless ``--features/--depth`` say otherwise), with the same patch size, patches per
iteration, learning rate and number of iterations, on a synthetic ISBI-2012-like stack;
Dice of the membrane class is measured afterwards on the synthetic test stack (the same
sliding window for both). Synthetic data proves plumbing, not accuracy: equal Dice says
both trained as well in the same number of steps, nothing about real EM images. The last
column is the share of the medseg model's test labels that bfloat16 prediction leaves as
float32 prediction gives them (a trained network has few near-ties, unlike a random one).

Each setting (medseg's data workers, float32 / bfloat16 autocast) is measured for both,
back to back, after one short warm-up run of each (first-use costs such as imports are
paid there). The table gives patches/s (wall, whole run including data loading) and CPU
seconds per patch of the training process (DataLoader workers' CPU is not included).

Usage::

    python benchmarks/bench_training.py [--iterations 120] [--batch-size 8] [--patch 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.losses import DiceCELoss
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    LoadImage,
    LoadImaged,
    Rand2DElasticd,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandRotate90d,
    ScaleIntensity,
    ScaleIntensityd,
)
from PIL import Image

from medseg.config import config_from_dict
from medseg.data.em import isbi_labels_to_classes
from medseg.data.synthetic.em import write_isbi2012
from medseg.eval.overlap import dice_score
from medseg.infer.predictor import Predictor
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import read
from medseg.models import build_model
from medseg.pipeline.datasets import load_training_samples
from medseg.pipeline.training import train_from_config
from medseg.train.checkpoint import load_checkpoint

_PATCHES_PER_IMAGE = 4  # RandCropByPosNegLabeld(num_samples=4), as in MONAI's 2D tutorial


def _config(root: Path, args: argparse.Namespace, workers: int, precision: str):
    return config_from_dict(
        {
            "data": {
                "dataset": "isbi2012",
                "root": str(root),
                "patch_shape": [args.patch, args.patch],
                "batch_size": args.batch_size,
                "validation_slices": 0,
                "num_workers": workers,
            },
            "model": {
                "name": "unet",
                "params": {
                    "in_channels": 1,
                    "out_channels": 2,
                    "features": args.features,
                    "depth": args.depth,
                },
            },
            "train": {
                "iterations": args.iterations,
                "checkpoint_every": 10**6,
                "precision": precision,
                "device": args.device,
            },
            "infer": {"roi_size": [args.patch, args.patch], "mirror_axes": []},
        },
        source="bench",
    )


def _sections_as_png(root: Path, out: Path) -> tuple[list[dict], list[dict]]:
    """Train and test sections as one PNG per section (membrane = 1), as a MONAI user's data folder."""
    files: dict[str, list[dict]] = {}
    for part in ("train", "test"):
        images = read(root / f"{part}-volume.tif").array[0]
        labels = isbi_labels_to_classes(read(root / f"{part}-labels.tif").array[0])
        files[part] = []
        for z, (image, label) in enumerate(zip(images, labels, strict=True)):
            pair = {"image": out / f"{part}-{z:03d}.png", "label": out / f"{part}-{z:03d}-label.png"}
            Image.fromarray(image.astype(np.uint8)).save(pair["image"])
            Image.fromarray(label.astype(np.uint8)).save(pair["label"])
            files[part].append({k: str(v) for k, v in pair.items()})
    return files["train"], files["test"]


def _medseg(config, samples, out: Path) -> tuple[float, float, torch.nn.Module]:
    wall, cpu = time.perf_counter(), time.process_time()
    trained = train_from_config(config, samples, [], out)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    checkpoint = trained.best if trained.best.exists() else trained.checkpoint_dir / "latest.pt"
    return wall, cpu, load_checkpoint(checkpoint)


def _monai_script(config, train_files: list[dict]) -> tuple[float, float, torch.nn.Module]:
    """The MONAI user's training script, run for ``config.train.iterations`` steps."""
    wall, cpu = time.perf_counter(), time.process_time()
    keys = ["image", "label"]
    transforms = Compose(
        [
            LoadImaged(keys=keys),
            EnsureChannelFirstd(keys=keys),
            ScaleIntensityd(keys="image"),
            RandCropByPosNegLabeld(
                keys=keys,
                label_key="label",
                spatial_size=config.data.patch_shape,
                pos=1,
                neg=1,
                num_samples=_PATCHES_PER_IMAGE,
            ),
            RandFlipd(keys=keys, prob=0.5, spatial_axis=0),
            RandFlipd(keys=keys, prob=0.5, spatial_axis=1),
            RandRotate90d(keys=keys, prob=0.5, spatial_axes=(0, 1)),
            Rand2DElasticd(
                keys=keys, spacing=(20, 20), magnitude_range=(1, 2), prob=0.5, mode=("bilinear", "nearest")
            ),
        ]
    )
    loader = DataLoader(
        Dataset(train_files, transforms),
        batch_size=max(1, config.data.batch_size // _PATCHES_PER_IMAGE),
        shuffle=True,
        num_workers=2,
    )
    device = torch.device(config.train.device or "cpu")
    torch.manual_seed(0)
    model = build_model(config.model.name, **config.model.params).to(device)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.learning_rate)
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(config.train.precision)
    step = 0
    while step < config.train.iterations:
        for batch in loader:
            image, label = batch["image"].to(device), batch["label"].to(device)
            autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
            with autocast:
                logits = model(image)
            loss = loss_fn(logits.float(), label)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step == config.train.iterations:
                break
    return time.perf_counter() - wall, time.process_time() - cpu, model.eval()


def _medseg_dice(checkpoint: dict, root: Path, window: SlidingWindow) -> tuple[float, float]:
    """Dice of the medseg model, and % of its labels that bfloat16 prediction leaves unchanged."""
    images = read(root / "test-volume.tif").array[0].astype(np.float32)
    labels = isbi_labels_to_classes(read(root / "test-labels.tif").array[0])
    predicted = {}
    for precision in ("float32", "bfloat16"):
        predictor = Predictor.from_checkpoint(checkpoint, dataclasses.replace(window, precision=precision))
        predicted[precision] = np.stack([predictor.predict_label_array(image[None]) for image in images])
    agree = float(np.mean(predicted["float32"] == predicted["bfloat16"]) * 100)
    return dice_score(labels, predicted["float32"], label=1), agree


def _monai_dice(model: torch.nn.Module, test_files: list[dict], window: SlidingWindow) -> float:
    """Dice of the MONAI script's model, its sections read and scaled as it trained on them."""
    load = LoadImage(image_only=True, ensure_channel_first=True)
    scale = ScaleIntensity()
    images = torch.stack([scale(load(f["image"])).as_tensor() for f in test_files]).float()
    labels = np.stack([np.asarray(load(f["label"]))[0] for f in test_files])
    predicted = window.predict_labels(model, images).numpy()
    return dice_score(labels, predicted, label=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=8, help="patches per iteration (both sides)")
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="medseg's data workers")
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    args = parser.parse_args()
    if args.batch_size % _PATCHES_PER_IMAGE:
        parser.error(f"--batch-size must be a multiple of {_PATCHES_PER_IMAGE} (MONAI's patches per image)")
    window = SlidingWindow((args.patch, args.patch), batch_size=4, device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root, pngs = Path(tmp) / "data", Path(tmp) / "png"
        write_isbi2012(root, shape=(10, 256, 256), seed=0)
        pngs.mkdir()
        train_files, test_files = _sections_as_png(root, pngs)
        patches = args.iterations * args.batch_size
        print(
            f"{args.iterations} iterations x {args.batch_size} patches of {args.patch}^2, U-Net "
            f"features={args.features} depth={args.depth}, device {args.device}, "
            f"torch threads {torch.get_num_threads()}; MONAI script: 2 DataLoader workers; "
            "Dice of the membrane class on the synthetic test stack"
        )
        print(
            f"{'workers':>7} {'precision':>9} | {'medseg p/s':>10} {'MONAI p/s':>9} {'ratio':>6} | "
            f"{'medseg cpu s/p':>14} {'MONAI cpu s/p':>13} | {'medseg Dice':>11} {'MONAI Dice':>10} "
            f"{'bf16 agree %':>12}"
        )
        warm = _config(root, argparse.Namespace(**{**vars(args), "iterations": 2}), 0, "float32")
        warm_samples, _ = load_training_samples(warm.data)
        _medseg(warm, warm_samples, Path(tmp) / "warm-up")  # first-use costs (imports, kernels) paid once
        _monai_script(warm, train_files)
        for workers in args.workers:
            for precision in args.precisions:
                config = _config(root, args, workers, precision)
                samples, _ = load_training_samples(config.data)
                m_wall, m_cpu, checkpoint = _medseg(config, samples, Path(tmp) / f"run-{workers}-{precision}")
                p_wall, p_cpu, model = _monai_script(config, train_files)
                m_dice, bf16_agree = _medseg_dice(checkpoint, root, window)
                p_dice = _monai_dice(model, test_files, window)
                print(
                    f"{workers:>7} {precision:>9} | {patches / m_wall:>10.1f} {patches / p_wall:>9.1f} "
                    f"{p_wall / m_wall:>6.2f} | {m_cpu / patches:>14.3f} {p_cpu / patches:>13.3f} | "
                    f"{m_dice:>11.3f} {p_dice:>10.3f} {bf16_agree:>12.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
