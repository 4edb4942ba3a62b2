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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseg.config import PipelineConfig
from medseg.data.manifest import list_manifests, load_manifest
from medseg.data.registry import resolve_name
from medseg.errors import ConfigError

__all__ = ["SYNTHETIC_DATASETS", "smoke_overrides", "synthetic_overrides", "write_synthetic"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Sizes:
    """Image size and case count of a synthetic dataset at full and smoke scale."""

    full: tuple[tuple[int, ...], int]
    smoke: tuple[tuple[int, ...], int]


#: Dataset name -> (image shape, number of cases or sections) at full and smoke scale.
SYNTHETIC_DATASETS: dict[str, _Sizes] = {
    "isbi2012": _Sizes(((256, 256), 10), ((48, 48), 3)),
    "dental_isbi2015": _Sizes(((192, 320), 10), ((48, 80), 3)),
    "ctc_phc_u373": _Sizes(((192, 192), 12), ((48, 48), 4)),
    "ctc_dic_hela": _Sizes(((192, 192), 12), ((48, 48), 4)),
    "monuseg2018": _Sizes(((256, 256), 8), ((48, 48), 3)),
    "glas2015": _Sizes(((192, 256), 16), ((48, 64), 3)),
    "cremi": _Sizes(((192, 192), 16), ((48, 48), 8)),
    "nnunet_raw": _Sizes(((32, 96, 96), 6), ((8, 24, 24), 3)),  # full: the recipe's patch, no padding
    "lab_folder": _Sizes(((192, 192), 8), ((48, 48), 3)),
}

_CTC_FOLDERS = {"ctc_phc_u373": "PhC-C2DH-U373", "ctc_dic_hela": "DIC-C2DH-HeLa"}


def _dataset_dir(name: str, root: Path) -> Path:
    manifests = list_manifests()
    folder = load_manifest(manifests[name]).layout.folder if name in manifests else name
    return root / folder


def write_synthetic(dataset: str, root: str | Path, *, smoke: bool = False, seed: int = 0) -> Path:
    """Write a synthetic ``dataset`` under the fetch root ``root`` (as ``medseg fetch`` would place it).

    Returns
    -------
    Path
        The dataset folder (``root/<manifest layout.folder>``).

    Raises
    ------
    ConfigError
        A dataset without a synthetic writer (the message lists those that have one).
    """
    name = resolve_name(dataset)
    if name not in SYNTHETIC_DATASETS:
        raise ConfigError(
            f"no synthetic data for data.dataset {dataset!r}; --data synthetic supports "
            f"{', '.join(SYNTHETIC_DATASETS)}"
        )
    shape, n = SYNTHETIC_DATASETS[name].smoke if smoke else SYNTHETIC_DATASETS[name].full
    folder = _dataset_dir(name, Path(root))
    folder.mkdir(parents=True, exist_ok=True)
    _WRITERS[name](folder, shape, n, seed)
    logger.info("wrote synthetic %s (%d cases of %s) to %s", name, n, shape, folder)
    return folder


def _isbi2012(folder: Path, shape: tuple[int, ...], n: int, seed: int) -> None:
    from medseg.data.synthetic.em import write_isbi2012

    write_isbi2012(folder, shape=(n, *shape), seed=seed, write_test_labels=False)


def _dental(folder: Path, shape: tuple[int, ...], n: int, seed: int) -> None:
    from medseg.data.synthetic.dental import write_isbi2015_dental

    write_isbi2015_dental(folder, n_images=n, shape=shape, seed=seed)


def _ctc(name: str):
    def write(folder: Path, shape: tuple[int, ...], n: int, seed: int) -> None:
        from medseg.data.synthetic.cells import write_ctc

        # every frame annotated: synthetic GT is free, and short sequences keep enough training frames
        write_ctc(
            folder / _CTC_FOLDERS[name],
            sequences=("01", "02"),
            n_frames=n,
            shape=shape,
            annotate_every=1,
            seed=seed,
        )

    return write


def _monuseg(folder: Path, shape: tuple[int, ...], n: int, seed: int) -> None:
    from medseg.data.synthetic.histo import write_monuseg

    nuclei = max(8, shape[0] * shape[1] // 900)
    write_monuseg(folder, n_images=n, shape=shape, n_nuclei=nuclei, seed=seed)


def _glas(folder: Path, shape: tuple[int, ...], n: int, seed: int) -> None:
    from medseg.data.synthetic.histo import write_glas

    write_glas(folder, n_train=n, n_test_a=1, n_test_b=1, shape=shape, seed=seed)


def _cremi(folder: Path, shape: tuple[int, ...], n: int, seed: int) -> None:
    import h5py

    from medseg.data.synthetic.em import make_em_stack

    for i, sample in enumerate(("A", "B", "C")):
        stack = make_em_stack((n, *shape), cell_diameter=max(12.0, shape[0] / 5), seed=seed + i)
        ids = np.where(stack.labels > 0, stack.cell_ids, 0).astype(np.uint64)  # membranes are background
        with h5py.File(folder / f"sample_{sample}_20160501.hdf", "w") as f:
            raw = f.create_dataset("volumes/raw", data=stack.image, chunks=True)
            raw.attrs["resolution"] = (40.0, 4.0, 4.0)
            labels = f.create_dataset("volumes/labels/neuron_ids", data=ids, chunks=True)
            labels.attrs["resolution"] = (40.0, 4.0, 4.0)


def _nnunet(folder: Path, shape: tuple[int, ...], n: int, seed: int) -> None:
    from medseg.data.synthetic.volume import write_nnunet_raw

    write_nnunet_raw(folder, n_train=n, n_test=1, shape=shape, seed=seed)


def _lab_folder(folder: Path, shape: tuple[int, ...], n: int, seed: int) -> None:
    import tifffile

    from medseg.data.synthetic.cells import make_cell_sequence

    data = make_cell_sequence(n, shape, n_cells=max(4, shape[0] * shape[1] // 1500), seed=seed)
    for d in ("images", "labels"):
        (folder / d).mkdir(parents=True, exist_ok=True)
    for t in range(n):
        tifffile.imwrite(folder / "images" / f"case_{t:03d}.tif", data.frames[t])
        tifffile.imwrite(folder / "labels" / f"case_{t:03d}.tif", data.masks[t].astype(np.uint16))


_WRITERS = {
    "isbi2012": _isbi2012,
    "dental_isbi2015": _dental,
    "ctc_phc_u373": _ctc("ctc_phc_u373"),
    "ctc_dic_hela": _ctc("ctc_dic_hela"),
    "monuseg2018": _monuseg,
    "glas2015": _glas,
    "cremi": _cremi,
    "nnunet_raw": _nnunet,
    "lab_folder": _lab_folder,
}


def synthetic_overrides(config: PipelineConfig, root: str | Path) -> list[str]:
    """``--set`` overrides that point ``config`` at synthetic data under ``root``.

    The synthetic nnU-Net volumes have fixed organ labels, so ``data.classes`` and the
    model's ``out_channels`` follow them.
    """
    overrides = [f"data.root={Path(root)}"]
    if resolve_name(config.data.dataset) == "nnunet_raw":
        from medseg.data.synthetic.volume import ORGAN_LABELS

        classes = sorted(ORGAN_LABELS, key=ORGAN_LABELS.get)
        overrides += [f"data.classes=[{', '.join(classes)}]", f"model.params.out_channels={len(classes)}"]
    return overrides


#: Model parameters of a smoke run per model name (tiny networks).
_SMOKE_MODELS: dict[str, dict[str, object]] = {
    "unet": {"features": 4, "depth": 2},
    "unet-paper": {"features": 4, "depth": 2},
    "fcn8s": {"features": 2, "fc_features": 8},
    "sdae": {"hidden_features": [16, 8], "patch_size": 9},
}


def _smallest_valid_patch(name: str, params: dict[str, object], dims: int, start: int) -> int:
    """The smallest cubic patch edge >= ``start`` that the model accepts (valid convolutions need more)."""
    import torch

    from medseg.models import build_model

    with torch.device("meta"):
        constraints = build_model(name, **params).constraints
    size = start
    while not constraints.is_valid((size,) * dims):
        size += 1
    return size


def smoke_overrides(config: PipelineConfig) -> list[str]:
    """``--set`` overrides that shrink a pipeline to a CI-sized run (3 iterations, tiny model and patches).

    2D patches become the smallest size from 32 px that the shrunk model accepts; 3D
    patches 8 x 16 x 16.
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
    if dims == 3:
        patch = [8, 16, 16]
    else:
        params = {**config.model.params, **small}
        patch = [_smallest_valid_patch(config.model.name, params, dims, 32)] * dims
    out += [f"data.patch_shape={patch}", f"infer.roi_size={patch}"]
    return out
