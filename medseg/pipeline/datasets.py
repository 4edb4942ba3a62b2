"""Training datasets by the manifest name used in a pipeline config's ``data.dataset``.

``data.dataset`` is the name ``medseg fetch`` takes (:mod:`medseg.data.registry`), and
``data.root`` the folder given to ``medseg fetch --root``: ``medseg fetch isbi2012
--root data/isbi2012`` and ``data: {dataset: isbi2012, root: data/isbi2012}`` agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from medseg.config import DataConfig
from medseg.data import Sample
from medseg.data.holdout import split_cases
from medseg.data.label_check import check_labels
from medseg.data.registry import DATASETS, DatasetEntry, dataset_folder, get_dataset
from medseg.errors import ConfigError
from medseg.io import Volume
from medseg.io.geojson import classes_from_objects
from medseg.options import LabelKind

__all__ = ["TEST_SPLITS", "load_test_samples", "load_training_samples"]


def _test_loader(entry: DatasetEntry, test: Callable[[Path], list[Sample]]) -> Callable[[Path], list[Sample]]:
    def load(root: Path) -> list[Sample]:
        return test(dataset_folder(entry, root))

    return load


#: dataset name -> (function(fetch root) returning the unlabelled test samples, challenge submission format).
TEST_SPLITS: dict[str, tuple[Callable[[Path], list[Sample]], str]] = {
    name: (_test_loader(entry, entry.test), entry.challenge_format)
    for name, entry in DATASETS.items()
    if entry.test is not None
}


def _entry_and_folder(data: DataConfig) -> tuple[DatasetEntry, Path]:
    entry = get_dataset(data.dataset)
    if data.root is None:
        raise ConfigError(
            f"data.root is not set; point it at the folder given to `medseg fetch {entry.name} --root`"
        )
    return entry, dataset_folder(entry, data.root)


def load_training_samples(data: DataConfig) -> tuple[list[Sample], list[Sample]]:
    """Training and validation samples for ``data.dataset`` under the fetch root ``data.root``.

    The last ``data.validation_slices`` samples (sections for EM stacks, cases
    otherwise) are held out for validation; with no more samples than that, the last
    ``data.validation_fraction`` of each along its longest axis (:mod:`medseg.data.holdout`). A sample of every label file is checked
    against ``data.label_kind`` and ``data.classes`` before anything trains.

    Raises
    ------
    ConfigError
        Unknown dataset name (the message lists the known ones), no ``root``, or an
        instance-labelled dataset configured with ``label_kind: classes``.
    DataNotFoundError
        The dataset's files are not under ``data.root``.
    LabelError
        Label values that do not fit the declared classes (names the file and the values).
    """
    entry, folder = _entry_and_folder(data)
    if LabelKind.parse(entry.label_kind) is LabelKind.INSTANCES and data.label_kind is LabelKind.CLASSES:
        raise ConfigError(
            f"dataset {entry.name} has instance labels (one id per object): set data.label_kind: instances "
            "and data.instance_target: boundary, distance, both or flow"
        )
    samples = entry.train(folder)
    if data.label_kind is LabelKind.CLASSES:
        samples = [_named_objects_as_classes(s, data.classes) for s in samples]
    check_labels([s.label for s in samples], label_kind=data.label_kind, classes=data.classes)
    return split_cases(samples, data.validation_slices, data.validation_fraction)


def _named_objects_as_classes(sample: Sample, classes: Sequence[str] | None) -> Sample:
    """A label read from QuPath GeoJSON (objects with class names) as class ids, by ``data.classes``."""
    label = sample.label
    names = label.meta.get("object_classes") if isinstance(label, Volume) else None
    if not isinstance(label, Volume) or names is None:  # GeoJSON labels are read into memory
        return sample
    lookup = {name: index for index, name in enumerate(classes or ())}
    source = str(label.meta.get("source", sample.case_id))
    array = classes_from_objects(np.asarray(label.array[0]), names, lookup, source=source)
    return dataclasses.replace(sample, label=label.with_array(array[None], object_classes=None))


def load_test_samples(data: DataConfig) -> tuple[list[Sample], str] | None:
    """The challenge test cases of ``data.dataset`` and their submission format; ``None`` without a test split."""
    entry, folder = _entry_and_folder(data)
    if entry.test is None:
        return None
    return entry.test(folder), entry.challenge_format
