"""Warping error (Jain et al. 2010), as Fiji's ``WarpingError`` computes it.

The reference binary map L* is warped towards the proposal T by flipping *simple*
pixels of L* where L* and T disagree (a simple pixel can be flipped without creating,
merging, splitting or deleting any object or hole). What disagreement remains is
topological; the warping error is its fraction of all pixels.

Transcribed from fiji/Trainable_Segmentation ``metrics/WarpingError.java``
(``simplePointWarp2d``, ``classifyMismatches2d``, ``getMinimumSplitsAndMergersErrorValue``):

* reference foreground = ``value > 0``; proposal foreground = ``value > t`` (float32
  value compared in double precision); the image is padded with one background pixel;
* the simple-point test is ``simple2DBertrand(patch, 4)``: **foreground (cells)
  4-connected, background 8-connected** (``fg_connectivity=8`` gives the dual pair);
* each sweep visits the current mismatches sorted by ``|proposal - t|`` descending
  (float32; ties in x-major order, Java's stable sort) and flips each simple one at
  once (later pixels of the sweep see the flips); sweeps repeat until none flips;
* the *minimum splits and mergers* variant (:func:`splits_and_mergers_warping_error`)
  classifies every residual mismatch with ``classifyMismatches2d`` (4-connected
  components of the warped reference, whole-image re-labelling for the split test),
  counts only split and merger pixels, and reports the minimum over thresholds
  0.0 ... 0.9 (Fiji's documented call ``getMinimumSplitsAndMergersErrorValue(0.0, 0.9,
  0.1, false)``: pixels counted by type, not clustered).
"""

from __future__ import annotations

from typing import NamedTuple

import cc3d
import numpy as np
from scipy import ndimage as ndi

from medseg.errors import DataValueError, ShapeError
from medseg.eval._jit import njit_cached

__all__ = [
    "SPLITS_AND_MERGERS_THRESHOLDS",
    "WarpingResult",
    "MismatchCounts",
    "simple_point_table",
    "warping_error",
    "classify_mismatches",
    "splits_and_mergers_warping_error",
    "fiji_8bit_reference",
]

# neighbour offsets in bit order (dy, dx)
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


class WarpingResult(NamedTuple):
    error: float
    warped: np.ndarray
    mismatch: np.ndarray


def _is_simple(code: int, fg_connectivity: int) -> bool:
    nb = np.zeros((3, 3), dtype=bool)
    for bit, (dy, dx) in enumerate(_OFFSETS):
        nb[1 + dy, 1 + dx] = bool(code >> bit & 1)
    fg_struct = ndi.generate_binary_structure(2, 2 if fg_connectivity == 8 else 1)
    bg_struct = ndi.generate_binary_structure(2, 1 if fg_connectivity == 8 else 2)
    four = ((0, 1), (1, 0), (1, 2), (2, 1))
    fg = nb.copy()
    fg[1, 1] = False
    lab, _ = ndi.label(fg, structure=fg_struct)
    # foreground components of N*(p) adjacent to p (8- or 4-adjacent per connectivity)
    adj_fg = (
        {lab[y, x] for y in range(3) for x in range(3) if lab[y, x]}
        if fg_connectivity == 8
        else {lab[y, x] for y, x in four if lab[y, x]}
    )
    bg = ~nb
    bg[1, 1] = False
    lab_b, _ = ndi.label(bg, structure=bg_struct)
    adj_bg = (
        {lab_b[y, x] for y, x in four if lab_b[y, x]}
        if fg_connectivity == 8
        else {lab_b[y, x] for y in range(3) for x in range(3) if lab_b[y, x]}
    )
    return len(adj_fg) == 1 and len(adj_bg) == 1


_TABLES: dict[int, np.ndarray] = {}


def simple_point_table(fg_connectivity: int = 8) -> np.ndarray:
    """Lookup table (256 bools) of simple 2D configurations, indexed by the 8-neighbour code.

    Bit k of the code is the k-th neighbour clockwise from the top-left. A pixel is
    simple when exactly one foreground component of its punctured neighbourhood is
    adjacent to it and exactly one background component is (digital topology with
    (8, 4) or (4, 8) connectivity for (foreground, background)).
    """
    if fg_connectivity not in (4, 8):
        raise DataValueError(f"fg_connectivity must be 4 or 8, got {fg_connectivity}")
    if fg_connectivity not in _TABLES:
        _TABLES[fg_connectivity] = np.array([_is_simple(c, fg_connectivity) for c in range(256)])
    return _TABLES[fg_connectivity]


