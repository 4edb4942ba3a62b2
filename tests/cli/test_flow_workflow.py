"""``data.instance_target: flow`` (Cellpose's flow fields) from the CLI: train, predict instances, refusals."""

from __future__ import annotations

import zipfile

import numpy as np
import tifffile
import torch
import yaml

from medseg.cli.main import main
from medseg.data.synthetic.nuclei import write_nuclei_folder


def test_lab_pipeline_trains_a_flow_target_and_predicts_instances(tmp_path, capsys):
    lab = write_nuclei_folder(tmp_path / "lab", n_images=2, shape=(96, 96), n_nuclei=14, radius=7, seed=0)
    run = tmp_path / "run"
    argv = ["train", "pipelines/lab_folder.yaml", "--out", str(run), "--no-progress"]
    sets = [
        f"data.root={lab}",
        "data.instance_target=flow",
        "data.patch_shape=[64,64]",
        "model.params.features=8",
        "model.params.depth=2",
        "train.iterations=20",
        "train.validate_every=10",
        "train.checkpoint_every=10",
        "infer.roi_size=[64,64]",
    ]
    assert main([*argv, *[a for s in sets for a in ("--set", s)]]) == 0
    out = capsys.readouterr().out
    assert "post-processing: flow_threshold" in out
    meta = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["metadata"]
    assert meta["targets"]["instance_target"] == "flow"
    assert meta["model"]["params"]["out_channels"] == 3  # cell probability + 2 flow components
    assert 0 < meta["postprocessing"]["flow_threshold"] <= 4 and "seed_threshold" in meta["postprocessing"]

    image = lab / "images" / "nuclei_00.tif"
    pred = tmp_path / "pred"
    assert main(["predict", "-m", str(run), "-i", str(image), "-o", str(pred), "--format", "instances"]) == 0
    instances = tifffile.imread(pred / "instances" / "nuclei_00.tif")
    assert instances.shape == (96, 96) and instances.max() >= 1
    np.testing.assert_array_equal(np.unique(instances), np.arange(instances.max() + 1))  # renumbered 1..N

    # a bioimage.io package of the flow model (raw cell logit + flows) predicts the same objects
    package = tmp_path / "flow.zip"
    assert main(["export", str(run), "--bioimageio", str(package), "--test-image", str(image)]) == 0
    with zipfile.ZipFile(package) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
    assert rdf["outputs"][0]["axes"][1]["channel_names"] == ["cellprob_logit", "flow_y", "flow_x"]
    assert "softmax" not in str(rdf["outputs"][0].get("postprocessing"))  # raw outputs
    assert rdf["config"]["medseg"]["targets"]["instance_target"] == "flow"
    assert (
        rdf["config"]["medseg"]["postprocessing"]["flow_threshold"]
        == meta["postprocessing"]["flow_threshold"]
    )
    for source, extra in ((package, []), (run, ["--no-tta"])):
        out = tmp_path / f"pred_{source.name}"
        argv = [
            "predict",
            "-m",
            str(source),
            "-i",
            str(image),
            "-o",
            str(out),
            "--format",
            "instances",
            *extra,
        ]
        assert main(argv) == 0
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "pred_flow.zip" / "instances" / "nuclei_00.tif"),
        tifffile.imread(tmp_path / "pred_run" / "instances" / "nuclei_00.tif"),
    )

    capsys.readouterr()
    blocks = [
        "predict",
        "-m",
        str(run),
        "-i",
        str(image),
        "-o",
        str(tmp_path / "blocks"),
        "--block-shape",
        "48",
        "48",
    ]
    assert main(blocks) != 0
    err = capsys.readouterr().err
    assert "--block-shape" in err and "instance_target: flow" in err and "Traceback" not in err
