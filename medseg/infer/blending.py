"""Blending of window outputs for :class:`medseg.infer.sliding_window.SlidingWindow`.

:class:`Blender` sums weighted window logits over the whole output and divides by the summed
weights; :class:`LabelCells` does the same per cell of the output and keeps only the argmax,
so labels-only prediction never holds the K-class output of the whole image.
"""

from __future__ import annotations

import functools
import itertools
import logging

import numpy as np
import torch

from medseg.infer.tiling import BlendMode, importance_map

__all__ = ["Blender", "LabelCells", "weight_map"]

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def weight_map(window: tuple[int, ...], blending: BlendMode, sigma_scale: float, device: str) -> torch.Tensor:
    """The blending weights of ``window`` (:func:`medseg.infer.tiling.importance_map`) on ``device``, made once.

    Shared between calls, so read only (the blenders never write to it): a 128³ Gaussian map
    takes about 16 ms of host time, and a copy to the GPU, on every call otherwise.
    """
    with torch.inference_mode(False):  # usable inside and outside inference mode
        return torch.from_numpy(importance_map(window, blending, sigma_scale=sigma_scale)).to(device)


class Blender:
    """Weighted sum of window outputs over the output ``grid``, divided by the summed weights at the end."""

    def __init__(
        self, n: int, channels: int, grid: tuple[int, ...], device: torch.device, weight_map: torch.Tensor
    ) -> None:
        try:
            self.values = torch.zeros((n, channels, *grid), dtype=torch.float32, device=device)
            self.weights = torch.zeros(grid, dtype=torch.float32, device=device)
        except torch.OutOfMemoryError:
            logger.warning("output of shape %s does not fit on %s; accumulating on the CPU", grid, device)
            device = torch.device("cpu")
            self.values = torch.zeros((n, channels, *grid), dtype=torch.float32)
            self.weights = torch.zeros(grid, dtype=torch.float32)
        self.weight_map = weight_map.to(device)

    def add(self, batch: list[tuple[int, tuple[int, ...]]], logits: torch.Tensor) -> None:
        with torch.inference_mode():  # weighted in place: the window outputs are ours (inference tensors)
            logits = logits.to(self.values.device, non_blocking=True).mul_(self.weight_map)
        for (k, starts), window_logits in zip(batch, logits, strict=True):
            where = tuple(slice(s, s + w) for s, w in zip(starts, self.weight_map.shape, strict=True))
            self.values[(k, slice(None), *where)] += window_logits
            if k == 0:
                self.weights[where] += self.weight_map

    def result(self) -> torch.Tensor:
        return self.values.div_(self.weights)


class LabelCells:
    """Labels-only blending: weighted window outputs summed per cell, reduced by argmax once complete.

    The output ``grid`` is cut along its first two axes at every window start and end, so
    every voxel of a cell is covered by the same windows. A cell's float32 sums are
    allocated when its first window arrives and reduced to class ids when its last one has
    been added; with windows in raster order, the open cells span about one window overlap
    of the first axis. Each voxel sums the same window outputs in the same order as
    :class:`Blender` and is divided by the same weight sum, which is added up when the cell
    completes (from the windows that cover it, in the same order) instead of being held: the
    labels equal the argmax of the blended logits, ties included.
    """

    def __init__(
        self,
        n: int,
        channels: int,
        grid: tuple[int, ...],
        per_axis: list[list[int]],
        device: torch.device,
        weight_map: torch.Tensor,
    ) -> None:
        self.window = tuple(weight_map.shape)
        self.weight_map = weight_map.to(device)
        self.device = device
        self.grid = grid
        self.channels = channels
        tiled = min(2, len(grid))
        self.per_axis = per_axis
        self.cuts = [
            sorted(
                {
                    0,
                    grid[d],
                    *per_axis[d],
                    *(min(s + self.window[d], grid[d]) for s in per_axis[d]),
                }
            )
            for d in range(tiled)
        ]
        untiled = n * int(np.prod([len(per_axis[d]) for d in range(tiled, len(grid))], dtype=np.int64))
        self.remaining = {
            cell: untiled * int(np.prod([len(c) for c in self._covering(self._box(cell))]))
            for cell in itertools.product(*(range(len(cuts) - 1) for cuts in self.cuts))
        }
        self.sums: dict[tuple[int, ...], torch.Tensor] = {}
        dtype = torch.uint8 if channels <= 256 else torch.int32
        self.labels = torch.empty((n, *grid), dtype=dtype)

    def _box(self, cell: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(cuts[i], cuts[i + 1]) for cuts, i in zip(self.cuts, cell, strict=True))

    def _covering(self, box: tuple[slice, ...]) -> list[list[int]]:
        """Per tiled axis, the window starts whose windows cover the cell ``box``."""
        return [
            [s for s in starts if s < b.stop and s + w > b.start]
            for starts, b, w in zip(self.per_axis, box, self.window, strict=False)
        ]

    def _cells(self, starts: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Cells a window starting at ``starts`` covers (whole cells: windows start and end on cuts)."""
        ranges = [
            [i for i in range(len(cuts) - 1) if cuts[i] < s + w and cuts[i + 1] > s]
            for cuts, s, w in zip(self.cuts, starts, self.window, strict=False)  # the tiled axes
        ]
        return list(itertools.product(*ranges))

    def add(self, batch: list[tuple[int, tuple[int, ...]]], logits: torch.Tensor) -> None:
        with torch.inference_mode():  # weighted in place: the window outputs are ours (inference tensors)
            logits = logits.to(self.device, non_blocking=True).mul_(self.weight_map)
        tiled = len(self.cuts)
        whole = (slice(None),) * tiled  # a cell's sums span exactly the cell on the tiled axes
        for (k, starts), window_logits in zip(batch, logits, strict=True):
            rest = tuple(slice(s, s + w) for s, w in zip(starts[tiled:], self.window[tiled:], strict=True))
            for cell in self._cells(starts):
                box = self._box(cell)
                if cell not in self.sums:
                    shape = (
                        len(self.labels),
                        self.channels,
                        *(b.stop - b.start for b in box),
                        *self.grid[tiled:],
                    )
                    self.sums[cell] = torch.zeros(shape, dtype=torch.float32, device=self.device)
                inside = tuple(slice(b.start - s, b.stop - s) for b, s in zip(box, starts, strict=False))
                self.sums[cell][(k, slice(None), *whole, *rest)] += window_logits[(slice(None), *inside)]
                self.remaining[cell] -= 1
                if not self.remaining[cell]:
                    blended = self.sums.pop(cell).div_(self._weight_sum(box))
                    self.labels[(slice(None), *box)] = blended.argmax(dim=1).to("cpu", self.labels.dtype)

    def _weight_sum(self, box: tuple[slice, ...]) -> torch.Tensor:
        """The summed blending weights over a cell, added in the windows' order (as :class:`Blender`)."""
        tiled = len(box)
        shape = (*(b.stop - b.start for b in box), *self.grid[tiled:])
        total = torch.zeros(shape, dtype=torch.float32, device=self.device)
        whole = (slice(None),) * tiled
        for starts in itertools.product(*self._covering(box), *self.per_axis[tiled:]):
            inside = tuple(slice(b.start - s, b.stop - s) for b, s in zip(box, starts, strict=False))
            rest = tuple(slice(s, s + w) for s, w in zip(starts[tiled:], self.window[tiled:], strict=True))
            total[(*whole, *rest)] += self.weight_map[inside]
        return total

    def result(self) -> torch.Tensor:
        if self.sums or any(self.remaining.values()):
            raise RuntimeError("windows do not cover the output grid")  # an engine defect, never user input
        return self.labels
