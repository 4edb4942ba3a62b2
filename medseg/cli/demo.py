"""`medseg demo`: train, predict and evaluate on a generated EM dataset, end to end."""

from __future__ import annotations

import argparse
from pathlib import Path

from medseg.cli._options import add_overrides, add_progress, output_path
from medseg.config import apply_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the main job end to end on a bundled synthetic EM dataset",
        description=(
            "Generate an ISBI-2012-like EM dataset, train a 2D U-Net, predict the held-out stack with "
            "sliding windows and write the labels, an overlay PNG and metrics.json."
        ),
    )
    parser.add_argument(
        "--out", type=output_path, default=Path("medseg-demo"), help="output folder (default: ./medseg-demo)"
    )
    parser.add_argument("--iterations", type=int, default=None, help="training iterations (default: 300)")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its latest checkpoint"
    )
    add_overrides(parser, "infer.overlap=0.25")
    add_progress(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medseg.pipeline.demo import run_demo

    overrides = apply_overrides({}, args.overrides)
    if args.iterations is not None:
        overrides.setdefault("train", {})["iterations"] = args.iterations
    result = run_demo(args.out, overrides=overrides, resume=args.resume, progress=not args.no_progress)
    metrics = result.metrics
    print(f"medseg demo finished in {metrics['wall_seconds']:.0f} s on {metrics['device']}")
    for name, scores in metrics["mean"].items():
        print(f"  held-out mean Dice {name:<9} {scores['dice']:.4f}   IoU {scores['iou']:.4f}")
    print("outputs:")
    for name, path in result.outputs.items():
        print(f"  {name:<16} {Path(path).resolve()}")
    return 0
