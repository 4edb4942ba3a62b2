"""FCN: output size equals input size for any H, W; bilinear-initialised upsampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medseg.errors import ShapeError
from medseg.models import FCN, build_model
from medseg.models.fcn import bilinear_kernel

torch.set_num_threads(1)


@pytest.mark.parametrize("name", ["fcn32s", "fcn16s", "fcn8s"])
@pytest.mark.parametrize("size", [(37, 53), (100, 101), (1, 1), (31, 2), (64, 64)])
def test_output_size_equals_input_size(name: str, size: tuple[int, int]) -> None:
    model = build_model(name, in_channels=3, out_channels=5, features=4, fc_features=16).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, *size))
    assert out.shape == (1, 5, *size)


def test_bilinear_kernel_upsamples_like_bilinear_interpolation() -> None:
    # interior of a 2x transposed-conv upsampling equals align_corners=False bilinear resize
    x = torch.rand(1, 2, 6, 7)
    up = F.conv_transpose2d(x, bilinear_kernel(2, 4), stride=2, padding=1)
    ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(up[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-6)


def test_fixed_upsampling_and_zero_initialised_scores() -> None:
    model = FCN(1, 2, variant="8s", features=4, fc_features=8, learnable_upsampling=False)
    for layer in (model.upscore, model.upscore2, model.upscore_pool4):
        assert not layer.weight.requires_grad
    # score layers start at zero (as in the reference models): the initial output is 0
    assert torch.count_nonzero(model(torch.rand(1, 1, 20, 20))) == 0
    assert FCN(1, 2, variant="32s", features=4, fc_features=8).upscore.weight.requires_grad


def test_fcn_is_2d_only() -> None:
    model = FCN(1, 2, features=4, fc_features=8)
    with pytest.raises(ShapeError, match="4D input"):
        model(torch.rand(1, 1, 8, 8, 8))
