"""Cell Tracking Challenge (CTC) 2D+t sequences, e.g. PhC-C2DH-U373 and DIC-C2DH-HeLa.

Layout::

    <dataset>/01/t000.tif, t001.tif, ...            # frames
    <dataset>/01_GT/SEG/man_seg000.tif, ...         # uint16 instance ids, some frames only

Only annotated frames have a segmentation; :func:`get_ctc_paths` pairs each
``man_segTTT.tif`` with ``tTTT.tif`` (and can list unannotated frames too). 3D
datasets annotating single slices (``man_seg_TTT_ZZZ.tif``) are not supported.

Reference: Ulman et al., Nature Methods 14, 2017 (https://celltrackingchallenge.net).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from medseg.data.manifest import Manifest
from medseg.data.sample import Sample
from medseg.errors import DataNotFoundError, FormatError, LabelError
from medseg.io import Volume, read
from medseg.io.paths import check_same_grid, natural_key, require_dir

__all__ = ["ctc_dataset_folder", "get_ctc_paths", "load_ctc_samples", "list_ctc_sequences"]

_SEG = re.compile(r"^man_seg(\d+)\.tif$")
_FRAME = re.compile(r"^t(\d+)\.tif$")


def ctc_dataset_folder(manifest: Manifest) -> str:
    """The CTC dataset's own folder (``PhC-C2DH-U373``): the second part of the manifest's ``train_images`` path."""
    return Path(manifest.layout.paths["train_images"]).parts[1]


def list_ctc_sequences(root: str | Path) -> list[str]:
    """Sequence names (``01``, ``02``...) found in a CTC dataset folder."""
    root = require_dir(Path(root), "CTC dataset folder", "run `medseg fetch ctc_phc_u373 --root DIR`")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def get_ctc_paths(
    root: str | Path, sequence: str = "01", *, annotated_only: bool = True
) -> list[tuple[Path, Path | None]]:
    """Frame paths of one sequence with their segmentation GT.

    Parameters
    ----------
    root : path
        Dataset folder (the one holding ``01``, ``01_GT``...).
    sequence : str
        Sequence name, e.g. ``"01"``.
    annotated_only : bool
        Only frames with a ``man_seg`` file (default); otherwise every frame, with
        ``None`` where there is no GT.

    Raises
    ------
    DataNotFoundError
        Missing sequence folder or a GT file whose frame does not exist.
    """
    root = Path(root)
    frames_dir = require_dir(
        root / sequence, f"CTC sequence '{sequence}'", f"sequences found: {list_ctc_sequences(root)}"
    )
    frames = {int(m.group(1)): p for p in frames_dir.glob("t*.tif") if (m := _FRAME.match(p.name))}
    if not frames:
        raise DataNotFoundError(f"no frames t000.tif... in {frames_dir}")
    seg_dir = root / f"{sequence}_GT" / "SEG"
    segs = {}
    if seg_dir.is_dir():
        segs = {int(m.group(1)): p for p in seg_dir.glob("man_seg*.tif") if (m := _SEG.match(p.name))}
    for t, seg in segs.items():
        if t not in frames:
            raise DataNotFoundError(
                f"GT {seg} has no image (expected {frames_dir}/t{t:03d}.tif): the sequence is incomplete"
            )
    if annotated_only:
        if not segs:
            raise DataNotFoundError(
                f"no segmentation GT for sequence '{sequence}' (expected {seg_dir}/man_seg000.tif...): "
                "use annotated_only=False for unlabelled frames"
            )
        return [(frames[t], segs[t]) for t in sorted(segs)]
    return [(frames[t], segs.get(t)) for t in sorted(frames)]


def _read_2d(path: Path) -> Volume:
    volume = read(path)
    if volume.ndim != 2 or volume.num_channels != 1:
        raise FormatError(f"{path} has shape {volume.array.shape}, expected one 2D greyscale frame (1, Y, X)")
    return volume


def load_ctc_samples(
    root: str | Path, sequences: list[str] | None = None, *, annotated_only: bool = True
) -> list[Sample]:
    """CTC frames as samples: image ``(1, Y, X)`` as stored, label ``(1, Y, X)`` uint16 instance ids.

    Case ids are ``<sequence>_t<frame>`` (e.g. ``01_t005``).

    Raises
    ------
    LabelError
        A GT file is not an unsigned integer label image.
    ShapeError
        GT and frame differ in shape.
    """
    root = Path(root)
    samples = []
    for seq in sequences or list_ctc_sequences(root):
        for frame_path, seg_path in get_ctc_paths(root, seq, annotated_only=annotated_only):
            image = _read_2d(frame_path)
            label = None
            if seg_path is not None:
                seg = _read_2d(seg_path)
                if not np.issubdtype(seg.array.dtype, np.integer) or seg.array.min() < 0:
                    raise LabelError(
                        f"GT {seg_path} has dtype {seg.array.dtype}: expected uint16 instance ids (0 = background)"
                    )
                check_same_grid(image.spatial_shape, seg.spatial_shape, frame_path, seg_path)
                label = seg.with_array(seg.array.astype(np.uint16), kind="instance")
            samples.append(
                Sample(
                    image=image,
                    label=label,
                    case_id=f"{seq}_{frame_path.stem}",
                    modality="cells",
                )
            )
    return sorted(samples, key=lambda s: natural_key(s.case_id))
