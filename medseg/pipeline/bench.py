"""``medseg bench``: time medseg's SlidingWindow against MONAI's sliding_window_inference on the same work.

Also ``python benchmarks/bench_sliding_window.py [--device cuda]``. Prints a table; not a test.

Both blend Gaussian-weighted windows (sigma = 0.125 * roi) with the same overlap and
window batch size. The tilings differ (medseg spreads windows evenly, MONAI steps from
the origin), so the outputs of a real U-Net differ slightly near window seams; the
"max |diff|" column uses a pointwise model for which every tiling gives the exact answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch
from monai.inferers import sliding_window_inference
from torch import nn

from medseg.infer.sliding_window import SlidingWindow
from medseg.models import build_model

__all__ = ["CASES", "bench_sliding_window"]

CASES = [
    # name, image shape (N, C, *spatial), roi, model params
    ("2D 1x1x1024x1024", (1, 1, 1024, 1024), (256, 256), {"spatial_dims": 2, "features": 16, "depth": 4}),
    ("2D 8 sections 512^2", (8, 1, 512, 512), (256, 256), {"spatial_dims": 2, "features": 16, "depth": 4}),
    ("3D 1x1x64x192x192", (1, 1, 64, 192, 192), (32, 96, 96), {"spatial_dims": 3, "features": 8, "depth": 3}),
]


def _time(fn, device: torch.device, repeat: int) -> tuple[float, torch.Tensor]:
    fn()  # warm-up
    best, out = float("inf"), None
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_sliding_window(
    *, device: str | None = None, repeat: int = 2, overlap: float = 0.5, batch_size: int = 4
) -> Iterator[str]:
    """Yield the lines of the comparison table, one case at a time."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    yield f"device {device}, overlap {overlap}, window batch {batch_size}, best of {repeat}"
    yield f"{'case':<22} {'medseg s':>9} {'MONAI s':>9} {'MONAI/medseg':>13} {'max|diff| pointwise':>20}"
    for name, shape, roi, params in CASES:
        image = torch.rand(shape, device=device)
        model = build_model("unet", in_channels=1, out_channels=2, **params).to(device).eval()
        window = SlidingWindow(roi, overlap=overlap, batch_size=batch_size, device=str(device))

        def ours(model=model, window=window, image=image):
            return window(model, image)

        def monai(model=model, roi=roi, image=image):
            with torch.inference_mode():
                return sliding_window_inference(
                    image, roi, batch_size, model, overlap=overlap, mode="gaussian"
                )

        t_ours, _ = _time(ours, device, repeat)
        t_monai, _ = _time(monai, device, repeat)
        conv = nn.Conv2d if len(roi) == 2 else nn.Conv3d
        pointwise = nn.Sequential(conv(1, 4, 1), nn.Tanh(), conv(4, 2, 1)).to(device).eval()
        a = window(pointwise, image)
        with torch.inference_mode():
            b = sliding_window_inference(image, roi, batch_size, pointwise, overlap=overlap, mode="gaussian")
        diff = (a.to(b.device) - b).abs().max().item()
        yield f"{name:<22} {t_ours:>9.3f} {t_monai:>9.3f} {t_monai / t_ours:>12.2f}x {diff:>20.2e}"
