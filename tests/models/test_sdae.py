"""sDAE: dense (fully convolutional) form equals the patch classifier (pre-training: tests/train)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medseg.models import StackedDenoisingAutoencoder, mirror_pad

torch.set_num_threads(1)


def _patches_2d(padded: torch.Tensor, p: int) -> torch.Tensor:
    """All p x p patches of N,C,H+p-1,W+p-1 as (N*H*W, C, p, p), row-major over pixels."""
    c = padded.shape[1]
    cols = F.unfold(padded, p)  # N, C*p*p, L
    return cols.transpose(1, 2).reshape(-1, c, p, p)


@pytest.mark.parametrize("padding", ["reflect", "zeros"])
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_dense_form_equals_patch_classifier_2d(padding: str, activation: str) -> None:
    torch.manual_seed(0)
    p = 7
    model = StackedDenoisingAutoencoder(
        2, 3, patch_size=p, hidden_features=(24, 12, 6), activation=activation, padding=padding
    ).eval()
    image = torch.randn(2, 2, 13, 10)
    with torch.no_grad():
        dense = model(image)
        half = p // 2
        if padding == "reflect":
            padded = mirror_pad(image, [(half, half)] * 2)
        else:
            padded = F.pad(image, (half,) * 4)
        per_patch = model.classify_patches(_patches_2d(padded, p))
    per_patch = per_patch.view(2, 13, 10, 3).permute(0, 3, 1, 2)
    assert dense.shape == (2, 3, 13, 10)
    assert (dense - per_patch).abs().max().item() < 1e-5


def test_dense_form_equals_patch_classifier_3d() -> None:
    torch.manual_seed(0)
    model = StackedDenoisingAutoencoder(1, 2, spatial_dims=3, patch_size=3, hidden_features=(8, 4)).eval()
    image = torch.randn(1, 1, 5, 4, 6)
    with torch.no_grad():
        dense = model(image)
        padded = mirror_pad(image, [(1, 1)] * 3)
        for z, y, x in [(0, 0, 0), (4, 3, 5), (2, 1, 3)]:
            patch = padded[:, :, z : z + 3, y : y + 3, x : x + 3]
            assert (dense[:, :, z, y, x] - model.classify_patches(patch)).abs().max().item() < 1e-5


def test_dense_form_on_an_image_smaller_than_the_patch() -> None:
    model = StackedDenoisingAutoencoder(1, 2, patch_size=15, hidden_features=(8,))
    assert model(torch.rand(1, 1, 3, 4)).shape == (1, 2, 3, 4)
