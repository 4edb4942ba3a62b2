"""`medseg train`: train a segmenter from a pipeline YAML (also under ``torchrun`` for DDP)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from medseg.cli._options import add_overrides, add_progress, output_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a segmenter from a pipeline config (e.g. pipelines/*.yaml)",
        description=(
            "Train the model of a pipeline config on its dataset. Writes checkpoints/latest.pt and best.pt, "
            "the resolved config.yaml, train_summary.json and training_curve.png to --out; --resume continues "
            "from latest.pt exactly (same batches and history), --init fine-tunes from another checkpoint. "
            "Under torchrun --nproc_per_node N the same command trains with DDP."
        ),
    )
    parser.add_argument("config", type=Path, help="pipeline YAML, e.g. pipelines/isbi2012.yaml")
    parser.add_argument("--out", type=output_path, required=True, help="output folder")
    add_overrides(parser, "train.iterations=500")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUT/checkpoints/latest.pt (only budgets, intervals, device, workers and the "
        "learning rate may change)",
    )
    parser.add_argument(
        "--init", type=Path, metavar="CKPT", help="fine-tune: start from this checkpoint (sets train.init)"
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="seed everything and use deterministic kernels"
    )
    add_progress(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medseg.checkpoint_meta import read_checkpoint
    from medseg.config import load_config
    from medseg.data.fingerprint import format_fingerprint
    from medseg.pipeline.training import run_training

    main_rank = int(os.environ.get("RANK", "0")) == 0
    if not main_rank:  # under torchrun only rank 0 logs, shows progress and writes results
        logging.getLogger("medseg").setLevel(logging.WARNING)
    overrides = list(args.overrides)
    if args.init is not None:
        overrides.append(f"train.init={args.init}")
    if args.deterministic:
        overrides.append("train.deterministic=true")
    config = load_config(args.config, overrides)
    trained = run_training(
        config,
        args.out,
        resume=args.resume,
        progress=main_rank and not args.no_progress,
        write_results=main_rank,
    )
    if not main_rank:
        return 0
    result = trained.result
    meta = read_checkpoint(trained.best).meta if trained.best.is_file() else None
    if meta is not None and meta.data_fingerprint is not None:
        print(f"data fingerprint ({args.out / 'fingerprint.json'}):")
        print(format_fingerprint(meta.data_fingerprint, config.data.patch_shape))
    print(f"trained {config.model.name} for {result.iterations} iterations on {trained.device}")
    if result.stopped:
        print(f"stopped early: {result.stopped}")
    if trained.init is not None:
        print(
            f"initialised from {config.train.init}: {len(trained.init.loaded)} tensors loaded, "
            f"{len(trained.init.remapped)} remapped by class, {len(trained.init.initialized)} new "
            "(listed in train_summary.json)"
        )
    post = meta.postprocessing if meta is not None else None
    if post and meta is not None:
        how = (
            f"tuned on the held-out data: AJI {post['validation_aji']:.3f} (defaults {post['default_aji']:.3f})"
            if post.get("tuned")
            else f"not tuned: {post['not_tuned']}"
            if post.get("not_tuned")
            else "not tuned (no held-out data, or infer.postprocessing.tune: false)"
        )
        # a flow model has no seeds; its objects are checked by their flow error instead
        flows = meta.targets.has_flows
        first = (
            ("flow_threshold", post.get("flow_threshold", 0.4))
            if flows
            else ("seed_threshold", post["seed_threshold"])
        )
        print(
            f"post-processing: {first[0]} {first[1]:g}, foreground_threshold "
            f"{post['foreground_threshold']:g}, min_size {post['min_size']}, "
            f"{_splitting(post.get('split_size', 0))}; {how}"
        )
    if config.train.final_model == "last" and result.validation:
        print(f"model for predict (train.final_model: last, iteration {result.iterations}): {trained.best}")
    else:
        print(f"best checkpoint: {trained.best}")
    return 0


def _splitting(split_size: int) -> str:
    return f"objects above {split_size} voxels split by size" if split_size else "no splitting by size"
