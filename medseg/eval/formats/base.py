"""What a challenge file format owns: :class:`ChallengeFormat` and the helpers its modules share.

A format is one object (one module per challenge under :mod:`medseg.eval.formats`):
what its files hold (:class:`~medseg.eval.options.FormatKind`), whether a prediction
needs probabilities, whether a prediction's geometry must equal its reference's,
``read``/``write``/``write_reference``, ``match`` (pair the files of a prediction and a
reference folder), ``score`` (one case) and ``pool`` (what the challenge computes over
all cases). ``medseg evaluate``, ``medseg predict --format`` and ``medseg run`` ask the
object; no other module compares format names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from medseg.errors import ConfigError, DataNotFoundError, FormatError
from medseg.eval._checks import as_label_array
from medseg.eval.formats._io import read_volume
from medseg.eval.geometry import check_same_grid, check_same_shape
from medseg.eval.options import FormatKind, NsdMethod
from medseg.io import Volume, write

__all__ = [
    "CaseFiles",
    "ChallengeFormat",
    "ClassMapFormat",
    "HeldOutLayout",
    "InstanceMapFormat",
    "ScoreOptions",
    "check_integer",
    "pair_cases",
    "read_single_channel",
    "safe_case",
    "single_channel",
    "write_map",
]

#: The case id group of the file-name patterns.
CASE = r"(?P<case>.+?)"

#: Case id -> (prediction file, reference file).
CaseFiles = dict[str, tuple[Path, Path]]


@dataclass(frozen=True)
class ScoreOptions:
    """Options of ``medseg evaluate`` that change how a case is scored.

    Attributes
    ----------
    spacing : tuple of float or None
        Voxel size for references without geometry (PNG, BMP), array axis order.
    tolerance : float
        Surface Dice tolerance in the reference's physical units.
    labels : tuple of int or None
        The dataset's foreground classes (class formats); ``None``: the labels present.
    nsd_method : NsdMethod
        Surface Dice weighting.
    border_threshold : float or None
        Formats with :attr:`ChallengeFormat.uses_border_threshold` only (CREMI, nm).
    """

    spacing: tuple[float, ...] | None = None
    tolerance: float = 1.0
    labels: tuple[int, ...] | None = None
    nsd_method: NsdMethod = NsdMethod.DEEPMIND
    border_threshold: float | None = None


class HeldOutLayout(NamedTuple):
    """Where ``medseg run`` writes one held-out case in a format's own layout."""

    predictions: Path
    references: Path
    case: str | int
    #: Cases of one group are scored together (CTC: a sequence); ``None``: one group.
    group: str | None


def check_integer(array: np.ndarray, name: str, *, max_value: int, what: str, fix: str) -> np.ndarray:
    """``array`` as integer labels in ``[0, max_value]`` (booleans as ``uint8``), else a FormatError."""
    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise FormatError(f"{name}: {what} must be integer labels, got dtype {arr.dtype}; {fix}")
    if arr.size and (arr.min() < 0 or arr.max() > max_value):
        raise FormatError(
            f"{name}: {what} values must be in [0, {max_value}], got [{arr.min()}, {arr.max()}]; {fix}"
        )
    return arr


def safe_case(case_id: str | int) -> str:
    """The case id as a file-name stem, refusing ids that are paths."""
    case = str(case_id)
    if not case or "/" in case or "\\" in case or case.startswith("."):
        raise FormatError(f"case id {case_id!r} cannot be a file name; use letters, digits, '_' or '-'")
    return case


def single_channel(volume: Volume, array: np.ndarray) -> Volume:
    """``array`` as the one channel of a volume with ``volume``'s geometry."""
    return volume.with_array(np.asarray(array)[None])


def read_single_channel(path: Path, what: str) -> Volume:
    """A file that must hold one channel (a label map), as a one-channel volume.

    A planar RGB(A) TIFF page is read as a 3- or 4-section stack (:func:`medseg.io.read_greyscale`).
    """
    volume = read_volume(path, greyscale=True)
    if volume.num_channels != 1:
        raise FormatError(
            f"{path}: a {what} has one channel, got {volume.num_channels}; save it as a single-channel image"
        )
    return volume


def write_map(
    arr: np.ndarray,
    path: Path,
    *,
    suffixes: tuple[str, ...],
    what: str,
    spacing=None,
    origin=None,
    direction=None,
) -> Path:
    """Write a validated integer (Y, X) / (Z, Y, X) map with its geometry in the smallest dtype."""
    name = path.name
    suffix = next((s for s in suffixes if name.endswith(s)), None)
    if arr.ndim not in (2, 3):
        raise FormatError(f"{what} {path.stem!r} must be (Y, X) or (Z, Y, X), got shape {arr.shape}")
    if suffix is None:
        raise FormatError(f"{what} file {name!r}: suffix not supported; use one of {', '.join(suffixes)}")
    top = int(arr.max(initial=0))
    dtype = np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.uint32
    return write(Volume(arr.astype(dtype)[None], spacing=spacing, origin=origin, direction=direction), path)


