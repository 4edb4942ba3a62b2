"""SlidingWindow vs MONAI's sliding_window_inference (same as `medseg bench`); prints a table.

Run: ``python benchmarks/bench_sliding_window.py [--device cuda] [--repeat 3]``.
"""

from __future__ import annotations

import argparse

from medseg.pipeline.bench import bench_sliding_window

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    for line in bench_sliding_window(
        device=args.device, repeat=args.repeat, overlap=args.overlap, batch_size=args.batch_size
    ):
        print(line, flush=True)
