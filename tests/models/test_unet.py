"""U-Net geometry (572 -> 388), overlap-tile padding, init and input checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from medseg.errors import ConfigError, ShapeError
from medseg.models import PaperUNet, UNet, build_model, overlap_tile_pad, valid_unet_geometry

torch.set_num_threads(1)


def test_paper_geometry_572_to_388() -> None:
    model = PaperUNet(1, 2, features=2)  # geometry does not depend on width
    c = model.constraints
    assert (c.divisor, c.remainder, c.margin, c.min_size) == ((16, 16), (12, 12), (92, 92), (188, 188))
    assert model.valid_output_shape((572, 572)) == (388, 388)
    assert model.required_input_shape((388, 388)) == (572, 572)
    assert model.required_input_shape((389, 1)) == (588, 188)
    assert valid_unet_geometry(3) == (8, 4, 44, 92)  # Çiçek: 132 -> 44, 116 -> 28


def test_paper_forward_matches_declared_geometry() -> None:
    model = PaperUNet(1, 3, features=2).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 188, 204))
    assert out.shape == (1, 3, 4, 20)


def test_cicek_3d_geometry() -> None:
    model = build_model("unet3d", features=2)
    assert model.valid_output_shape((132, 132, 116)) == (44, 44, 28)
    assert model.constraints.spatial_dims == 3


def test_invalid_size_gives_size_to_pad_to() -> None:
    model = PaperUNet(1, 2, features=2)
    with pytest.raises(ShapeError, match=r"pad the input to \(572, 588\)"):
        model(torch.rand(1, 1, 570, 573))
    with pytest.raises(ShapeError, match="pad the input to"):
        model.valid_output_shape((100, 100))
    unet = UNet(1, 2, features=4, depth=3)
    with pytest.raises(ShapeError, match=r"pad the input to \(40, 16\)"):
        unet(torch.rand(1, 1, 33, 16))


def test_wrong_rank_or_channels_is_shape_error() -> None:
    unet = UNet(2, 2, features=4, depth=2)
    with pytest.raises(ShapeError, match="input channel"):
        unet(torch.rand(1, 1, 32, 32))
    with pytest.raises(ShapeError, match="4D input"):
        unet(torch.rand(2, 32, 32))


def test_overlap_tile_pad_mirrors_and_crops_back() -> None:
    model = PaperUNet(1, 2, features=2, depth=2)
    image = torch.rand(2, 1, 30, 47)
    padded, crop = overlap_tile_pad(image, model.constraints)
    assert model.constraints.is_valid(padded.shape[2:])
    m = model.constraints.margin[0]
    assert torch.equal(padded[..., m : m + 30, m : m + 47], image)
    # mirrored without repeating the border pixel
    assert torch.equal(padded[..., m - 1, m : m + 47], image[..., 1, :])
    assert torch.equal(padded[..., m : m + 30, m - 2], image[..., :, 2])
    with torch.no_grad():
        out = model(padded)
    assert out[(..., *crop)].shape == (2, 2, 30, 47)


def test_paper_unet_he_init() -> None:
    torch.manual_seed(0)
    model = PaperUNet(1, 2, features=16, depth=2)
    conv = model.decoder[0].conv1
    fan_in = conv.in_channels * math.prod(conv.kernel_size)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
    assert torch.count_nonzero(conv.bias) == 0


@pytest.mark.parametrize("norm", ["instance", "batch", None])
@pytest.mark.parametrize("residual", [False, True])
def test_modern_unet_options(norm: str | None, residual: bool) -> None:
    model = UNet(1, 2, features=4, depth=2, norm=norm, residual=residual, dropout=0.1)
    assert model(torch.rand(2, 1, 16, 24)).shape == (2, 2, 16, 24)
    has_norm = any(isinstance(m, nn.InstanceNorm2d | nn.BatchNorm2d) for m in model.modules())
    assert has_norm == (norm is not None)


def test_instance_norm_needs_two_voxels_at_the_bottleneck() -> None:
    assert UNet(1, 2, features=4, depth=3).constraints.min_size == (16, 16)
    assert UNet(1, 2, features=4, depth=3, norm="batch").constraints.min_size == (8, 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"norm": "instnace"}, "Did you mean 'instance'"),
        ({"depth": 0}, "depth must be an integer >= 1"),
        ({"features": 2.5}, "features"),
        ({"dropout": 1.0}, "dropout"),
        ({"spatial_dims": 1}, "spatial_dims"),
    ],
)
def test_bad_unet_params(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        UNet(1, 2, **kwargs)


def test_bad_paper_variant() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'cicek'"):
        PaperUNet(1, 2, variant="cicek2")
