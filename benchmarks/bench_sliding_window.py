"""medseg's sliding-window engine vs MONAI's sliding_window_inference (same as `medseg bench`).

Run: ``python benchmarks/bench_sliding_window.py [--device cuda] [--repeat 3] [--case 2D] [--compile]``.
Prints one table: case, engine, precision, wall and CPU seconds, first-call seconds (compile
time for compiled engines), Mvox/s, speed-up over MONAI eager and (with ``--compile``) over
MONAI compiled at the same precision, max |diff| and label agreement against MONAI fp32, peak
memory. ``--compile`` adds MONAI given ``torch.compile(net, options={"freezing": True})`` and
medseg's ``compile=True``, each in a process of its own.
"""

from __future__ import annotations

import argparse

from medseg.pipeline.bench import bench_sliding_window

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per engine after a warm-up")
    parser.add_argument("--case", nargs="*", default=[], help="only cases whose name starts with these")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument(
        "--compile",
        action="store_true",
        help="add compiled rows: MONAI given torch.compile(net, freezing) and medseg compile=True, each in its own process",
    )
    args = parser.parse_args()
    for line in bench_sliding_window(
        device=args.device,
        repeat=args.repeat,
        names=tuple(args.case),
        precisions=tuple(args.precision),
        compile=args.compile,
    ):
        print(line, flush=True)
