"""Folder evaluation: match cases, score them in parallel, write CSV / JSON / plot atomically."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import platform
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import medseg
from medseg.errors import ConfigError, DataNotFoundError
from medseg.eval.em import cremi_neuron_scores
from medseg.eval.formats import get_format
from medseg.eval.formats._io import atomic_write
from medseg.eval.formats.ctc import (
    ctc_reference_files,
    ctc_result_files,
    ctc_tracking_pairs,
    read_ctc_reference,
)
from medseg.eval.geometry import check_same_grid, scoring_spacing
from medseg.eval.glas import glas_scores
from medseg.eval.instance import (
    aggregated_jaccard_index,
    aji_plus,
    ctc_det,
    ctc_seg,
    detection_scores,
    panoptic_quality,
)
from medseg.eval.isbi2012 import isbi2012_scores, pixel_error
from medseg.eval.overlap import confusion_counts, overlap_metrics
from medseg.eval.surface import surface_metrics
from medseg.eval.warping import splits_and_mergers_warping_error
from medseg.io import Volume

__all__ = [
    "match_cases",
    "read_pair",
    "score_case",
    "dataset_labels",
    "labels_from_dataset_json",
    "evaluate_folders",
    "default_workers",
]

logger = logging.getLogger(__name__)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def match_cases(pred_dir: Path, gt_dir: Path, format_name: str) -> dict[str, tuple[Path, Path]]:
    """Pair prediction and reference files by case id; unmatched cases are an error."""
    fmt = get_format(format_name)
    for d, what in ((pred_dir, "--pred"), (gt_dir, "--gt")):
        if not Path(d).is_dir():
            raise DataNotFoundError(f"{what} folder {d} does not exist")
    if format_name == "ctc":
        # XX_RES holds every frame, XX_GT/SEG only the annotated ones: score those
        preds = {f"{t:03d}": p for t, p in ctc_result_files(Path(pred_dir)).items()}
        gts = {f"{t:03d}": p for t, p in ctc_reference_files(Path(gt_dir)).items()}
        missing_gt = []
    else:
        preds = fmt.case_files(Path(pred_dir))
        gts = fmt.case_files(Path(gt_dir), reference=True)
        missing_gt = sorted(set(preds) - set(gts))
    missing_pred = sorted(set(gts) - set(preds))
    if missing_pred or missing_gt or not gts:
        raise DataNotFoundError(
            f"cases do not match for format {format_name!r}: "
            f"{len(missing_pred)} reference case(s) without prediction {missing_pred[:10]}, "
            f"{len(missing_gt)} prediction(s) without reference {missing_gt[:10]} "
            f"(pred {pred_dir}, gt {gt_dir}); add or remove files so both folders hold the same cases"
        )
    return {c: (preds[c], gts[c]) for c in sorted(gts)}


def read_pair(format_name: str, pred_path: Path, gt_path: Path) -> tuple[Volume, Volume]:
    """Read a (prediction, reference) pair and check that both lie on the same grid.

    For CTC the reference may be a frame annotated on single slices: the result is then
    restricted to those slices (see :func:`medseg.eval.formats.ctc.read_ctc_reference`).
    """
    fmt = get_format(format_name)
    pred = fmt.read(Path(pred_path))
    if format_name == "ctc" and not Path(gt_path).exists():
        reference, result = read_ctc_reference(Path(gt_path), pred.array[0])
        gt = Volume(reference[None])
        pred = Volume(result[None])
    else:
        gt = fmt.read(Path(gt_path))
    check_same_grid(pred, gt, pred_path, gt_path)
    return pred, gt


def score_case(
    format_name: str,
    pred_path: Path,
    gt_path: Path,
    *,
    spacing: Sequence[float] | None = None,
    tolerance: float = 1.0,
    labels: Sequence[int] | None = None,
    nsd_method: str = "deepmind",
    border_threshold: float | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics of one case: ``label (str) -> {metric: value}``.

    Distances use the reference file's spacing; ``spacing`` only fills in for
    references without geometry (see :func:`medseg.eval.geometry.scoring_spacing`).
    ``labels`` are the dataset's foreground classes (class formats); default the
    labels > 0 present in either map. ``border_threshold`` (CREMI only, in the
    reference's units, nm for CREMI files) ignores reference voxels that close to an
    in-section neuron border, as ``cremi_python``'s ``NeuronIds``.
    """
    fmt = get_format(format_name)
    pred_volume, gt_volume = read_pair(format_name, pred_path, gt_path)
    pred, gt = pred_volume.array[0], gt_volume.array[0]
    if format_name == "isbi2012":
        s = isbi2012_scores(gt, pred)
        return {
            "all": {
                "v_rand": s.v_rand,
                "v_info": s.v_info,
                "pixel_error": pixel_error(gt, pred),
                "warping_error": splits_and_mergers_warping_error(gt, pred),
            }
        }
    if format_name == "cremi":
        resolution = scoring_spacing(gt_volume, spacing, gt_path) if border_threshold else None
        c = cremi_neuron_scores(gt, pred, resolution=resolution, border_threshold=border_threshold)
        return {
            "all": {
                "voi_split": c.voi_split,
                "voi_merge": c.voi_merge,
                "adapted_rand_error": c.adapted_rand_error,
                "cremi_score": c.cremi_score,
            }
        }
    if fmt.kind == "instances":
        row = {
            "aji": aggregated_jaccard_index(gt, pred),
            "aji_plus": aji_plus(gt, pred),
            **{k: panoptic_quality(gt, pred)[k] for k in ("pq", "sq", "dq")},
            "f1@0.5": detection_scores((gt, pred))[0.5]["f1"],
            "seg": ctc_seg((gt, pred)),
            "dice": overlap_metrics(gt != 0, pred != 0, labels=[1])[1]["dice"],
        }
        return {"all": row}
    voxel = scoring_spacing(gt_volume, spacing, gt_path)
    counts = confusion_counts(gt, pred, labels=labels)
    per = overlap_metrics(gt, pred, labels=list(counts))
    surf = surface_metrics(
        gt, pred, labels=list(counts), spacing=voxel, tolerance=tolerance, nsd_method=nsd_method
    )
    out = {}
    for label, (tp, fp, fn) in counts.items():
        out[str(label)] = {
            "Dice": per[label]["dice"],
            "IoU": per[label]["iou"],
            "FP": fp,
            "TP": tp,
            "FN": fn,
            "TN": int(gt.size) - tp - fp - fn,
            "n_pred": tp + fp,
            "n_ref": tp + fn,
            "precision": per[label]["precision"],
            "recall": per[label]["recall"],
            **surf[label],
        }
    return out


