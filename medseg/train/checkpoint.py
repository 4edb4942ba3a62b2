"""Checkpoints: model and optimizer state plus everything needed to use the model again.

A checkpoint is a plain dict of tensors and builtin types, so it loads with
``torch.load(weights_only=True)`` (no pickled code is executed).
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Any

import torch

import medseg
from medseg.errors import DataNotFoundError, FormatError
from medseg.io import atomic_output

__all__ = ["save_checkpoint", "load_checkpoint", "update_metadata", "CHECKPOINT_FORMAT"]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


def save_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    iteration: int = 0,
    metadata: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename).

    Parameters
    ----------
    path : path
        Destination ``.pt`` file; parent folders are created.
    model, optimizer, scheduler
        Their ``state_dict()`` is stored.
    iteration : int
        Training iterations done so far (for resuming).
    metadata : dict
        JSON-like facts to keep with the weights: model name and parameters, class
        names, channel names, normalisation, patch size, resolved config.
    state : dict
        Further training state stored under its own keys (gradient scaler, loss and
        validation history, random number generator states), for an exact resume.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "iteration": int(iteration),
        "metadata": metadata or {},
        "versions": {
            "medseg": medseg.__version__,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
        },
    }
    for key, value in (state or {}).items():
        if key in payload:
            raise ValueError(
                f"checkpoint state key {key!r} clashes with a reserved entry"
            )  # internal invariant
        payload[key] = value
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        payload["scheduler"] = scheduler.state_dict()
    with atomic_output(path) as tmp:  # killed mid-save: cleaned up by the next save to `path`
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    FormatError
        The file is not a medseg checkpoint or is corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(
            f"checkpoint {path} does not exist; train a model first or pass the right path"
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several unrelated types for corrupt files
        raise FormatError(
            f"cannot read checkpoint {path}: {err}; the file is corrupt or was not written by medseg"
        ) from err
    if not isinstance(payload, dict) or "model" not in payload or "format" not in payload:
        raise FormatError(f"{path} is not a medseg checkpoint (no 'model'/'format' entries)")
    if payload["format"] > CHECKPOINT_FORMAT:
        raise FormatError(
            f"{path} has checkpoint format {payload['format']}, this medseg reads up to "
            f"{CHECKPOINT_FORMAT}; upgrade medseg"
        )
    return payload


def update_metadata(path: str | Path, **entries: Any) -> Path:
    """Set ``metadata[key] = value`` for each entry of an existing checkpoint, rewritten atomically."""
    path = Path(path)
    payload = load_checkpoint(path)
    payload["metadata"] = {**payload.get("metadata", {}), **entries}
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)
    return path
