"""`medseg evaluate`: score predictions against ground truth in a challenge format."""

from __future__ import annotations

import argparse

from medseg.cli._options import add_progress, output_path

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    from medseg.eval.formats import format_names
    from medseg.eval.options import NsdMethod
    from medseg.eval.report import default_workers

    p = subparsers.add_parser("evaluate", help="score predictions against ground truth")
    p.add_argument("--pred", required=True, help="folder with the predictions (CTC: XX_RES)")
    p.add_argument("--gt", required=True, help="folder with the reference labels (CTC: XX_GT or XX_GT/SEG)")
    p.add_argument(
        "--format",
        required=True,
        metavar="FORMAT",
        help=f"challenge file format: {', '.join(format_names())}",
    )
    p.add_argument(
        "-o",
        "--out",
        type=output_path,
        required=True,
        help="output folder for per_case.csv, summary.json, metrics.png",
    )
    p.add_argument(
        "--workers", type=int, default=default_workers(), help="parallel processes (default %(default)s)"
    )
    p.add_argument(
        "--spacing",
        type=float,
        nargs="+",
        default=None,
        help="voxel size in array axis order, only for files without geometry (PNG, BMP); distances "
        "otherwise use the reference file's spacing",
    )
    p.add_argument("--tolerance", type=float, default=1.0, help="surface Dice tolerance (physical units)")
    p.add_argument(
        "--nsd-method",
        type=NsdMethod,
        choices=list(NsdMethod),
        default=NsdMethod.DEEPMIND,
        help="surface Dice: area-weighted surface elements as Nikolov et al./DeepMind surface-distance "
        "(default) or MONAI's boundary-voxel count",
    )
    p.add_argument(
        "--labels",
        nargs="+",
        default=None,
        metavar="ID_OR_DATASET_JSON",
        help="the dataset's foreground labels (ids, or an nnU-Net dataset.json); each is written for "
        "every case, as nnU-Net does (default: the labels found in the references)",
    )
    p.add_argument(
        "--border-threshold",
        type=float,
        default=None,
        metavar="NM",
        help="CREMI only: ignore reference voxels within this distance (nm) of an in-section neuron "
        "border, as cremi_python's NeuronIds (the official example uses 200; the leaderboard's value "
        "is not published). Default: score every voxel",
    )
    p.add_argument("--no-plot", action="store_true", help="skip metrics.png")
    add_progress(p)
    p.set_defaults(func=run)


def _labels(values: list[str] | None) -> list[int] | None:
    from medseg.errors import ConfigError
    from medseg.eval.report import labels_from_dataset_json

    if values is None:
        return None
    if len(values) == 1 and values[0].endswith(".json"):
        return labels_from_dataset_json(values[0])
    try:
        labels = sorted({int(v) for v in values})
    except ValueError:
        raise ConfigError(
            f"--labels {' '.join(values)}: expected label ids (integers > 0) or one dataset.json"
        ) from None
    if labels[0] <= 0:
        raise ConfigError(f"--labels {' '.join(values)}: label ids must be > 0 (0 is background)")
    return labels


def run(args: argparse.Namespace) -> int:
    from medseg.eval.report import evaluate_folders

    summary = evaluate_folders(
        args.pred,
        args.gt,
        args.format,
        args.out,
        workers=args.workers,
        spacing=args.spacing,
        tolerance=args.tolerance,
        nsd_method=args.nsd_method,
        labels=_labels(args.labels),
        border_threshold=args.border_threshold,
        plot=not args.no_plot,
        progress=not args.no_progress,
    )
    for name, value in sorted(summary["foreground_mean"].items()):
        print(f"{name}: {value:.6g}")
    for name, value in sorted(summary["pooled"].items()):
        print(f"pooled {name}: {value:.6g}")
    return 0
