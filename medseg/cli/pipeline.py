"""`medseg run`: a pipeline YAML end to end (train, evaluate held-out cases, challenge submission)."""

from __future__ import annotations

import argparse
from pathlib import Path

from medseg.cli._options import add_overrides, add_progress, output_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a pipeline YAML end to end: train, evaluate held-out cases, write the challenge submission",
        description=(
            "Train the pipeline's model on its dataset, predict and score the held-out validation cases "
            "(per_case.csv, summary.json, plot) and, for datasets with a challenge test split, write the "
            "submission files. Get the data first with `medseg fetch`."
        ),
    )
    parser.add_argument("pipeline", type=Path, help="pipeline YAML, e.g. pipelines/isbi2012.yaml")
    parser.add_argument("--out", type=output_path, required=True, help="output folder")
    add_overrides(parser, "train.iterations=500")
    parser.add_argument(
        "--resume", action="store_true", help="continue training from OUT/checkpoints/latest.pt"
    )
    add_progress(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medseg.config import load_config
    from medseg.pipeline.run import run_pipeline

    config = load_config(args.pipeline, args.overrides)
    result = run_pipeline(config, args.out, resume=args.resume, progress=not args.no_progress)
    print(f"pipeline {config.name} finished; outputs in {result.out_dir.resolve()}")
    if result.validation is not None:
        for metric, value in sorted(result.validation["foreground_mean"].items()):
            print(f"  held-out foreground mean {metric:<12} {value:.4f}")
    for path in result.submission:
        print(f"  submission file {path.resolve()}")
    return 0
