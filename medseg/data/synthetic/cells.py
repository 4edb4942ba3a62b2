"""Synthetic 2D+t cell sequences written in the Cell Tracking Challenge layout.

Cells are irregular blobs drifting by a random walk over phase-contrast-like
frames (bright halo, darker body). Ground truth: uint16 instance masks with a
cell's id constant over time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from medseg.data.synthetic._shapes import blob_polygon, fill_polygon, smooth_noise
from medseg.errors import ConfigError

__all__ = ["SyntheticSequence", "make_cell_sequence", "write_ctc"]


@dataclass(frozen=True)
class SyntheticSequence:
    """``frames`` ``(T, Y, X)`` uint16 images and ``masks`` ``(T, Y, X)`` uint16 instance ids."""

    frames: np.ndarray
    masks: np.ndarray


def make_cell_sequence(
    n_frames: int = 4,
    shape: tuple[int, int] = (64, 64),
    *,
    n_cells: int = 5,
    radius: float = 7.0,
    seed: int = 0,
) -> SyntheticSequence:
    """Generate a short sequence of moving cells.

    Parameters
    ----------
    n_frames : int
        Frames T.
    shape : (int, int)
        ``(Y, X)``.
    n_cells : int
        Cells (ids 1..n_cells, constant over time; later cells are drawn on top).
    radius : float
        Mean cell radius in pixels.
    seed : int
        Same seed, same sequence.
    """
    if n_frames < 1 or min(shape) < 4 * radius:
        raise ConfigError(f"need n_frames >= 1 and shape >= 4*radius, got {n_frames}, {shape}")
    rng = np.random.default_rng(seed)
    h, w = shape
    pos = rng.uniform([radius, radius], [h - radius, w - radius], size=(n_cells, 2))
    radii = rng.uniform(0.7, 1.3, size=(n_cells, 2)) * radius
    angles = rng.uniform(0, np.pi, size=n_cells)
    frames = np.zeros((n_frames, h, w), dtype=np.uint16)
    masks = np.zeros((n_frames, h, w), dtype=np.uint16)
    for t in range(n_frames):
        for c in range(n_cells):
            shape_rng = np.random.default_rng([seed, c])  # same outline every frame
            xy = blob_polygon(tuple(pos[c]), tuple(radii[c]), angles[c], shape_rng)
            masks[t][fill_polygon(shape, xy)] = c + 1
        inside = masks[t] > 0
        halo = ndimage.binary_dilation(inside, iterations=2) & ~inside
        image = 900 + 60 * smooth_noise(shape, 4.0, rng)
        image[inside] = 700
        image[halo] = 1500
        image += rng.normal(0, 25, size=shape)
        frames[t] = np.clip(np.rint(image), 0, 65535).astype(np.uint16)
        pos = np.clip(pos + rng.normal(0, 1.5, size=pos.shape), radius, [h - radius, w - radius])
    return SyntheticSequence(frames, masks)


def write_ctc(
    root: str | Path,
    *,
    sequences: tuple[str, ...] = ("01",),
    n_frames: int = 4,
    shape: tuple[int, int] = (64, 64),
    annotate_every: int = 2,
    seed: int = 0,
) -> dict[str, SyntheticSequence]:
    """Write ``<root>/<seq>/tTTT.tif``, sparse ``<seq>_GT/SEG/man_segTTT.tif`` and full ``<seq>_GT/TRA``.

    SEG GT is written for every ``annotate_every``-th frame (CTC annotates only some);
    TRA masks for all frames plus ``man_track.txt`` (``L B E P``, parent 0).
    """
    import tifffile

    root = Path(root)
    out = {}
    for s, seq in enumerate(sequences):
        data = make_cell_sequence(n_frames, shape, seed=seed + s)
        (root / seq).mkdir(parents=True, exist_ok=True)
        seg_dir, tra_dir = root / f"{seq}_GT" / "SEG", root / f"{seq}_GT" / "TRA"
        seg_dir.mkdir(parents=True, exist_ok=True)
        tra_dir.mkdir(parents=True, exist_ok=True)
        for t in range(n_frames):
            tifffile.imwrite(root / seq / f"t{t:03d}.tif", data.frames[t])
            tifffile.imwrite(tra_dir / f"man_track{t:03d}.tif", data.masks[t])
            if t % annotate_every == 0:
                tifffile.imwrite(seg_dir / f"man_seg{t:03d}.tif", data.masks[t])
        ids = sorted(set(np.unique(data.masks).tolist()) - {0})
        lines = []
        for i in ids:
            present = [t for t in range(n_frames) if (data.masks[t] == i).any()]
            lines.append(f"{i} {present[0]} {present[-1]} 0")
        (tra_dir / "man_track.txt").write_text("\n".join(lines) + "\n")
        out[seq] = data
    return out
