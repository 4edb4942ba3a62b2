"""The sliding-window engine's own work per call: an identity network, so no convolution counts.

Run: ``python benchmarks/bench_engine_overhead.py [--repeat 9]``. Prints one table: for the
GPU benchmark's 3D and 2D window layouts on the CPU, the median and best time of a call
with the blending map made anew (its cache cleared before the call, as every call did
before the map was cached) and with the cached map, interleaved call by call.
"""

from __future__ import annotations

import argparse
import time

import torch

from medseg.infer import blending
from medseg.infer import sliding_window as engine

CASES = [
    ("3D 256^3 roi 128", (256, 256, 256), (128, 128, 128), 0.5, 4),
    ("2D 4352^2 roi 512", (4352, 4352), (512, 512), 0.25, 8),
]


def _call(window: engine.SlidingWindow, image: torch.Tensor, *, fresh_map: bool) -> float:
    if fresh_map:
        blending.weight_map.cache_clear()
    start = time.perf_counter()
    window(torch.nn.Identity(), image)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="interleaved calls of each kind")
    args = parser.parse_args()
    print(f"cpu, {torch.get_num_threads()} threads; {args.repeat} interleaved calls of each kind, ms")
    print(f"{'case':<18} {'map per call: median':>21} {'best':>7} {'cached map: median':>19} {'best':>7}")
    for name, shape, roi, overlap, batch in CASES:
        image = torch.rand(1, 1, *shape)
        window = engine.SlidingWindow(roi, overlap=overlap, batch_size=batch, device="cpu")
        window(torch.nn.Identity(), image)  # first call apart
        fresh, cached = [], []
        for _ in range(args.repeat):
            fresh.append(_call(window, image, fresh_map=True))
            cached.append(_call(window, image, fresh_map=False))
        fresh.sort()
        cached.sort()
        middle = args.repeat // 2
        print(
            f"{name:<18} {fresh[middle] * 1e3:>21.1f} {fresh[0] * 1e3:>7.1f} "
            f"{cached[middle] * 1e3:>19.1f} {cached[0] * 1e3:>7.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