def _files(folder: Path, pattern: re.Pattern, what: str) -> dict[str, Path]:
    """Case id -> file of ``folder`` (not its subfolders) whose name matches ``pattern``.

    Raises
    ------
    ConfigError
        Two files of the folder give one case (``c1.nii.gz`` and a stale ``c1.tif``).
    """
    out: dict[str, Path] = {}
    for path in sorted(Path(folder).iterdir()):
        m = pattern.fullmatch(path.name)
        if not m or not (path.is_file() or (path.suffix == ".zarr" and path.is_dir())):
            continue
        case = m.group("case")
        if case in out:
            raise ConfigError(
                f"two {what} files for case {case!r}: {out[case]} and {path}; keep one of them "
                "(move the other out of the folder)"
            )
        out[case] = path
    return out


def pair_cases(
    fmt: ChallengeFormat,
    preds: dict[str, Path],
    refs: dict[str, Path],
    pred_dir: Path,
    gt_dir: Path,
    *,
    extra_predictions: bool = False,
) -> CaseFiles:
    """Pair prediction and reference files by case id; no reference, or unmatched cases, is an error.

    ``extra_predictions``: predictions without a reference are allowed (CTC results
    hold every frame, references only the annotated ones).
    """
    if not refs:
        raise DataNotFoundError(
            f"no reference file of format {fmt.name!r} in --gt {gt_dir} ({fmt.description}); "
            "point --gt at the folder holding the reference files, or pick the format they are in"
        )
    if not preds:
        raise DataNotFoundError(
            f"no prediction file of format {fmt.name!r} in --pred {pred_dir} ({fmt.description}); "
            "point --pred at the folder holding the predictions, or pick the format they are in"
        )
    missing_pred = sorted(set(refs) - set(preds))
    missing_gt = [] if extra_predictions else sorted(set(preds) - set(refs))
    if missing_pred or missing_gt:
        raise DataNotFoundError(
            f"cases do not match for format {fmt.name!r}: "
            f"{len(missing_pred)} reference case(s) without prediction {missing_pred[:10]}, "
            f"{len(missing_gt)} prediction(s) without reference {missing_gt[:10]} "
            f"(pred {pred_dir}, gt {gt_dir}); add or remove files so both folders hold the same cases"
        )
    return {c: (preds[c], refs[c]) for c in sorted(refs)}


