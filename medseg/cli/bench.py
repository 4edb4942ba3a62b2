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
            "sliding_window_inference and print one table: wall and CPU seconds, Mvox/s, speed-up, "
            "largest difference, label agreement and peak memory. The other benchmarks are scripts "
            "in benchmarks/."
        ),
    )
    parser.add_argument(
        "--device", type=device_name, default=None, help="cpu, cuda ... (default: cuda if available)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per engine after a warm-up")
    parser.add_argument("--case", nargs="*", default=[], help="only cases whose name starts with these")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument(
        "--compile",
        action="store_true",
        help="add compiled rows: MONAI given torch.compile(net, freezing) and medseg compile=True, each in its own process",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medseg.pipeline.bench import bench_sliding_window

    for line in bench_sliding_window(
        device=args.device,
        repeat=args.repeat,
        names=tuple(args.case),
        precisions=tuple(args.precision),
        compile=args.compile,
    ):
        print(line, flush=True)
    return 0
