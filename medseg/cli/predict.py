"""`medseg predict`: sliding-window prediction of image files with a trained checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from medseg.cli._options import add_progress, device_name, output_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict label maps for image files with a trained checkpoint",
        description=(
            "Predict each input image with Gaussian-blended sliding windows and write its label map "
            "(same grid, spacing, origin and direction) to the output folder. Cases whose output exists "
            "are skipped, so an interrupted run can simply be started again."
        ),
    )
    parser.add_argument(
        "-m", "--model", type=Path, required=True, help="checkpoint file or its folder (best.pt)"
    )
    parser.add_argument("-i", "--input", type=Path, nargs="+", required=True, help="image files")
    parser.add_argument("-o", "--output", type=output_path, required=True, help="output folder")
    parser.add_argument(
        "--format",
        dest="submission_format",
        default=None,
        help="also write a challenge submission: isbi2012, ctc, glas, monuseg, dental, labelmap",
    )
    parser.add_argument(
        "--roi-size", type=int, nargs="+", default=None, help="window size (default: training's)"
    )
    parser.add_argument(
        "--overlap", type=float, default=None, help="window overlap in [0, 1) (default: training's)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="windows per forward pass")
    parser.add_argument("--no-tta", action="store_true", help="disable flip test-time augmentation")
    parser.add_argument(
        "--block-shape",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="predict out of core, block by block, into <case>.zarr (for stacks larger than memory; resumable)",
    )
    parser.add_argument(
        "--halo",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="context read around each block (default: a quarter of the window per axis)",
    )
    parser.add_argument(
        "--device", type=device_name, default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)"
    )
    parser.add_argument("--precision", choices=["float32", "bfloat16", "float16"], default=None)
    parser.add_argument("--overwrite", action="store_true", help="predict cases whose output already exists")
    add_progress(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medseg.config import InferConfig
    from medseg.pipeline.predicting import predict_files
    from medseg.pipeline.training import sliding_window_from_infer
    from medseg.train.checkpoint import load_checkpoint

    checkpoint = args.model / "best.pt" if args.model.is_dir() else args.model
    trained = load_checkpoint(checkpoint)["metadata"].get("config", {}).get("infer", {})
    chosen = {
        "roi_size": args.roi_size,
        "overlap": args.overlap,
        "batch_size": args.batch_size,
        "device": args.device,
        "precision": args.precision,
        "mirror_axes": [] if args.no_tta else None,
    }
    infer = InferConfig.model_validate({**trained, **{k: v for k, v in chosen.items() if v is not None}})
    window = sliding_window_from_infer(infer, progress=False)
    results = predict_files(
        checkpoint,
        args.input,
        args.output,
        window=window,
        submission_format=args.submission_format,
        block_shape=args.block_shape,
        halo=args.halo,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    done = sum(not r.skipped for r in results)
    print(f"predicted {done} case(s), skipped {len(results) - done} existing; labels in {args.output}")
    if args.submission_format:
        print(f"{args.submission_format} submission files in {args.output / args.submission_format}")
    return 0
