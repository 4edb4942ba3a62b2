"""The index stream behind training batches: batch ``k`` holds patches ``[k * B, (k + 1) * B)``.

Together with :class:`medseg.data.dataset.PatchDataset` (patch ``i`` is a pure
function of ``(seed, i)``) this makes every batch a function of the iteration only:
resuming at iteration ``k`` starts the stream at ``k`` and reproduces the batches an
uninterrupted run would have seen, with any number of workers. Under DDP each rank
takes its contiguous share of every global batch (the role of
``DistributedSampler``), so the ranks together see exactly the single-process batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from medseg.data.dataset import worker_init
from medseg.errors import ConfigError

__all__ = ["IndexBatches", "batch_loader"]


class IndexBatches(Sampler[list[int]]):
    """Endless batches of sample indices for one rank, starting at ``start_iteration``.

    Parameters
    ----------
    batch_size : int
        Global batch size (all ranks together); must be divisible by ``world_size``.
    start_iteration : int
        First iteration to yield (the resume point).
    rank, world_size : int
        This process's share of each global batch.

    Examples
    --------
    >>> it = iter(IndexBatches(4, start_iteration=2, rank=1, world_size=2))
    >>> next(it), next(it)
    ([10, 11], [14, 15])
    """

    def __init__(
        self, batch_size: int, *, start_iteration: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        if batch_size < 1 or start_iteration < 0:
            raise ConfigError(
                f"batch_size must be >= 1 and start_iteration >= 0, got {batch_size}, {start_iteration}"
            )
        if batch_size % world_size:
            raise ConfigError(
                f"data.batch_size {batch_size} is the global batch and must be divisible by the world size "
                f"{world_size}: use a multiple of {world_size}"
            )
        self.batch_size = batch_size
        self.start_iteration = start_iteration
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[list[int]]:
        share = self.batch_size // self.world_size
        iteration = self.start_iteration
        while True:
            first = iteration * self.batch_size + self.rank * share
            yield list(range(first, first + share))
            iteration += 1


def batch_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    start_iteration: int = 0,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """An endless iterator of batches from ``dataset`` beginning at ``start_iteration``.

    Workers (``num_workers > 0``) augment in parallel and re-open lazy arrays
    (:func:`~medseg.data.dataset.worker_init`); the order of batches does not depend
    on their number.
    """
    sampler = IndexBatches(batch_size, start_iteration=start_iteration, rank=rank, world_size=world_size)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=worker_init if num_workers else None,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        generator=torch.Generator(),  # its own base seed: creating the loader leaves torch's global RNG alone
    )
    return iter(loader)
