"""Electron-microscopy datasets: ISBI 2012, CREMI and generic TIFF/HDF5/Zarr stacks.

Label convention (also in ``data_manifests/isbi2012.yaml``)
-----------------------------------------------------------
ISBI 2012 stores **255 = inside a cell, 0 = membrane**. medseg trains membrane
segmentation with class ids :data:`EM_CLASSES`: **0 = cell, 1 = membrane**
(membrane is the positive class). :func:`isbi_labels_to_classes` converts on load,
:func:`classes_to_isbi` converts back (e.g. for submissions, which use the ISBI
polarity: 0 = membrane).

CREMI labels are neuron instance ids (uint64), kept as they are.

Large stacks are opened lazily (:func:`open_em_stack`, :func:`open_cremi`): only the
blocks that are indexed are read, so memory stays bounded for stacks larger than RAM.

References
----------
Cardona et al., PLoS Biol 2010; Arganda-Carreras et al., Front. Neuroanat. 2015
(ISBI 2012). CREMI: https://cremi.org/.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseg.data.sample import Sample
from medseg.errors import ConfigError, DataNotFoundError, FormatError, LabelError
from medseg.io import LazyArray, Volume, open_array, read
from medseg.io.paths import check_same_grid, require_file
from medseg.labels import CREMI_NEURON_IDS_KEY, EM_CLASSES, ISBI_ON_DISK

__all__ = [
    "EM_CLASSES",
    "ISBI_ON_DISK",
    "ISBI2012_SPACING_NM",
    "ISBI2012_FILES",
    "ISBI2012_MIRROR_FILE",
    "ISBI2012_MIRROR_KEYS",
    "isbi_labels_to_classes",
    "classes_to_isbi",
    "get_isbi2012_paths",
    "load_isbi2012_samples",
    "split_sections",
    "CREMI_RAW_KEY",
    "CREMI_LABEL_KEY",
    "get_cremi_paths",
    "CremiArrays",
    "open_cremi",
    "load_cremi_sample",
    "open_em_stack",
]

logger = logging.getLogger(__name__)

#: ISBI 2012 voxel size in nm, ``(Z, Y, X)``.
ISBI2012_SPACING_NM: tuple[float, float, float] = (50.0, 4.0, 4.0)
#: File names per split: (image stack, label stack or None).
ISBI2012_FILES: dict[str, tuple[str, str | None]] = {
    "train": ("train-volume.tif", "train-labels.tif"),
    "test": ("test-volume.tif", None),
}

#: The public mirror's single HDF5 file and its (raw, label) datasets.
ISBI2012_MIRROR_FILE = "isbi.h5"
ISBI2012_MIRROR_KEYS: tuple[str, str] = ("raw", "labels/membranes")

CREMI_RAW_KEY = "volumes/raw"
#: CREMI's published voxel size in nm, ``(Z, Y, X)``, used when a file has no ``resolution``.
CREMI_SPACING_NM: tuple[float, float, float] = (40.0, 4.0, 4.0)
CREMI_LABEL_KEY = CREMI_NEURON_IDS_KEY


def isbi_labels_to_classes(labels: np.ndarray, *, source: str | Path = "<array>") -> np.ndarray:
    """ISBI polarity (255 cell, 0 membrane) to medseg class ids (0 cell, 1 membrane), uint8.

    Raises
    ------
    LabelError
        A value other than 0 or 255 (names ``source`` and the values found).
    """
    labels = np.asarray(labels)
    values = np.unique(labels)
    unknown = sorted(set(values.tolist()) - {ISBI_ON_DISK["cell"], ISBI_ON_DISK["membrane"]})
    if unknown:
        raise LabelError(
            f"label file {source} holds values {unknown[:10]} besides 255 (cell) and 0 (membrane): "
            "ISBI 2012 labels are binary; threshold or fix the file"
        )
    membrane = labels == ISBI_ON_DISK["membrane"]
    if labels.size and membrane.mean() > 0.5:
        raise LabelError(
            f"label file {source} marks {membrane.mean():.0%} of the pixels as membrane (value 0): in ISBI 2012 "
            "membranes are the minority (about a fifth), so the polarity looks inverted (255 = membrane?); "
            "invert the file (255 - labels)"
        )
    return membrane.astype(np.uint8)


def classes_to_isbi(classes: np.ndarray) -> np.ndarray:
    """medseg class ids (0 cell, 1 membrane) back to ISBI polarity (255 cell, 0 membrane), uint8."""
    classes = np.asarray(classes)
    return np.where(
        classes == EM_CLASSES.index("membrane"), ISBI_ON_DISK["membrane"], ISBI_ON_DISK["cell"]
    ).astype(np.uint8)


def get_isbi2012_paths(root: str | Path, split: str = "train") -> tuple[Path, Path | None]:
    """Paths of the ISBI 2012 image stack and label stack of a split.

    Parameters
    ----------
    root : path
        Folder holding the challenge's ``train-volume.tif``, ``train-labels.tif``,
        ``test-volume.tif``, or the public mirror's ``isbi.h5`` (training data only;
        used when the TIFFs are absent).
    split : {"train", "test"}

    Returns
    -------
    (Path, Path or None)
        Image stack and label stack (``None`` for ``test``, whose labels are not public).
        For the mirror these are ``isbi.h5:/raw`` and ``isbi.h5:/labels/membranes``.

    Raises
    ------
    ConfigError
        Unknown split.
    DataNotFoundError
        A file is missing (the message names it and how to get it).
    """
    if split not in ISBI2012_FILES:
        raise ConfigError(f"split must be one of {sorted(ISBI2012_FILES)}, got {split!r}")
    root = Path(root)
    image_name, label_name = ISBI2012_FILES[split]
    mirror = root / ISBI2012_MIRROR_FILE
    if split == "train" and not (root / image_name).exists() and mirror.is_file():
        return Path(f"{mirror}:/{ISBI2012_MIRROR_KEYS[0]}"), Path(f"{mirror}:/{ISBI2012_MIRROR_KEYS[1]}")
    fix = (
        "run `medseg fetch isbi2012 --root DIR` (the training stack from the public mirror) or place "
        "the challenge's TIFFs there by hand"
        if split == "train"
        else "the test stack is not on the public mirror: download test-volume.tif from the challenge "
        "site (registration) and place it there"
    )
    image = require_file(root / image_name, f"ISBI 2012 {split} image stack", fix)
    label = None
    if label_name is not None:
        label = require_file(root / label_name, f"no label for ISBI 2012 {split} stack {image_name}:", fix)
    return image, label


def _read_stack(path: Path) -> np.ndarray:
    """A greyscale section stack ``(Z, Y, X)`` (one section gives ``Z = 1``)."""
    volume = read(path)
    if volume.num_channels != 1:
        raise FormatError(f"{path} has shape {volume.array.shape}, expected a greyscale stack (1, Z, Y, X)")
    return volume.array[0] if volume.ndim == 3 else volume.array


def load_isbi2012_samples(
    root: str | Path, split: str = "train", *, per_section: bool = False
) -> list[Sample]:
    """Load ISBI 2012 as :class:`Sample` objects with medseg class ids (0 cell, 1 membrane).

    Parameters
    ----------
    root : path
        See :func:`get_isbi2012_paths` (challenge TIFFs or the mirror's ``isbi.h5``).
    split : {"train", "test"}
    per_section : bool
        One 2D sample per section (``(1, Y, X)``, case ids ``isbi2012_train_z00``...)
        instead of one 3D sample (``(1, Z, Y, X)``, ``isbi2012_train``).

    Returns
    -------
    list of Sample
        Images uint8; labels uint8 class ids, ``None`` for ``test``; spacing in nm.

    Raises
    ------
    DataNotFoundError, FormatError, ShapeError, LabelError
        Missing file, truncated TIFF, image/label shape mismatch, non-binary labels.
    """
    image_path, label_path = get_isbi2012_paths(root, split)
    image = _read_stack(image_path)
    label = None
    if label_path is not None:
        raw = _read_stack(label_path)
        check_same_grid(image.shape, raw.shape, image_path, label_path)
        label = isbi_labels_to_classes(raw, source=label_path)
    meta = {"source": str(image_path), "label_convention": "0=cell,1=membrane (ISBI 255->0, 0->1)"}
    if not per_section:
        return [
            Sample(
                image=Volume(image[None], spacing=ISBI2012_SPACING_NM, meta=meta, unit="nm"),
                label=None
                if label is None
                else Volume(label[None], spacing=ISBI2012_SPACING_NM, meta=meta, unit="nm"),
                case_id=f"isbi2012_{split}",
                modality="em",
            )
        ]
    spacing2d = ISBI2012_SPACING_NM[1:]
    return [
        Sample(
            image=Volume(image[z][None], spacing=spacing2d, meta={**meta, "section": z}, unit="nm"),
            label=None
            if label is None
            else Volume(label[z][None], spacing=spacing2d, meta={**meta, "section": z}, unit="nm"),
            case_id=f"isbi2012_{split}_z{z:02d}",
            modality="em",
        )
        for z in range(image.shape[0])
    ]


def split_sections(n_sections: int, val_sections: int) -> tuple[list[int], list[int]]:
    """medseg's train/validation split of a section stack: the last ``val_sections`` sections validate.

    Contiguous hold-out avoids validating on sections adjacent to training sections
    on both sides.
    """
    if not 0 <= val_sections < n_sections:
        raise ConfigError(
            f"data.validation_slices must be in [0, {n_sections}) (held-out cases or sections of the "
            f"{n_sections} found, leaving at least one to train on), got {val_sections}"
        )
    cut = n_sections - val_sections
    return list(range(cut)), list(range(cut, n_sections))


def get_cremi_paths(root: str | Path, samples: Sequence[str] = ("A", "B", "C")) -> list[Path]:
    """Paths of CREMI sample files ``sample_<X>_20160501.hdf`` (or ``sample_<X>.h5``/``.hdf``)."""
    root = Path(root)
    paths = []
    for name in samples:
        candidates = [
            root / f"sample_{name}_20160501.hdf",
            root / f"sample_{name}.hdf",
            root / f"sample_{name}.h5",
        ]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataNotFoundError(
                f"CREMI sample {name!r} not found: expected {candidates[0]}; run `medseg fetch cremi --root DIR`"
            )
        paths.append(found)
    return paths


@dataclass
class CremiArrays:
    """Lazily opened CREMI arrays, ``(1, Z, Y, X)`` :class:`~medseg.io.LazyArray` s with spacing in nm.

    Close with :meth:`close` or ``with``.
    """

    raw: LazyArray
    labels: LazyArray | None
    path: Path

    @property
    def spacing(self) -> tuple[float, ...]:
        return self.raw.spacing

    def close(self) -> None:
        self.raw.close()
        if self.labels is not None:
            self.labels.close()

    def __enter__(self) -> CremiArrays:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cremi_geometry(array: LazyArray) -> LazyArray:
    """CREMI's convention: ``resolution`` in nm; without it, the published 40 x 4 x 4 nm (with a warning)."""
    if array.meta.get("spacing_attr") is None:
        logger.warning("%s has no 'resolution' attribute; assuming CREMI's 40 x 4 x 4 nm", array.path)
        array.spacing = CREMI_SPACING_NM
    array.unit = array.unit or "nm"
    return array


def open_cremi(
    path: str | Path, *, raw_key: str = CREMI_RAW_KEY, label_key: str | None = CREMI_LABEL_KEY
) -> CremiArrays:
    """Open a CREMI HDF5 file lazily through :func:`medseg.io.open_array`.

    Spacing comes from the ``resolution`` attribute (nm, z,y,x) of each dataset,
    falling back to CREMI's published 40 x 4 x 4 nm with a warning.

    Raises
    ------
    FormatError
        Not an HDF5 file; DataNotFoundError: a key is missing; ShapeError: raw and
        labels differ in shape.
    """
    path = require_file(Path(path), "CREMI file", "run `medseg fetch cremi --root DIR`")
    raw = _cremi_geometry(open_array(f"{path}:{raw_key}"))
    labels = None
    if label_key is not None:
        try:
            labels = _cremi_geometry(open_array(f"{path}:{label_key}"))
        except DataNotFoundError as err:
            raw.close()
            raise DataNotFoundError(
                f"no label for CREMI file {path}: {err}; pass label_key=None for test data"
            ) from err
        if labels.spatial_shape != raw.spatial_shape:
            raw.close()
            labels.close()
            check_same_grid(
                raw.spatial_shape, labels.spatial_shape, f"{path}:{raw_key}", f"{path}:{label_key}"
            )
        labels.spacing = raw.spacing
    return CremiArrays(raw=raw, labels=labels, path=path)


def load_cremi_sample(path: str | Path, *, label_key: str | None = CREMI_LABEL_KEY) -> Sample:
    """A CREMI sample as a :class:`Sample` of lazy arrays (instance ids kept as stored)."""
    arrays = open_cremi(path, label_key=label_key)
    return Sample(image=arrays.raw, label=arrays.labels, case_id=Path(path).stem, modality="em")


def open_em_stack(path: str | Path, key: str | None = None) -> LazyArray:
    """Open an EM stack lazily as a channels-first ``(1, Z, Y, X)`` :class:`~medseg.io.LazyArray`.

    Parameters
    ----------
    path : path
        HDF5 file (``key`` = dataset), Zarr store, multi-page TIFF, or a folder of
        single-section TIFFs.
    key : str, optional
        Dataset path inside an HDF5 file or Zarr group.
    """
    return open_array(f"{path}:{key}" if key else str(path))
