"""Time medseg's metrics against the reference implementations, each called as a user would.

Rows:

* the ISBI 2012 scorer on a 30x512x512 stack (V_rand + V_info after Fiji thinning over
  11 thresholds, the pixel error, the minimum splits-and-mergers warping error); Fiji
  itself takes about 19 s for V_rand on such a stack (no Java here, so not timed);
* every surface metric on an anisotropic 3D pair, one call per metric for both sides
  (MONAI's ``compute_hausdorff_distance``, ``compute_average_surface_distance``,
  ``compute_surface_dice``; DeepMind's ``compute_surface_distances`` +
  ``compute_surface_dice_at_tolerance`` when the ``surface-distance`` package is installed);
* adapted Rand error + VOI of a 30x512x512 segmentation against scikit-image.

Run: ``python benchmarks/bench_metrics.py [--size Z Y X]`` (prints a table; not a test).
Wall and CPU seconds are the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage as ndi


def _timed(fn, repeat):
    best, best_cpu, out = np.inf, np.inf, None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu, out


def _blob_pair(shape, seed):
    rng = np.random.default_rng(seed)
    small = tuple(max(s // 4, 2) for s in shape)
    base = ndi.zoom(ndi.gaussian_filter(rng.random(small), 2), 4, order=1)
    noise = ndi.zoom(ndi.gaussian_filter(rng.random(small), 2), 4, order=1)
    return base > np.median(base), (base + 0.15 * (noise - noise.mean())) > np.median(base)


def _segments(shape, n, seed, sampling=(10, 1, 1)):
    rng = np.random.default_rng(seed)
    seeds = np.zeros(shape, np.int32)
    seeds[tuple(rng.integers(0, s, n) for s in shape)] = np.arange(1, n + 1)
    _, ind = ndi.distance_transform_edt(seeds == 0, return_indices=True, sampling=sampling)
    return seeds[tuple(ind)]


def _isbi_stack(seed=0):
    """EM-like reference (cells 255, 2-px membranes 0) and a noisy probability map."""
    rng = np.random.default_rng(seed)
    cells = _segments((30, 512, 512), 9000, seed, sampling=(50, 1, 1))
    membrane = ndi.morphological_gradient(cells, size=(1, 3, 3)) > 0
    gt = np.where(membrane, 0, 255).astype(np.uint8)
    prob = ndi.gaussian_filter((gt > 0).astype(np.float32), (0, 1.5, 1.5))
    prob = np.clip(prob + rng.normal(0, 0.15, prob.shape), 0, 1).astype(np.float32)
    return gt, prob


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=3, default=(96, 192, 192), help="3D surface pair (Z Y X)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_hausdorff_distance,
        compute_surface_dice,
    )
    from skimage.metrics import adapted_rand_error as sk_are
    from skimage.metrics import variation_of_information as sk_voi

    from medseg.eval.em import adapted_rand_error, variation_of_information
    from medseg.eval.isbi2012 import isbi2012_scores, pixel_error
    from medseg.eval.surface import (
        average_symmetric_surface_distance,
        hausdorff_distance,
        normalized_surface_dice,
    )
    from medseg.eval.warping import splits_and_mergers_warping_error

    rows = []  # name, medseg wall, medseg cpu, ref wall, ref cpu, ref name, max |diff|

    gt, prob = _isbi_stack()
    isbi2012_scores(gt[:1], prob[:1])  # load the compiled kernels once
    for name, fn in (
        ("ISBI V_rand+V_info 30x512^2", lambda: isbi2012_scores(gt, prob)),
        ("ISBI pixel error 30x512^2", lambda: pixel_error(gt, prob)),
        ("ISBI warping (S+M) 30x512^2", lambda: splits_and_mergers_warping_error(gt, prob)),
    ):
        wall, cpu, _ = _timed(fn, 1)
        rows.append((name, wall, cpu, float("nan"), float("nan"), "-", float("nan")))

    ref_mask, pred_mask = _blob_pair(tuple(args.size), 0)
    spacing = (2.5, 0.8, 0.8)
    tg, tp = (torch.from_numpy(a[None, None].astype(np.float32)) for a in (ref_mask, pred_mask))
    kw = {"include_background": True, "spacing": spacing}
    shape = "x".join(map(str, args.size))
    pairs = [
        (
            f"HD {shape}",
            lambda: hausdorff_distance(ref_mask, pred_mask, spacing=spacing),
            lambda: compute_hausdorff_distance(tp, tg, **kw).item(),
            "MONAI",
        ),
        (
            f"HD95 {shape}",
            lambda: hausdorff_distance(ref_mask, pred_mask, spacing=spacing, percentile=95),
            lambda: compute_hausdorff_distance(tp, tg, percentile=95, **kw).item(),
            "MONAI",
        ),
        (
            f"ASSD {shape}",
            lambda: average_symmetric_surface_distance(ref_mask, pred_mask, spacing=spacing),
            lambda: compute_average_surface_distance(tp, tg, symmetric=True, **kw).item(),
            "MONAI",
        ),
        (
            f"NSD voxels {shape}",
            lambda: normalized_surface_dice(
                ref_mask, pred_mask, tolerance=2.0, spacing=spacing, method="monai"
            ),
            lambda: compute_surface_dice(tp, tg, [2.0], **kw).item(),
            "MONAI",
        ),
    ]
    try:
        import warnings

        import surface_distance

        warnings.filterwarnings("ignore", category=DeprecationWarning)

        def deepmind():
            distances = surface_distance.compute_surface_distances(ref_mask, pred_mask, spacing)
            return surface_distance.compute_surface_dice_at_tolerance(distances, 2.0)

        pairs.append(
            (
                f"NSD surfels {shape}",
                lambda: normalized_surface_dice(ref_mask, pred_mask, tolerance=2.0, spacing=spacing),
                deepmind,
                "DeepMind",
            )
        )
    except ImportError:
        print("surface-distance not installed: DeepMind NSD row skipped")
    for name, ours, ref, ref_name in pairs:
        t_o, c_o, v_o = _timed(ours, args.repeat)
        t_r, c_r, v_r = _timed(ref, args.repeat)
        rows.append((name, t_o, c_o, t_r, c_r, ref_name, abs(v_o - v_r)))

    seg_gt = _segments((30, 512, 512), 3000, 1)
    seg_pr = _segments((30, 512, 512), 3500, 2)
    t_s, c_s, v_s = _timed(lambda: (sk_are(seg_gt, seg_pr)[0], *sk_voi(seg_gt, seg_pr)), args.repeat)
    t_o, c_o, v_o = _timed(
        lambda: (adapted_rand_error(seg_gt, seg_pr).error, *variation_of_information(seg_gt, seg_pr)),
        args.repeat,
    )
    diff = max(abs(a - b) for a, b in zip(v_o, v_s, strict=True))
    rows.append(("ARAND+VOI 30x512x512", t_o, c_o, t_s, c_s, "skimage", diff))

    header = f"{'metric':30s} {'medseg s':>9s} {'cpu s':>7s} {'ref s':>8s} {'cpu s':>7s} {'ref':>9s} {'max|diff|':>10s}"
    print(header)
    for name, t_ours, c_ours, t_ref, c_ref, ref, diff in rows:
        print(f"{name:30s} {t_ours:9.3f} {c_ours:7.2f} {t_ref:8.3f} {c_ref:7.2f} {ref:>9s} {diff:10.2e}")


if __name__ == "__main__":
    main()
