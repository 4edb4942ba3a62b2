"""Training throughput: ``medseg train``'s loop vs a plain MONAI-style loop, in one run.

Both loops train the same network (the demo's U-Net unless ``--features/--depth``
say otherwise) on the same patches with the same augmentation
(:class:`medseg.data.dataset.PatchDataset` over a synthetic ISBI-2012-like stack), the
same batch size, AdamW and Dice + cross entropy (MONAI's ``DiceCELoss`` in the plain
loop). The medseg side is :func:`medseg.pipeline.training.train_from_config`, i.e.
exactly what ``medseg train`` runs (history, checkpoints, exact-resume stream). Each
setting (0 and 2 data workers, float32 and bfloat16 autocast) is measured for both
loops back to back, after one short warm-up run of each (first-use costs such as
imports are paid there); the table gives patches/s (wall) and CPU seconds per patch
of the training process (DataLoader workers' CPU is not included).

Usage::

    python benchmarks/bench_training.py [--iterations 30] [--batch-size 8] [--patch 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import torch
from monai.losses import DiceCELoss
from torch.utils.data import DataLoader, RandomSampler

from medseg.config import config_from_dict
from medseg.data.synthetic.em import write_isbi2012
from medseg.infer.normalize import ZScore
from medseg.models import build_model
from medseg.pipeline.datasets import load_training_samples
from medseg.pipeline.training import build_dataset, train_from_config


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
            "infer": {"roi_size": [args.patch, args.patch]},
        },
        source="bench",
    )


def _medseg(config, samples, out: Path) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    train_from_config(config, samples, [], out)
    return time.perf_counter() - wall, time.process_time() - cpu


def _plain(config, samples) -> tuple[float, float]:
    """A plain loop: shuffled DataLoader, autocast forward, DiceCELoss, AdamW step."""
    wall, cpu = time.perf_counter(), time.process_time()
    device = torch.device(config.train.device or "cpu")
    torch.manual_seed(0)
    model = build_model(config.model.name, **config.model.params).to(device)
    dataset = build_dataset(config, samples, ZScore.fit(s.image.array for s in samples))
    sampler = RandomSampler(
        range(10**9), replacement=True, num_samples=config.train.iterations * config.data.batch_size
    )
    loader = DataLoader(
        dataset, batch_size=config.data.batch_size, sampler=sampler, num_workers=config.data.num_workers
    )
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.learning_rate)
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(config.train.precision)
    for image, label in loader:
        image, label = image.to(device), label.to(device)
        autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with autocast:
            logits = model(image)
        loss = loss_fn(logits.float(), label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_isbi2012(root, shape=(10, 256, 256), seed=0)
        patches = args.iterations * args.batch_size
        print(
            f"{args.iterations} iterations x batch {args.batch_size}, patch {args.patch}^2, U-Net "
            f"features={args.features} depth={args.depth}, device {args.device}, torch threads {torch.get_num_threads()}"
        )
        print(
            f"{'workers':>7} {'precision':>9} | {'medseg p/s':>10} {'plain p/s':>9} {'ratio':>6} | "
            f"{'medseg cpu s/p':>14} {'plain cpu s/p':>13}"
        )
        warm = _config(root, argparse.Namespace(**{**vars(args), "iterations": 2}), 0, "float32")
        warm_samples, _ = load_training_samples(warm.data)
        _medseg(warm, warm_samples, Path(tmp) / "warm-up")  # first-use costs (imports, kernels) paid once
        _plain(warm, warm_samples)
        for workers in args.workers:
            for precision in args.precisions:
                config = _config(root, args, workers, precision)
                samples, _ = load_training_samples(config.data)
                m_wall, m_cpu = _medseg(config, samples, Path(tmp) / f"run-{workers}-{precision}")
                p_wall, p_cpu = _plain(config, samples)
                print(
                    f"{workers:>7} {precision:>9} | {patches / m_wall:>10.1f} {patches / p_wall:>9.1f} "
                    f"{p_wall / m_wall:>6.2f} | {m_cpu / patches:>14.3f} {p_cpu / patches:>13.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
