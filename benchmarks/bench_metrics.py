"""Time medseg's surface and Rand/VOI metrics against MONAI and scikit-image.

Run: ``python benchmarks/bench_metrics.py`` (prints a table; not a test).
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage as ndi


def _timed(fn, repeat=3):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _blob_pair(shape, seed):
    rng = np.random.default_rng(seed)
    base = ndi.gaussian_filter(rng.random(tuple(s // 4 for s in shape)), 2)
    base = ndi.zoom(base, 4, order=1)
    noise = ndi.zoom(ndi.gaussian_filter(rng.random(tuple(s // 4 for s in shape)), 2), 4, order=1)
    return base > np.median(base), (base + 0.15 * (noise - noise.mean())) > np.median(base)


def _segments(shape, n, seed):
    rng = np.random.default_rng(seed)
    seeds = np.zeros(shape, np.int32)
    seeds[tuple(rng.integers(0, s, n) for s in shape)] = np.arange(1, n + 1)
    _, ind = ndi.distance_transform_edt(seeds == 0, return_indices=True, sampling=(10, 1, 1))
    return seeds[tuple(ind)]


def main() -> None:
    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_hausdorff_distance,
        compute_surface_dice,
    )
    from skimage.metrics import adapted_rand_error as sk_are
    from skimage.metrics import variation_of_information as sk_voi

    from medseg.eval.em import adapted_rand_error, variation_of_information
    from medseg.eval.surface import surface_metrics

    rows = []
    gt, pred = _blob_pair((256, 256, 256), 0)
    spacing = (2.5, 0.8, 0.8)
    tg, tp = (torch.from_numpy(a[None, None].astype(np.float32)) for a in (gt, pred))
    kw = {"include_background": True, "spacing": spacing}

    def monai_all():
        return (
            compute_hausdorff_distance(tp, tg, **kw).item(),
            compute_hausdorff_distance(tp, tg, percentile=95, **kw).item(),
            compute_average_surface_distance(tp, tg, symmetric=True, **kw).item(),
            compute_surface_dice(tp, tg, [2.0], **kw).item(),
        )

    def ours_all():
        r = surface_metrics(
            gt.view(np.uint8), pred.view(np.uint8), labels=[1], spacing=spacing, tolerance=2.0
        )[1]
        return r["hausdorff"], r["hausdorff95"], r["assd"], r["surface_dice"]

    t_m, v_m = _timed(monai_all, repeat=2)
    t_o, v_o = _timed(ours_all, repeat=2)
    rows.append(
        (
            "HD+HD95+ASSD+NSD 256^3 aniso",
            t_o,
            t_m,
            "MONAI",
            max(abs(a - b) for a, b in zip(v_o, v_m, strict=True)),
        )
    )

    seg_gt = _segments((30, 512, 512), 3000, 1)
    seg_pr = _segments((30, 512, 512), 3500, 2)
    t_s, v_s = _timed(lambda: (sk_are(seg_gt, seg_pr)[0], *sk_voi(seg_gt, seg_pr)))
    t_o, v_o = _timed(
        lambda: (adapted_rand_error(seg_gt, seg_pr).error, *variation_of_information(seg_gt, seg_pr))
    )
    rows.append(
        ("ARAND+VOI 30x512x512", t_o, t_s, "skimage", max(abs(a - b) for a, b in zip(v_o, v_s, strict=True)))
    )

    print(f"{'metric':32s} {'medseg s':>9s} {'ref s':>9s} {'ref':>8s} {'speedup':>8s} {'max|diff|':>10s}")
    for name, t_ours, t_ref, ref, diff in rows:
        print(f"{name:32s} {t_ours:9.3f} {t_ref:9.3f} {ref:>8s} {t_ref / t_ours:7.2f}x {diff:10.2e}")


if __name__ == "__main__":
    main()
