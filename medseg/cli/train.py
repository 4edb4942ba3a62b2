"""`medseg train`: train a segmenter from a pipeline YAML."""

from __future__ import annotations

import argparse
from pathlib import Path

from medseg.cli._options import add_overrides, add_progress, output_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a segmenter from a pipeline config (e.g. medseg/resources/pipelines/*.yaml)",
        description=(
            "Train the model of a pipeline config on its dataset. Writes checkpoints/latest.pt and best.pt, "
            "the resolved config.yaml and training_curve.png to --out; --resume continues from latest.pt."
        ),
    )
    parser.add_argument("config", type=Path, help="pipeline YAML, e.g. pipelines/isbi2012.yaml")
    parser.add_argument("--out", type=output_path, required=True, help="output folder")
    add_overrides(parser, "train.iterations=500")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest.pt")
    add_progress(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medseg.config import load_config
    from medseg.pipeline.datasets import load_training_samples
    from medseg.pipeline.plots import plot_training
    from medseg.pipeline.results import write_json, write_yaml
    from medseg.pipeline.training import train_from_config

    config = load_config(args.config, args.overrides)
    train_samples, val_samples = load_training_samples(config.data)
    trained = train_from_config(
        config, train_samples, val_samples, args.out, resume=args.resume, progress=not args.no_progress
    )
    write_yaml(args.out / "config.yaml", config.model_dump(mode="json"))
    plot_training(args.out / "training_curve.png", trained.result.losses, trained.result.validation)
    summary = {
        "iterations": trained.result.iterations,
        "seconds": round(trained.result.seconds, 2),
        "best_validation": trained.result.best_score,
        "validation": trained.result.validation,
        "device": trained.device,
    }
    write_json(args.out / "train_summary.json", summary)
    print(f"trained {config.model.name} for {trained.result.iterations} iterations on {trained.device}")
    print(f"best checkpoint: {trained.best}")
    return 0