class ChallengeFormat:
    """One challenge file format; subclasses set the attributes and implement ``read``/``write``/``score``.

    Attributes
    ----------
    name : str
        Registry name (``medseg evaluate/predict --format NAME``).
    kind : FormatKind
        What the files hold.
    description : str
        One line naming the files (shown in errors).
    needs_probabilities : bool
        A submission is written from class probabilities, not labels.
    geometry_must_match : bool
        A prediction must have its reference's spacing, origin and direction (not only
        its shape). Formats scored by topology (ISBI 2012) check the shape only.
    keeps_geometry : bool
        ``write`` stores the image's spacing, origin and direction.
    uses_border_threshold : bool
        ``medseg evaluate --border-threshold`` applies.
    scored_as_challenge : bool
        ``medseg run`` scores held-out cases in this format in its challenge stage
        (``False`` for a format the evaluate stage already scores).
    needs_instance_model : bool
        Only a model predicting instances (``data.label_kind: instances``) can be scored.
    pred_pattern, gt_pattern : str
        Regular expressions whose group ``case`` is the case id of a prediction /
        reference file name; both are searched in the folder itself, not its subfolders.
    """

    name: str = ""
    kind: FormatKind = FormatKind.CLASSES
    description: str = ""
    needs_probabilities: bool = False
    geometry_must_match: bool = True
    keeps_geometry: bool = False
    uses_border_threshold: bool = False
    scored_as_challenge: bool = True
    needs_instance_model: bool = False
    pred_pattern: str = ""
    gt_pattern: str = ""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # ------------------------------------------------------------------ files

    def read(self, path: Path) -> Volume:
        """The file as a one-channel ``(1, *spatial)`` volume with the geometry the file carries."""
        raise NotImplementedError

    def write(self, array: np.ndarray, out_dir: Path, case_id: str | int, **geometry: Any) -> Path:
        """Validate ``array`` and write it atomically as ``case_id`` in ``out_dir``; returns the file."""
        raise NotImplementedError

    def write_reference(self, array: np.ndarray, out_dir: Path, case_id: str | int, **geometry: Any) -> Path:
        """Write a reference label (medseg's class ids or instance ids) as the challenge ships references."""
        return self.write(np.asarray(array).astype(np.int64), out_dir, case_id, **geometry)

    def prediction_array(
        self,
        labels: np.ndarray,
        *,
        probabilities: np.ndarray | None = None,
        instances: np.ndarray | None = None,
        classes: Sequence[str] | None = None,
    ) -> np.ndarray:
        """The array a submission file of this format holds, from a model's prediction.

        Parameters
        ----------
        labels : np.ndarray
            Class ids ``(*spatial)``.
        probabilities : np.ndarray, optional
            Class probabilities ``(K, *spatial)`` (formats that need them).
        instances : np.ndarray, optional
            Instance ids ``(*spatial)`` (instance formats).
        classes : sequence of str, optional
            The model's class names, in channel order.
        """
        return np.asarray(labels).astype(np.int64)

    def case_files(self, folder: Path, *, reference: bool = False) -> dict[str, Path]:
        """Case id -> file of a prediction (or reference) folder; two files for one case are refused."""
        pattern = re.compile(self.gt_pattern if reference else self.pred_pattern)
        return _files(Path(folder), pattern, "reference" if reference else "prediction")

    def match(self, pred_dir: Path, gt_dir: Path) -> CaseFiles:
        """Pair the files of a prediction folder with those of a reference folder by case id."""
        preds = self.case_files(Path(pred_dir))
        refs = self.case_files(Path(gt_dir), reference=True)
        return pair_cases(self, preds, refs, Path(pred_dir), Path(gt_dir))

    def read_pair(self, pred_path: Path, gt_path: Path) -> tuple[Volume, Volume]:
        """Read a (prediction, reference) pair and check that they can be compared.

        Label maps are checked to hold labels >= 0 (float maps only with integral values);
        the message names the file.
        """
        pred = self.read(Path(pred_path))
        ref = self.read(Path(gt_path))
        if self.geometry_must_match:
            check_same_grid(pred, ref, pred_path, gt_path)
        else:
            check_same_shape(pred, ref, pred_path, gt_path)
        return self._labels(pred, pred_path, "prediction"), self._labels(ref, gt_path, "reference")

    def _labels(self, volume: Volume, path: Path, role: str) -> Volume:
        if self.kind is FormatKind.PROBABILITY:
            return volume.with_array(volume.array, source=str(path))
        return volume.with_array(as_label_array(volume.array, f"{role} {path}"), source=str(path))

    # ------------------------------------------------------------------ scores

    def score(self, pred: Volume, ref: Volume, options: ScoreOptions) -> dict[str, dict[str, float]]:
        """Metrics of one case: ``label (str) -> {metric: value}`` (``"all"`` for whole-case metrics)."""
        raise NotImplementedError

    def pool(self, cases: CaseFiles, per_case: dict[str, dict[str, dict[str, float]]]) -> dict[str, float]:
        """Metrics the challenge computes over all cases at once (default: none)."""
        return {}

    # ------------------------------------------------------------------ medseg run

    def held_out_layout(self, folder: Path, case_id: str) -> HeldOutLayout:
        """Where ``medseg run`` writes the prediction and reference of a held-out case."""
        return HeldOutLayout(folder / "predictions", folder / "reference", case_id, None)

    def copy_reference_companions(self, image_source: str | None, references: Path) -> None:
        """Copy files the challenge scores beside the references (CTC tracking markers); default none."""


class ClassMapFormat(ChallengeFormat):
    """A format of class-id maps, scored per class as nnU-Net (Dice, IoU, counts) plus surface distances."""

    kind = FormatKind.CLASSES

    def score(self, pred: Volume, ref: Volume, options: ScoreOptions) -> dict[str, dict[str, float]]:
        from medseg.eval.formats.scoring import class_scores

        return class_scores(pred, ref, options)


class InstanceMapFormat(ChallengeFormat):
    """A format of instance-id maps, scored with AJI, AJI+, PQ, F1@0.5, SEG and foreground Dice."""

    kind = FormatKind.INSTANCES

    def prediction_array(
        self,
        labels: np.ndarray,
        *,
        probabilities: np.ndarray | None = None,
        instances: np.ndarray | None = None,
        classes: Sequence[str] | None = None,
    ) -> np.ndarray:
        if instances is None:
            raise ConfigError(
                f"format {self.name!r} writes instance ids: pass the predicted instances (connected "
                "components of the label map)"
            )
        return np.asarray(instances)

    def score(self, pred: Volume, ref: Volume, options: ScoreOptions) -> dict[str, dict[str, float]]:
        from medseg.eval.formats.scoring import instance_scores

        return {"all": instance_scores(ref.array[0], pred.array[0])}
