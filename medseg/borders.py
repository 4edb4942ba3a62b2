"""The one border rule of medseg: where a position outside an axis reads from.

Training patches that extend past an image (:class:`medseg.data.sampling.PatchSampler`)
and inference windows that need context beyond it (:mod:`medseg.infer.sliding_window`,
:func:`medseg.models.constraints.mirror_pad`) both mirror the image without repeating the
edge voxel (``mode='reflect'``), axis by axis, with :func:`reflect_index`; an axis of
length 1 repeats its only voxel, and the other axes still reflect.

This module imports nothing, so every layer may use it (numpy arrays and torch tensors
alike).
"""

from __future__ import annotations

from typing import Any

__all__ = ["reflect_index"]


def reflect_index(index: Any, size: int) -> Any:
    """The source index of each position of an axis of length ``size`` mirrored at any width.

    Positions below 0 or from ``size`` on reflect without repeating the edge (as
    ``mode='reflect'``), again and again for positions further out than the axis is long;
    an axis of length 1 maps every position to 0.

    Parameters
    ----------
    index : np.ndarray or torch.Tensor
        Integer positions, any of them outside ``[0, size)``.
    size : int
        Length of the axis, >= 1.

    Returns
    -------
    np.ndarray or torch.Tensor
        Positions in ``[0, size)``, of ``index``'s type.

    Examples
    --------
    >>> import numpy as np
    >>> reflect_index(np.arange(-3, 7), 4).tolist()
    [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    """
    if size == 1:
        return index * 0
    last = size - 1
    return last - abs(index % (2 * last) - last)
