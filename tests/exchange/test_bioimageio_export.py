"""``medseg export RUN --bioimageio OUT.zip``: packages that bioimage.io's own test accepts."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
import yaml

from medseg.checkpoint_meta import CheckpointMeta
from medseg.cli.main import main
from medseg.errors import ConfigError
from medseg.exchange.bioimageio_export import (
    CheckpointModel,
    PackageInfo,
    export_bioimageio,
    read_trained_model,
)
from medseg.io import Volume

core = pytest.importorskip("bioimageio.core", reason="bioimageio.core is in the test extra")


@pytest.fixture(scope="module")
def packages(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("packages")
    made = {}
    for kind, run in runs.items():
        made[kind] = out / f"{kind}.zip"
        assert main(["export", str(run), "--bioimageio", str(made[kind]), "--author", "Ada Lovelace"]) == 0
    return made


@pytest.mark.parametrize("kind", ["unet2d", "fcn", "instances", "unet3d"])
def test_exported_package_passes_bioimageio_core_test(packages, kind):
    summary = core.test_model(str(packages[kind]), devices=["cpu"])
    failed = [d.name for d in summary.details if d.status == "failed"]
    assert summary.status == "passed", failed
    names = [d.name for d in summary.details]
    for weights in ("pytorch_state_dict", "torchscript"):
        assert f"Reproduce test outputs from test inputs ({weights})" in names


def _rdf(package) -> dict:
    with zipfile.ZipFile(package) as z:
        return yaml.safe_load(z.read("rdf.yaml"))


def test_package_describes_the_run(packages, runs):
    rdf = _rdf(packages["instances"])
    trained = read_trained_model(runs["instances"])
    pre = rdf["inputs"][0]["preprocessing"]
    assert [p["id"] for p in pre][:2] == ["ensure_dtype", "fixed_zero_mean_unit_variance"]
    assert pre[1]["kwargs"]["mean"] == pytest.approx(trained.normalization["mean"][0])
    assert pre[1]["kwargs"]["std"] == pytest.approx(trained.normalization["std"][0])
    space = [a for a in rdf["inputs"][0]["axes"] if a["type"] == "space"]
    assert [(a["id"], a["unit"], a["scale"]) for a in space] == [
        ("y", "micrometer", 0.5),
        ("x", "micrometer", 0.5),
    ]
    assert [p["id"] for p in rdf["outputs"][0]["postprocessing"]] == [
        "ensure_dtype"
    ]  # the watershed is medseg's, described in the README
    assert rdf["config"]["medseg"]["targets"]["instance_target"] == "distance"
    assert rdf["weights"]["pytorch_state_dict"]["architecture"]["import_from"] == "medseg.models"
    assert {c["doi"] for c in rdf["cite"]} == {"10.1007/978-3-319-24574-4_28"}
    semantic = _rdf(packages["unet2d"])
    assert semantic["outputs"][0]["postprocessing"][0]["id"] == "softmax"
    assert "10.1371/journal.pbio.1000502" in {
        c.get("doi") for c in semantic["cite"]
    }  # the ISBI 2012 manifest
    assert [a.get("id", a["type"]) for a in _rdf(packages["unet3d"])["inputs"][0]["axes"]] == [
        "batch",
        "channel",
        "z",
        "y",
        "x",
    ]
    with zipfile.ZipFile(packages["unet2d"]) as z:
        assert {"weights.pt", "weights.torchscript.pt", "cover.png", "README.md", "test_input.npy"} <= set(
            z.namelist()
        )


def test_expected_output_is_the_network_on_zscored_input(runs, tmp_path):
    trained = read_trained_model(runs["unet2d"])
    rng = np.random.default_rng(0)
    image = Volume(rng.normal(150, 40, (1, 40, 40)).astype(np.float32))
    package = export_bioimageio(
        trained,
        image,
        tmp_path / "m.zip",
        info=PackageInfo(name="tiny model", description="d", authors=["A"]),
        tile=(32, 32),
        draw_cover=lambda img, truth, labels: np.zeros((*img.shape, 3), np.uint8),
    )
    with zipfile.ZipFile(package) as z:
        z.extract("test_input.npy", tmp_path)
        z.extract("test_output.npy", tmp_path)
    test_input, test_output = np.load(tmp_path / "test_input.npy"), np.load(tmp_path / "test_output.npy")
    assert test_input.shape == (1, 1, 32, 32)
    np.testing.assert_array_equal(test_input[0, 0], image.array[0, 4:36, 4:36])  # the middle crop
    mean, std = trained.normalization["mean"][0], trained.normalization["std"][0]
    with torch.no_grad():
        direct = torch.softmax(trained.model(torch.from_numpy((test_input - mean) / std)), dim=1).numpy()
    np.testing.assert_allclose(test_output, direct, rtol=1e-5, atol=1e-6)


def test_export_refuses_bad_requests(runs, tmp_path, capsys):
    trained = read_trained_model(runs["unet2d"])
    image = Volume(np.zeros((1, 40, 40), np.float32))
    info = PackageInfo(name="tiny model", description="d", authors=[])
    with pytest.raises(ConfigError, match="at least one author"):
        export_bioimageio(trained, image, tmp_path / "m.zip", info=info, draw_cover=None)
    assert main(["export", str(runs["unet2d"]), "--bioimageio", str(tmp_path / "m.tar")]) == 2
    assert "must be a .zip file" in capsys.readouterr().err
    assert not (tmp_path / "m.tar").exists()


def test_valid_convolution_3d_unet_package_passes_and_predicts_as_the_model(tmp_path):
    """The registry's unet3d (Çiçek et al., valid convolutions): output shrinks by the margin, one traced size."""
    from medseg.exchange.bioimageio_import import load_package
    from medseg.models import build_model
    from medseg.pipeline.overlay import overlay_panels

    torch.manual_seed(0)
    params = {"in_channels": 1, "out_channels": 2, "features": 4, "depth": 2}
    model = build_model("unet3d", **params).eval()
    meta = CheckpointMeta.from_dict(
        {
            "model": {"name": "unet3d", "params": params},
            "normalization": {"mean": [0.0], "std": [1.0]},
            "classes": ["bg", "fg"],
        }
    )
    trained = CheckpointModel(model, meta)
    image = Volume(
        np.random.default_rng(0).normal(size=(1, 50, 50, 50)).astype(np.float32), spacing=(2.0, 1.0, 1.0)
    )
    info = PackageInfo(name="paper 3D U-Net", description="d", authors=["A"])
    package = export_bioimageio(
        trained, image, tmp_path / "u.zip", info=info, tile=(44, 44, 44), draw_cover=overlay_panels
    )
    rdf = _rdf(package)
    assert [a["size"] for a in rdf["inputs"][0]["axes"][2:]] == [44, 44, 44]  # traced: one size
    assert rdf["outputs"][0]["axes"][2]["size"]["offset"] == -40  # margin 20 per side
    assert core.test_model(str(package), devices=["cpu"]).status == "passed"
    loaded = load_package(package)
    assert loaded.model.constraints.margin == (20, 20, 20)
    tile = torch.from_numpy(image.array[None, :, :44, :44, :44].copy())
    with torch.no_grad():
        from_package, direct = loaded.model(tile), model(tile)
    assert from_package.shape == (1, 2, 4, 4, 4)  # 44 - 2 * 20
    np.testing.assert_allclose(from_package.numpy(), direct.numpy(), rtol=1e-5, atol=1e-6)
