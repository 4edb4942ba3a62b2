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

An entry is built from the dataset's manifest, the one source of its facts (folder,
label kind, files, spacing), and medseg's hooks for it (:data:`HOOKS`: loaders, the
challenge file format, the synthetic stand-in). A new dataset is a manifest plus one
:class:`DatasetHooks`; ``tests/data/test_dataset_entries.py`` checks every manifest
against its hooks.

The old names ``dental-isbi2015``, ``nnunet`` and ``folder`` still work with a
:class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medseg.data import synthetic_datasets as synthetic
from medseg.data.cells import ctc_dataset_folder, list_ctc_sequences, load_ctc_samples
from medseg.data.dental import load_dental_samples
from medseg.data.em import get_cremi_paths, load_cremi_sample, load_isbi2012_samples
from medseg.data.histo import load_glas_samples, load_monuseg_samples
from medseg.data.manifest import Manifest, list_manifests, load_manifest
from medseg.data.sample import Sample
from medseg.data.volumes import iter_folder_samples, load_nnunet_samples
from medseg.errors import ConfigError, DataNotFoundError

__all__ = [
    "ALIASES",
    "DATASETS",
    "DatasetEntry",
    "DatasetHooks",
    "HOOKS",
    "SyntheticData",
    "dataset_folder",
    "get_dataset",
    "resolve_name",
]

Loader = Callable[[Path], list[Sample]]
#: ``load(dataset_folder, manifest) -> samples``.
ManifestLoader = Callable[[Path, Manifest], list[Sample]]
#: ``write(dataset_folder, manifest, shape, n, seed)``.
SyntheticWriter = Callable[[Path, Manifest, tuple[int, ...], int, int], None]


@dataclass(frozen=True)
class SyntheticData:
    """How ``medseg run --data synthetic`` writes a stand-in for a dataset, in its real layout.

    Attributes
    ----------
    write : callable
        ``write(dataset_folder, manifest, shape, n, seed)`` (:mod:`medseg.data.synthetic_datasets`).
    full, smoke : (shape, n)
        Image shape and number of cases (sections for EM stacks) at full and ``--smoke`` size.
    classes : callable or None
        ``classes() -> list[str]`` where the stand-in fixes its own class names (in id
        order); ``None`` where the pipeline's classes apply.
    volume : ((shape, n), (shape, n)) or None
        Full and ``--smoke`` ``(Z, Y, X)`` shape and case count for a pipeline with 3D
        patches, where the dataset holds 2D images or 3D stacks alike (the lab folder);
        ``None``: the stand-in has one dimensionality.
    """

    write: SyntheticWriter
    full: tuple[tuple[int, ...], int]
    smoke: tuple[tuple[int, ...], int]
    classes: Callable[[], list[str]] | None = None
    volume: tuple[tuple[tuple[int, ...], int], tuple[tuple[int, ...], int]] | None = None


