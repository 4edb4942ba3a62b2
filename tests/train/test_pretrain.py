from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medseg.errors import ConfigError, ShapeError
from medseg.models import StackedDenoisingAutoencoder
from medseg.train.pretrain import pretrain_layerwise


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
