"""``report.md`` of a ``medseg run``: what was measured, beside what the paper published.

The published numbers live in ``medseg/resources/published.yaml`` (keyed by the
pipeline's ``name``), each with its source; a system without a published number
says "not published". A row's ``measured_as`` names the medseg metric with the same
definition, so the measured value is put beside it; other rows are for reference.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from medseg.config import PipelineConfig
from medseg.io._common import atomic_output

__all__ = ["load_published", "published_path", "write_report"]


def published_path() -> Path:
    """The shipped table of published results."""
    return Path(__file__).resolve().parents[1] / "resources" / "published.yaml"


def load_published(name: str) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The published entry of pipeline ``name`` (``None`` when it has none) and the source key."""
    table = yaml.safe_load(published_path().read_text())
    return table.get(name), table.get("_sources", {})


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _measured(summaries: list[dict[str, Any] | None], metric: str) -> float | None:
    """``metric`` from the first summary that has it, as the challenge aggregates it.

    A summary's ``pooled`` value (the challenge's own aggregation: CTC SEG pools the
    objects of a sequence, GlaS the objects of a test part) comes before its foreground
    mean of per-case values (nnU-Net writes ``Dice``, ``IoU``).
    """
    for summary in summaries:
        for part in ("pooled", "foreground_mean"):
            values = {k.lower(): v for k, v in ((summary or {}).get(part) or {}).items()}
            if metric.lower() in values:
                return values[metric.lower()]
    return None


def _metric_table(title: str, summary: dict[str, Any] | None) -> list[str]:
    if not summary:
        return []
    values = summary.get("foreground_mean") or {}
    pooled = summary.get("pooled") or {}
    lines = [f"### {title}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(values.items())]
    lines += [f"| {k} (pooled, as the challenge scores it) | {_fmt(v)} |" for k, v in sorted(pooled.items())]
    return [*lines, ""]


def write_report(
    out: Path,
    config: PipelineConfig,
    run_summary: dict[str, Any],
    validation: dict[str, Any] | None,
    challenge: dict[str, Any] | None,
) -> Path:
    """Write ``out/report.md`` for a finished run; returns its path."""
    entry, sources = load_published(config.name)
    synthetic = run_summary.get("data") == "synthetic"
    lines = [f"# {config.name}", ""]
    if entry:
        lines += [f"- paper: {entry.get('paper', '-')}", f"- dataset: {entry.get('dataset', '-')}"]
    lines += [
        f"- data: {run_summary.get('data')}{' (smoke run)' if run_summary.get('smoke') else ''}, "
        f"`{config.data.dataset}` under `{config.data.root}`",
        f"- model: `{config.model.name}` {dict(config.model.params)}",
        f"- training: {run_summary.get('iterations')} iterations in {run_summary.get('train_seconds')} s "
        f"on {run_summary.get('device')}",
        "",
        "## Measured on the held-out cases",
        "",
    ]
    lines += _metric_table("Class-label metrics (foreground mean)", validation)
    lines += _metric_table(f"Challenge metrics (`{run_summary.get('challenge_format')}` format)", challenge)
    if not validation and not challenge:
        lines += ["No held-out cases (data.validation_slices: 0): nothing measured.", ""]
    lines += ["## Measured beside published", ""]
    if synthetic:
        lines += [
            "**Synthetic data**: the measured column scores this pipeline on synthetic images in the "
            "dataset's layout; it checks the pipeline, it is not comparable to the published numbers.",
            "",
        ]
    if entry is None:
        lines += [f"No published results are recorded for pipeline `{config.name}`.", ""]
    else:
        lines += ["| system | metric | measured (this run) | published | source |", "|---|---|---|---|---|"]
        for row in entry.get("results", []):
            key = row.get("measured_as")
            measured = _fmt(_measured([challenge, validation], key)) if key else "not measured"
            source = row.get("source")
            if source:
                ref = source.split(",")[0]
                source = source.replace(ref, sources.get(ref, ref), 1)
            lines.append(
                f"| {row.get('system')} | {row.get('metric')} | {measured} | {_fmt(row.get('value'))} | "
                f"{source or '-'} |"
            )
        lines.append("")
    lines += ["## Plots", ""]
    for title, rel in (
        ("Training loss and validation Dice", "training_curve.png"),
        ("Held-out class metrics", "validation/evaluation/metrics.png"),
        ("Held-out challenge metrics", "challenge/held_out/evaluation/metrics.png"),
        *(
            (f"Held-out challenge metrics, sequence {p.parent.name}", str(p.relative_to(out)))
            for p in sorted((out / "challenge" / "held_out" / "evaluation").glob("*/metrics.png"))
        ),
    ):
        if (out / rel).is_file():
            lines += [f"![{title}]({rel})", ""]
    if run_summary.get("submission"):
        lines += ["## Challenge submission files", ""]
        lines += [f"- `submission/{Path(p).name}`" for p in run_summary["submission"]]
        lines.append("")
    path = out / "report.md"
    with atomic_output(path) as tmp:
        Path(tmp).write_text("\n".join(lines))
    return path
