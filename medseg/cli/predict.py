"""`medseg predict`: sliding-window prediction of image files with a trained checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from medseg.cli._options import add_progress, device_name, output_path
from medseg.options import Precision


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict label maps for image files with a trained checkpoint",
        description=(
            "Predict each input image with Gaussian-blended sliding windows and write its label map "
            "(same grid, spacing, origin and direction) to the output folder, named by case id. Cases "
            "whose output exists are skipped, so an interrupted run can simply be started again. Under "
            "torchrun (torchrun --nproc_per_node N -m medseg predict ...) the cases are shared out "
            "across the processes."
        ),
    )
    parser.add_argument(
        "-m",
        "--model",
        type=Path,
        required=True,
        help="checkpoint: the training run folder, its checkpoints/ folder (best.pt) or a .pt file; or a "
        "bioimage.io model package (.zip, its rdf.yaml or folder) with PyTorch weights",
    )
    parser.add_argument(
        "-i",
        "--input",
        type=Path,
        nargs="+",
        required=True,
        help="image files, or folders of them (every image in it)",
    )
    parser.add_argument("-o", "--output", type=output_path, required=True, help="output folder")
    parser.add_argument(
        "--format",
        dest="submission_format",
        default=None,
        help="also write a challenge submission: isbi2012, ctc, glas, monuseg, dental, cremi, labelmap, "
        "instances (the objects of instance formats also get <case>_objects.csv)",
    )
    parser.add_argument(
        "--geojson",
        action="store_true",
        help="also write the objects as QuPath detections, geojson/<case>.geojson (2D: exact outlines, class, "
        "area, mean intensity), and their measurements as <case>_objects.csv",
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
        help="instance models: context read around each block (default: a quarter of the window per axis); "
        "class labels read what the whole image's windows need and equal in-memory prediction",
    )
    parser.add_argument(
        "--ome-zarr",
        action="store_true",
        help="with --block-shape: write <case>.ome.zarr (OME-Zarr NGFF 0.5 label image) instead of <case>.zarr",
    )
    parser.add_argument(
        "--device", type=device_name, default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)"
    )
    parser.add_argument("--precision", choices=Precision.choices(), default=None)
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the model with frozen weights: 1.5-1.8x faster per window on 2 CPU threads, "
        "the first case compiles (15-40 s). Default: on the CPU, compile when the job's windows (all its images or blocks) repay it "
        "(decided after two batches, said in one log line)",
    )
    parser.add_argument(
        "--save-probabilities",
        action="store_true",
        help="also write <case>_probabilities (float32, one channel per class; with --block-shape <case>_probabilities.zarr); "
        "labels alone need far less memory",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="predict cases whose output already exists; restart block-wise outputs left by another job",
    )
    add_progress(parser)
    parser.set_defaults(func=run)


#: CLI option of each ``infer`` key, to name the option in validation errors.
_OPTIONS = {
    "roi_size": "--roi-size",
    "overlap": "--overlap",
    "batch_size": "--batch-size",
    "device": "--device",
    "precision": "--precision",
    "mirror_axes": "--no-tta",
    "compile": "--compile",
}


def _window(checkpoint, chosen: dict):
    """The checkpoint's window with the options given; errors name the CLI options."""
    from medseg.errors import ConfigError
    from medseg.pipeline.windows import window_for_checkpoint

    try:
        return window_for_checkpoint(checkpoint, chosen, source="medseg predict")
    except ConfigError as err:
        message = str(err).removeprefix("medseg predict: ")
        for key, option in _OPTIONS.items():
            message = message.replace(f"'infer.{key}'", f"{option} (infer.{key})")
        raise ConfigError(message) from err


def run(args: argparse.Namespace) -> int:
    import logging

    from medseg.checkpoint_meta import read_checkpoint
    from medseg.errors import ConfigError
    from medseg.exchange.bioimageio_import import is_bioimageio_package
    from medseg.pipeline.predicting import predict_files, shard
    from medseg.pipeline.windows import package_infer_config, sliding_window_from_infer

    if args.halo is not None and args.block_shape is None:
        raise ConfigError("--halo applies only to block-wise prediction: add --block-shape or drop --halo")
    chosen = {
        "roi_size": args.roi_size,
        "overlap": args.overlap,
        "batch_size": args.batch_size,
        "device": args.device,
        "precision": args.precision,
        "mirror_axes": [] if args.no_tta else None,
        "compile": args.compile,
    }
    if is_bioimageio_package(args.model):
        checkpoint = args.model
        window = sliding_window_from_infer(package_infer_config(args.model, chosen), progress=False)
    else:  # loaded once: the window is checked against it, then it predicts
        checkpoint = read_checkpoint(args.model)
        window = _window(checkpoint, chosen)
    if window.compile is None:  # the automatic compile decision is said without -v
        engine_log = logging.getLogger("medseg.infer.compile_policy")
        engine_log.setLevel(min(engine_log.getEffectiveLevel(), logging.INFO))
    results = predict_files(
        checkpoint,
        args.input,
        args.output,
        window=window,
        submission_format=args.submission_format,
        geojson=args.geojson,
        block_shape=args.block_shape,
        halo=args.halo,
        ome_zarr=args.ome_zarr,
        save_probabilities=args.save_probabilities,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    done = [r.case for r in results if not r.skipped]
    rank, world = shard()
    where = f"rank {rank} of {world}: " if world > 1 else ""
    print(
        f"{where}predicted {len(done)} case(s), skipped {len(results) - len(done)} existing; labels in {args.output}"
    )
    counted = [r.objects for r in results if r.objects is not None]
    if counted:
        print(
            f"{where}{sum(counted)} object(s) in {len(counted)} case(s); measurements in <case>_objects.csv"
        )
    if world > 1:
        print(f"{where}cases {', '.join(done) if done else '-'}")
    if args.submission_format:
        print(f"{args.submission_format} submission files in {args.output / args.submission_format}")
    return 0
