"""Compiled kernels of the ISBI 2012 scorer (private): Fiji's watershed and joint label counts.

:func:`fiji_watershed` is Fiji's Vincent-Soille watershed of a binary image;
:func:`pair_counts` counts (reference cell, proposal segment) pairs in linear time.

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

import numpy as np

from medseg.eval._jit import njit_cached

__all__ = ["fiji_watershed", "flood_xy", "pair_counts"]

_MASK = -2
_WSHED = 0
_INIT = -1
_INQUEUE = -3


@njit_cached
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
    return np.ascontiguousarray(flood_xy(cells_xy).T)


def flood_xy(cells_xy: np.ndarray) -> np.ndarray:
    """:func:`fiji_watershed` of an already transposed ``(X, Y)`` C-contiguous uint8 cell mask."""
    return _flood(cells_xy)


@njit_cached
def _pair_counts(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int):  # pragma: no cover - compiled
    n = rows.size
    start = np.zeros(n_cols + 1, dtype=np.int64)
    for k in range(n):
        start[cols[k] + 1] += 1
    for j in range(n_cols):
        start[j + 1] += start[j]
    position = start.copy()
    order = np.empty(n, dtype=np.int64)
    for k in range(n):
        order[position[cols[k]]] = k
        position[cols[k]] += 1
    scratch = np.zeros(n_rows, dtype=np.int64)
    touched = np.empty(n_rows, dtype=np.int64)
    counts = np.empty(n, dtype=np.int64)
    out_rows = np.empty(n, dtype=np.int64)
    out_cols = np.empty(n, dtype=np.int64)
    m = 0
    for j in range(n_cols):
        t = 0
        for idx in range(start[j], start[j + 1]):
            i = rows[order[idx]]
            if scratch[i] == 0:
                touched[t] = i
                t += 1
            scratch[i] += 1
        for q in range(t):
            i = touched[q]
            counts[m] = scratch[i]
            out_rows[m] = i
            out_cols[m] = j
            m += 1
            scratch[i] = 0
    return counts[:m], out_rows[:m], out_cols[:m]


def pair_counts(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nonzero joint counts of two non-negative label arrays without sorting.

    Returns ``(counts, row_ids, col_ids)``: ``counts[k]`` pixels carry row label
    ``row_ids[k]`` and column label ``col_ids[k]`` (pairs grouped by column label).
    """
    r = np.ascontiguousarray(rows, dtype=np.int64).ravel()
    c = np.ascontiguousarray(cols, dtype=np.int64).ravel()
    if r.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return _pair_counts(r, c, int(r.max()) + 1, int(c.max()) + 1)
