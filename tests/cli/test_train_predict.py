from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from medseg.cli.main import main
from medseg.data.synthetic.em import write_isbi2012
from medseg.io import Volume, read, write


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    write_isbi2012(root / "data", shape=(3, 40, 48), seed=0)
    config = root / "tiny.yaml"
    config.write_text(
        f"""
name: tiny
data: {{dataset: isbi2012, root: {root / "data"}, patch_shape: [32, 32], batch_size: 2, validation_slices: 1}}
model: {{name: unet, params: {{in_channels: 1, out_channels: 2, features: 4, depth: 2}}}}
train: {{iterations: 3, validate_every: 3, checkpoint_every: 1}}
infer: {{roi_size: [32, 32], mirror_axes: []}}
"""
    )
    assert main(["train", str(config), "--out", str(root / "run"), "--no-progress"]) == 0
    return root


def test_train_writes_checkpoints_config_and_summary(trained):
    run = trained / "run"
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "checkpoints" / "latest.pt").is_file()
    assert (run / "training_curve.png").is_file() and (run / "config.yaml").is_file()
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["iterations"] == 3 and len(summary["validation"]) == 1


def test_predict_keeps_geometry_writes_submission_and_skips_done_cases(trained, tmp_path, capsys):
    image = read(trained / "data" / "test-volume.tif")
    geo = Volume(image.array, spacing=(50.0, 4.0, 4.0), origin=(1.0, 2.0, 3.0))
    source = write(geo, tmp_path / "in" / "stack.nii.gz")
    out = tmp_path / "out"
    args = [
        "predict",
        "-m",
        str(trained / "run" / "checkpoints"),
        "-i",
        str(source),
        "-o",
        str(out),
        "--format",
        "isbi2012",
        "--no-progress",
    ]
    assert main(args) == 0
    labels = read(out / "stack.nii.gz")
    assert labels.array.shape == (1, 3, 40, 48)
    assert set(np.unique(labels.array)) <= {0, 1}
    np.testing.assert_allclose(labels.spacing, (50.0, 4.0, 4.0), rtol=1e-6)
    np.testing.assert_allclose(labels.origin, (1.0, 2.0, 3.0), rtol=1e-6)
    submission = tifffile.imread(out / "isbi2012" / "stack.tif")
    assert submission.dtype == np.float32 and submission.shape == (3, 40, 48)
    # the submission's polarity matches the labels: p(non-membrane) > 0.5 where label is cell (0)
    assert np.mean((submission > 0.5) == (labels.array[0] == 0)) > 0.99
    assert "predicted 1 case(s)" in capsys.readouterr().out
    assert main(args) == 0
    assert "predicted 0 case(s), skipped 1" in capsys.readouterr().out


def test_predict_errors_name_the_problem(trained, tmp_path, capsys):
    model = str(trained / "run" / "checkpoints")
    assert main(["predict", "-m", model, "-i", str(tmp_path / "nope.tif"), "-o", str(tmp_path)]) == 2
    assert "input file(s) not found" in capsys.readouterr().err
    image = str(trained / "data" / "test-volume.tif")
    assert main(["predict", "-m", model, "-i", image, "-o", str(tmp_path / "o"), "--format", "isbi"]) == 2
    assert "unknown format 'isbi'" in capsys.readouterr().err
    assert (
        main(["predict", "-m", model, "-i", image, "-o", str(tmp_path / "o"), "--roi-size", "30", "30"]) == 2
    )
    assert "infer.roi_size [30, 30] does not fit model 'unet'" in capsys.readouterr().err
    assert not (tmp_path / "o" / "test-volume.tif").exists()


def test_train_rejects_unknown_dataset(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(f"data: {{dataset: isbi2013, root: {tmp_path}}}\n")
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "unknown data.dataset 'isbi2013'; choose one of isbi2012" in capsys.readouterr().err


def test_predict_block_by_block_into_zarr(trained, tmp_path, capsys):
    image = read(trained / "data" / "test-volume.tif")
    source = write(image, tmp_path / "stack.h5:/volumes/raw")
    out = tmp_path / "out"
    model = str(trained / "run" / "checkpoints")
    args = [
        "predict",
        "-m",
        model,
        "-i",
        f"{source}:/volumes/raw",
        "-o",
        str(out),
        "--block-shape",
        "2",
        "32",
        "32",
        "--no-progress",
    ]
    assert main(args) == 0
    labels = read(out / "stack.zarr")
    assert labels.array.shape == (1, 3, 40, 48)
    assert labels.spacing == image.spacing
    # a 2D model on blocks with an 8 px halo: same labels as whole-image prediction almost everywhere
    assert (
        main(
            [
                "predict",
                "-m",
                model,
                "-i",
                str(trained / "data" / "test-volume.tif"),
                "-o",
                str(tmp_path / "whole"),
                "--no-progress",
            ]
        )
        == 0
    )
    whole = read(tmp_path / "whole" / "test-volume.tif").array
    assert np.mean(whole == labels.array) > 0.97
