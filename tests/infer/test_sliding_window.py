from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from torch import nn

from medseg.errors import ConfigError, DataValueError, ShapeError
from medseg.infer.sliding_window import SlidingWindow
from medseg.infer.tiling import importance_map, window_starts


class Pointwise(nn.Module):
    """A model whose output at a pixel depends on that pixel only: tiling cannot change it."""

    def __init__(self, in_channels: int = 1, out_channels: int = 3, spatial_dims: int = 2) -> None:
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.net = nn.Sequential(conv(in_channels, 8, 1), nn.Tanh(), conv(8, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ValidConv(nn.Module):
    """Two unpadded 3x3 convolutions: crops 2 px per side, like the paper U-Net."""

    constraints = SimpleNamespace(margin=2)

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize("blending", ["gaussian", "constant"])
@pytest.mark.parametrize(
    ("shape", "roi"),
    [((1, 1, 50, 37), (16, 16)), ((2, 3, 8, 8), (16, 16)), ((1, 2, 9, 20, 13), (4, 8, 8))],
)
def test_identity_predictor_returns_input(shape, roi, blending):
    image = torch.rand(shape)
    out = SlidingWindow(roi, overlap=0.5, blending=blending, batch_size=3)(nn.Identity(), image)
    assert out.shape == image.shape
    torch.testing.assert_close(out, image, rtol=0, atol=1e-6)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_matches_monai_sliding_window_inference(spatial_dims):
    torch.manual_seed(0)
    model = Pointwise(spatial_dims=spatial_dims).eval()
    shape = (1, 1, 40, 45) if spatial_dims == 2 else (1, 1, 12, 20, 17)
    roi = (16, 16) if spatial_dims == 2 else (8, 8, 8)
    image = torch.randn(shape)
    ours = SlidingWindow(roi, overlap=0.25, blending="gaussian")(model, image)
    with torch.no_grad():
        reference = sliding_window_inference(image, roi, 4, model, overlap=0.25, mode="gaussian")
        full = model(image)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours, full, rtol=1e-5, atol=1e-5)


def test_valid_convolution_model_uses_mirrored_overlap_tile():
    torch.manual_seed(0)
    model = ValidConv().eval()
    image = torch.randn(1, 1, 30, 41)
    out = SlidingWindow((14, 14), overlap=0.3)(model, image)
    with torch.no_grad():
        expected = model(F.pad(image, (2, 2, 2, 2), mode="reflect"))
    assert out.shape == (1, 2, 30, 41)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_mirror_tta_averages_flipped_predictions():
    torch.manual_seed(0)
    model = nn.Conv2d(1, 2, 3, padding=1).eval()
    image = torch.randn(1, 1, 16, 16)
    out = SlidingWindow((16, 16), mirror_axes=(0, 1), blending="constant")(model, image)
    with torch.no_grad():
        flips = [(), (2,), (3,), (2, 3)]
        expected = sum(model(image.flip(d)).flip(d) if d else model(image) for d in flips) / 4
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_window_starts_cover_axis_evenly():
    assert window_starts(100, 40, 0.5) == [0, 20, 40, 60]
    assert window_starts(40, 40, 0.5) == [0]
    starts = window_starts(97, 32, 0.5)
    assert starts[0] == 0 and starts[-1] == 97 - 32
    assert max(np.diff(starts)) <= 16


def test_gaussian_importance_map_is_positive_and_peaks_in_centre():
    weights = importance_map((9, 9), "gaussian")
    assert weights.min() > 0
    assert weights[4, 4] == pytest.approx(1.0)
    assert weights[0, 0] < weights[2, 2] < weights[4, 4]


def test_bad_arguments_raise_specific_errors():
    with pytest.raises(ConfigError, match="overlap must be >= 0 and < 1, got 1.0"):
        SlidingWindow((8, 8), overlap=1.0)
    with pytest.raises(ConfigError, match="blending must be one of gaussian, constant"):
        SlidingWindow((8, 8), blending="median")
    with pytest.raises(ShapeError, match=r"\(N, C, \*spatial\) with 2 spatial axes"):
        SlidingWindow((8, 8))(nn.Identity(), torch.rand(8, 8))
    image = torch.rand(1, 1, 8, 8)
    image[0, 0, 3, 3] = float("nan")
    with pytest.raises(DataValueError, match="NaN"):
        SlidingWindow((8, 8))(nn.Identity(), image)
    with pytest.raises(ShapeError, match="does not match the expected"):
        SlidingWindow((8, 8))(nn.Conv2d(1, 1, 3), torch.rand(1, 1, 8, 8))


def test_roi_checked_against_model_constraints_before_predicting():
    from medseg.models import build_model

    model = build_model("unet", in_channels=1, out_channels=2, features=4, depth=2)
    with pytest.raises(
        ConfigError, match=r"roi_size \(30, 30\) is not a valid input size.*use roi_size \(32, 32\)"
    ):
        SlidingWindow((30, 30))(model, torch.rand(1, 1, 40, 40))


@pytest.mark.parametrize("shape", [(36, 36), (37, 29), (50, 61)])
def test_paper_unet_overlap_tile_is_seamless(shape):
    from medseg.models import build_model

    torch.manual_seed(0)
    model = build_model("unet-paper", features=2, depth=2).eval()
    roi = model.constraints.required_input_shape((20, 20))
    image = torch.rand(1, 1, *shape)
    # window starts are aligned to the pooling factor, so with valid convolutions each
    # output pixel is independent of the window it came from: tiles join without seams
    out = SlidingWindow(roi, overlap=0.25)(model, image)
    assert out.shape == (1, 2, *shape)
    from medseg.infer.tiling import aligned_size

    m = model.constraints.margin[0]
    grid = [aligned_size(s, 20, model.constraints.divisor[0]) for s in shape]
    with torch.no_grad():  # one forward pass over the whole mirrored image
        full = model(F.pad(image, (m, m + grid[1] - shape[1], m, m + grid[0] - shape[0]), mode="reflect"))
    torch.testing.assert_close(out, full[:, :, : shape[0], : shape[1]], rtol=1e-4, atol=1e-5)


def test_aligned_window_starts():
    from medseg.infer.tiling import aligned_size

    size = aligned_size(37, 20, 4)
    assert size == 40
    starts = window_starts(size, 20, 0.25, align=4)
    assert starts[0] == 0 and starts[-1] == size - 20
    assert all(s % 4 == 0 for s in starts) and max(np.diff(starts)) <= 20
