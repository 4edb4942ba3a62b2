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


def test_one_annotated_image_trains_with_the_shipped_lab_pipeline_and_scores(tmp_path, capsys, caplog):
    from medseg.resources import shipped_pipeline
    from medseg.train.checkpoint import load_checkpoint

    lab = write_nuclei_folder(tmp_path / "lab", n_images=1, shape=(80, 120), n_nuclei=10, radius=6, seed=1)
    test = write_nuclei_folder(tmp_path / "test", n_images=1, shape=(64, 64), n_nuclei=5, radius=6, seed=7)
    run = tmp_path / "run"
    small = "model.params={in_channels: 1, out_channels: 3, features: 4, depth: 2, norm: instance}"
    argv = ["train", str(shipped_pipeline("lab_folder")), "--out", str(run), "--no-progress"]
    settings = [f"data.root={lab}", small, "train.iterations=4", "data.patch_shape=[64, 64]"]
    with caplog.at_level("WARNING", logger="medseg"):
        assert main([*argv, *[a for s in settings for a in ("--set", s)]]) == 0
    out = capsys.readouterr().out
    # the one image is cut: 20 % of its 120 columns validate, predicted with the 24 before as context
    assert any("nuclei_00 X 96-119 of 120 with context X 72-95" in r.getMessage() for r in caplog.records)
    assert "data fingerprint" in out and "post-processing: flow_threshold" in out  # the flow default
    fingerprint = json.loads((run / "fingerprint.json").read_text())
    assert fingerprint["median_shape"] == [80, 96] and fingerprint["objects"]["count"] >= 5
    post = load_checkpoint(run / "checkpoints" / "best.pt")["metadata"]["postprocessing"]
    assert post["tuned"] is True and post["tuned_on"] == ["nuclei_00:held-out"]
    # the size prior comes from the fingerprint; tuning keeps 1.5x the median object or turns it off
    objects = fingerprint["objects"]
    assert post["object_extent"] == objects["median_extent"]
    assert post["split_size"] in (round(1.5 * objects["median_voxels"]), 0) and "split by size" in out
    pred = tmp_path / "pred"
    image = test / "images" / "nuclei_00.tif"
    assert main(["predict", "-m", str(run), "-i", str(image), "-o", str(pred), "--format", "instances"]) == 0
    scores = tmp_path / "scores"
    evaluate = [
        "evaluate",
        "--pred",
        str(pred / "instances"),
        "--gt",
        str(test / "labels"),
        "-o",
        str(scores),
    ]
    assert main([*evaluate, "--format", "instances", "--no-plot", "--no-progress"]) == 0
    metrics = json.loads((scores / "summary.json").read_text())["metric_per_case"][0]["metrics"]["all"]
    assert 0.0 <= metrics["aji"] <= 1.0  # four iterations: plumbing, not accuracy
