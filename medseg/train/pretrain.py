"""Greedy layer-wise denoising pre-training, a trainer phase before fine-tuning (``train.pretrain: layerwise``).

Models that declare ``supports_layerwise_pretraining`` (the stacked denoising
autoencoder) expose ``encoders`` (a list of ``nn.Linear``), ``encode(patches, n)``,
``act``, ``patch_size`` and ``spatial_dims``; each encoder layer is trained in turn to
reconstruct its clean input from a corrupted copy (Vincent et al. 2010).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medseg.errors import ConfigError, ShapeError

__all__ = ["CORRUPTIONS", "corrupt", "pretrain_layerwise", "supports_layerwise_pretraining"]

logger = logging.getLogger(__name__)

CORRUPTIONS = ("masking", "gaussian")


def supports_layerwise_pretraining(model: nn.Module) -> bool:
    """Whether ``model`` declares the layer-wise pre-training phase."""
    return bool(getattr(model, "supports_layerwise_pretraining", False))


def _check_corruption(corruption: str) -> None:
    if corruption not in CORRUPTIONS:
        close = [c for c in CORRUPTIONS if c.startswith(str(corruption)[:3])]
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"corruption must be one of {', '.join(CORRUPTIONS)}, got {corruption!r}.{hint}")


def corrupt(
    x: torch.Tensor, corruption: str, noise_level: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Corrupt ``x`` for denoising training (Vincent et al. 2010, Sec. 4.1).

    ``'masking'`` sets a random fraction ``noise_level`` of the entries to 0;
    ``'gaussian'`` adds isotropic noise with standard deviation ``noise_level``.
    """
    _check_corruption(corruption)
    noise = torch.rand if corruption == "masking" else torch.randn
    sample = noise(x.shape, generator=generator, device="cpu").to(device=x.device, dtype=x.dtype)
    if corruption == "masking":
        return x * (sample >= noise_level)
    return x + noise_level * sample


def _sample_patches(
    images: torch.Tensor, patch_size: int, count: int, spatial_dims: int, generator: torch.Generator
) -> torch.Tensor:
    """``count`` random ``patch_size``-wide patches ``M, C, p, p`` from ``N, C, *spatial``."""
    spatial = tuple(images.shape[2:])
    if images.ndim != spatial_dims + 2 or any(s < patch_size for s in spatial):
        raise ShapeError(
            f"pretraining batches must be N,C,*spatial tensors with {spatial_dims} spatial axes of at least "
            f"patch_size={patch_size}, got shape {tuple(images.shape)}"
        )
    index = [torch.randint(images.shape[0], (count,), generator=generator).view(count, *[1] * spatial_dims)]
    offsets = torch.arange(patch_size)
    for axis, size in enumerate(spatial):
        start = torch.randint(size - patch_size + 1, (count,), generator=generator)
        shape = [1] * (spatial_dims + 1)
        shape[axis + 1] = patch_size
        index.append(start.view(count, *[1] * spatial_dims) + offsets.view(shape))
    index = [i.to(images.device) for i in index]
    return images.movedim(1, -1)[tuple(index)].movedim(-1, 1)


