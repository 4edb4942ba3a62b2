"""Cell Tracking Challenge folders as the challenge ships them.

A result folder ``XX_RES`` holds ``maskTTT.tif`` for **every** frame; the ground truth
``XX_GT`` holds segmentation references for the annotated frames only, in ``SEG/``:
``man_segTTT.tif`` (a whole 2D frame or 3D stack) or, for 3D datasets annotated on single
slices, ``man_seg_TTT_ZZZ.tif`` (slice ZZZ of frame TTT); and tracking markers for every
frame in ``TRA/man_trackTTT.tif``. SEG is scored on every reference file, as the
official ``SEGMeasure`` (``net.celltrackingchallenge.measures.SEG``) does: a slice file is
compared with slice ZZZ of the 3D result as a 2D image of its own, so each object of
each annotated slice counts once (see ``docs/metrics.md`` for py-ctcmetrics, which
stacks the slices). DET is scored on every ``TRA`` frame.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import ConfigError, DataNotFoundError, FormatError, ShapeError
from medseg.eval.formats._io import atomic_write, read_volume, stored_array
from medseg.eval.formats.base import (
    CaseFiles,
    HeldOutLayout,
    InstanceMapFormat,
    check_integer,
    pair_cases,
    single_channel,
)
from medseg.eval.geometry import check_same_shape
from medseg.io import Volume

__all__ = [
    "FORMAT",
    "CtcFormat",
    "ctc_folders",
    "ctc_reference_files",
    "ctc_result_files",
    "ctc_tracking_pairs",
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
    out: dict[int, Path] = {}
    for path in sorted(Path(folder).iterdir()):
        m = pattern.fullmatch(path.name)
        if m and path.is_file():
            t = int(m.group("t"))
            if t in out:
                raise ConfigError(
                    f"two files for frame {t}: {out[t]} and {path}; keep one of them "
                    "(move the other out of the folder)"
                )
            out[t] = path
    return out


def ctc_result_files(res_dir: Path) -> dict[int, Path]:
    """Frame number -> ``maskTTT.tif`` of a result folder."""
    return _by_frame(res_dir, _RESULT)


def _frame_case(t: int) -> str:
    return f"{t:03d}"


def ctc_reference_files(gt_dir: Path) -> dict[str, Path]:
    """Case id -> reference file: ``TTT`` for ``man_segTTT.tif``, ``TTT_ZZZ`` for a slice file ``man_seg_TTT_ZZZ.tif``."""
    seg, _ = ctc_folders(gt_dir)
    out = {_frame_case(t): p for t, p in _by_frame(seg, _SEG).items()}
    for path in sorted(seg.iterdir()):
        m = _SEG_SLICE.fullmatch(path.name)
        if m and path.is_file():
            case = f"{_frame_case(int(m.group('t')))}_{int(m.group('z')):03d}"
            if case in out:
                raise ConfigError(
                    f"two reference files for frame {int(m.group('t'))} slice {int(m.group('z'))}: "
                    f"{out[case]} and {path}; keep one of them"
                )
            out[case] = path
    return out


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


def _name(case_id: str | int, prefix: str) -> str:
    digits = re.sub(r"\D", "", str(case_id))
    if not digits:
        raise FormatError(f"CTC case id {case_id!r} must be a frame number such as 7, '007' or 't007'")
    t = int(digits)
    return f"{prefix}{t:03d}.tif" if t <= 999 else f"{prefix}{t:04d}.tif"


class CtcFormat(InstanceMapFormat):
    name = "ctc"
    description = "Cell Tracking Challenge: XX_RES/maskTTT.tif uint16 vs XX_GT/SEG/man_segTTT.tif"
    pred_pattern = r"mask(?P<case>\d{3,4})\.tif"
    gt_pattern = r"man_seg_?(?P<case>\d{3,4}(?:_\d{3,4})?)\.tif"

    def _write(self, array: np.ndarray, out_dir: Path, case_id: str | int, prefix: str) -> Path:
        import tifffile

        arr = check_integer(
            array,
            f"CTC frame {case_id!r}",
            max_value=65535,
            what="instance masks",
            fix="relabel objects sequentially (at most 65535 per frame)",
        )
        data = np.ascontiguousarray(arr.astype(np.uint16))
        path = Path(out_dir) / _name(case_id, prefix)
        return atomic_write(path, lambda tmp: tifffile.imwrite(tmp, data))

    def write(self, array: np.ndarray, out_dir: Path, case_id: str | int, **geometry: Any) -> Path:
        """``maskTTT.tif`` (uint16) in a result folder ``XX_RES``."""
        return self._write(array, out_dir, case_id, "mask")

    def write_reference(self, array: np.ndarray, out_dir: Path, case_id: str | int, **geometry: Any) -> Path:
        """``man_segTTT.tif`` (uint16) in ``XX_GT/SEG``."""
        return self._write(np.asarray(array).astype(np.int64), out_dir, case_id, "man_seg")

    def read(self, path: Path) -> Volume:
        volume = read_volume(path, greyscale=True)
        if volume.array.dtype != np.uint16:
            raise FormatError(
                f"{path}: CTC masks must be uint16 TIFF, got {volume.array.dtype}; re-save as 16-bit"
            )
        if volume.num_channels > 1 and volume.ndim == 2:
            # a plain multi-page TIFF (no axis metadata) is read as pages x Y x X: CTC stacks are Z slices
            return Volume(volume.array[None], meta=volume.meta)
        return single_channel(volume, stored_array(volume))

    def match(self, pred_dir: Path, gt_dir: Path) -> CaseFiles:
        """Every reference file with the result mask of its frame (results hold every frame, references some)."""
        results = ctc_result_files(Path(pred_dir))
        refs = ctc_reference_files(Path(gt_dir))
        frames = {case: int(case.split("_")[0]) for case in refs}
        preds = {case: results[t] for case, t in frames.items() if t in results}
        return pair_cases(self, preds, refs, Path(pred_dir), Path(gt_dir), extra_predictions=True)

    def read_pair(self, pred_path: Path, gt_path: Path) -> tuple[Volume, Volume]:
        """A whole frame as it is; a slice file with slice ZZZ of the 3D result (a 2D pair, as ``SEGMeasure``)."""
        m = _SEG_SLICE.fullmatch(Path(gt_path).name)
        if m is None:
            return super().read_pair(pred_path, gt_path)
        z = int(m.group("z"))
        result = self.read(Path(pred_path)).array[0]
        if result.ndim != 3 or z >= result.shape[0]:
            raise ShapeError(
                f"{gt_path} annotates slice {z} but the result mask {pred_path} has shape {result.shape}; "
                "slice annotations need a 3D result with that slice"
            )
        pred = Volume(result[z][None], meta={"source": f"{pred_path} (slice {z})"})
        ref = self.read(Path(gt_path))
        check_same_shape(pred, ref, pred.meta["source"], gt_path)
        return self._labels(pred, pred.meta["source"], "prediction"), self._labels(ref, gt_path, "reference")

    def pool(self, cases: CaseFiles, per_case: dict[str, dict[str, dict[str, float]]]) -> dict[str, float]:
        """SEG and F1@0.5 over the objects of every reference file; DET over every ``TRA`` frame."""
        from medseg.eval.instance import ctc_det, ctc_seg, detection_scores

        pairs = [(g.array[0], p.array[0]) for p, g in (self.read_pair(*pg) for pg in cases.values())]
        pooled = {"seg": ctc_seg(pairs), "f1@0.5": detection_scores(pairs)[0.5]["f1"]}
        pred, ref = next(iter(cases.values()))
        tracking = ctc_tracking_pairs(Path(pred).parent, Path(ref).parent.parent)
        if tracking is not None:
            pooled["det"] = ctc_det([(self.read(m).array[0], self.read(r).array[0]) for m, r in tracking])
        return pooled

    def held_out_layout(self, folder: Path, case_id: str) -> HeldOutLayout:
        """Case ``<sequence>_t<frame>``: ``<sequence>_RES/maskTTT.tif`` and ``<sequence>_GT/SEG/man_segTTT.tif``."""
        sequence, _, frame = case_id.rpartition("_")
        if not sequence or not frame.lstrip("t").isdigit():
            raise ConfigError(f"CTC case id {case_id!r} is not '<sequence>_t<frame>'")
        return HeldOutLayout(
            folder / f"{sequence}_RES", folder / f"{sequence}_GT" / "SEG", int(frame.lstrip("t")), sequence
        )

    def copy_reference_companions(self, image_source: str | None, references: Path) -> None:
        """The tracking markers of a frame ``<root>/<seq>/tTTT.tif`` (``<root>/<seq>_GT/TRA/man_trackTTT.tif``), for DET."""
        if not image_source:
            return
        frame = Path(image_source)
        markers = frame.parent.with_name(f"{frame.parent.name}_GT") / "TRA" / f"man_track{frame.stem[1:]}.tif"
        if not markers.is_file():
            return
        tra = references.parent / "TRA"
        tra.mkdir(parents=True, exist_ok=True)
        shutil.copy2(markers, tra / markers.name)


FORMAT = CtcFormat()
