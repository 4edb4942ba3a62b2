"""Mixed precision: autocast for the forward pass, gradient scaling for float16, clipping."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch

from medseg.errors import ConfigError

__all__ = ["PRECISIONS", "Precision"]

#: ``train.precision`` value -> autocast dtype (``None``: plain float32).
PRECISIONS: dict[str, torch.dtype | None] = {
    "float32": None,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


class Precision:
    """How one optimisation step runs: autocast dtype, gradient scaler and clipping.

    Parameters
    ----------
    name : {'float32', 'bfloat16', 'float16'}
        Autocast dtype of the forward pass (weights, optimiser state and the loss stay
        float32). ``float16`` scales the loss against gradient underflow
        (``torch.amp.GradScaler``); ``bfloat16`` has float32's range and needs none.
    device : torch.device
        Where the model runs (``cuda`` or ``cpu``; both support autocast).
    grad_clip : float or None
        Maximum global L2 norm of the gradients (``None``: no clipping).
    """

    def __init__(self, name: str, device: torch.device, *, grad_clip: float | None = None) -> None:
        if name not in PRECISIONS:
            raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
        if grad_clip is not None and grad_clip <= 0:
            raise ConfigError(f"train.grad_clip must be > 0, got {grad_clip}")
        self.name = name
        self.dtype = PRECISIONS[name]
        self.device_type = torch.device(device).type
        self.grad_clip = grad_clip
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=name == "float16")

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for the forward pass."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def step(
        self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, parameters: Iterable[torch.Tensor]
    ) -> None:
        """Backward pass, optional clipping (on unscaled gradients) and optimiser step."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(list(parameters), self.grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()
