"""Synthetic stand-ins for every dataset, written in the dataset's real on-disk layout.

``medseg run PIPELINE --data synthetic`` writes the pipeline's dataset here instead of
fetching it, so every pipeline runs end to end without the real data: the same loaders
(:mod:`medseg.data.registry`) read the files. ``--smoke`` shrinks images, case counts
and training (:func:`smoke_overrides`) to a CI-sized run.

The images come from :mod:`medseg.data.synthetic` (ISBI 2012 EM stacks, bitewings,
moving cells, H&E tiles with nuclei and glands, CT-like volumes). Synthetic numbers
measure the pipeline, never the published benchmark.
"""

from __future__ import annotations

import logging
from pathlib import Path

from medseg.config import PipelineConfig
from medseg.data.registry import DATASETS, SyntheticData, get_dataset

__all__ = ["SYNTHETIC_DATASETS", "smoke_overrides", "synthetic_overrides", "write_synthetic"]

logger = logging.getLogger(__name__)

#: Dataset name -> its synthetic stand-in (writer, image shape and case count at full and smoke size).
SYNTHETIC_DATASETS: dict[str, SyntheticData] = {
    name: entry.synthetic for name, entry in DATASETS.items() if entry.synthetic is not None
}


def write_synthetic(
    dataset: str, root: str | Path, *, smoke: bool = False, seed: int = 0, spatial_dims: int = 2
) -> Path:
    """Write a synthetic ``dataset`` under the fetch root ``root`` (as ``medseg fetch`` would place it).

    ``spatial_dims`` (the pipeline's patch dimensionality) picks stacks where the
    dataset's stand-in has a 3D variant (the lab folder).

    Returns
    -------
    Path
        The dataset folder (``root/<manifest layout.folder>``).

    Raises
    ------
    ConfigError
        A dataset without a synthetic writer (the message lists those that have one).
    """
    entry = get_dataset(dataset)
    folder = Path(root) / entry.folder
    folder.mkdir(parents=True, exist_ok=True)
    shape, n = entry.write_synthetic(folder, smoke=smoke, seed=seed, spatial_dims=spatial_dims)
    logger.info("wrote synthetic %s (%d cases of %s) to %s", entry.name, n, shape, folder)
    return folder


def synthetic_overrides(config: PipelineConfig, root: str | Path) -> list[str]:
    """``--set`` overrides that point ``config`` at synthetic data under ``root``.

    Where the stand-in fixes its own classes (the synthetic nnU-Net organs),
    ``data.classes`` and the model's ``out_channels`` follow them.
    """
    overrides = [f"data.root={Path(root)}"]
    synthetic = get_dataset(config.data.dataset).synthetic
    if synthetic is not None and synthetic.classes is not None:
        classes = synthetic.classes()
        overrides += [f"data.classes=[{', '.join(classes)}]", f"model.params.out_channels={len(classes)}"]
    return overrides


#: Model parameters of a smoke run per model name (tiny networks).
_SMOKE_MODELS: dict[str, dict[str, object]] = {
    "unet": {"features": 4, "depth": 2},
    "unet-paper": {"features": 4, "depth": 2},
    "unet3d": {"features": 4, "depth": 2},
    "fcn8s": {"features": 2, "fc_features": 8},
    "fcn16s": {"features": 2, "fc_features": 8},
    "fcn32s": {"features": 2, "fc_features": 8},
    "sdae": {"hidden_features": [16, 8], "patch_size": 9},
}


def _model_constraints(name: str, params: dict[str, object]):
    """The input-size constraints of a model built on the meta device (no memory, no weights)."""
    import torch

    from medseg.models import build_model

    with torch.device("meta"):
        return build_model(name, **params).constraints


def _smallest_valid_patch(name: str, params: dict[str, object], dims: int, start: int) -> int:
    """The smallest cubic patch edge >= ``start`` that the model accepts (valid convolutions need more)."""
    constraints = _model_constraints(name, params)
    size = start
    while not constraints.is_valid((size,) * dims):
        size += 1
    return size


def smoke_overrides(config: PipelineConfig) -> list[str]:
    """``--set`` overrides that shrink a pipeline to a CI-sized run (3 iterations, tiny model and patches).

    Every registered model has tiny smoke parameters (:data:`_SMOKE_MODELS`). 2D patches
    become the smallest size from 32 px that the shrunk model accepts; 3D patches 8 x 16
    x 16, or the smallest cube from 16 voxels a model with valid convolutions (``unet3d``)
    accepts.
    """
    out = [
        "train.iterations=3",
        "train.validate_every=3",
        "train.checkpoint_every=3",
        "data.batch_size=2",
        "data.validation_slices=1",
        "infer.mirror_axes=[]",
        "infer.batch_size=4",
    ]
    small = _SMOKE_MODELS.get(config.model.name, {})
    out += [f"model.params.{k}={v}" for k, v in small.items()]
    dims = len(config.data.patch_shape)
    params = {**config.model.params, **small}
    if dims == 3:
        patch = [8, 16, 16]
        if not _model_constraints(config.model.name, params).is_valid(tuple(patch)):
            patch = [_smallest_valid_patch(config.model.name, params, dims, 16)] * dims
    else:
        patch = [_smallest_valid_patch(config.model.name, params, dims, 32)] * dims
    out += [f"data.patch_shape={patch}", f"infer.roi_size={patch}"]
    return out
