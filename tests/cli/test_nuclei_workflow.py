"""A lab's nuclei images with instance masks: ``medseg train`` → ``predict --format monuseg`` → ``evaluate``.

The whole path a user takes, through the CLI, with no conversion by hand: instance
masks train a distance target, prediction separates touching nuclei by a seeded
watershed and writes MoNuSeg PNGs, and evaluation pairs them with the lab's TIFF masks.
"""

from __future__ import annotations

import json

import numpy as np
import tifffile
import yaml
from PIL import Image
from scipy import ndimage

from medseg.cli.main import main
from medseg.data.synthetic.nuclei import write_nuclei_folder


def test_instance_masks_train_predict_and_score_as_monuseg(tmp_path, capsys):
    lab = write_nuclei_folder(tmp_path / "lab", n_images=4, shape=(96, 96), n_nuclei=14, radius=7, seed=0)
    held_out = tmp_path / "held_out"
    (held_out / "images").mkdir(parents=True)
    (held_out / "labels").mkdir()
    for kind in ("images", "labels"):  # the last image is never seen in training
        (lab / kind / "nuclei_03.tif").rename(held_out / kind / "nuclei_03.tif")
    config = {
        "name": "nuclei",
        "data": {
            "dataset": "lab_folder",
            "root": str(lab),
            "label_kind": "instances",
            "instance_target": "distance",
            "classes": ["background", "nucleus"],
            "patch_shape": [64, 64],
            "batch_size": 4,
            "validation_slices": 1,
        },
        "model": {"name": "unet", "params": {"in_channels": 1, "out_channels": 3, "features": 8, "depth": 2}},
        "train": {"iterations": 200, "learning_rate": 0.01, "validate_every": 100, "checkpoint_every": 100},
        "infer": {"roi_size": [64, 64], "mirror_axes": []},
    }
    (tmp_path / "nuclei.yaml").write_text(yaml.safe_dump(config))

    assert (
        main(["train", str(tmp_path / "nuclei.yaml"), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    )
    image = held_out / "images" / "nuclei_03.tif"
    pred = tmp_path / "pred"
    assert (
        main(
            ["predict", "-m", str(tmp_path / "run"), "-i", str(image), "-o", str(pred), "--format", "monuseg"]
        )
        == 0
    )
    scores = tmp_path / "scores"
    argv = [
        "evaluate",
        "--pred",
        str(pred / "monuseg"),
        "--gt",
        str(held_out / "labels"),
        "--format",
        "monuseg",
    ]
    assert main([*argv, "-o", str(scores), "--no-plot", "--no-progress"]) == 0
    capsys.readouterr()

    reference = tifffile.imread(held_out / "labels" / "nuclei_03.tif")
    clumps = ndimage.label(reference > 0)[1]  # what connected components of the foreground would find
    metrics = json.loads((scores / "summary.json").read_text())["metric_per_case"][0]["metrics"]["all"]
    found = len(np.unique(np.asarray(Image.open(pred / "monuseg" / "nuclei_03.png")))) - 1
    # a 200-iteration run here found 9 of 14 nuclei in 4 clumps, Dice 0.99, AJI 0.37
    assert found > clumps + 2, f"touching nuclei were not separated: {found} objects for {clumps} clumps"
    assert metrics["dice"] > 0.9
    assert metrics["aji"] > 0.3
    assert tifffile.imread(pred / "nuclei_03.tif").shape == reference.shape  # labels beside the submission
