"""A small, exactly resumable training loop that is handed its objects (torch-em style).

The loop only steps, validates, stops and saves, as its policies say
(:class:`Validation`, :class:`Checkpointing`, :class:`Stopping`,
:class:`~medseg.train.precision.StepPolicy`); what a step computes in which
precision is :class:`~medseg.train.precision.MixedPrecision`'s, how ranks cooperate is
:class:`~medseg.train.distributed.Distributed`'s, and where batches come from is the
caller's (a function of the start iteration, see :mod:`medseg.train.stream`).
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from medseg.checkpoint_meta import Checkpoint, CheckpointMeta
from medseg.device import resolve_device
from medseg.errors import ConfigError, DataValueError
from medseg.models.blocks import center_crop
from medseg.train.checkpoint import load_checkpoint, save_checkpoint
from medseg.train.distributed import Distributed
from medseg.train.precision import MixedPrecision, StepPolicy

__all__ = ["Checkpointing", "History", "Stopping", "TrainResult", "Trainer", "Validation", "poly_schedule"]

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, ...]
Batches = Iterator[Batch] | Callable[[int], Iterator[Batch]]


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
class History:
    """Loss per iteration, validation scores and training seconds since iteration 0 (kept across resumes)."""

    losses: list[float] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    best_score: float = -math.inf
    since_best: int = 0
    seconds: float = 0.0

    def to_state(self) -> dict[str, Any]:
        return {
            "losses": torch.tensor(self.losses, dtype=torch.float64),
            "validation": [[int(i), float(s)] for i, s in self.validation],
            "best_score": float(self.best_score),
            "since_best": int(self.since_best),
            "seconds": float(self.seconds),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> History:
        return cls(
            losses=[float(v) for v in state["losses"]],
            validation=[(int(i), float(s)) for i, s in state["validation"]],
            best_score=float(state["best_score"]),
            since_best=int(state["since_best"]),
            seconds=float(state.get("seconds", 0.0)),
        )


@dataclass(frozen=True)
class Stopping:
    """When to end training before the iteration budget.

    Parameters
    ----------
    max_minutes : float or None
        Wall-clock budget of this run (``latest.pt`` is saved; ``--resume`` continues).
    patience : int or None
        Stop after this many validations in a row without a better score.
    """

    max_minutes: float | None = None
    patience: int | None = None


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` did; ``losses``/``validation``/``seconds`` span every run of a resumed job."""

    iterations: int
    #: Training seconds over every run of the job (up to each run's last checkpoint, then this run).
    seconds: float
    losses: list[float] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    best_score: float = -math.inf
    checkpoints: dict[str, Path] = field(default_factory=dict)
    stopped: str | None = None
    #: Seconds of this run spent waiting for the next batch (0 when workers keep up).
    data_seconds: float = 0.0


@dataclass(frozen=True)
class Validation:
    """How and how often a training run is validated.

    Parameters
    ----------
    score : callable
        ``score(model) -> float``, higher is better (e.g. mean foreground Dice); the best
        score so far decides ``best.pt`` and early stopping.
    every : int
        Interval in iterations (the last iteration of a run is always validated).
    """

    score: Callable[[torch.nn.Module], float]
    every: int = 100

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ConfigError(f"validate_every must be >= 1, got {self.every}")


@dataclass(frozen=True)
class Checkpointing:
    """Where checkpoints go, how often, and what they say about the model.

    Parameters
    ----------
    directory : path
        Gets ``latest.pt`` (every ``every`` iterations, when stopping and at the end) and
        ``best.pt`` (best validation score; the final model without validation).
    every : int
        Interval in iterations.
    meta : CheckpointMeta or dict or None
        Stored in every checkpoint (model spec, classes, normalisation, config ...), with
        the best score so far.
    keep_best : bool
        ``False``: ``best.pt`` is the final model even with validation (nnU-Net's final
        checkpoint); the scores still drive early stopping and the training curve.
    """

    directory: Path
    every: int = 100
    meta: CheckpointMeta | dict[str, Any] | None = None
    keep_best: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory))
        if self.every < 1:
            raise ConfigError(f"checkpoint_every must be >= 1, got {self.every}")

    def meta_with(self, best_score: float) -> CheckpointMeta | dict[str, Any]:
        """The metadata to store, with ``best_score``."""
        if isinstance(self.meta, CheckpointMeta):
            return replace(self.meta, best_score=best_score)
        return {**(self.meta or {}), "best_score": best_score}


