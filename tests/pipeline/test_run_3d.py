from __future__ import annotations

import json

from medseg.config import load_config
from medseg.data.synthetic import write_nnunet_raw
from medseg.io import read
from medseg.pipeline.run import run_pipeline
from medseg.resources import shipped_pipeline


def test_3d_nnunet_pipeline_runs_end_to_end(tmp_path):
    root = write_nnunet_raw(tmp_path / "Dataset001", n_train=3, shape=(8, 32, 32), seed=0)
    labels = json.loads((root / "dataset.json").read_text())["labels"]
    config = load_config(
        shipped_pipeline("nnunet_3d"),
        [
            f"data.root={root}",
            f"data.classes={sorted(labels, key=labels.get)}",
            "data.patch_shape=[8,16,16]",
            f"model.params={{in_channels: 1, out_channels: {len(labels)}, spatial_dims: 3, features: 4, depth: 2}}",
            "train.iterations=2",
            "train.validate_every=2",
            "infer.roi_size=[8,16,16]",
            "infer.mirror_axes=[]",
        ],
    )
    result = run_pipeline(config, tmp_path / "run")
    assert result.submission == []  # nnU-Net raw folders have no challenge test split
    predictions = list((tmp_path / "run" / "validation" / "predictions").iterdir())
    assert len(predictions) == 1
    predicted, image = read(predictions[0]), read(next((root / "imagesTr").glob("*_0000.nii.gz")))
    assert predicted.array.shape[1:] == image.array.shape[1:]
    assert predicted.spacing == image.spacing
    assert set(result.validation["foreground_mean"]) >= {"Dice", "IoU"}
