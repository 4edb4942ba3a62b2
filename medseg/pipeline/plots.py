"""Training-curve picture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medseg.io._common import atomic_output

__all__ = ["plot_training"]


def plot_training(path: str | Path, losses: Sequence[float], validation: Sequence[tuple[int, float]]) -> Path:
    """PNG of the training loss (raw and smoothed) and the validation score per iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, color="0.75", lw=0.8, label="loss")
    if len(losses) >= 10:
        k = max(5, len(losses) // 30)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, color="C0", lw=1.5, label=f"loss ({k}-it mean)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    if validation:
        twin = ax.twinx()
        its, scores = zip(*validation, strict=True)
        twin.plot(its, scores, "o-", color="C3", label="validation")
        twin.set_ylabel("validation score")
        twin.set_ylim(0, 1)
    handles = [h for a in fig.axes for h in a.get_legend_handles_labels()[0]]
    ax.legend(handles=handles, loc="center right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return path