def _stream(batches: Iterable[torch.Tensor | Sequence[torch.Tensor]]) -> Iterator[torch.Tensor]:
    """Yield image tensors forever, re-iterating ``batches``; tuples yield their first item."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            image = batch[0] if isinstance(batch, list | tuple) else batch
            if not isinstance(image, torch.Tensor):
                raise ConfigError(
                    f"batches must yield tensors (or tuples starting with one), got {type(image).__name__}"
                )
            yield image
        if empty:
            raise ConfigError(
                "batches yielded no images (an exhausted one-shot iterator?): pass a list, "
                "a DataLoader or another re-iterable of N,C,*spatial tensors"
            )


def pretrain_layerwise(
    model: Any,
    batches: Iterable[torch.Tensor | Sequence[torch.Tensor]],
    *,
    corruption: str = "masking",
    noise_level: float = 0.25,
    steps_per_layer: int = 200,
    lr: float = 1e-3,
    patches_per_batch: int = 128,
    seed: int = 0,
) -> list[list[float]]:
    """Greedy layer-wise denoising pretraining of ``model.encoders`` (Vincent et al. 2010).

    Layer ``k`` is trained for ``steps_per_layer`` Adam steps to reconstruct its clean
    input (the code of layers ``< k``, kept fixed) from a corrupted copy, through a
    temporary linear decoder that is discarded afterwards. Random patches are drawn
    from each batch. The head is left untouched; fine-tune the whole model afterwards
    with a segmentation loss on ``model(image)`` or ``model.classify_patches(patches)``.

    Parameters
    ----------
    model : nn.Module
        Model to pretrain in place; it must declare ``supports_layerwise_pretraining`` and have
        ``encoders``, ``encode``, ``act``, ``head``, ``patch_size`` and ``spatial_dims`` (the sDAE).
    batches : iterable of torch.Tensor
        Image batches ``N, C, *spatial`` with every spatial size >= ``patch_size``
        (tuples ``(image, ...)`` are accepted, only the image is used). Iterated again
        when exhausted, so it must be re-iterable (list, DataLoader).
    corruption : {'masking', 'gaussian'}
        Masking noise (zero a fraction ``noise_level``) or additive Gaussian noise
        (standard deviation ``noise_level``).
    noise_level : float
        Corruption strength, >= 0 (and < 1 for masking).
    steps_per_layer : int
        Optimiser steps per encoder layer.
    lr : float
        Adam learning rate.
    patches_per_batch : int
        Random patches drawn from each batch.
    seed : int
        Seed of the patch sampling and corruption noise.

    Returns
    -------
    list of list of float
        Reconstruction loss (mean squared error) of every step, one list per layer.

    Raises
    ------
    ConfigError
        On an invalid option or an empty ``batches``.
    ShapeError
        If a batch is smaller than a patch.

    Examples
    --------
    >>> import torch
    >>> from medseg.models import StackedDenoisingAutoencoder
    >>> model = StackedDenoisingAutoencoder(1, 2, patch_size=5, hidden_features=(16, 8))
    >>> losses = pretrain_layerwise(model, [torch.rand(2, 1, 16, 16)], steps_per_layer=3)
    >>> [len(layer) for layer in losses]
    [3, 3]
    """
    if not supports_layerwise_pretraining(model):
        raise ConfigError(
            f"model {type(model).__name__} has no layer-wise pre-training; set train.pretrain: none "
            "or use model.name: sdae"
        )
    _check_corruption(corruption)
    upper = 1.0 if corruption == "masking" else math.inf
    if (
        isinstance(noise_level, bool)
        or not isinstance(noise_level, int | float)
        or not 0 <= noise_level < upper
    ):
        raise ConfigError(
            f"noise_level must be in [0, {upper}) for {corruption!r} corruption, got {noise_level!r}"
        )
    for name, value in (("steps_per_layer", steps_per_layer), ("patches_per_batch", patches_per_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise ConfigError(f"lr must be a positive number, got {lr!r}")

    generator = torch.Generator().manual_seed(seed)
    stream = _stream(batches)
    device = model.head.weight.device
    was_training = model.training
    model.train()
    history: list[list[float]] = []
    for layer_index, encoder in enumerate(model.encoders):
        decoder = nn.Linear(encoder.out_features, encoder.in_features).to(device)
        optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=lr)
        losses: list[float] = []
        for _ in range(steps_per_layer):
            images = next(stream).to(device=device, dtype=encoder.weight.dtype)
            patches = _sample_patches(
                images, model.patch_size, patches_per_batch, model.spatial_dims, generator
            )
            with torch.no_grad():
                clean = model.encode(patches, layer_index)
            noisy = corrupt(clean, corruption, noise_level, generator)
            loss = F.mse_loss(decoder(model.act(encoder(noisy))), clean)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        logger.info(
            "sDAE layer %d/%d pretrained: reconstruction loss %.4g -> %.4g",
            layer_index + 1,
            len(model.encoders),
            losses[0],
            losses[-1],
        )
        history.append(losses)
    model.train(was_training)
    return history
