"""Training: the loop and its parts, each in its own module.

:mod:`~medseg.train.trainer` (the loop: steps, validation, stopping, checkpoints,
exact resume, and its policies), :mod:`~medseg.train.stream` (batch ``k`` = patches
``[k * B, (k + 1) * B)``, sharded per DDP rank), :mod:`~medseg.train.checkpoint`,
:mod:`~medseg.train.resume` (what a resumed run may change), :mod:`~medseg.train.precision`
(autocast, gradient scaling, clipping), :mod:`~medseg.train.distributed` (torchrun/DDP),
:mod:`~medseg.train.losses`, :mod:`~medseg.train.finetune` (initialise from another
checkpoint) and :mod:`~medseg.train.pretrain` (layer-wise denoising pre-training).

The package is also callable: ``medseg.train(config, out=...)`` is :func:`medseg.api.train`
(a whole run from a pipeline config, as ``medseg train``).

Examples
--------
>>> from medseg.train import Checkpointing, Trainer, Validation, build_loss
>>> trainer = Trainer(model, build_loss("dice_ce"), optimizer,
...                   checkpoints=Checkpointing("run/checkpoints"))     # doctest: +SKIP
>>> trainer.fit(batches, iterations=100)                              # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types
from typing import Any

from medseg._lazy import lazy_attribute, lazy_dir

#: Public name -> the module that defines it (imported on first use).
_EXPORTS = {
    "Checkpointing": "medseg.train.trainer",
    "History": "medseg.train.trainer",
    "MixedPrecision": "medseg.train.precision",
    "StepPolicy": "medseg.train.precision",
    "Stopping": "medseg.train.trainer",
    "TrainResult": "medseg.train.trainer",
    "Trainer": "medseg.train.trainer",
    "Validation": "medseg.train.trainer",
    "batch_loader": "medseg.train.stream",
    "build_loss": "medseg.train.losses",
    "load_checkpoint": "medseg.train.checkpoint",
    "poly_schedule": "medseg.train.trainer",
    "save_checkpoint": "medseg.train.checkpoint",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, name)


def __dir__() -> list[str]:
    return lazy_dir(__name__, _EXPORTS)


class _CallablePackage(types.ModuleType):
    """``medseg.train`` is this package and, called, :func:`medseg.api.train`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # medseg.api sits above every package (it wires the pipeline): imported only when called,
        # declared in setup.cfg's import contracts as the one allowed upward import
        from medseg.api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
