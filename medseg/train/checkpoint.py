"""Checkpoints: model and optimizer state plus everything needed to use the model again.

A checkpoint is a plain dict of tensors and builtin types, so it loads with
``torch.load(weights_only=True)`` (no pickled code is executed). Its layout and the
:class:`~medseg.checkpoint_meta.CheckpointMeta` of its ``metadata`` are defined in
:mod:`medseg.checkpoint_meta` (below ``train`` and ``infer``); :func:`load_checkpoint`
is re-exported from there.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
from pathlib import Path
from typing import Any

import torch

import medseg
from medseg.checkpoint_meta import CHECKPOINT_FORMAT, CheckpointMeta, load_checkpoint, read_checkpoint
from medseg.io import atomic_output, recording_writer

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "save_checkpoint", "update_metadata"]

logger = logging.getLogger(__name__)


def save_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    iteration: int = 0,
    metadata: CheckpointMeta | dict[str, Any] | None = None,
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
    metadata : CheckpointMeta or dict
        What the model is (:class:`~medseg.checkpoint_meta.CheckpointMeta`: model spec,
        classes, channels, normalisation, targets, resolved config); a dict is stored as given.
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
        "metadata": metadata.to_dict() if isinstance(metadata, CheckpointMeta) else (metadata or {}),
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
    # killed mid-save: cleaned up by the next save to `path`; a full disk: an OutputError, not torch's
    with atomic_output(path) as tmp, recording_writer(tmp) as handle:
        torch.save(payload, handle)
    return path


def update_metadata(path: str | Path, **fields: Any) -> Path:
    """Replace fields of an existing checkpoint's :class:`~medseg.checkpoint_meta.CheckpointMeta`, rewritten atomically.

    Parameters
    ----------
    path : path
        The ``.pt`` file (as :func:`save_checkpoint` wrote it).
    **fields
        :class:`CheckpointMeta` field names and their new values (e.g. ``postprocessing=...``);
        the meta is validated again before anything is written.

    Raises
    ------
    DataNotFoundError, FormatError
        No checkpoint at ``path``, or it or the new meta does not validate (named).
    """
    checkpoint = read_checkpoint(path)
    meta = dataclasses.replace(checkpoint.meta, **fields)
    payload = {**checkpoint.payload, "metadata": meta.to_dict()}
    with atomic_output(checkpoint.path) as tmp, recording_writer(tmp) as handle:
        torch.save(payload, handle)
    return checkpoint.path