def labels_from_dataset_json(path: str | Path) -> list[int]:
    """Foreground labels of an nnU-Net ``dataset.json`` (``"labels": {"name": id}``).

    Background (0) and an ``ignore`` label are left out, as nnU-Net's label manager does.

    Raises
    ------
    ConfigError
        The file is not a dataset.json with integer labels (region-based datasets map a
        label to a list of ids, which medseg does not score).
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_text())["labels"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"--labels {path}: cannot read a 'labels' mapping from it ({err}); pass a nnU-Net "
            "dataset.json or the label ids themselves (e.g. --labels 1 2 3)"
        ) from err
    out = []
    for name, value in entries.items():
        if not isinstance(value, int):
            raise ConfigError(
                f"--labels {path}: label {name!r} maps to {value!r}; only integer labels are scored "
                "(region-based datasets are not supported), pass the label ids instead"
            )
        if value != 0 and name != "ignore":
            out.append(value)
    return sorted(out)


def dataset_labels(
    format_name: str, gt_files: Sequence[Path], pred_files: Sequence[Path] = ()
) -> list[int] | None:
    """Foreground labels of a class-format reference set: every label > 0 of any reference.

    Used when no label set is given; prediction labels outside it are logged (they are
    not scored, as nnU-Net scores the dataset's labels only). ``None`` for formats
    without class labels.
    """
    fmt = get_format(format_name)
    if fmt.kind != "classes":
        return None
    found: set[int] = set()
    for path in gt_files:
        found.update(int(v) for v in np.unique(fmt.read(Path(path)).array) if v > 0)
    stray: set[int] = set()
    for path in pred_files:
        stray.update(int(v) for v in np.unique(fmt.read(Path(path)).array) if v > 0 and int(v) not in found)
    if stray:
        logger.warning(
            "prediction label(s) %s occur in no reference file and are not scored; pass --labels "
            "or a dataset.json to score the dataset's label set",
            sorted(stray),
        )
    return sorted(found)


def _pooled(format_name: str, cases: dict[str, tuple[Path, Path]]) -> dict[str, float]:
    """Metrics the challenge pools over all cases (CTC SEG, GlaS object metrics)."""
    if format_name not in ("ctc", "glas"):
        return {}
    pairs = [(g.array[0], p.array[0]) for p, g in (read_pair(format_name, *pg) for pg in cases.values())]
    if format_name == "ctc":
        pooled = {"seg": ctc_seg(pairs), "f1@0.5": detection_scores(pairs)[0.5]["f1"]}
        tracking = ctc_tracking_pairs(*_ctc_dirs(cases))
        if tracking is not None:
            fmt = get_format("ctc")
            pooled["det"] = ctc_det([(fmt.read(m).array[0], fmt.read(r).array[0]) for m, r in tracking])
        return pooled
    return glas_scores(pairs)


def _ctc_dirs(cases: dict[str, tuple[Path, Path]]) -> tuple[Path, Path]:
    """(XX_RES, XX_GT) of matched CTC cases (the reference files live in XX_GT/SEG)."""
    pred, ref = next(iter(cases.values()))
    return Path(pred).parent, Path(ref).parent.parent


def _summary(per_case: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """nnU-Net v2's aggregation plus the count of non-finite values.

    ``mean[label][metric]`` is ``np.nanmean`` over cases and ``foreground_mean[metric]``
    ``np.mean`` over the labels other than ``"0"`` (nnunetv2 ``compute_metrics_on_folder``),
    so a label that is ``nan`` in every case makes the foreground mean ``nan``.
    ``non_finite[label][metric]`` counts the cases whose value is ``nan`` or ``inf``
    (only metrics with at least one), so no case disappears from a mean unnoticed.
    """
    labels: dict[str, dict[str, list[float]]] = {}
    for rows in per_case.values():
        for label, metrics in rows.items():
            for name, value in metrics.items():
                labels.setdefault(label, {}).setdefault(name, []).append(float(value))
    mean: dict[str, dict[str, float]] = {}
    non_finite: dict[str, dict[str, int]] = {}
    for label, metrics in labels.items():
        mean[label] = {}
        for name, values in metrics.items():
            arr = np.asarray(values, dtype=np.float64)
            mean[label][name] = float(np.nanmean(arr)) if np.any(~np.isnan(arr)) else float("nan")
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            if bad:
                non_finite.setdefault(label, {})[name] = bad
    if "all" in mean:
        fg = dict(mean["all"])
    else:
        foreground = [m for label, m in mean.items() if label != "0"]
        names = list(foreground[0]) if foreground else []
        fg = {n: float(np.mean([m[n] for m in foreground])) for n in names}
    return {"mean": mean, "foreground_mean": fg, "non_finite": non_finite}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    raise TypeError(type(obj))


def _check_options(
    workers: int | None,
    tolerance: float,
    spacing: Sequence[float] | None,
    format_name: str,
    border_threshold: float | None,
) -> None:
    """Refuse option values that would silently change what is scored (before any file is read)."""
    if border_threshold is not None:
        if format_name != "cremi":
            raise ConfigError(
                f"--border-threshold applies to --format cremi only, not {format_name!r}; drop it"
            )
        if isinstance(border_threshold, bool) or not 0 < float(border_threshold) < math.inf:
            raise ConfigError(
                f"--border-threshold must be a positive distance in nm, got {border_threshold!r}; "
                "e.g. --border-threshold 200"
            )
    if spacing is not None and not all(math.isfinite(float(v)) and float(v) > 0 for v in spacing):
        raise ConfigError(
            f"--spacing must be positive voxel sizes (array axis order), got {list(spacing)}; e.g. --spacing 1 1"
        )
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"--workers must be a whole number >= 1, got {workers!r}; e.g. --workers 2")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance < math.inf:
        raise ConfigError(
            f"--tolerance must be a finite distance >= 0 in the reference's physical units, got {tolerance!r}; "
            "e.g. --tolerance 1.0"
        )


def evaluate_folders(
    pred_dir: str | Path,
    gt_dir: str | Path,
    format_name: str,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    spacing: Sequence[float] | None = None,
    tolerance: float = 1.0,
    labels: Sequence[int] | None = None,
    nsd_method: str = "deepmind",
    border_threshold: float | None = None,
    plot: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Score every case of ``pred_dir`` against ``gt_dir`` and write the report.

    Writes ``per_case.csv`` (long format: case, label, metric, value),
    ``summary.json`` and ``metrics.png``, atomically after every case is scored.

    ``summary.json`` is laid out as nnU-Net v2's (``metric_per_case`` entries with
    ``reference_file``, ``prediction_file`` and ``metrics[label]`` holding ``Dice, IoU,
    FP, TP, FN, TN, n_pred, n_ref``; ``mean``; ``foreground_mean``), so code that reads
    nnU-Net's summary reads it; medseg's extra metrics (precision, recall, hausdorff,
    hausdorff95, assd, surface_dice) sit beside nnU-Net's keys, and ``non_finite``,
    ``pooled``, ``config`` and ``versions`` are added at the top level.

    ``labels`` is the dataset's foreground label set (class formats): every label is
    written for every case (Dice ``nan`` when absent from both maps). Default: every
    label > 0 found in a reference file. ``border_threshold``: see :func:`score_case` (CREMI).
    """
    _check_options(workers, tolerance, spacing, format_name, border_threshold)
    cases = match_cases(Path(pred_dir), Path(gt_dir), format_name)
    if labels is None:
        labels = dataset_labels(format_name, [g for _, g in cases.values()], [p for p, _ in cases.values()])
    workers = default_workers() if workers is None else workers
    names = list(cases)
    args = [(format_name, cases[c][0], cases[c][1]) for c in names]
    kwargs = {
        "spacing": spacing,
        "tolerance": tolerance,
        "labels": None if labels is None else list(labels),
        "nsd_method": nsd_method,
        "border_threshold": border_threshold,
    }
    results: list[dict] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(names), desc="evaluate", unit="case")
    try:
        if workers == 1 or len(names) == 1:
            for a in args:
                results.append(score_case(*a, **kwargs))
                if bar:
                    bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(score_case, *a, **kwargs) for a in args]
                for f in futures:
                    results.append(f.result())
                    if bar:
                        bar.update()
    finally:
        if bar:
            bar.close()
    per_case = dict(zip(names, results, strict=True))
    summary = {
        "metric_per_case": [
            {
                "case": c,
                "prediction_file": str(cases[c][0]),
                "reference_file": str(cases[c][1]),
                "metrics": per_case[c],
            }
            for c in names
        ],
        **_summary(per_case),
        "pooled": _pooled(format_name, cases),
        "config": {
            "format": format_name,
            "pred_dir": str(pred_dir),
            "gt_dir": str(gt_dir),
            "spacing": list(spacing) if spacing else None,
            "tolerance": tolerance,
            "nsd_method": nsd_method,
            "border_threshold": border_threshold,
            "labels": None if labels is None else list(labels),
            "workers": workers,
        },
        "versions": _versions(),
    }
    out = Path(out_dir)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["case", "label", "metric", "value"])
    for c in names:
        for label, metrics in per_case[c].items():
            for name, value in metrics.items():
                writer.writerow([c, label, name, repr(float(value))])
    text = json.dumps(summary, indent=2, default=_json_default, allow_nan=True)
    png = None
    if plot:
        from medseg.eval.plots import plot_metric_distributions

        png = plot_metric_distributions(per_case)
    atomic_write(out / "per_case.csv", lambda tmp: tmp.write_text(buf.getvalue()))
    atomic_write(out / "summary.json", lambda tmp: tmp.write_text(text))
    if png is not None:
        atomic_write(out / "metrics.png", lambda tmp: tmp.write_bytes(png))
    logger.info("evaluated %d cases into %s", len(names), out)
    return summary


def _versions() -> dict[str, str]:
    import scipy
    import skimage

    return {
        "medseg": medseg.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-image": skimage.__version__,
    }
