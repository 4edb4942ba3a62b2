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
from medseg.eval.formats import FORMATS, ChallengeFormat, FormatKind, ScoreOptions, get_format
from medseg.eval.formats._io import atomic_write
from medseg.eval.options import NsdMethod
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


def match_cases(
    pred_dir: Path, gt_dir: Path, format_name: str | ChallengeFormat
) -> dict[str, tuple[Path, Path]]:
    """Pair prediction and reference files by case id as the format says; unmatched cases are an error."""
    for d, what in ((pred_dir, "--pred"), (gt_dir, "--gt")):
        if not Path(d).is_dir():
            raise DataNotFoundError(f"{what} folder {d} does not exist")
    return get_format(format_name).match(Path(pred_dir), Path(gt_dir))


def read_pair(format_name: str | ChallengeFormat, pred_path: Path, gt_path: Path) -> tuple[Volume, Volume]:
    """Read a (prediction, reference) pair and check that they can be compared (see the format's ``read_pair``)."""
    return get_format(format_name).read_pair(Path(pred_path), Path(gt_path))


def score_case(
    format_name: str | ChallengeFormat,
    pred_path: Path,
    gt_path: Path,
    *,
    spacing: Sequence[float] | None = None,
    tolerance: float = 1.0,
    labels: Sequence[int] | None = None,
    nsd_method: NsdMethod | str = NsdMethod.DEEPMIND,
    border_threshold: float | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics of one case: ``label (str) -> {metric: value}``, as the format scores it.

    Distances use the reference file's spacing; ``spacing`` only fills in for
    references without geometry (see :func:`medseg.eval.geometry.scoring_spacing`).
    ``labels`` are the dataset's foreground classes (class formats); default the
    labels > 0 present in either map. ``border_threshold`` (CREMI only, in the
    reference's units, nm for CREMI files) ignores reference voxels that close to an
    in-section neuron border, as ``cremi_python``'s ``NeuronIds``.
    """
    fmt = get_format(format_name)
    options = ScoreOptions(
        spacing=None if spacing is None else tuple(float(v) for v in spacing),
        tolerance=tolerance,
        labels=None if labels is None else tuple(int(v) for v in labels),
        nsd_method=NsdMethod(nsd_method),
        border_threshold=border_threshold,
    )
    pred, ref = fmt.read_pair(Path(pred_path), Path(gt_path))
    return fmt.score(pred, ref, options)


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
    format_name: str | ChallengeFormat, gt_files: Sequence[Path], pred_files: Sequence[Path] = ()
) -> list[int] | None:
    """Foreground labels of a class-format reference set: every label > 0 of any reference.

    Used when no label set is given; prediction labels outside it are logged (they are
    not scored, as nnU-Net scores the dataset's labels only). ``None`` for formats
    without class labels.
    """
    fmt = get_format(format_name)
    if fmt.kind is not FormatKind.CLASSES:
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
    fmt: ChallengeFormat,
    border_threshold: float | None,
) -> None:
    """Refuse option values that would silently change what is scored (before any file is read)."""
    if border_threshold is not None:
        if not fmt.uses_border_threshold:
            users = sorted(f.name for f in FORMATS.values() if f.uses_border_threshold)
            raise ConfigError(
                f"--border-threshold applies to --format {' or '.join(users)} only, not {fmt.name!r}; drop it"
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
    format_name: str | ChallengeFormat,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    spacing: Sequence[float] | None = None,
    tolerance: float = 1.0,
    labels: Sequence[int] | None = None,
    nsd_method: NsdMethod | str = NsdMethod.DEEPMIND,
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
    ``pooled`` (the format's :meth:`~medseg.eval.formats.ChallengeFormat.pool`), ``config``
    and ``versions`` are added at the top level.

    ``labels`` is the dataset's foreground label set (class formats): every label is
    written for every case (Dice ``nan`` when absent from both maps). Default: every
    label > 0 found in a reference file. ``border_threshold``: see :func:`score_case` (CREMI).
    """
    fmt = get_format(format_name)
    _check_options(workers, tolerance, spacing, fmt, border_threshold)
    nsd_method = NsdMethod(nsd_method)
    cases = match_cases(Path(pred_dir), Path(gt_dir), fmt)
    if labels is None:
        labels = dataset_labels(fmt, [g for _, g in cases.values()], [p for p, _ in cases.values()])
    workers = default_workers() if workers is None else workers
    kwargs = {
        "spacing": spacing,
        "tolerance": tolerance,
        "labels": None if labels is None else list(labels),
        "nsd_method": nsd_method,
        "border_threshold": border_threshold,
    }
    per_case = _score_cases(fmt.name, cases, kwargs, workers, progress)
    summary = {
        "metric_per_case": [
            {"case": c, "prediction_file": str(p), "reference_file": str(g), "metrics": per_case[c]}
            for c, (p, g) in cases.items()
        ],
        **_summary(per_case),
        "pooled": fmt.pool(cases, per_case),
        "config": {
            "format": fmt.name,
            "pred_dir": str(pred_dir),
            "gt_dir": str(gt_dir),
            "spacing": list(spacing) if spacing else None,
            **{k: v for k, v in kwargs.items() if k != "spacing"},
            "workers": workers,
        },
        "versions": _versions(),
    }
    _write_report(Path(out_dir), per_case, summary, plot)
    return summary


def _score_cases(
    format_name: str,
    cases: dict[str, tuple[Path, Path]],
    kwargs: dict[str, Any],
    workers: int,
    progress: bool,
) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`score_case` of every case, in ``workers`` processes (the format is found by name in each)."""
    names = list(cases)
    results: list[dict] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(names), desc="evaluate", unit="case")
    try:
        if workers == 1 or len(names) == 1:
            for c in names:
                results.append(score_case(format_name, *cases[c], **kwargs))
                if bar:
                    bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(score_case, format_name, *cases[c], **kwargs) for c in names]
                for f in futures:
                    results.append(f.result())
                    if bar:
                        bar.update()
    finally:
        if bar:
            bar.close()
    return dict(zip(names, results, strict=True))


def _write_report(
    out: Path, per_case: dict[str, dict[str, dict[str, float]]], summary: dict[str, Any], plot: bool
) -> None:
    """``per_case.csv``, ``summary.json`` and (``plot``) ``metrics.png``, each written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["case", "label", "metric", "value"])
    for c, rows in per_case.items():
        for label, metrics in rows.items():
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
    logger.info("evaluated %d cases into %s", len(per_case), out)


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
