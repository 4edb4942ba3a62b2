"""Datasets by manifest name: one name for ``medseg fetch``, ``data.dataset``, ``run`` and ``evaluate``.

Every shipped manifest (:func:`medseg.data.list_manifests`) has an entry here that
loads its labelled training cases from the **fetch root**: the folder given to
``medseg fetch NAME --root ROOT``. Files fetched there live in
``ROOT/<layout.folder>``; data placed by hand directly in ``ROOT`` works too
(:func:`dataset_folder`).

==================  ======================================  ============  ==============
name                training cases                          labels        test split
==================  ======================================  ============  ==============
isbi2012            30 sections (TIFFs or the mirror's h5)  classes       ``isbi2012``
cremi               samples A, B, C (lazy HDF5)             instances     -
dental_isbi2015     ``v2-TrainingData`` bitewings           classes       -
ctc_phc_u373        annotated frames of 01, 02              instances     -
ctc_dic_hela        annotated frames of 01, 02              instances     -
monuseg2018         training tiles (XML rasterised)         instances     -
glas2015            ``train_*`` images                      instances     -
nnunet_raw          ``imagesTr``/``labelsTr``               classes       -
lab_folder          ``images/`` + ``labels/``               either        -
==================  ======================================  ============  ==============

The old names ``dental-isbi2015``, ``nnunet`` and ``folder`` still work with a
:class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medseg.data.cells import list_ctc_sequences, load_ctc_samples
from medseg.data.dental import load_dental_samples
from medseg.data.em import get_cremi_paths, load_cremi_sample, load_isbi2012_samples
from medseg.data.histo import load_glas_samples, load_monuseg_samples
from medseg.data.manifest import list_manifests, load_manifest
from medseg.data.sample import Sample
from medseg.data.volumes import iter_folder_samples, load_nnunet_samples
from medseg.errors import ConfigError, DataNotFoundError

__all__ = ["ALIASES", "DATASETS", "DatasetEntry", "dataset_folder", "get_dataset", "resolve_name"]

Loader = Callable[[Path], list[Sample]]


@dataclass(frozen=True)
class DatasetEntry:
    """How medseg reads one dataset.

    Attributes
    ----------
    name : str
        The manifest name.
    folder : str
        ``layout.folder`` of the manifest: where ``medseg fetch`` puts the files under its root.
    train : callable
        ``train(dataset_folder) -> list[Sample]``: the labelled cases.
    test : callable or None
        ``test(dataset_folder) -> list[Sample]``: the unlabelled challenge test cases.
    challenge_format : str
        The name of the challenge's file format (:mod:`medseg.eval.formats`): what
        ``medseg run`` writes and scores held-out cases in; ``labelmap`` when the
        challenge has no format of its own.
    label_kind : str
        ``classes`` or ``instances``: what the label files hold (the manifest's ``labels.kind``).
    """

    name: str
    folder: str
    train: Loader
    test: Loader | None = None
    challenge_format: str = "labelmap"
    label_kind: str = "classes"


def _ctc(subfolder: str) -> Loader:
    def load(folder: Path) -> list[Sample]:
        for candidate in (folder / "train" / subfolder, folder / subfolder, folder):
            if candidate.is_dir() and list_ctc_sequences(candidate):
                return load_ctc_samples(candidate)
        raise DataNotFoundError(
            f"no Cell Tracking Challenge sequences (01/, 02/) in {folder}, {folder / subfolder} or "
            f"{folder / 'train' / subfolder}: run `medseg fetch` for this dataset or point data.root there"
        )

    return load


def _cremi(folder: Path) -> list[Sample]:
    names = [n for n in ("A", "B", "C") if any(folder.glob(f"sample_{n}*"))] or ["A", "B", "C"]
    return [load_cremi_sample(p) for p in get_cremi_paths(folder, names)]


def _isbi2012_test(folder: Path) -> list[Sample]:
    if not (folder / "test-volume.tif").is_file():
        return []  # the public mirror holds the training stack only
    return load_isbi2012_samples(folder, "test", per_section=False)


_ENTRIES = (
    DatasetEntry(
        "isbi2012",
        "isbi2012",
        lambda d: load_isbi2012_samples(d, "train", per_section=True),
        _isbi2012_test,
        "isbi2012",
    ),
    DatasetEntry("cremi", "cremi", _cremi, None, "cremi", "instances"),
    DatasetEntry("dental_isbi2015", "dental_isbi2015", load_dental_samples, None, "dental"),
    DatasetEntry("ctc_phc_u373", "ctc_phc_u373", _ctc("PhC-C2DH-U373"), None, "ctc", "instances"),
    DatasetEntry("ctc_dic_hela", "ctc_dic_hela", _ctc("DIC-C2DH-HeLa"), None, "ctc", "instances"),
    DatasetEntry("monuseg2018", "monuseg2018", load_monuseg_samples, None, "monuseg", "instances"),
    DatasetEntry("glas2015", "glas2015", load_glas_samples, None, "glas", "instances"),
    DatasetEntry("nnunet_raw", "nnunet_raw", lambda d: load_nnunet_samples(d, "train")),
    DatasetEntry("lab_folder", "lab_folder", lambda d: list(iter_folder_samples(d))),
)

#: Manifest name -> entry.
DATASETS: dict[str, DatasetEntry] = {e.name: e for e in _ENTRIES}
#: Deprecated names -> manifest name.
ALIASES: dict[str, str] = {
    "dental-isbi2015": "dental_isbi2015",
    "nnunet": "nnunet_raw",
    "folder": "lab_folder",
}


def resolve_name(name: str) -> str:
    """The manifest name of ``name``; old names warn with :class:`DeprecationWarning`.

    Raises
    ------
    ConfigError
        Unknown name (the message lists the known ones and the manifests without a loader).
    """
    if name in ALIASES:
        new = ALIASES[name]
        warnings.warn(
            f"dataset name {name!r} is deprecated: use {new!r} (the manifest name, as for medseg fetch)",
            DeprecationWarning,
            stacklevel=3,
        )
        return new
    if name not in DATASETS:
        manifests = sorted(set(list_manifests()) - set(DATASETS))
        extra = f"; manifests without a training loader: {', '.join(manifests)}" if manifests else ""
        raise ConfigError(f"unknown data.dataset {name!r}; choose one of {', '.join(DATASETS)}{extra}")
    return name


def get_dataset(name: str) -> DatasetEntry:
    """The :class:`DatasetEntry` of a manifest name (or a deprecated alias)."""
    return DATASETS[resolve_name(name)]


def dataset_folder(entry: DatasetEntry, root: str | Path) -> Path:
    """Where the dataset's files are under a fetch root: ``root/<folder>`` when it exists, else ``root``.

    ``medseg fetch NAME --root ROOT`` writes to ``ROOT/<layout.folder>``; a folder laid
    out by hand (the files directly in ``ROOT``) is accepted as well. The folder name is
    the manifest's ``layout.folder`` when a manifest of that name is found.

    Raises
    ------
    DataNotFoundError
        ``root`` does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(
            f"data.root {root} does not exist: run `medseg fetch {entry.name} --root {root}` or point "
            "data.root at the folder holding the dataset"
        )
    folder = entry.folder
    manifests = list_manifests()
    if entry.name in manifests:
        folder = load_manifest(manifests[entry.name]).layout.folder
    nested = root / folder
    return nested if nested.is_dir() else root
