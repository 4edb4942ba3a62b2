"""`medseg bench`: time sliding-window inference against MONAI on this machine."""

from __future__ import annotations

import argparse

from medseg.cli._options import device_name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="time sliding-window inference against MONAI's on this machine (CPU or GPU)",
        description=(
            "Predict the same images with the same U-Net through medseg's SlidingWindow and MONAI's "
            "sliding_window_inference and print the times, their ratio and the largest value difference. "
            "The other benchmarks are scripts in benchmarks/."
        ),
    )
    parser.add_argument(
        "--device", type=device_name, default=None, help="cpu, cuda ... (default: cuda if available)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="timed repetitions; the best is reported")
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medseg.pipeline.bench import bench_sliding_window

    for line in bench_sliding_window(
        device=args.device, repeat=args.repeat, overlap=args.overlap, batch_size=args.batch_size
    ):
        print(line, flush=True)
    return 0
