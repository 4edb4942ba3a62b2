"""Cell Tracking Challenge folders as the challenge ships them.

A result folder ``XX_RES`` holds ``maskTTT.tif`` for **every** frame; the ground truth
``XX_GT`` holds segmentation references for the annotated frames only, in ``SEG/``:
``man_segTTT.tif`` (a whole 2D frame or 3D stack) or, for 3D datasets annotated on single
slices, ``man_seg_TTT_ZZZ.tif`` (slice ZZZ of frame TTT); and tracking markers for every
frame in ``TRA/man_trackTTT.tif``. SEG is scored on the annotated frames (the slices of a
slice-annotated frame are stacked and compared with the same slices of the result, as
py-ctcmetrics does); DET on every ``TRA`` frame.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from medseg.errors import DataNotFoundError, ShapeError
from medseg.eval.formats._io import read_volume, stored_array

__all__ = [
    "ctc_folders",
    "ctc_reference_files",
    "ctc_result_files",
    "ctc_tracking_pairs",
    "read_ctc_reference",
]

_RESULT = re.compile(r"mask(?P<t>\d{3,4})\.tif")
_SEG = re.compile(r"man_seg(?P<t>\d{3,4})\.tif")
_SEG_SLICE = re.compile(r"man_seg_(?P<t>\d{3,4})_(?P<z>\d{3,4})\.tif")
_TRA = re.compile(r"man_track(?P<t>\d{3,4})\.tif")


def ctc_folders(gt_dir: Path) -> tuple[Path, Path | None]:
    """``(SEG folder, TRA folder or None)`` for ``--gt XX_GT`` or ``--gt XX_GT/SEG``."""
    gt_dir = Path(gt_dir)
    if (gt_dir / "SEG").is_dir():
        seg, tra = gt_dir / "SEG", gt_dir / "TRA"
    else:
        seg, tra = gt_dir, gt_dir.parent / "TRA"
    return seg, tra if tra.is_dir() else None


def _by_frame(folder: Path, pattern: re.Pattern) -> dict[int, Path]:
    out = {}
    for path in sorted(Path(folder).iterdir()):
        m = pattern.fullmatch(path.name)
        if m and path.is_file():
            out[int(m.group("t"))] = path
    return out


def ctc_result_files(res_dir: Path) -> dict[int, Path]:
    """Frame number -> ``maskTTT.tif`` of a result folder."""
    return _by_frame(res_dir, _RESULT)


def ctc_reference_files(gt_dir: Path) -> dict[int, Path]:
    """Frame number -> reference of every annotated frame.

    A frame annotated on single slices maps to the virtual path ``man_seg_TTT.tif``
    that :func:`read_ctc_reference` resolves to its slice files.
    """
    seg, _ = ctc_folders(gt_dir)
    out = _by_frame(seg, _SEG)
    for path in sorted(seg.iterdir()):
        m = _SEG_SLICE.fullmatch(path.name)
        if m:
            out.setdefault(int(m.group("t")), seg / f"man_seg_{m.group('t')}.tif")
    return out


def read_ctc_reference(path: Path, result: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(reference, result restricted to the annotated part)`` for one frame.

    ``path`` is a ``man_segTTT.tif`` file, or the virtual ``man_seg_TTT.tif`` of a frame
    annotated on slices: its ``man_seg_TTT_ZZZ.tif`` files are stacked in slice order and
    compared with slices ZZZ of the 3D result.
    """
    path = Path(path)
    if path.exists():
        return stored_array(read_volume(path, greyscale=True)), result
    frame = path.stem.split("_")[-1]
    slices = sorted(
        (int(m.group("z")), p)
        for p in path.parent.iterdir()
        if (m := _SEG_SLICE.fullmatch(p.name)) and m.group("t") == frame
    )
    if not slices:
        raise DataNotFoundError(
            f"no reference {path} nor slice files man_seg_{frame}_ZZZ.tif in {path.parent}"
        )
    if result.ndim != 3 or max(z for z, _ in slices) >= result.shape[0]:
        raise ShapeError(
            f"{path.parent}: frame {frame} is annotated on slices {[z for z, _ in slices]} but the result "
            f"mask has shape {result.shape}; slice annotations need a 3D result with those slices"
        )
    reference = np.stack([stored_array(read_volume(p, greyscale=True)) for _, p in slices])
    return reference, result[[z for z, _ in slices]]


def ctc_tracking_pairs(res_dir: Path, gt_dir: Path) -> list[tuple[Path, Path]] | None:
    """``(man_trackTTT.tif, maskTTT.tif)`` for every frame with tracking markers; ``None`` without ``TRA``.

    Raises
    ------
    DataNotFoundError
        A marker frame has no result mask (DET needs every frame).
    """
    _, tra = ctc_folders(gt_dir)
    if tra is None:
        return None
    markers = _by_frame(tra, _TRA)
    if not markers:
        return None
    results = ctc_result_files(res_dir)
    missing = sorted(set(markers) - set(results))
    if missing:
        raise DataNotFoundError(
            f"{res_dir} has no mask for {len(missing)} frame(s) with tracking markers in {tra} "
            f"(e.g. frame {missing[0]}); DET needs a result mask for every frame"
        )
    return [(markers[t], results[t]) for t in sorted(markers)]
