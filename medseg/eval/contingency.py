"""Sparse contingency (overlap) table of two label maps, shared by EM and instance metrics."""

from __future__ import annotations

from dataclasses import dataclass

import fastremap
import numpy as np

from medseg.eval._checks import check_pair

__all__ = ["Contingency", "contingency_table"]

# above this many (gt id, pred id) cells the dense bincount is replaced by a sort
_DENSE_LIMIT = 1 << 26


@dataclass(frozen=True)
class Contingency:
    """Non-zero cells of the overlap table ``n_ij = |{x : gt(x) = a_i, pred(x) = b_j}|``.

    Attributes
    ----------
    gt_ids, pred_ids : np.ndarray
        Sorted distinct labels of each map (0 included when present).
    rows, cols : np.ndarray
        Indices into ``gt_ids`` / ``pred_ids`` of each non-zero cell.
    counts : np.ndarray
        Voxel count (int64) of each non-zero cell.
    gt_sizes, pred_sizes : np.ndarray
        Row and column sums (object sizes), aligned with ``gt_ids`` / ``pred_ids``.
    """

    gt_ids: np.ndarray
    pred_ids: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    counts: np.ndarray
    gt_sizes: np.ndarray
    pred_sizes: np.ndarray

    def dense(self) -> np.ndarray:
        """Dense ``(len(gt_ids), len(pred_ids))`` int64 table (small inputs only)."""
        out = np.zeros((self.gt_ids.size, self.pred_ids.size), dtype=np.int64)
        out[self.rows, self.cols] = self.counts
        return out


def _renumber(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map labels to 0..K-1 preserving order; returns (renumbered uint32, sorted ids)."""
    ids = fastremap.unique(arr)
    ids = np.asarray(ids)
    if ids.size and ids[-1] == ids.size - 1:  # already 0..K-1
        return arr.astype(np.int64, copy=False).ravel(), ids
    mapping = {int(v): i for i, v in enumerate(ids)}
    out = fastremap.remap(np.ascontiguousarray(arr), mapping, preserve_missing_labels=False)
    return np.asarray(out).astype(np.int64, copy=False).ravel(), ids


def contingency_table(gt: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> Contingency:
    """Count the voxels shared by every (gt label, pred label) pair.

    Parameters
    ----------
    gt, pred : np.ndarray of int, same shape (any dimensionality)
        Label maps.
    mask : np.ndarray of bool, optional
        Only voxels where ``mask`` is True are counted.

    Returns
    -------
    Contingency
        The non-zero cells; labels are renumbered with fastremap and the cells
        counted with one ``bincount`` (or a sort for very many label pairs).
    """
    a, b = check_pair(gt, pred, ndims=tuple(range(1, 6)))
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        a, b = a[m], b[m]
    ra, ids_a = _renumber(a)
    rb, ids_b = _renumber(b)
    na, nb = max(ids_a.size, 1), max(ids_b.size, 1)
    keys = ra * nb + rb
    if na * nb <= _DENSE_LIMIT:
        flat = np.bincount(keys, minlength=na * nb)
        nz = np.flatnonzero(flat)
        counts = flat[nz]
    else:
        nz, counts = np.unique(keys, return_counts=True)
    rows, cols = np.divmod(nz, nb)
    gt_sizes = np.bincount(rows, weights=counts, minlength=ids_a.size).astype(np.int64)
    pred_sizes = np.bincount(cols, weights=counts, minlength=ids_b.size).astype(np.int64)
    return Contingency(ids_a, ids_b, rows, cols, counts.astype(np.int64), gt_sizes, pred_sizes)
