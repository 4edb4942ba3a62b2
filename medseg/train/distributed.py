"""Distributed data-parallel training under ``torchrun`` (NCCL on GPU, gloo on CPU).

``torchrun --nproc_per_node N medseg train ...`` sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; :meth:`Distributed.from_environment` joins the process group, each
rank trains on its share of every global batch
(:class:`~medseg.train.stream.IndexBatches`), DDP averages the gradients, and only
rank 0 logs, validates and writes checkpoints. Without those variables everything
runs in one process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Distributed"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a (possibly single-process) training job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, logs and saves."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls, device_type: str) -> Distributed:
        """Join the process group torchrun describes (``WORLD_SIZE > 1``), else a single process."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        logger.info("DDP rank %d of %d (%s)", rank, world_size, dist.get_backend())
        return cls(rank=rank, world_size=world_size, local_rank=local_rank)

    def device(self, device: torch.device) -> torch.device:
        """On CUDA, the GPU of this rank (``cuda:LOCAL_RANK``)."""
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``DistributedDataParallel(model)`` when distributed, else ``model``."""
        if not self.enabled:
            return model
        device_ids = [self.local_rank] if next(model.parameters()).is_cuda else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (every rank gets the same answer)."""
        if not self.enabled:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self._reduce_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def mean(self, value: float) -> float:
        """Mean of ``value`` over the ranks (the global-batch loss)."""
        if not self.enabled:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self._reduce_device())
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def _reduce_device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")

    def barrier(self) -> None:
        """Wait until every rank gets here (a no-op in one process)."""
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group."""
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
