"""Distribution plot of per-case metrics (matplotlib, Agg backend)."""

from __future__ import annotations

import io

import numpy as np

__all__ = ["plot_metric_distributions"]


def plot_metric_distributions(per_case: dict[str, dict[str, dict[str, float]]]) -> bytes:
    """One box/strip panel per metric, one box per label; returns PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    data: dict[str, dict[str, list[float]]] = {}
    for rows in per_case.values():
        for label, metrics in rows.items():
            for name, value in metrics.items():
                if np.isfinite(value):
                    data.setdefault(name, {}).setdefault(label, []).append(float(value))
    names = sorted(data) or ["(no finite values)"]
    cols = min(4, len(names))
    nrows = -(-len(names) // cols)
    fig = Figure(figsize=(4 * cols, 3 * nrows))
    for k, name in enumerate(names):
        ax = fig.add_subplot(nrows, cols, k + 1)
        groups = data.get(name, {})
        labels = sorted(groups)
        if labels:
            ax.boxplot([groups[lab] for lab in labels], showfliers=False)
            for x, lab in enumerate(labels, start=1):
                ys = groups[lab]
                ax.plot(np.full(len(ys), x) + np.linspace(-0.1, 0.1, len(ys)), ys, ".", alpha=0.6)
            ax.set_xticks(range(1, len(labels) + 1), labels)
        ax.set_title(name)
        ax.set_xlabel("label")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()
