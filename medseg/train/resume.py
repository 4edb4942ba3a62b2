"""What may change when a run is resumed, and applying a changed learning rate.

A resumed run must continue the run it resumes: the model, the data and the
optimisation settings stay as they were, except for the keys in
:data:`RESUMABLE_KEYS` (budgets, intervals, device, workers, inference settings used
for validation, and ``data.root``: a dataset folder that was moved; which files are
read there is still fixed by the other data keys). A changed ``train.learning_rate`` is applied from the resume point
on (:func:`apply_learning_rate`), never only recorded. A key the checkpoint's config
lacks because it was added to medseg since (e.g. ``data.validation_fraction``) counts as
holding its default, so a newer medseg still resumes an older run.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from medseg.errors import ConfigError

__all__ = ["RESUMABLE_KEYS", "apply_learning_rate", "changed_keys", "check_resumable", "with_defaults"]

logger = logging.getLogger(__name__)

#: Dotted config keys (or prefixes ending in ".") that a resumed run may change.
RESUMABLE_KEYS: tuple[str, ...] = (
    "name",
    "infer.",
    "data.root",
    "data.num_workers",
    "train.iterations",
    "train.validate_every",
    "train.checkpoint_every",
    "train.max_minutes",
    "train.early_stopping_patience",
    "train.learning_rate",
    "train.device",
    "train.deterministic",
    "train.precision",
)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: tree}


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two config dicts: ``key -> (old, new)``."""
    a, b = _flatten(old), _flatten(new)
    missing = object()
    return {
        key: (a.get(key), b.get(key))
        for key in sorted(set(a) | set(b))
        if a.get(key, missing) != b.get(key, missing)
    }


def _resumable(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in RESUMABLE_KEYS)


def with_defaults(old: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``old`` with every key it lacks taken from ``defaults`` (recursively; ``old``'s values win)."""
    merged = dict(defaults)
    for key, value in old.items():
        default = defaults.get(key)
        merged[key] = (
            with_defaults(value, default) if isinstance(value, dict) and isinstance(default, dict) else value
        )
    return merged


def check_resumable(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    checkpoint: str,
    defaults: dict[str, Any] | None = None,
) -> dict[str, tuple[Any, Any]]:
    """Refuse a resume whose config differs in a non-resumable key; return the resumable changes.

    Parameters
    ----------
    old, new : dict
        The checkpoint's config and the config of the resumed run.
    checkpoint : str
        Named in the error.
    defaults : dict, optional
        The value of every config key when not set (the config schema's defaults): a key
        ``old`` lacks, because it was added since the checkpoint was written, is compared
        as this default, not as a change.

    Raises
    ------
    ConfigError
        Naming every changed key with its old and new value.
    """
    if defaults is not None:
        old = with_defaults(old, defaults)
    changes = changed_keys(old, new)
    refused = {k: v for k, v in changes.items() if not _resumable(k)}
    if refused:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in refused.items())
        raise ConfigError(
            f"cannot resume {checkpoint}: the config changed in keys that a resumed run must keep ({listed}). "
            f"Restore them, or train into a new --out; resumable keys are {', '.join(RESUMABLE_KEYS)}"
        )
    return {k: v for k, v in changes.items() if _resumable(k)}


def apply_learning_rate(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    *,
    old: float,
    new: float,
) -> None:
    """Scale every parameter group's base learning rate by ``new / old`` (after a resume).

    Groups keep their ratios (a lower rate for pre-trained layers stays lower) and
    the schedule continues from the current iteration with the new base.
    """
    factor = new / old
    for group in optimizer.param_groups:
        group["initial_lr"] = group.get("initial_lr", group["lr"]) * factor
        group["lr"] *= factor
    if scheduler is not None:
        scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]
    logger.info("learning rate changed on resume: %g -> %g (applied from now on)", old, new)
