"""Fiji's Vincent-Soille watershed of a binary image, compiled with numba (private).

A line-by-line transcription of ``WatershedTransform2D.apply`` (fiji/Trainable_Segmentation,
``src/main/java/trainableSegmentation/utils/WatershedTransform2D.java``) specialised to
the two grey levels of a binarised ISBI 2012 proposal: cells (value 0 in Fiji's inverted
byte image) are flooded first, membrane (255) second. Every detail that decides where a
watershed line lands is kept:

* pixels are visited in Fiji's list order, ``for x: for y:`` (x-major), ties in value
  kept in that insertion order (``PixelRecord`` compares a sequence number);
* 4-neighbours in the order (x-1, y), (x, y-1), (x+1, y), (x, y+1);
* a FIFO queue, and the single ``flag`` variable that is shared by all pixels (it is
  not reset per pixel in Fiji's code).

The kernel works on the transposed image ``t[x, y]`` so that x-major order is C order.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["fiji_watershed"]

_MASK = -2
_WSHED = 0
_INIT = -1
_INQUEUE = -3


@numba.njit(cache=True, nogil=True)
def _flood(cells_xy: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    width, height = cells_xy.shape
    labels = np.full((width, height), _INIT, dtype=np.int32)
    queue = np.empty(width * height, dtype=np.int64)
    di = (-1, 0, 1, 0)
    dj = (0, -1, 0, 1)
    flag = False
    current = 0
    for level in (1, 0):  # Fiji's sorted order: cells (byte value 0) first, then membrane (255)
        # mask the level; queue the pixels next to a basin or a watershed line
        tail = 0
        for i in range(width):
            for j in range(height):
                if cells_xy[i, j] != level:
                    continue
                labels[i, j] = _MASK
                for k in range(4):
                    u = i + di[k]
                    v = j + dj[k]
                    if 0 <= u < width and 0 <= v < height and labels[u, v] >= _WSHED:
                        queue[tail] = i * height + j
                        tail += 1
                        labels[i, j] = _INQUEUE
                        break
        head = 0
        while head < tail:
            p = queue[head]
            head += 1
            i = p // height
            j = p - i * height
            for k in range(4):
                u = i + di[k]
                v = j + dj[k]
                if not (0 <= u < width and 0 <= v < height):
                    continue
                neighbour = labels[u, v]
                if neighbour > 0:
                    own = labels[i, j]
                    if own == _INQUEUE or (own == _WSHED and flag):
                        labels[i, j] = neighbour
                    elif own > 0 and own != neighbour:
                        labels[i, j] = _WSHED
                        flag = False
                elif neighbour == _WSHED:
                    if labels[i, j] == _INQUEUE:
                        labels[i, j] = _WSHED
                        flag = True
                elif neighbour == _MASK:
                    labels[u, v] = _INQUEUE
                    queue[tail] = u * height + v
                    tail += 1
        # new minima at this level
        for i in range(width):
            for j in range(height):
                if cells_xy[i, j] != level or labels[i, j] != _MASK:
                    continue
                current += 1
                labels[i, j] = current
                queue[0] = i * height + j
                head = 0
                tail = 1
                while head < tail:
                    p = queue[head]
                    head += 1
                    pi = p // height
                    pj = p - pi * height
                    for k in range(4):
                        u = pi + di[k]
                        v = pj + dj[k]
                        if 0 <= u < width and 0 <= v < height and labels[u, v] == _MASK:
                            queue[tail] = u * height + v
                            tail += 1
                            labels[u, v] = current
    for i in range(width):
        for j in range(height):
            if labels[i, j] == _INIT:
                labels[i, j] = 0
    return labels


def fiji_watershed(cells: np.ndarray) -> np.ndarray:
    """Fiji's ``WatershedTransform2D(binary, 4).apply()`` of a binarised proposal.

    Parameters
    ----------
    cells : np.ndarray of bool, shape ``(Y, X)``
        True where the proposal is above the threshold (cell).

    Returns
    -------
    np.ndarray of int32, shape ``(Y, X)``
        Basin labels > 0 (numbered in Fiji's order), watershed-line pixels 0.
    """
    cells_xy = np.ascontiguousarray(np.asarray(cells, dtype=bool).T.astype(np.uint8))
    return np.ascontiguousarray(_flood(cells_xy).T)