class Trainer:
    """Train a model on an endless stream of batches, with validation, checkpoints and resume.

    The trainer is handed objects (torch-em style): the model, loss and optimiser, and a
    few policies saying when to validate, save and stop and how a step runs.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(N, C, *spatial)`` to ``(N, K, *spatial)`` logits.
    loss : torch.nn.Module
        Called as ``loss(logits, target, *extras)`` with the batch's tensors after the image.
    optimizer : torch.optim.Optimizer
    scheduler : LRScheduler or None
        Stepped once per iteration.
    device : str or None
        ``None`` picks CUDA when available.
    validation : Validation or None
        Score function and interval; ``None`` never validates.
    checkpoints : Checkpointing or None
        Folder, interval and metadata of ``latest.pt``/``best.pt``; ``None`` writes nothing.
    stopping : Stopping
        Time budget and early stopping.
    step : StepPolicy
        Precision (autocast, float16 gradient scaling) and gradient clipping.
    distributed : Distributed or None
        Rank and world size; only rank 0 validates and saves.
    progress : bool
        Show a tqdm bar with the running loss.

    Examples
    --------
    >>> trainer = Trainer(model, loss, optimizer, checkpoints=Checkpointing("run/checkpoints"),
    ...                   validation=Validation(score, every=50))       # doctest: +SKIP
    >>> result = trainer.fit(batches, iterations=500)                   # doctest: +SKIP
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        device: str | None = None,
        validation: Validation | None = None,
        checkpoints: Checkpointing | None = None,
        stopping: Stopping = Stopping(),
        step: StepPolicy = StepPolicy(),
        distributed: Distributed | None = None,
        progress: bool = False,
    ) -> None:
        self.distributed = distributed or Distributed()
        device_ = resolve_device(None if device is None else str(device), option="train.device")
        self.device = self.distributed.device(device_)
        self.network = model.to(self.device)
        self.model = self.distributed.wrap(self.network)
        self.loss = loss
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.precision = MixedPrecision(step, self.device)
        self.validation = validation
        self.checkpoints = checkpoints
        self.checkpoint_dir = checkpoints.directory if checkpoints is not None else None
        self.stopping = stopping
        self.progress = progress
        self.iteration = 0
        self.history = History()
        self._clock_origin = time.perf_counter()

    @property
    def best_score(self) -> float:
        return self.history.best_score

    def resume(self, source: str | Path | Checkpoint | None = None) -> bool:
        """Load the complete training state from ``source`` (default: ``latest.pt``).

        ``source`` is a checkpoint file or a :class:`~medseg.checkpoint_meta.Checkpoint`
        already loaded (then the file is not read again). Model, optimiser, scheduler,
        gradient scaler, iteration, loss/validation history and random number generator
        states are restored. Returns ``False`` when there is nothing to resume from.

        Raises
        ------
        ConfigError
            The checkpoint's weights do not fit this model.
        """
        if source is None:
            if self.checkpoint_dir is None or not (self.checkpoint_dir / "latest.pt").is_file():
                return False
            source = self.checkpoint_dir / "latest.pt"
        if isinstance(source, Checkpoint):
            path, state = source.path, source.payload
        else:
            path, state = Path(source), load_checkpoint(source, map_location=self.device)
        try:
            self.network.load_state_dict(state["model"])
        except RuntimeError as err:
            raise ConfigError(
                f"checkpoint {path} holds weights of another model ({str(err).splitlines()[0]}); resume with "
                "the config it was trained with, or train into a new --out"
            ) from err
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state:
            self.precision.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        if "history" in state:
            self.history = History.from_state(state["history"])
        else:
            self.history = History(best_score=float(state["metadata"].get("best_score", -math.inf)))
        if "rng" in state:
            torch.set_rng_state(state["rng"]["torch"].cpu())
            if torch.cuda.is_available() and state["rng"].get("cuda"):
                torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        logger.info("resumed from %s at iteration %d", path, self.iteration)
        return True

    def fit(self, batches: Batches, iterations: int) -> TrainResult:
        """Train until ``iterations`` in total (counting iterations done before a resume).

        ``batches`` is an iterator, or a function ``start_iteration -> iterator`` (then a
        resumed run continues the stream exactly where the interrupted one stopped).
        """
        if callable(batches):
            batches = batches(self.iteration)
        result = TrainResult(iterations=self.iteration, seconds=0.0)
        start = time.perf_counter()
        self._clock_origin = start - self.history.seconds  # seconds count over every resumed run
        main = self.distributed.is_main
        bar = tqdm(
            total=iterations,
            initial=self.iteration,
            desc="train",
            unit="it",
            disable=not (self.progress and main),
        )
        self.model.train()
        while self.iteration < iterations:
            waited = time.perf_counter()
            batch = next(batches)
            result.data_seconds += time.perf_counter() - waited
            loss = self.distributed.mean(self._step(batch))
            self.iteration += 1
            self.history.losses.append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            stop = None
            out_of_time = (
                self.stopping.max_minutes is not None
                and time.perf_counter() - start > 60 * self.stopping.max_minutes
            )
            validation = self.validation
            if (
                main
                and validation is not None
                and (self.iteration % validation.every == 0 or self.iteration == iterations or out_of_time)
            ):  # the last iteration of a run is always validated, so best.pt exists
                stop = self._run_validation(validation, result)
            if out_of_time:
                stop = stop or f"time budget of {self.stopping.max_minutes} minutes"
            stopping = self.distributed.any(stop is not None)
            every = self.checkpoints.every if self.checkpoints is not None else iterations
            if stopping or self.iteration % every == 0 or self.iteration == iterations:
                self._save("latest.pt", result)
            if stopping:
                result.stopped = stop or "another rank stopped"
                logger.info("stopped at iteration %d: %s", self.iteration, result.stopped)
                break
        bar.close()
        if self.validation is None or not self._keeps_best:
            self._save("best.pt", result)
        result.iterations = self.iteration
        result.seconds = self.history.seconds = time.perf_counter() - self._clock_origin
        result.best_score = self.history.best_score
        result.losses = list(self.history.losses)
        result.validation = list(self.history.validation)
        return result

    def _step(self, batch: Batch) -> float:
        tensors = [t.to(self.device, non_blocking=True) for t in batch]
        with self.precision.autocast():
            logits = self.model(tensors[0])
        # valid convolutions (overlap-tile): the targets are the centre the output covers
        targets = [center_crop(t, logits.shape[2:]) for t in tensors[1:]]
        loss = self.loss(logits.float(), *targets)
        if not torch.isfinite(loss):
            raise DataValueError(
                f"training loss became {loss.item()} at iteration {self.iteration + 1}; "
                "lower the learning rate or check the inputs for NaN/extreme values"
            )
        self.precision.step(loss, self.optimizer, self.model.parameters())
        if self.scheduler is not None:
            self.scheduler.step()
        return float(loss.detach())

    def release_distributed(self) -> None:
        """Drop the DDP wrapper.

        Its reducer holds the process group; the group must end while every rank
        is still alive (a gloo group torn down after its peer exited can hang), so
        call this before :meth:`Distributed.close`.
        """
        self.model = self.network
        gc.collect()

    def _run_validation(self, validation: Validation, result: TrainResult) -> str | None:
        """Validate; return why training should stop (patience exhausted) or ``None``."""
        self.network.eval()
        score = float(validation.score(self.network))
        self.model.train()
        self.history.validation.append((self.iteration, score))
        logger.info("iteration %d: validation score %.4f", self.iteration, score)
        if score > self.history.best_score:
            self.history.best_score = score
            self.history.since_best = 0
            if self._keeps_best:
                self._save("best.pt", result)
            return None
        self.history.since_best += 1
        patience = self.stopping.patience
        if patience is not None and self.history.since_best >= patience:
            return f"early stopping: no better validation score in {patience} validations"
        return None

    @property
    def _keeps_best(self) -> bool:
        return self.checkpoints is None or self.checkpoints.keep_best

    def _save(self, name: str, result: TrainResult) -> None:
        if self.checkpoints is None or not self.distributed.is_main:
            return
        self.history.seconds = time.perf_counter() - self._clock_origin
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        path = save_checkpoint(
            self.checkpoints.directory / name,
            model=self.network,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            iteration=self.iteration,
            metadata=self.checkpoints.meta_with(self.history.best_score),
            state={
                "scaler": self.precision.scaler.state_dict(),
                "history": self.history.to_state(),
                "rng": rng,
            },
        )
        result.checkpoints[name] = path
