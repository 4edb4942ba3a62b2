"""Batch prediction of image files with a trained checkpoint (``medseg predict``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from medseg.errors import ConfigError, DataNotFoundError
from medseg.eval.formats import get_format, write_submission
from medseg.infer.blockwise import predict_blockwise
from medseg.infer.postprocess import label_instances
from medseg.infer.predictor import Prediction, Predictor
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import open_array, read, split_key, suffix_of, write
from medseg.train.checkpoint import load_checkpoint

__all__ = ["PredictedCase", "case_name", "predict_files", "write_case_submission"]

logger = logging.getLogger(__name__)

#: Formats whose files hold instance ids: predictions are split into connected components.
_INSTANCE_FORMATS = {"ctc", "glas", "monuseg"}
#: Lossy or geometry-less inputs get their labels written as TIFF instead.
_LABEL_SUFFIX_FOR = {".jpg": ".tif", ".jpeg": ".tif", ".bmp": ".png"}


@dataclass(frozen=True)
class PredictedCase:
    case: str
    labels: Path
    submission: Path | None
    skipped: bool


def case_name(path: str | Path) -> str:
    """File name without its (possibly double) suffix or container key: ``case_001.nii.gz`` → ``case_001``."""
    path = split_key(path)[0]
    return path.name[: -len(suffix_of(path))]


def predict_files(
    checkpoint: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    window: SlidingWindow,
    submission_format: str | None = None,
    block_shape: Sequence[int] | None = None,
    halo: Sequence[int] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> list[PredictedCase]:
    """Predict each input file and write its label map (same grid and geometry) to ``out_dir``.

    Parameters
    ----------
    checkpoint : path
        A ``best.pt``/``latest.pt`` of ``medseg train``/``medseg demo``, or their folder.
    inputs : sequence of path
        Image files in any format :func:`medseg.io.read` takes.
    out_dir : path
        Gets ``<case><suffix>`` label maps (the input's suffix; ``.tif`` for JPEG input)
        and, with ``submission_format``, the challenge files.
    window : SlidingWindow
        Tiling, TTA and device settings.
    submission_format : str, optional
        Also write each case in a challenge format (see :mod:`medseg.eval.formats`):
        ``isbi2012`` writes the non-membrane probability, instance formats get the
        connected components of the predicted foreground.
    block_shape, halo : sequence of int, optional
        Predict out of core: read each image lazily block by block (with ``halo``
        context, default a quarter of the window) and write ``<case>.zarr`` label maps;
        an interrupted case resumes with its missing blocks. Not combined with
        ``submission_format``.
    overwrite : bool
        Predict cases whose label file already exists again (default: skip them, so an
        interrupted run continues where it stopped).
    progress : bool
        Show a progress bar over files.
    """
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        checkpoint = checkpoint / "best.pt"
    paths = [Path(p) for p in inputs]
    missing = [str(p) for p in paths if not split_key(p)[0].exists()]
    if missing:
        raise DataNotFoundError(f"input file(s) not found: {', '.join(missing[:5])}; check the paths")
    if submission_format is not None:
        get_format(submission_format)
        if block_shape is not None:
            raise ConfigError(
                "block-wise prediction writes .zarr label maps; drop the submission format or block_shape"
            )
    names = [case_name(p) for p in paths]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"inputs share case names {duplicates[:5]}; predict them into separate folders")
    state = load_checkpoint(checkpoint)
    predictor = Predictor.from_checkpoint(state, window)
    out = Path(out_dir)
    results = []
    for path, name in tqdm(
        list(zip(paths, names, strict=True)), desc="cases", unit="case", disable=not progress
    ):
        file_suffix = suffix_of(split_key(path)[0])
        suffix = ".zarr" if block_shape is not None else _LABEL_SUFFIX_FOR.get(file_suffix, file_suffix)
        target = out / f"{name}{suffix}"
        if target.exists() and not overwrite:
            logger.info("skipping %s: %s exists (use overwrite to predict it again)", path, target)
            results.append(PredictedCase(name, target, None, skipped=True))
            continue
        if block_shape is not None:
            context = (
                halo if halo is not None else tuple(r // 4 for r in _full_roi(window.roi_size, block_shape))
            )
            with open_array(path) as image:
                labels = predict_blockwise(predictor, image, target, block_shape=block_shape, halo=context)
            results.append(PredictedCase(name, labels, None, skipped=False))
            continue
        prediction = predictor.predict(read(path))
        submission = None
        if submission_format is not None:
            submission = write_case_submission(
                submission_format, prediction, out / submission_format, name, predictor
            )
        results.append(PredictedCase(name, write(prediction.labels, target), submission, skipped=False))
    return results


def _full_roi(roi: Sequence[int], block_shape: Sequence[int]) -> tuple[int, ...]:
    """The window size per axis of the block (a 2D window on a 3D block leaves Z without context)."""
    roi = tuple(roi)
    return (0,) * (len(block_shape) - len(roi)) + roi


def write_case_submission(
    fmt: str, prediction: Prediction, out_dir: Path, case: str, predictor: Predictor
) -> Path:
    """Write one predicted case in challenge format ``fmt`` (probabilities, instances or classes as it needs)."""
    labels = prediction.labels.array[0]
    if fmt == "isbi2012":
        classes = list(predictor.classes or [])
        if "membrane" not in classes:
            raise ConfigError(f"format isbi2012 needs a 'membrane' class; this model's classes are {classes}")
        membrane = prediction.probabilities.array[classes.index("membrane")]
        return write_submission(fmt, 1.0 - membrane, out_dir, case)
    if fmt in _INSTANCE_FORMATS:
        return write_submission(fmt, label_instances(labels), out_dir, case)
    geometry = {}
    if fmt == "labelmap":
        volume = prediction.labels
        geometry = {"spacing": volume.spacing, "origin": volume.origin, "direction": volume.direction}
    return write_submission(fmt, labels.astype(np.int64), out_dir, case, **geometry)