@dataclass(frozen=True)
class DatasetHooks:
    """What medseg's code adds to a dataset's manifest: how to load it, score it and fake it.

    Attributes
    ----------
    train : callable
        ``train(dataset_folder, manifest) -> list[Sample]``: the labelled cases.
    test : callable or None
        ``test(dataset_folder, manifest) -> list[Sample]``: the unlabelled challenge test cases.
    challenge_format : str
        The name of the challenge's file format (:mod:`medseg.eval.formats`): what
        ``medseg run`` writes and scores held-out cases in; ``labelmap`` when the
        challenge has no format of its own.
    synthetic : SyntheticData or None
        The synthetic stand-in of ``--data synthetic``.
    """

    train: ManifestLoader
    test: ManifestLoader | None = None
    challenge_format: str = "labelmap"
    synthetic: SyntheticData | None = None


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset: its manifest (the facts: folder, label kind, files...) and medseg's hooks.

    Attributes
    ----------
    name : str
        The manifest name.
    manifest : Manifest
        The dataset's manifest, the one source of its facts.
    hooks : DatasetHooks
        Loaders, challenge format and synthetic stand-in.
    """

    name: str
    manifest: Manifest
    hooks: DatasetHooks

    @property
    def folder(self) -> str:
        """``layout.folder`` of the manifest: where ``medseg fetch`` puts the files under its root."""
        return self.manifest.layout.folder

    @property
    def label_kind(self) -> str:
        """``classes`` or ``instances``: what the label files hold (the manifest's ``labels.kind``)."""
        return self.manifest.labels.kind

    @property
    def challenge_format(self) -> str:
        return self.hooks.challenge_format

    @property
    def synthetic(self) -> SyntheticData | None:
        return self.hooks.synthetic

    def train(self, folder: Path) -> list[Sample]:
        """The labelled cases under the dataset folder."""
        return self.hooks.train(Path(folder), self.manifest)

    @property
    def test(self) -> Loader | None:
        """``test(dataset_folder) -> list[Sample]``, or ``None`` without a challenge test split."""
        test, manifest = self.hooks.test, self.manifest
        if test is None:
            return None

        def load(folder: Path) -> list[Sample]:
            return test(Path(folder), manifest)

        return load

    def write_synthetic(
        self, folder: Path, *, smoke: bool = False, seed: int = 0, spatial_dims: int = 2
    ) -> tuple[tuple[int, ...], int]:
        """Write the synthetic stand-in into the dataset folder; returns ``(shape, n)`` written.

        ``spatial_dims`` is the pipeline's patch dimensionality: 3 writes stacks where the
        stand-in has a 3D variant (:attr:`SyntheticData.volume`).

        Raises
        ------
        ConfigError
            The dataset has no synthetic stand-in.
        """
        if self.synthetic is None:
            have = [name for name, e in DATASETS.items() if e.synthetic is not None]
            raise ConfigError(
                f"no synthetic data for data.dataset {self.name!r}; --data synthetic supports {', '.join(have)}"
            )
        sizes = (self.synthetic.full, self.synthetic.smoke)
        if spatial_dims == 3 and self.synthetic.volume is not None:
            sizes = self.synthetic.volume
        shape, n = sizes[1] if smoke else sizes[0]
        self.synthetic.write(Path(folder), self.manifest, shape, n, seed)
        return shape, n


def _ctc(folder: Path, manifest: Manifest) -> list[Sample]:
    subfolder = ctc_dataset_folder(manifest)
    for candidate in (folder / "train" / subfolder, folder / subfolder, folder):
        if candidate.is_dir() and list_ctc_sequences(candidate):
            return load_ctc_samples(candidate)
    raise DataNotFoundError(
        f"no Cell Tracking Challenge sequences (01/, 02/) in {folder}, {folder / subfolder} or "
        f"{folder / 'train' / subfolder}: run `medseg fetch {manifest.name}` or point data.root there"
    )


def _cremi(folder: Path, manifest: Manifest) -> list[Sample]:
    names = [n for n in ("A", "B", "C") if any(folder.glob(f"sample_{n}*"))] or ["A", "B", "C"]
    return [load_cremi_sample(p) for p in get_cremi_paths(folder, names)]


def _isbi2012_train(folder: Path, manifest: Manifest) -> list[Sample]:
    return load_isbi2012_samples(folder, "train", per_section=True)


def _isbi2012_test(folder: Path, manifest: Manifest) -> list[Sample]:
    if not (folder / "test-volume.tif").is_file():
        return []  # the public mirror holds the training stack only
    return load_isbi2012_samples(folder, "test", per_section=False)


def _dental(folder: Path, manifest: Manifest) -> list[Sample]:
    """The bitewings of the manifest's ``train_images`` folder (``v2-TrainingData``)."""
    return load_dental_samples(folder, folder=Path(manifest.layout.paths["train_images"]).parts[0])


def _ignoring_manifest(load: Loader) -> ManifestLoader:
    def bound(folder: Path, manifest: Manifest) -> list[Sample]:
        return load(folder)

    return bound


#: Manifest name -> medseg's hooks. Facts (folder, label kind, files) come from the manifest.
HOOKS: dict[str, DatasetHooks] = {
    "isbi2012": DatasetHooks(
        _isbi2012_train,
        _isbi2012_test,
        "isbi2012",
        SyntheticData(synthetic.write_isbi2012, ((256, 256), 10), ((48, 48), 3)),
    ),
    "cremi": DatasetHooks(
        _cremi, None, "cremi", SyntheticData(synthetic.write_cremi, ((192, 192), 16), ((48, 48), 8))
    ),
    "dental_isbi2015": DatasetHooks(
        _dental,
        None,
        "dental",
        SyntheticData(synthetic.write_dental, ((192, 320), 10), ((48, 80), 3)),
    ),
    "ctc_phc_u373": DatasetHooks(
        _ctc, None, "ctc", SyntheticData(synthetic.write_ctc_dataset, ((192, 192), 12), ((48, 48), 4))
    ),
    "ctc_dic_hela": DatasetHooks(
        _ctc, None, "ctc", SyntheticData(synthetic.write_ctc_dataset, ((192, 192), 12), ((48, 48), 4))
    ),
    "monuseg2018": DatasetHooks(
        _ignoring_manifest(load_monuseg_samples),
        None,
        "monuseg",
        SyntheticData(synthetic.write_monuseg, ((256, 256), 8), ((48, 48), 3)),
    ),
    "glas2015": DatasetHooks(
        _ignoring_manifest(load_glas_samples),
        None,
        "glas",
        SyntheticData(synthetic.write_glas, ((192, 256), 16), ((48, 64), 3)),
    ),
    "nnunet_raw": DatasetHooks(
        _ignoring_manifest(lambda d: load_nnunet_samples(d, "train")),
        None,
        "labelmap",
        # full size: the recipe's patch, no padding
        SyntheticData(synthetic.write_nnunet, ((32, 96, 96), 6), ((8, 24, 24), 3), synthetic.nnunet_classes),
    ),
    "lab_folder": DatasetHooks(
        _ignoring_manifest(lambda d: list(iter_folder_samples(d))),
        None,
        "labelmap",
        SyntheticData(
            synthetic.write_lab_folder,
            ((192, 192), 8),
            ((48, 48), 3),
            volume=(((32, 96, 96), 3), ((12, 48, 48), 2)),
        ),
    ),
}


def _entries() -> dict[str, DatasetEntry]:
    manifests = list_manifests()
    return {
        name: DatasetEntry(name, load_manifest(manifests[name]), hooks)
        for name, hooks in HOOKS.items()
        if name in manifests
    }


#: Manifest name -> entry (every manifest with hooks).
DATASETS: dict[str, DatasetEntry] = _entries()
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
    the manifest's ``layout.folder``.

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
    nested = root / entry.folder
    return nested if nested.is_dir() else root