def _fiji_thresholds(stop: float) -> tuple[float, ...]:
    out, th = [], 0.0
    while th <= stop:
        out.append(th)
        th += 0.1
    return tuple(out)


SPLITS_AND_MERGERS_THRESHOLDS = _fiji_thresholds(0.9)
"""Fiji's ``for (th = 0.0; th <= 0.9; th += 0.1)``: 10 doubles, 0.0 ... 0.8999999999999999."""

_DY = np.array([dy for dy, _ in _OFFSETS], dtype=np.int64)
_DX = np.array([dx for _, dx in _OFFSETS], dtype=np.int64)


@njit_cached
def _warp(
    source: np.ndarray,
    target: np.ndarray,
    order: np.ndarray,
    table: np.ndarray,
    dy: np.ndarray,
    dx: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Fiji's sweep loop on padded ``(H+2, W+2)`` uint8 maps; warps ``source`` in place, returns mismatches."""
    height, width = source.shape
    diff_before = -1
    while True:
        diff = 0
        for y in range(height):
            for x in range(width):
                if source[y, x] != target[y, x]:
                    diff += 1
        if diff == 0 or diff == diff_before:
            return diff
        diff_before = diff
        for n in range(order.size):
            flat = order[n]
            y = flat // width
            x = flat - y * width
            if source[y, x] == target[y, x]:
                continue
            code = 0
            for k in range(8):
                code |= source[y + dy[k], x + dx[k]] << k
            if table[code]:
                source[y, x] = 1 - source[y, x]


def _sweep_order(ref: np.ndarray, proposal: np.ndarray, threshold: float) -> np.ndarray:
    """Flat indices into the padded slice of the initial mismatches, in Fiji's processing order.

    Flips only ever remove mismatches, so every later sweep visits a subset of these in
    the same relative order (Java's stable sort of the same keys).
    """
    h, w = proposal.shape
    prop_xy = np.ascontiguousarray(proposal.T).ravel()  # Fiji lists pixels for x: for y:
    mismatched = np.flatnonzero(np.ascontiguousarray(ref.T).ravel() != (prop_xy > threshold))
    key = np.abs(prop_xy[mismatched] - threshold).astype(np.float32)
    ranked = mismatched[np.argsort(-key, kind="stable")]
    x, y = np.divmod(ranked, h)
    return ((y + 1) * (w + 2) + (x + 1)).astype(np.int64)


def _warp_slice(ref: np.ndarray, proposal: np.ndarray, threshold: float, table: np.ndarray) -> np.ndarray:
    source = np.pad(ref, 1).astype(np.uint8)
    target = np.pad(proposal > threshold, 1).astype(np.uint8)
    _warp(source, target, _sweep_order(ref, proposal, threshold), table, _DY, _DX)
    return source[1:-1, 1:-1].astype(bool)


def _checked(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(gt)
    p = np.asarray(pred)
    if g.shape != p.shape:
        raise ShapeError(f"gt and pred must have the same shape, got {g.shape} and {p.shape}")
    if g.ndim not in (2, 3):
        raise ShapeError(f"gt must be (Y, X) or (Z, Y, X), got shape {g.shape}")
    p = (p.view(np.uint8) if p.dtype == bool else p).astype(np.float32).astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise DataValueError("pred holds NaN/inf values; pass a binary map or probabilities")
    stack_g = g[None] if g.ndim == 2 else g
    return stack_g > 0, p[None] if p.ndim == 2 else p


def warping_error(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    threshold: float = 0.5,
    fg_connectivity: int = 4,
) -> WarpingResult:
    """Warping error of a proposal against a binary reference (2D or per slice), as Fiji.

    Parameters
    ----------
    gt : np.ndarray, shape ``(Y, X)`` or ``(Z, Y, X)``
        Reference; ``> 0`` is foreground (cells, in ISBI 2012 polarity).
    pred : np.ndarray, same shape
        Binary map or probability map; foreground is ``pred > threshold``. Its values
        also order the flips (most confident first).
    threshold : float
        Binarisation threshold of ``pred`` (Fiji's ``simplePointWarp2d`` argument).
    fg_connectivity : {4, 8}
        Foreground connectivity of the simple-point test; the background gets the dual
        one. 4 is Fiji's ``simple2DBertrand(patch, 4)``.

    Returns
    -------
    WarpingResult
        ``error`` = |warped != binarised pred| / N (N = all pixels of all slices), the
        warped reference, and the residual mismatch.

    References
    ----------
    Jain et al., "Boundary learning by optimization with topological constraints",
    CVPR 2010; fiji/Trainable_Segmentation ``metrics/WarpingError.java``.
    """
    g, p = _checked(gt, pred)
    table = simple_point_table(fg_connectivity)
    warped = np.stack([_warp_slice(a, b, float(threshold), table) for a, b in zip(g, p, strict=True)])
    mismatch = warped != (p > threshold)
    if np.asarray(gt).ndim == 2:
        warped, mismatch = warped[0], mismatch[0]
    return WarpingResult(float(np.count_nonzero(mismatch) / mismatch.size), warped, mismatch)


class MismatchCounts(NamedTuple):
    """Residual mismatch pixels by topological type (Fiji ``clusterMismatchesByType``)."""

    object_additions: int
    hole_deletions: int
    mergers: int
    hole_additions: int
    object_deletions: int
    splits: int


def _neighbour_ids(components: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``(M, 8)`` component ids around each pixel; -1 outside the image."""
    padded = np.pad(components.astype(np.int64), 1, constant_values=-1)
    return np.stack([padded[ys + 1 + dy, xs + 1 + dx] for dy, dx in _OFFSETS], axis=1)


def _distinct(ids: np.ndarray) -> np.ndarray:
    ordered = np.sort(ids, axis=1)
    new = np.concatenate([np.ones((len(ids), 1), bool), ordered[:, 1:] != ordered[:, :-1]], axis=1)
    return np.count_nonzero(new & (ordered >= 0), axis=1)


@njit_cached
def _splits_when_removed(
    components: np.ndarray, ys: np.ndarray, xs: np.ndarray, dy: np.ndarray, dx: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    """For each pixel: more than two distinct ids around it once it is removed and its
    component re-labelled with 4-connectivity (Fiji re-labels the whole image; only the
    pixel's own component can change, so a flood inside that component decides)."""
    height, width = components.shape
    stamp = np.zeros((height, width), dtype=np.int64)
    queue = np.empty(height * width, dtype=np.int64)
    out = np.zeros(ys.size, dtype=np.bool_)
    targets = np.empty(8, dtype=np.int64)
    others = np.empty(8, dtype=np.int64)
    four_y = (-1, 0, 1, 0)
    four_x = (0, -1, 0, 1)
    run = 0
    for n in range(ys.size):
        y = ys[n]
        x = xs[n]
        label = components[y, x]
        n_targets = 0
        n_others = 0
        for k in range(8):
            v = y + dy[k]
            u = x + dx[k]
            if not (0 <= v < height and 0 <= u < width):
                continue
            value = components[v, u]
            if value == label:
                targets[n_targets] = v * width + u
                n_targets += 1
            else:
                seen = False
                for q in range(n_others):
                    if others[q] == value:
                        seen = True
                if not seen:
                    others[n_others] = value
                    n_others += 1
        pieces = 0
        first = run + 1
        for t in range(n_targets):
            ty = targets[t] // width
            tx = targets[t] - ty * width
            if stamp[ty, tx] >= first:
                continue  # reached by an earlier flood around this pixel: same piece
            run += 1
            pieces += 1
            stamp[y, x] = run  # the removed pixel
            stamp[ty, tx] = run
            queue[0] = targets[t]
            head = 0
            tail = 1
            while head < tail:
                p = queue[head]
                head += 1
                py = p // width
                px = p - py * width
                for k in range(4):
                    v = py + four_y[k]
                    u = px + four_x[k]
                    if (
                        0 <= v < height
                        and 0 <= u < width
                        and stamp[v, u] != run
                        and components[v, u] == label
                    ):
                        stamp[v, u] = run
                        queue[tail] = v * width + u
                        tail += 1
        out[n] = pieces + n_others > 2
    return out


def classify_mismatches(warped: np.ndarray, mismatch: np.ndarray) -> MismatchCounts:
    """Classify the residual mismatches of one warped 2D slice as Fiji's ``classifyMismatches2d``.

    With the 4-connected components of ``warped`` and the distinct ids among a
    mismatch pixel's (in-image) 8 neighbours: only background -> object deletion
    (pixel in an object) or addition; one object -> hole addition (pixel in the
    object) or deletion; two ids -> hole addition if the pixel is background, else a
    split when removing it leaves more than two ids around it (whole-image
    re-labelling), a hole deletion otherwise; three or more ids -> merger (background
    pixel) or split.
    """
    components = cc3d.connected_components(warped.astype(np.uint8), connectivity=4).astype(np.int64)
    ys, xs = np.nonzero(mismatch)
    ids = _neighbour_ids(components, ys, xs)
    n_ids = _distinct(ids)
    only_zero = (n_ids == 1) & np.any(ids == 0, axis=1)
    inside = components[ys, xs] != 0
    one_object = (n_ids == 1) & ~only_zero
    two = n_ids == 2
    many = n_ids >= 3
    candidates = two & inside
    split_two = _splits_when_removed(components, ys[candidates], xs[candidates], _DY, _DX)
    n_split_two = int(np.count_nonzero(split_two))
    return MismatchCounts(
        object_additions=int(np.count_nonzero(only_zero & ~inside)),
        hole_deletions=int(np.count_nonzero(one_object & ~inside)) + split_two.size - n_split_two,
        mergers=int(np.count_nonzero(many & ~inside)),
        hole_additions=int(np.count_nonzero(one_object & inside) + np.count_nonzero(two & ~inside)),
        object_deletions=int(np.count_nonzero(only_zero & inside)),
        splits=int(np.count_nonzero(many & inside)) + n_split_two,
    )


def fiji_8bit_reference(gt: np.ndarray) -> np.ndarray:
    """The reference as the ISBI 2012 Fiji scripts see it after ImageJ's scaled 8-bit conversion.

    ImageJ maps each slice's ``[min, max]`` onto ``[0, 255]``; a slice holding one value
    (every pixel a cell, no membrane) has ``min == max`` and becomes all 0, so against it
    every proposal foreground pixel is an object addition (not a split or merger).
    Other slices keep their binary meaning (``value > 0`` = cell). ``gt`` is
    ``(Y, X)`` or ``(Z, Y, X)``; a copy is returned.
    """
    arr = np.array(gt, copy=True)
    slices = arr[None] if arr.ndim == 2 else arr
    for z in range(slices.shape[0]):
        if slices[z].size and slices[z].min() == slices[z].max():
            slices[z] = 0
    return arr


def splits_and_mergers_warping_error(
    gt: np.ndarray,
    proposal: np.ndarray,
    *,
    thresholds: tuple[float, ...] = SPLITS_AND_MERGERS_THRESHOLDS,
    fg_connectivity: int = 4,
) -> float:
    """Minimum splits-and-mergers warping error over thresholds (the ISBI 2012 board's).

    For each threshold the reference is warped onto the binarised proposal slice by
    slice (:func:`warping_error`), the residual mismatches are classified
    (:func:`classify_mismatches`) and only split and merger pixels are counted; the
    error is their number over all pixels of the stack, minimised over ``thresholds``.

    References
    ----------
    fiji/Trainable_Segmentation ``metrics/WarpingError.java``,
    ``getMinimumSplitsAndMergersErrorValue(0.0, 0.9, 0.1, false)``.
    """
    g, p = _checked(gt, proposal)
    table = simple_point_table(fg_connectivity)
    best = float("inf")
    for th in thresholds:
        errors = 0
        for ref, prop in zip(g, p, strict=True):
            warped = _warp_slice(ref, prop, float(th), table)
            counts = classify_mismatches(warped, warped != (prop > th))
            errors += counts.splits + counts.mergers
        best = min(best, errors / g.size)
    return float(best)
