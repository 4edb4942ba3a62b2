"""Window positions and blending weights for sliding-window inference."""

from __future__ import annotations

import itertools
import math
from enum import StrEnum

import numpy as np

from medseg.errors import ConfigError

__all__ = ["BlendMode", "aligned_size", "importance_map", "iter_windows", "window_starts"]


class BlendMode(StrEnum):
    """How overlapping window outputs are weighted."""

    GAUSSIAN = "gaussian"
    CONSTANT = "constant"

    @classmethod
    def parse(cls, value: BlendMode | str) -> BlendMode:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise ConfigError(f"blending must be one of {choices}, got {value!r}") from None


def window_starts(size: int, window: int, overlap: float, *, align: int = 1) -> list[int]:
    """Start offsets of windows of length ``window`` covering ``[0, size)``.

    Windows are spread evenly so that the first starts at 0 and the last ends at
    ``size`` (nnU-Net's scheme), with at least the requested ``overlap`` between
    neighbours.

    Parameters
    ----------
    size : int
        Length of the axis; must be >= ``window`` (pad the image first).
    window : int
        Window length.
    overlap : float
        Fraction of the window shared by neighbours, ``0 <= overlap < 1``.
    align : int
        Every start is a multiple of ``align``; ``size - window`` must be one too
        (see :func:`aligned_size`). Aligning to a network's pooling factor keeps the
        pooling grid of every window on the image's grid, so a valid-convolution
        network gives the same output wherever a pixel falls in a window.
    """
    if not 0 <= overlap < 1:
        raise ConfigError(f"overlap must be >= 0 and < 1, got {overlap}")
    if window > size:
        raise ConfigError(f"window {window} is larger than the axis {size}; pad the image first")
    if (size - window) % align:
        raise ConfigError(
            f"axis {size} minus window {window} is not a multiple of align {align}; pad the axis"
        )
    if window < align:
        raise ConfigError(
            f"the network's output window ({window}) is smaller than its pooling factor ({align}): "
            f"windows whose starts keep the pooling grid would leave gaps; use a roi_size whose "
            f"output is at least {align} voxels along this axis"
        )
    step = max(align, int(window * (1 - overlap)) // align * align)
    n = math.ceil((size - window) / step) + 1
    if n == 1:
        return [0]
    slots = (size - window) // align
    return [round(i * slots / (n - 1)) * align for i in range(n)]


def aligned_size(size: int, window: int, align: int) -> int:
    """Smallest length >= ``max(size, window)`` whose excess over ``window`` is a multiple of ``align``."""
    size = max(size, window)
    return size + (-(size - window)) % align


def iter_windows(
    shape: tuple[int, ...], window: tuple[int, ...], overlap: float, *, align: tuple[int, ...] | None = None
) -> list[tuple[slice, ...]]:
    """All window slices covering ``shape`` (one slice per spatial axis), starts multiples of ``align``."""
    align = align or (1,) * len(shape)
    per_axis = [window_starts(s, w, overlap, align=a) for s, w, a in zip(shape, window, align, strict=True)]
    return [
        tuple(slice(start, start + w) for start, w in zip(starts, window, strict=True))
        for starts in itertools.product(*per_axis)
    ]


def importance_map(
    window: tuple[int, ...], mode: BlendMode | str, *, sigma_scale: float = 0.125
) -> np.ndarray:
    """Weight of each position inside a window when blending overlapping outputs.

    ``gaussian`` is nnU-Net's map: a Gaussian with ``sigma = sigma_scale * window``
    centred in the window, scaled to a maximum of 1, zeros replaced by the smallest
    non-zero value so that every pixel gets some weight. ``constant`` is all ones.
    """
    mode = BlendMode.parse(mode)
    if mode is BlendMode.CONSTANT:
        return np.ones(window, dtype=np.float32)
    weights = np.ones(window, dtype=np.float64)
    for axis, length in enumerate(window):
        sigma = max(sigma_scale * length, 1e-6)
        coords = np.arange(length) - (length - 1) / 2
        profile = np.exp(-(coords**2) / (2 * sigma**2))
        shape = [1] * len(window)
        shape[axis] = length
        weights = weights * profile.reshape(shape)
    weights /= weights.max()
    positive = weights[weights > 0]
    weights[weights == 0] = positive.min()
    return weights.astype(np.float32)
