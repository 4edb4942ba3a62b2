"""Parameter counts against the papers; models are built on the meta device (no memory, no forward)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medseg.models import build_model


def _count(name: str, **params) -> int:
    with torch.device("meta"):
        model = build_model(name, **params)
    return sum(p.numel() for p in model.parameters())


def test_paper_unet_has_31m_parameters_and_23_conv_layers() -> None:
    # Ronneberger et al. 2015: 23 conv layers; 64 -> 1024 channels; 1 input channel, 2 classes.
    # Hand count: 18 3x3 convs + 4 2x2 up-convs + 1 1x1 conv, weights + biases = 31,030,658.
    with torch.device("meta"):
        model = build_model("unet-paper", in_channels=1, out_channels=2, features=64)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 31_030_658
    assert n_params == pytest.approx(31.03e6, rel=0.02)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert len(convs) == 23
    assert max(m.out_channels for m in convs) == 1024


def test_unet3d_matches_cicek_count() -> None:
    # Çiçek et al. 2016 report 19,069,955 parameters (3 input channels, 3 labels); the
    # difference (+3,232) is batch-norm affine parameters and up-conv biases, see PaperUNet Notes.
    n_params = _count("unet3d", in_channels=3, out_channels=3)
    assert n_params == 19_073_187
    assert n_params == pytest.approx(19_069_955, rel=1e-3)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # VGG-16 has 138,357,544 parameters (Simonyan & Zisserman 2015, config D); the Caffe
        # voc-fcn8s (github.com/shelhamer/fcn.berkeleyvision.org) drops the 1000-way fc8
        # (4,097,000) and adds score_fr/score_pool4/score_pool3 (102,207) and the three
        # bias-free deconvolutions (127,008): 134,489,759, the "134M" of Long et al. Table 1.
        ("fcn8s", 134_489_759),
        ("fcn16s", 134_815_994),  # 32x32 upscore16 instead of upscore_pool4 + upscore8
        ("fcn32s", 136_152_917),  # 64x64 upscore: 21 * 21 * 64 * 64 = 1,806,336
    ],
)
def test_fcn_vgg16_counts(name: str, expected: int) -> None:
    n_params = _count(name, in_channels=3, out_channels=21)
    assert n_params == expected
    if name == "fcn8s":
        assert n_params == pytest.approx(134.5e6, rel=0.02)


def test_fcn32s_without_the_fixed_upsampling_is_134m() -> None:
    with torch.device("meta"):
        model = build_model("fcn32s", in_channels=3, out_channels=21, learnable_upsampling=False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 134_346_581
    assert trainable == pytest.approx(134e6, rel=0.01)
