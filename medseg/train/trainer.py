"""A small, resumable training loop that is handed its objects (torch-em style)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from medseg.errors import ConfigError, DataValueError
from medseg.train.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["TrainResult", "Trainer", "poly_schedule"]

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, ...]


def poly_schedule(
    optimizer: torch.optim.Optimizer, iterations: int, *, exponent: float = 0.9
) -> torch.optim.lr_scheduler.LambdaLR:
    """nnU-Net's polynomial decay, ``lr * (1 - it / iterations) ** exponent``.

    The schedule is a function of the iteration only, so a resumed run may use a
    different total number of iterations.
    """
    if iterations < 1:
        raise ConfigError(f"iterations must be >= 1, got {iterations}")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: max(0.0, 1 - min(it, iterations) / iterations) ** exponent
    )


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` did."""

    iterations: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    best_score: float = -math.inf
    checkpoints: dict[str, Path] = field(default_factory=dict)


class Trainer:
    """Train a model on an endless stream of batches, with validation and checkpoints.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(N, C, *spatial)`` to ``(N, K, *spatial)`` logits.
    loss : torch.nn.Module
        Called as ``loss(logits, target)``, or ``loss(logits, target, weights)`` when
        batches carry a third (weight map) tensor.
    optimizer : torch.optim.Optimizer
    scheduler : LRScheduler or None
        Stepped once per iteration.
    device : str or None
        ``None`` picks CUDA when available.
    checkpoint_dir : path or None
        Where ``latest.pt`` (every ``checkpoint_every`` iterations and at the end) and
        ``best.pt`` (best validation score) go; ``None`` writes nothing.
    validate : callable or None
        ``validate(model) -> float``, higher is better (e.g. mean foreground Dice).
    validate_every, checkpoint_every : int
        Intervals in iterations.
    metadata : dict or None
        Stored in every checkpoint (model name/params, classes, config...).
    progress : bool
        Show a tqdm bar with the running loss.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        device: str | None = None,
        checkpoint_dir: str | Path | None = None,
        validate: Callable[[torch.nn.Module], float] | None = None,
        validate_every: int = 100,
        checkpoint_every: int = 100,
        metadata: dict[str, Any] | None = None,
        progress: bool = False,
    ) -> None:
        if validate_every < 1 or checkpoint_every < 1:
            raise ConfigError(
                f"validate_every and checkpoint_every must be >= 1, got {validate_every}, {checkpoint_every}"
            )
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device)
        self.loss = loss
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.validate = validate
        self.validate_every = validate_every
        self.checkpoint_every = checkpoint_every
        self.metadata = metadata or {}
        self.progress = progress
        self.iteration = 0
        self.best_score = -math.inf

    def resume(self, path: str | Path | None = None) -> bool:
        """Load model/optimizer/scheduler state from ``path`` (default: ``latest.pt``).

        Returns ``False`` when there is nothing to resume from.
        """
        if path is None:
            if self.checkpoint_dir is None or not (self.checkpoint_dir / "latest.pt").is_file():
                return False
            path = self.checkpoint_dir / "latest.pt"
        state = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(state["model"])
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        self.iteration = int(state["iteration"])
        self.best_score = float(state["metadata"].get("best_score", -math.inf))
        logger.info("resumed from %s at iteration %d", path, self.iteration)
        return True

    def fit(self, batches: Iterator[Batch], iterations: int) -> TrainResult:
        """Train until ``iterations`` in total (counting iterations done before a resume)."""
        result = TrainResult(iterations=self.iteration, seconds=0.0, best_score=self.best_score)
        start = time.perf_counter()
        bar = tqdm(
            total=iterations, initial=self.iteration, desc="train", unit="it", disable=not self.progress
        )
        self.model.train()
        while self.iteration < iterations:
            loss = self._step(next(batches))
            self.iteration += 1
            result.losses.append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            if self.validate is not None and (
                self.iteration % self.validate_every == 0 or self.iteration == iterations
            ):
                self._run_validation(result)
            if self.iteration % self.checkpoint_every == 0 or self.iteration == iterations:
                self._save("latest.pt", result)
        bar.close()
        if self.validate is None:
            self._save("best.pt", result)
        result.iterations = self.iteration
        result.seconds = time.perf_counter() - start
        result.best_score = self.best_score
        return result

    def _step(self, batch: Batch) -> float:
        tensors = [t.to(self.device, non_blocking=True) for t in batch]
        logits = self.model(tensors[0])
        loss = self.loss(logits, *tensors[1:])
        if not torch.isfinite(loss):
            raise DataValueError(
                f"training loss became {loss.item()} at iteration {self.iteration + 1}; "
                "lower the learning rate or check the inputs for NaN/extreme values"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return float(loss.detach())

    def _run_validation(self, result: TrainResult) -> None:
        self.model.eval()
        score = float(self.validate(self.model))
        self.model.train()
        result.validation.append((self.iteration, score))
        logger.info("iteration %d: validation score %.4f", self.iteration, score)
        if score > self.best_score:
            self.best_score = score
            self._save("best.pt", result)

    def _save(self, name: str, result: TrainResult) -> None:
        if self.checkpoint_dir is None:
            return
        path = save_checkpoint(
            self.checkpoint_dir / name,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            iteration=self.iteration,
            metadata={**self.metadata, "best_score": self.best_score},
        )
        result.checkpoints[name] = path
