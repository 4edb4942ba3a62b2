from __future__ import annotations

import pytest
import torch
from monai.networks.nets import BasicUNet
from torch import nn

from medseg.infer.layout import LayoutKeepingInstanceNorm, channels_last_format, channels_last_view
from medseg.models.unet import UNet


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=channels_last_format(x.ndim))


def _conv_inputs(view: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The input of every convolution of ``view`` in one forward pass."""
    seen: list[torch.Tensor] = []
    hooks = [
        m.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
        for m in view.modules()
        if isinstance(m, nn.modules.conv._ConvNd)
    ]
    with torch.inference_mode():
        view(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize(
    "model",
    [
        BasicUNet(spatial_dims=3, in_channels=1, out_channels=3, features=(4, 4, 8, 8, 16, 4)),
        BasicUNet(spatial_dims=2, in_channels=1, out_channels=3, features=(4, 4, 8, 8, 16, 4)),
        UNet(1, 3, spatial_dims=3, features=4, depth=2),
        UNet(2, 3, spatial_dims=2, features=4, depth=2),
    ],
    ids=["monai-3d", "monai-2d", "medseg-3d", "medseg-2d"],
)
def test_view_keeps_channels_last_and_computes_the_same_logits(model):
    torch.manual_seed(0)
    model.eval()
    dims = 3 if any(isinstance(m, nn.Conv3d) for m in model.modules()) else 2
    spatial = (32,) * dims
    channels = next(m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)).in_channels
    x = torch.randn(2, channels, *spatial)
    view = channels_last_view(model)
    with torch.inference_mode():
        expected = model(x)
        got = view(x.contiguous(memory_format=channels_last_format(x.ndim)))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert _is_channels_last(got)
    # every convolution after the first reads channels-last activations: no norm undid the layout
    inputs = _conv_inputs(view, x)
    assert len(inputs) > 4
    assert all(_is_channels_last(t) and not t.is_contiguous() for t in inputs[1:])
    # the plain model, run the same way, loses the layout at its first instance norm
    assert not all(_is_channels_last(t) and not t.is_contiguous() for t in _conv_inputs(model, x)[1:])


def test_view_leaves_the_model_alone_and_follows_its_norm_parameters():
    torch.manual_seed(0)
    model = UNet(1, 2, spatial_dims=2, features=4, depth=1).eval()
    before = [type(m) for m in model.modules()]
    view = channels_last_view(model)
    assert [type(m) for m in model.modules()] == before
    assert any(isinstance(m, LayoutKeepingInstanceNorm) for m in view.modules())
    x = torch.randn(2, 1, 16, 16)
    norm = next(m for m in model.modules() if isinstance(m, nn.InstanceNorm2d))
    with torch.no_grad():
        norm.weight.mul_(3.0)
        norm.bias.add_(0.5)
    with torch.inference_mode():
        torch.testing.assert_close(view(x), model(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(2, 6, 5, 7), (3, 4, 5, 6, 3)])
def test_layout_keeping_instance_norm_equals_torch(affine, shape):
    torch.manual_seed(0)
    norm = (nn.InstanceNorm2d if len(shape) == 4 else nn.InstanceNorm3d)(shape[1], affine=affine, eps=1e-3)
    if affine:
        with torch.no_grad():
            norm.weight.uniform_(0.5, 2.0)
            norm.bias.uniform_(-1.0, 1.0)
    x = (torch.randn(shape) * 4 + 2).contiguous(memory_format=channels_last_format(len(shape)))
    got = LayoutKeepingInstanceNorm(norm)(x)
    torch.testing.assert_close(got, norm(x), rtol=0, atol=1e-5)
    assert _is_channels_last(got)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_norms_with_running_statistics_and_scripted_models_are_left_alone():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.InstanceNorm2d(4, track_running_stats=True)).eval()
    view = channels_last_view(model)
    assert isinstance(view[1], nn.InstanceNorm2d)
    x = torch.randn(2, 1, 8, 8)
    with torch.inference_mode():
        torch.testing.assert_close(view(x), model(x), rtol=0, atol=1e-6)
    scripted = torch.jit.script(nn.Sequential(nn.Conv2d(1, 2, 3)))
    assert channels_last_view(scripted) is scripted


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_layout_keeping_instance_norm_keeps_a_low_precision_dtype(dtype):
    norm = nn.InstanceNorm3d(4, affine=True)
    x = (torch.randn(2, 4, 6, 6, 6) * 1000).to(dtype)  # a float16 variance of 1e6 would overflow
    got = LayoutKeepingInstanceNorm(norm)(x)
    assert got.dtype == dtype and torch.isfinite(got).all()
    torch.testing.assert_close(got.float(), norm(x.float()), rtol=0, atol=0.05)


def test_parametrized_convolution_weights_are_left_to_their_parametrization():
    torch.manual_seed(0)
    conv = nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 4, 3))
    model = nn.Sequential(conv, nn.InstanceNorm2d(4, affine=True), nn.Conv2d(4, 2, 1)).eval()
    x = torch.randn(2, 3, 12, 12)
    with torch.inference_mode():
        torch.testing.assert_close(
            channels_last_view(model)(x.contiguous(memory_format=torch.channels_last)),
            model(x),
            rtol=0,
            atol=1e-5,
        )
