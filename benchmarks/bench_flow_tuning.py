"""Time the flow target's post-processing tuning against scoring every grid point on its own.

A synthetic 3D held-out case (``--shape``, default 20x100x50, ``--objects`` touching
balls, default 15) with a flow model's maps as it might predict them: each object has its
own brightness and flow noise, so the foreground and flow thresholds both matter.

Rows:

* ``per point``: every grid point of ``tune_postprocessing`` turned into objects by
  ``instances_from_maps`` on its own (the flows followed and every mask's flow error
  recomputed once per point: how tuning ran before ``instances_for_params``);
* ``tune_postprocessing``: the grid as tuning runs it (the flows followed once per
  foreground threshold).

Both must choose the same point with the same AJI; the script says so or exits 1.
Run: ``python benchmarks/bench_flow_tuning.py [--shape Z Y X] [--objects N]`` (prints a
table; not a test).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np
from torch import nn

from medseg.config import PostProcessingConfig
from medseg.data.sample import Sample
from medseg.data.synthetic.flow_maps import noisy_flow_maps
from medseg.eval.instance import aggregated_jaccard_index
from medseg.flows import FLOW_SCALE
from medseg.infer.normalize import ZScore
from medseg.infer.postprocess import PostProcessing, instances_from_maps
from medseg.infer.predictor import Predictor
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import Volume
from medseg.pipeline.tuning import (
    FLOW_THRESHOLDS,
    FOREGROUND_THRESHOLDS,
    min_size_candidates,
    tune_postprocessing,
)


class Channels(nn.Module):
    """The input channels are the logits."""

    def forward(self, x):
        return x


def _balls(shape, count, seed):
    """Touching balls, half as tall along Z (anisotropic nuclei), ids 1..count."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    labels = np.zeros(shape, np.int32)
    for k in range(1, count + 1):
        centre = [rng.uniform(3, s - 3) for s in shape]
        radius = rng.uniform(5, 9)
        scale = (0.5, 1.0, 1.0)
        inside = sum(((g - c) / f) ** 2 for g, c, f in zip(grid, centre, scale, strict=True)) < radius**2
        labels[inside & (labels == 0)] = k
    return labels


def _case(labels, seed):
    """The logits a flow model might give: per-object brightness in [0.45, 0.9], flow noise up to 0.6."""
    probability, *flows = noisy_flow_maps(labels, seed)
    logits = np.concatenate([np.log(probability / (1 - probability))[None], FLOW_SCALE * np.stack(flows)])
    return Sample(Volume(logits.astype(np.float32)), Volume(labels[None]), "synthetic", "cells")


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(20, 100, 50))
    parser.add_argument("--objects", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    labels = _balls(tuple(args.shape), args.objects, args.seed)
    case = _case(labels, args.seed + 1)
    predictor = Predictor(
        Channels(),
        SlidingWindow(labels.shape, device="cpu", mirror_axes=()),
        ZScore((0.0,) * 4, (1.0,) * 4),
        targets={"label_kind": "instances", "instance_target": "flow"},
    )
    typical = float(np.median(np.bincount(labels.ravel())[1:]))
    points = [
        PostProcessing(flow_threshold=t, foreground_threshold=f, min_size=s)
        for t, f, s in itertools.product(
            FLOW_THRESHOLDS, FOREGROUND_THRESHOLDS, min_size_candidates(typical, 10)
        )
    ]

    def per_point():
        maps = predictor.instance_maps(predictor.predict_logits(case.image.array))
        scores = [aggregated_jaccard_index(labels, instances_from_maps(maps, "flow", p)) for p in points]
        best = int(np.argmax(scores))
        return points[best], scores[best]

    def tuned():
        result = tune_postprocessing(predictor, [case], PostProcessingConfig(), typical_object_voxels=typical)
        return result.params, result.aji

    print(
        f"{labels.shape} with {int(labels.max())} objects ({int((labels > 0).sum())} voxels), {len(points)} grid points"
    )
    print(f"{'':20} {'wall s':>8} {'cpu s':>8}  chosen (flow, foreground, min size), AJI")
    results = []
    for name, fn in (("per point", per_point), ("tune_postprocessing", tuned)):
        wall, cpu, (params, aji) = _timed(fn)
        results.append((params, aji))
        choice = (params.flow_threshold, params.foreground_threshold, params.min_size)
        print(f"{name:20} {wall:8.2f} {cpu:8.2f}  {choice}, {aji:.4f}", flush=True)
    same = results[0] == results[1]
    print("same choice and AJI" if same else "DIFFERENT choice or AJI")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
