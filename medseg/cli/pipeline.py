"""`medseg run`: a pipeline end to end (fetch, train, predict, evaluate, challenge files, report.md)."""

from __future__ import annotations

import argparse

from medseg.cli._options import add_overrides, add_progress, output_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a benchmark pipeline end to end: fetch, train, evaluate, challenge files, report.md",
        description=(
            "Fetch the pipeline's dataset (skipped when it is already under data.root), train, predict and "
            "score the held-out cases, write them in the challenge's file format (and the test-split "
            "submission where medseg has one), and write OUT/report.md with the measured numbers beside the "
            "published ones. Stages whose inputs have not changed since the last run into OUT are skipped; "
            "an interrupted training continues. --data synthetic runs on synthetic data in the dataset's "
            "layout (nothing is fetched); --smoke shrinks the run to a CI-sized check."
        ),
    )
    parser.add_argument(
        "pipeline",
        help="a pipeline YAML file or the name of a shipped pipeline (e.g. isbi2012_unet_paper; "
        "see pipelines/)",
    )
    parser.add_argument("--out", type=output_path, required=True, help="output (run) folder")
    parser.add_argument(
        "--data",
        choices=("real", "synthetic"),
        default="real",
        help="real: the dataset under data.root (fetched when missing); synthetic: synthetic data in the "
        "same layout, written under OUT/data",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny model, patches and data, 3 iterations (a CI check)"
    )
    add_overrides(parser, "train.iterations=500")
    parser.add_argument(
        "--resume", action="store_true", help="continue training from OUT/checkpoints/latest.pt"
    )
    add_progress(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medseg.pipeline.run import load_run_config, run_pipeline

    config = load_run_config(args.pipeline, args.overrides, data=args.data, smoke=args.smoke, out=args.out)
    result = run_pipeline(
        config, args.out, resume=args.resume, progress=not args.no_progress, data=args.data, smoke=args.smoke
    )
    print(f"pipeline {config.name} finished; outputs in {result.out_dir.resolve()}")
    reused = [s for s in result.skipped if not (s == "fetch" and args.data == "real")]
    if args.data == "real" and "fetch" in result.skipped:
        print(f"  data already under {config.data.root}: nothing fetched")
    if reused:
        print(f"  stages whose inputs are unchanged since the last run (skipped): {', '.join(reused)}")
    if result.validation is not None:
        for metric, value in sorted(result.validation["foreground_mean"].items()):
            print(f"  held-out foreground mean {metric:<12} {value:.4f}")
    if result.challenge is not None:
        for metric, value in sorted(result.challenge["foreground_mean"].items()):
            print(f"  held-out challenge metric {metric:<11} {value:.4f}")
    for path in result.submission:
        print(f"  submission file {path.resolve()}")
    print(f"  report {result.report.resolve()}")
    return 0
