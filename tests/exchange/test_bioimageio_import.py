"""``medseg predict -m PACKAGE.zip``: packages medseg exported and one it did not write (a MONAI network)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from medseg.cli.main import main
from medseg.errors import FormatError
from medseg.exchange.bioimageio_import import is_bioimageio_package, load_package
from medseg.infer.predictor import Predictor
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import read

core = pytest.importorskip("bioimageio.core", reason="bioimageio.core is in the test extra")

_ARCHITECTURE = '''
import torch
from monai.networks.nets import BasicUNet


class ChannelLastUNet(torch.nn.Module):
    """MONAI's BasicUNet on channel-last tensors (batch, y, x, channel)."""

    def __init__(self, **kwargs):
        super().__init__()
        self.net = BasicUNet(**kwargs)

    def forward(self, x):
        return self.net(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
'''
_KWARGS = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "features": [4, 4, 8, 8, 16, 4]}


def _scale_range(image: np.ndarray) -> np.ndarray:
    """The package's pre-processing, written out: percentiles 1 / 99.8 over y, x."""
    low, high = np.percentile(image, 1.0, axis=(0, 1)), np.percentile(image, 99.8, axis=(0, 1))
    return ((image - low) / (high - low + 1e-6)).astype(np.float32)


@pytest.fixture(scope="module")
def monai_package(tmp_path_factory):
    """A bioimage.io package built with bioimageio.spec around a MONAI BasicUNet, channel-last, sigmoid output."""
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5
    from monai.networks.nets import BasicUNet

    folder = tmp_path_factory.mktemp("monai_package")
    (folder / "architecture.py").write_text(_ARCHITECTURE)
    torch.manual_seed(0)
    net = BasicUNet(**_KWARGS).eval()
    torch.save({f"net.{k}": v for k, v in net.state_dict().items()}, folder / "weights.pt")
    rng = np.random.default_rng(0)
    test_input = rng.normal(100, 20, (1, 32, 32, 1)).astype(np.float32)
    with torch.no_grad():
        logits = net(torch.from_numpy(_scale_range(test_input[0]))[None].permute(0, 3, 1, 2))
    np.save(folder / "in.npy", test_input)
    np.save(folder / "out.npy", torch.sigmoid(logits).permute(0, 2, 3, 1).numpy())
    (folder / "README.md").write_text("# MONAI BasicUNet\n\nBuilt in a test.\n")
    from PIL import Image

    Image.fromarray(np.zeros((64, 128, 3), np.uint8)).save(folder / "cover.png")
    space = [
        v0_5.SpaceInputAxis(id=v0_5.AxisId(a), size=v0_5.ParameterizedSize(min=32, step=16)) for a in "yx"
    ]
    description = v0_5.ModelDescr(
        name="MONAI BasicUNet channel last",
        description="a network medseg did not train",
        authors=[v0_5.Author(name="Test Author")],
        cite=[v0_5.CiteEntry(text="MONAI", doi=v0_5.Doi("10.48550/arXiv.2211.02701"))],
        license=v0_5.LicenseId("MIT"),
        documentation=v0_5.FileDescr(source=folder / "README.md"),
        covers=[v0_5.FileDescr(source=folder / "cover.png")],
        inputs=[
            v0_5.InputTensorDescr(
                id=v0_5.TensorId("image"),
                axes=[v0_5.BatchAxis(), *space, v0_5.ChannelAxis(channel_names=[v0_5.Identifier("grey")])],
                test_tensor=v0_5.FileDescr(source=folder / "in.npy"),
                preprocessing=[
                    v0_5.ScaleRangeDescr(
                        kwargs=v0_5.ScaleRangeKwargs(
                            axes=[v0_5.AxisId("y"), v0_5.AxisId("x")], min_percentile=1.0, max_percentile=99.8
                        )
                    )
                ],
            )
        ],
        outputs=[
            v0_5.OutputTensorDescr(
                id=v0_5.TensorId("foreground"),
                axes=[
                    v0_5.BatchAxis(),
                    *[
                        v0_5.SpaceOutputAxis(
                            id=v0_5.AxisId(a),
                            size=v0_5.SizeReference(tensor_id=v0_5.TensorId("image"), axis_id=v0_5.AxisId(a)),
                        )
                        for a in "yx"
                    ],
                    v0_5.ChannelAxis(channel_names=[v0_5.Identifier("p")]),
                ],
                test_tensor=v0_5.FileDescr(source=folder / "out.npy"),
                postprocessing=[v0_5.SigmoidDescr()],
            )
        ],
        weights=v0_5.WeightsDescr(
            pytorch_state_dict=v0_5.PytorchStateDictWeightsDescr(
                source=folder / "weights.pt",
                architecture=v0_5.ArchitectureFromFileDescr(
                    source=folder / "architecture.py",
                    callable=v0_5.Identifier("ChannelLastUNet"),
                    kwargs=_KWARGS,
                ),
                pytorch_version=v0_5.Version(torch.__version__.split("+")[0]),
            )
        ),
    )
    return save_bioimageio_package(description, output_path=folder / "monai.zip")


def _core_output(package, image: np.ndarray) -> np.ndarray:
    """bioimageio.core's own prediction of a (Y, X) image, the reference."""
    from bioimageio.core import Tensor

    description = core.load_model_description(package)
    tensor_id, axes = (
        description.inputs[0].id,
        [str(getattr(a, "id", a.type)) for a in description.inputs[0].axes],
    )
    shaped = image.reshape([image.shape[0] if a == "y" else image.shape[1] if a == "x" else 1 for a in axes])
    sample = core.predict(model=description, inputs={tensor_id: Tensor.from_numpy(shaped, dims=tuple(axes))})
    (output,) = sample.members.values()
    return np.squeeze(output.data.to_numpy())


def test_foreign_package_is_a_valid_model(monai_package):
    summary = core.test_model(str(monai_package), devices=["cpu"])
    assert summary.status == "passed", [
        (d.name, [e.msg for e in d.errors]) for d in summary.details if d.errors
    ]


def test_foreign_package_output_equals_its_weights_run_directly(monai_package, tmp_path):
    rng = np.random.default_rng(1)
    image = rng.normal(100, 20, (64, 48)).astype(np.float32)
    package = load_package(monai_package)
    assert package.roi_size == (32, 32)  # the test input's size
    one_window = SlidingWindow((64, 48), mirror_axes=())
    predictor = Predictor(package.model, one_window, package.normalization, classes=package.classes)
    logits = predictor.predict_logits(image[None])
    reference = _core_output(monai_package, image)
    np.testing.assert_allclose(logits[1].numpy(), reference, rtol=1e-4, atol=1e-5)
    # the same by hand: scale_range, the network, sigmoid
    from monai.networks.nets import BasicUNet

    torch.manual_seed(0)
    net = BasicUNet(**_KWARGS).eval()
    with torch.no_grad():
        direct = torch.sigmoid(
            net(torch.from_numpy(_scale_range(image[..., None]))[None].permute(0, 3, 1, 2))
        )
    np.testing.assert_allclose(logits[1].numpy(), direct[0, 0].numpy(), rtol=1e-4, atol=1e-5)
    # through the CLI, one window: labels are the package's output above 0.5
    tifffile.imwrite(tmp_path / "image.tif", image)
    argv = [
        "predict",
        "-m",
        str(monai_package),
        "-i",
        str(tmp_path / "image.tif"),
        "-o",
        str(tmp_path / "out"),
    ]
    assert main([*argv, "--roi-size", "64", "48", "--no-progress"]) == 0
    np.testing.assert_array_equal(
        read(tmp_path / "out" / "image.tif").array[0], (reference > 0.5).astype(np.uint8)
    )
    # tiled with the package's own tile (32 x 32, Gaussian blending): nearly the same labels
    assert main([*argv[:-1], str(tmp_path / "tiled"), "--no-progress"]) == 0
    tiled = read(tmp_path / "tiled" / "image.tif").array[0]
    assert np.mean(tiled == (reference > 0.5)) > 0.9


@pytest.mark.parametrize("kind", ["unet2d", "instances"])
def test_exported_package_predicts_as_its_checkpoint(runs, tmp_path, kind):
    package = tmp_path / f"{kind}.zip"
    assert main(["export", str(runs[kind]), "--bioimageio", str(package), "--author", "A B"]) == 0
    assert is_bioimageio_package(package) and not is_bioimageio_package(runs[kind])
    image = next(runs[kind].parent.glob("lab/images/*.tif")) if kind == "instances" else None
    if image is None:
        image = tmp_path / "section.tif"
        tifffile.imwrite(image, tifffile.imread(runs[kind].parent / "em" / "train-volume.tif")[1])
    fmt = ["--format", "instances"] if kind == "instances" else ["--save-probabilities"]
    for model, out in ((package, "from_package"), (runs[kind], "from_run")):
        argv = ["predict", "-m", str(model), "-i", str(image), "-o", str(tmp_path / out), "--no-tta", *fmt]
        assert main([*argv, "--no-progress"]) == 0
    from_package, from_run = (read(tmp_path / o / image.name).array for o in ("from_package", "from_run"))
    np.testing.assert_array_equal(from_package, from_run)
    if kind == "unet2d":  # softmax once: the package's post-processing is the Predictor's own
        a, b = (read(tmp_path / o / "section_probabilities.tif").array for o in ("from_package", "from_run"))
        np.testing.assert_allclose(a, b, atol=1e-5)
    if kind == "instances":
        a, b = (
            read(tmp_path / o / "instances" / f"{image.stem}.tif").array for o in ("from_package", "from_run")
        )
        np.testing.assert_array_equal(a, b)
        # the instance package's raw output equals bioimageio.core's prediction of it
        loaded = load_package(package)
        grey = read(image).array[0].astype(np.float32)
        window = SlidingWindow(grey.shape, mirror_axes=())
        logits = Predictor(loaded.model, window, loaded.normalization).predict_logits(grey[None])
        np.testing.assert_allclose(logits.numpy(), _core_output(package, grey), rtol=1e-4, atol=1e-4)


def test_unsupported_packages_are_refused(tmp_path):
    bad = tmp_path / "rdf.yaml"
    bad.write_text("type: dataset\nformat_version: 0.3.0\nname: nope\n")
    with pytest.raises(FormatError):
        load_package(bad)
    assert (
        main(["predict", "-m", str(tmp_path / "missing.zip"), "-i", str(bad), "-o", str(tmp_path / "o")]) == 2
    )
    assert not (tmp_path / "o").exists()
