"""Volumetric datasets: nnU-Net v2 raw folders and generic image/label folders (NIfTI, MHA...).

nnU-Net v2 raw layout::

    dataset.json        # channel_names, labels, file_ending, numTraining
    imagesTr/<case>_0000.nii.gz, <case>_0001.nii.gz ...   # one file per channel
    labelsTr/<case>.nii.gz
    imagesTs/<case>_0000.nii.gz ...

Generic lab folder (``data_manifests/lab_folder.yaml``)::

    images/<case>.<ext>  (or <case>_0000.<ext>, <case>_0001.<ext> per channel)
    labels/<case>.<ext>

A lab folder's ``_NNNN`` suffixes are channels only when declared (``channels=``) or
when every image has one and every case has ``_0000``: ``patient_0001.tif`` is a case.

Files are read with :func:`medseg.io.read` (geometry kept). The ``iter_*`` functions
read one case at a time, so hundreds of cases never sit in memory together.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseg.data.sample import Sample
from medseg.errors import ConfigError, DataNotFoundError, FormatError, LabelError, ShapeError
from medseg.io import open_array, read, suffix_of
from medseg.io.hdf5 import HDF5_SUFFIXES
from medseg.io.paths import natural_key, require_dir, require_file
from medseg.io.zarr_io import ZARR_SUFFIXES

__all__ = [
    "NnUNetDataset",
    "CaseFiles",
    "read_dataset_json",
    "get_nnunet_paths",
    "iter_nnunet_samples",
    "load_nnunet_samples",
    "get_folder_paths",
    "iter_folder_samples",
    "LAZY_SUFFIXES",
    "load_case",
    "open_case_lazily",
]

logger = logging.getLogger(__name__)

#: Suffixes of container formats whose single-channel cases are opened lazily.
LAZY_SUFFIXES: tuple[str, ...] = HDF5_SUFFIXES + ZARR_SUFFIXES

_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


@dataclass(frozen=True)
class NnUNetDataset:
    """The parts of an nnU-Net v2 ``dataset.json`` medseg uses."""

    channel_names: tuple[str, ...]
    labels: dict[str, int]
    file_ending: str
    num_training: int | None
    path: Path


@dataclass(frozen=True)
class CaseFiles:
    """One case: its channel files (in channel order) and its label file, if any."""

    case_id: str
    images: tuple[Path, ...]
    label: Path | None


def read_dataset_json(root: str | Path) -> NnUNetDataset:
    """Read and check ``<root>/dataset.json`` (nnU-Net v2).

    Raises
    ------
    DataNotFoundError
        No ``dataset.json``.
    ConfigError
        Malformed JSON, missing key, channels not numbered 0..C-1, region-based labels
        or a missing ``background: 0`` (names the file and key).
    """
    path = require_file(
        Path(root) / "dataset.json", "nnU-Net dataset.json", "is root an nnU-Net raw dataset folder?"
    )
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from err
    for key in ("channel_names", "labels", "file_ending"):
        if key not in data:
            raise ConfigError(f"{path} lacks the key '{key}' required by the nnU-Net v2 format")
    channels = data["channel_names"]
    if not isinstance(channels, Mapping) or sorted(channels, key=int) != [
        str(i) for i in range(len(channels))
    ]:
        raise ConfigError(f"{path}: 'channel_names' must map '0', '1', ... to names, got {channels!r}")
    labels = data["labels"]
    if not isinstance(labels, Mapping) or not all(isinstance(v, int) for v in labels.values()):
        raise ConfigError(
            f"{path}: 'labels' must map names to integer values; region-based labels (lists) are not supported"
        )
    if labels.get("background") != 0:
        raise ConfigError(f"{path}: 'labels' must contain \"background\": 0, got {labels!r}")
    ending = data["file_ending"]
    if not isinstance(ending, str) or not ending.startswith("."):
        raise ConfigError(f"{path}: 'file_ending' must be a suffix such as '.nii.gz', got {ending!r}")
    return NnUNetDataset(
        channel_names=tuple(channels[str(i)] for i in range(len(channels))),
        labels=dict(labels),
        file_ending=ending,
        num_training=data.get("numTraining"),
        path=path,
    )


def _channel_files(folder: Path, ending: str) -> list[tuple[Path, str]]:
    return [
        (p, p.name[: -len(ending)])
        for p in sorted(folder.iterdir(), key=natural_key)
        if p.name.endswith(ending) and not p.name.startswith(".")
    ]


def _splits_channels(stems: list[str]) -> bool:
    """nnU-Net's channel suffix applies when every file ends in ``_NNNN`` and every case has ``_0000``.

    ``patient_0001.tif, patient_0002.tif`` are two cases; ``a_0000, a_0001, b_0000, b_0001``
    are two cases of two channels.
    """
    matches = [_CHANNEL.match(stem) for stem in stems]
    if not matches or not all(matches):
        return False
    channels: dict[str, set[int]] = {}
    for match in matches:
        channels.setdefault(match["case"], set()).add(int(match["channel"]))
    return all(0 in found for found in channels.values())


def _group_channels(
    folder: Path, ending: str, n_channels: int | None, *, split: bool = True
) -> dict[str, tuple[Path, ...]]:
    groups: dict[str, dict[int, Path]] = {}
    for path, stem in _channel_files(folder, ending):
        match = _CHANNEL.match(stem) if split else None
        case, channel = (match["case"], int(match["channel"])) if match else (stem, 0)
        if channel in groups.get(case, {}):
            raise FormatError(
                f"case '{case}' in {folder} has two files for channel {channel}: {groups[case][channel].name} "
                f"and {path.name}; rename one"
            )
        groups.setdefault(case, {})[channel] = path
    out = {}
    for case, files in groups.items():
        expected = n_channels if n_channels is not None else len(files)
        if sorted(files) != list(range(expected)):
            missing = [f"{case}_{c:04d}{ending}" for c in range(expected) if c not in files]
            raise DataNotFoundError(
                f"case '{case}' in {folder} has channels {sorted(files)}, expected 0..{expected - 1}: "
                f"missing {missing or 'none'}; add the files or remove the case"
            )
        out[case] = tuple(files[c] for c in range(expected))
    return out


def get_nnunet_paths(root: str | Path, split: str = "train") -> list[CaseFiles]:
    """Cases of an nnU-Net v2 raw dataset.

    Parameters
    ----------
    root : path
        Dataset folder (``Dataset001_X``) with ``dataset.json``.
    split : {"train", "test"}
        ``imagesTr``/``labelsTr`` or ``imagesTs`` (labels from ``labelsTs`` when present).

    Raises
    ------
    DataNotFoundError
        Missing folder, channel file, or (train) a case without label.
    """
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    info = read_dataset_json(root)
    suffix = "Tr" if split == "train" else "Ts"
    images_dir = require_dir(root / f"images{suffix}", f"nnU-Net images{suffix}", "check the dataset folder")
    labels_dir = root / f"labels{suffix}"
    cases = _group_channels(images_dir, info.file_ending, len(info.channel_names))
    if not cases:
        raise DataNotFoundError(f"no '*_0000{info.file_ending}' images in {images_dir}")
    out = []
    for case, images in cases.items():
        label = labels_dir / f"{case}{info.file_ending}"
        if not label.is_file():
            if split == "train":
                raise DataNotFoundError(
                    f"no label for case '{case}' (expected {label}, from {info.path}): add the file or drop the case"
                )
            label = None
        out.append(CaseFiles(case, images, label))
    if split == "train" and info.num_training is not None and info.num_training != len(out):
        logger.warning(
            "%s says numTraining=%s but imagesTr has %d cases", info.path, info.num_training, len(out)
        )
    return out


def _is_container(path: Path) -> bool:
    return suffix_of(path) in LAZY_SUFFIXES


def open_case_lazily(case: CaseFiles, *, modality: str = "volume") -> Sample:
    """A single-channel case as :class:`~medseg.io.LazyArray` s (nothing read until indexed).

    Raises
    ------
    ShapeError
        Image and label on different grids.
    """
    image = open_array(case.images[0])
    label = None if case.label is None else open_array(case.label)
    if label is not None and label.spatial_shape != image.spatial_shape:
        raise ShapeError(
            f"label {case.label} has shape {label.spatial_shape} but image {case.images[0]} has "
            f"{image.spatial_shape}: they must be on the same grid (resample the label)"
        )
    return Sample(image=image, label=label, case_id=case.case_id, modality=modality)


def load_case(
    case: CaseFiles, *, classes: Mapping[str, int] | None = None, modality: str = "volume"
) -> Sample:
    """Read one case: channels stacked into ``(C, [Z,] Y, X)``, label ``(1, [Z,] Y, X)``.

    Single-channel HDF5/Zarr cases (:data:`LAZY_SUFFIXES`, stacks that may not fit in
    memory) are opened lazily instead (:func:`open_case_lazily`); their label values
    are checked on a sample by :func:`medseg.data.label_check.check_labels`.

    Parameters
    ----------
    classes : mapping, optional
        Allowed label values (name -> value); other values raise LabelError.

    Raises
    ------
    ShapeError
        Channels or label on a different grid than the first channel.
    LabelError
        Label values outside ``classes``, or a non-integer label file.
    """
    if len(case.images) == 1 and _is_container(case.images[0]):
        return open_case_lazily(case, modality=modality)
    volumes = [read(p) for p in case.images]
    first = volumes[0]
    for path, vol in zip(case.images[1:], volumes[1:], strict=True):
        if vol.spatial_shape != first.spatial_shape:
            raise ShapeError(
                f"channel {path} has shape {vol.spatial_shape} but {case.images[0]} has {first.spatial_shape}: "
                "all channels of a case must be on the same grid"
            )
    array = np.concatenate([v.array for v in volumes], axis=0) if len(volumes) > 1 else first.array
    image = first.with_array(array, source=[str(p) for p in case.images])
    label = None
    if case.label is not None:
        label = read(case.label)
        if label.spatial_shape != image.spatial_shape:
            raise ShapeError(
                f"label {case.label} has shape {label.spatial_shape} but image {case.images[0]} has "
                f"{image.spatial_shape}: they must be on the same grid (resample the label)"
            )
        if not np.allclose(label.spacing, image.spacing, rtol=1e-3):
            logger.warning(
                "label %s spacing %s differs from image spacing %s", case.label, label.spacing, image.spacing
            )
        arr = label.array
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.array_equal(arr, np.rint(arr)):
                raise LabelError(f"label {case.label} holds non-integer values: expected integer class ids")
            arr = arr.astype(np.int32)
        if classes is not None:
            unknown = sorted(set(np.unique(arr).tolist()) - set(classes.values()))
            if unknown:
                raise LabelError(
                    f"label {case.label} holds values {unknown[:10]} not declared in the labels "
                    f"{dict(classes)}: fix the file or declare the classes"
                )
        label = label.with_array(arr)
    return Sample(image=image, label=label, case_id=case.case_id, modality=modality)


def iter_nnunet_samples(root: str | Path, split: str = "train") -> Iterator[Sample]:
    """Yield the cases of an nnU-Net v2 raw dataset one at a time (labels checked against ``dataset.json``)."""
    info = read_dataset_json(root)
    for case in get_nnunet_paths(root, split):
        yield load_case(case, classes=info.labels)


def load_nnunet_samples(root: str | Path, split: str = "train") -> list[Sample]:
    """All cases of :func:`iter_nnunet_samples` in a list."""
    return list(iter_nnunet_samples(root, split))


def get_folder_paths(
    root: str | Path, *, images: str = "images", labels: str | None = "labels", channels: int | None = None
) -> list[CaseFiles]:
    """Cases of a generic folder: ``images/<case>.<ext>`` (or ``<case>_0000.<ext>``...) and ``labels/<case>.<ext>``.

    A case's label may have any supported suffix. Pass ``labels=None`` for unlabelled data.

    Channels: with ``channels`` declared, files are grouped by nnU-Net's ``_NNNN``
    suffix into cases of that many channels. Without it they are grouped only when every
    image ends in ``_NNNN`` and every case has ``_0000``; otherwise each file is one case
    (so ``patient_0001.tif`` is the case ``patient_0001``).

    Raises
    ------
    DataNotFoundError
        No images, an image without label (when ``labels`` is given), or a case missing
        a declared channel.
    FormatError
        Mixed suffixes within one case's channels.
    """
    root = Path(root)
    images_dir = require_dir(root / images, "image folder", "see data_manifests/lab_folder.yaml")
    by_suffix: dict[str, list[Path]] = {}
    for p in images_dir.iterdir():
        if p.name.startswith("."):
            continue
        try:
            by_suffix.setdefault(suffix_of(p), []).append(p)
        except FormatError:
            logger.debug("skipping %s: unsupported suffix", p)
    stems = [stem for suffix in by_suffix for _, stem in _channel_files(images_dir, suffix)]
    split = channels is not None or _splits_channels(stems)
    cases: dict[str, tuple[Path, ...]] = {}
    for suffix in by_suffix:
        for case, files in _group_channels(images_dir, suffix, channels, split=split).items():
            if case in cases:
                raise FormatError(
                    f"case '{case}' in {images_dir} has files with different suffixes: keep one format"
                )
            cases[case] = files
    if not cases:
        raise DataNotFoundError(f"no readable images in {images_dir}")
    label_index: dict[str, Path] = {}
    if labels is not None:
        labels_dir = require_dir(root / labels, "label folder", "pass labels=None for unlabelled data")
        for p in labels_dir.iterdir():
            try:
                label_index[p.name[: -len(suffix_of(p))]] = p
            except FormatError:
                continue
    out = []
    for case in sorted(cases, key=natural_key):
        label = label_index.get(case)
        if labels is not None and label is None:
            raise DataNotFoundError(
                f"no label for case '{case}' (expected {root / labels}/{case}{suffix_of(cases[case][0])}): "
                "add the file or drop the case"
            )
        out.append(CaseFiles(case, cases[case], label))
    return out


def iter_folder_samples(
    root: str | Path,
    *,
    classes: Mapping[str, int] | None = None,
    images: str = "images",
    labels: str | None = "labels",
    modality: str = "volume",
    channels: int | None = None,
) -> Iterator[Sample]:
    """Yield the cases of a generic folder one at a time (label values checked against ``classes`` if given).

    ``channels`` declares nnU-Net-style channel files (see :func:`get_folder_paths`).
    """
    for case in get_folder_paths(root, images=images, labels=labels, channels=channels):
        yield load_case(case, classes=classes, modality=modality)
