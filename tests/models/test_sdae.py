"""sDAE: dense (fully convolutional) form equals the patch classifier; layer-wise pretraining."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medseg.errors import ConfigError, ShapeError
from medseg.models import StackedDenoisingAutoencoder, mirror_pad, pretrain_layerwise

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


@pytest.mark.parametrize("corruption", ["masking", "gaussian"])
def test_layerwise_pretraining_reduces_reconstruction_loss(corruption: str) -> None:
    torch.manual_seed(0)
    model = StackedDenoisingAutoencoder(1, 2, patch_size=7, hidden_features=(32, 16))
    head_before = model.head.weight.clone()
    # smooth random images: structured enough to be compressible
    images = [F.avg_pool2d(torch.rand(4, 1, 36, 36), 5, stride=1) for _ in range(3)]
    history = pretrain_layerwise(
        model,
        images,
        corruption=corruption,
        noise_level=0.2,
        steps_per_layer=120,
        lr=3e-3,
        patches_per_batch=64,
    )
    assert len(history) == 2
    for losses in history:
        assert len(losses) == 120
        assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
    assert torch.equal(model.head.weight, head_before)


def test_pretraining_accepts_image_label_tuples_and_patch_sized_images() -> None:
    model = StackedDenoisingAutoencoder(1, 2, patch_size=5, hidden_features=(4,))
    batches = [(torch.rand(3, 1, 5, 5), torch.zeros(3, 5, 5))]
    assert len(pretrain_layerwise(model, batches, steps_per_layer=2)[0]) == 2


def test_pretraining_errors() -> None:
    model = StackedDenoisingAutoencoder(1, 2, patch_size=5, hidden_features=(4,))
    with pytest.raises(ConfigError, match="re-iterable"):
        pretrain_layerwise(model, iter([torch.rand(1, 1, 8, 8)]), steps_per_layer=3)
    with pytest.raises(ConfigError, match="Did you mean 'masking'"):
        pretrain_layerwise(model, [torch.rand(1, 1, 8, 8)], corruption="mask")
    with pytest.raises(ConfigError, match="noise_level"):
        pretrain_layerwise(model, [torch.rand(1, 1, 8, 8)], noise_level=1.5)
    with pytest.raises(ShapeError, match="patch_size=5"):
        pretrain_layerwise(model, [torch.rand(1, 1, 4, 8)], steps_per_layer=1)


def test_bad_sdae_params() -> None:
    with pytest.raises(ConfigError, match="odd"):
        StackedDenoisingAutoencoder(1, 2, patch_size=8)
    with pytest.raises(ConfigError, match="hidden_features"):
        StackedDenoisingAutoencoder(1, 2, hidden_features=())
    model = StackedDenoisingAutoencoder(1, 2, patch_size=5, hidden_features=(4,))
    with pytest.raises(ShapeError, match="patches must have shape"):
        model.classify_patches(torch.rand(2, 1, 7, 7))
