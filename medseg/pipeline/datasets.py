"""Training datasets by the name used in a pipeline config's ``data.dataset``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medseg.config import DataConfig
from medseg.data import Sample
from medseg.data.dental import load_dental_samples
from medseg.data.em import load_isbi2012_samples, split_sections
from medseg.data.volumes import iter_folder_samples, load_nnunet_samples
from medseg.errors import ConfigError

__all__ = ["DATASETS", "TEST_SPLITS", "load_training_samples"]


#: dataset name -> function(root) returning the labelled training samples.
DATASETS: dict[str, Callable[[Path], list[Sample]]] = {
    "isbi2012": lambda root: load_isbi2012_samples(root, "train", per_section=True),
    "dental-isbi2015": load_dental_samples,
    "nnunet": lambda root: load_nnunet_samples(root, "train"),
    "folder": lambda root: list(iter_folder_samples(root)),
}


#: dataset name -> (function(root) returning the unlabelled test samples, challenge submission format).
TEST_SPLITS: dict[str, tuple[Callable[[Path], list[Sample]], str]] = {
    "isbi2012": (lambda root: load_isbi2012_samples(root, "test", per_section=False), "isbi2012"),
}


def load_training_samples(data: DataConfig) -> tuple[list[Sample], list[Sample]]:
    """Training and validation samples for ``data.dataset`` under ``data.root``.

    The last ``data.validation_slices`` samples (sections for EM stacks, cases
    otherwise) are held out for validation.

    Raises
    ------
    ConfigError
        Unknown dataset name (the message lists the known ones) or no ``root``.
    """
    if data.dataset not in DATASETS:
        raise ConfigError(f"unknown data.dataset {data.dataset!r}; choose one of {', '.join(DATASETS)}")
    if data.root is None:
        raise ConfigError(
            f"data.root is not set; point it at the {data.dataset} folder (see data_manifests/)"
        )
    samples = DATASETS[data.dataset](Path(data.root))
    train_ids, val_ids = split_sections(len(samples), data.validation_slices)
    return [samples[i] for i in train_ids], [samples[i] for i in val_ids]
