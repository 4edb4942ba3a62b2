"""Mixed precision: autocast for the forward pass, gradient scaling for float16, clipping."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from medseg.errors import ConfigError
from medseg.options import Precision

__all__ = ["MixedPrecision", "StepPolicy"]


@dataclass(frozen=True)
class StepPolicy:
    """How each optimisation step runs: the forward pass's precision and gradient clipping.

    Parameters
    ----------
    precision : Precision or str
        Autocast dtype of the forward pass (``train.precision``); weights, optimiser
        state and the loss stay float32.
    grad_clip : float or None
        Maximum global L2 norm of the gradients (``train.grad_clip``; ``None``: no clipping).
    """

    precision: Precision = Precision.FLOAT32
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision.parse(self.precision, option="train.precision"))
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"train.grad_clip must be > 0, got {self.grad_clip}")


class MixedPrecision:
    """One optimisation step under a :class:`StepPolicy`: autocast, gradient scaler and clipping.

    ``float16`` scales the loss against gradient underflow (``torch.amp.GradScaler``);
    ``bfloat16`` has float32's range and needs none.

    Parameters
    ----------
    policy : StepPolicy
        Precision and clipping.
    device : torch.device
        Where the model runs (``cuda`` or ``cpu``; both support autocast).
    """

    def __init__(self, policy: StepPolicy, device: torch.device) -> None:
        self.policy = policy
        self.precision = Precision.parse(policy.precision)
        self.device_type = torch.device(device).type
        self.grad_clip = policy.grad_clip
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=self.precision.needs_grad_scaling)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for the forward pass."""
        if not self.precision.is_mixed:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.precision.torch_dtype())

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
