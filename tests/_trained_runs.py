"""Tiny trained runs (one CPU iteration) of four model kinds: the ``runs`` fixture of the exchange and napari tests.

Registered for the whole suite by ``tests/conftest.py``; session-scoped, so the four
runs are trained once per test process, and only when a test asks for them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from medseg.cli.main import main
from medseg.data.synthetic import write_nnunet_raw
from medseg.data.synthetic.em import write_isbi2012
from medseg.data.synthetic.nuclei import write_nuclei_folder
from medseg.io import Volume, read, write

_TRAIN = {"iterations": 1, "validate_every": 1, "checkpoint_every": 1}


def _train(root: Path, name: str, config: dict) -> Path:
    (root / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **config}))
    assert main(["train", str(root / f"{name}.yaml"), "--out", str(root / name), "--no-progress"]) == 0
    return root / name


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run folders ``unet2d``, ``fcn``, ``instances`` (distance target) and ``unet3d`` trained here."""
    root = tmp_path_factory.mktemp("runs")
    em = root / "em"
    write_isbi2012(em, shape=(3, 40, 48), seed=0)
    em_data = {
        "dataset": "isbi2012",
        "root": str(em),
        "patch_shape": [32, 32],
        "batch_size": 2,
        "validation_slices": 1,
    }
    infer2d = {"roi_size": [32, 32], "mirror_axes": []}
    out = {
        "unet2d": _train(
            root,
            "unet2d",
            {
                "data": em_data,
                "model": {
                    "name": "unet",
                    "params": {"in_channels": 1, "out_channels": 2, "features": 4, "depth": 2},
                },
                "train": _TRAIN,
                "infer": infer2d,
            },
        ),
        "fcn": _train(
            root,
            "fcn8s",
            {
                "data": em_data,
                "model": {
                    "name": "fcn8s",
                    "params": {"in_channels": 1, "out_channels": 2, "features": 2, "fc_features": 8},
                },
                "train": _TRAIN,
                "infer": infer2d,
            },
        ),
    }
    lab = write_nuclei_folder(root / "lab", n_images=2, shape=(64, 64), n_nuclei=6, radius=6, seed=0)
    for path in sorted((lab / "images").glob("*.tif")):  # give the lab images a physical pixel size
        write(Volume(read(path).array, spacing=(0.5, 0.5), unit="um"), path)
    out["instances"] = _train(
        root,
        "nuclei",
        {
            "data": {
                "dataset": "lab_folder",
                "root": str(lab),
                "label_kind": "instances",
                "instance_target": "distance",
                "classes": ["background", "nucleus"],
                "patch_shape": [32, 32],
                "batch_size": 2,
                "validation_slices": 1,
            },
            "model": {
                "name": "unet",
                "params": {"in_channels": 1, "out_channels": 3, "features": 4, "depth": 2},
            },
            "train": _TRAIN,
            "infer": infer2d,
        },
    )
    raw = write_nnunet_raw(root / "Dataset001", n_train=3, shape=(8, 32, 32), seed=0)
    labels = json.loads((raw / "dataset.json").read_text())["labels"]
    out["unet3d"] = _train(
        root,
        "unet3d",
        {
            "data": {
                "dataset": "nnunet_raw",
                "root": str(raw),
                "classes": sorted(labels, key=labels.get),
                "patch_shape": [8, 16, 16],
                "batch_size": 2,
                "validation_slices": 1,
            },
            "model": {
                "name": "unet",
                "params": {
                    "in_channels": 1,
                    "out_channels": len(labels),
                    "spatial_dims": 3,
                    "features": 4,
                    "depth": 2,
                },
            },
            "train": _TRAIN,
            "infer": {"roi_size": [8, 16, 16], "mirror_axes": []},
        },
    )
    return out
