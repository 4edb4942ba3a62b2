"""Stacked denoising autoencoder (sDAE) patch classifier with a dense, sliding-window form.

An sDAE classifies the centre pixel of a ``patch_size``-wide patch with a stack of
fully connected encoder layers and a linear head. Each encoder layer is first trained
greedily, one at a time, to reconstruct its clean input from a corrupted copy
(:func:`pretrain_layerwise`); the whole stack plus head is then fine-tuned with a
segmentation loss. Because the first layer is a ``patch_size``-wide filter and the
others act per pixel, the same weights run as a fully convolutional network:
``model(image)`` equals :meth:`StackedDenoisingAutoencoder.classify_patches` applied to
the (mirror-padded) patch centred at every pixel, at the cost of one convolution.

References
----------
.. [1] P. Vincent, H. Larochelle, I. Lajoie, Y. Bengio, P.-A. Manzagol, "Stacked Denoising
   Autoencoders: Learning Useful Representations in a Deep Network with a Local
   Denoising Criterion", JMLR 11:3371-3408, 2010.
.. [2] H. Su, F. Xing, X. Kong, Y. Xie, S. Zhang, L. Yang, "Robust Cell Detection and
   Segmentation in Histopathological Images Using Sparse Reconstruction and Stacked
   Denoising Autoencoders", MICCAI 2015, LNCS 9351:383-390.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medseg.errors import ConfigError, ShapeError
from medseg.models.blocks import check_option, check_positive_int, check_spatial_dims
from medseg.models.constraints import InputConstraints, mirror_pad

__all__ = ["ACTIVATIONS", "CORRUPTIONS", "StackedDenoisingAutoencoder", "corrupt", "pretrain_layerwise"]

logger = logging.getLogger(__name__)

ACTIVATIONS = ("sigmoid", "relu")
PADDINGS = ("reflect", "zeros")
CORRUPTIONS = ("masking", "gaussian")


class StackedDenoisingAutoencoder(nn.Module):
    """Centre-pixel patch classifier built from denoising-autoencoder layers.

    Parameters
    ----------
    in_channels : int
        Input channels ``C``.
    out_channels : int
        Number of classes ``K``.
    spatial_dims : {2, 3}
        Patches are ``p x p`` (2) or ``p x p x p`` (3).
    patch_size : int
        Odd patch width ``p``; the pixel classified is the patch centre.
    hidden_features : sequence of int
        Width of each encoder layer, input side first.
    activation : {'sigmoid', 'relu'}
        Encoder non-linearity (sigmoid in [1]_).
    padding : {'reflect', 'zeros'}
        How :meth:`forward` extends the image by ``p // 2`` so the output keeps its
        size.

    Notes
    -----
    ``encoders[0]`` is an ``nn.Linear`` over the flattened ``C, p, p`` patch; in
    :meth:`forward` its weight is viewed as a ``p x p`` convolution kernel, so the
    patch classifier and the dense network share one set of parameters.

    References
    ----------
    .. [1] Vincent et al., JMLR 2010.
    .. [2] Su et al., MICCAI 2015.

    Examples
    --------
    >>> import torch
    >>> model = StackedDenoisingAutoencoder(1, 2, patch_size=9, hidden_features=(32, 16))
    >>> model(torch.rand(1, 1, 40, 30)).shape
    torch.Size([1, 2, 40, 30])
    >>> model.classify_patches(torch.rand(5, 1, 9, 9)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        *,
        spatial_dims: int = 2,
        patch_size: int = 25,
        hidden_features: Sequence[int] = (256, 64),
        activation: str = "sigmoid",
        padding: str = "reflect",
    ) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("patch_size", patch_size)
        if patch_size % 2 == 0:
            raise ConfigError(
                f"patch_size must be odd so that the patch has a centre pixel, got {patch_size}"
            )
        hidden = tuple(hidden_features) if not isinstance(hidden_features, int | str) else ()
        if not hidden:
            raise ConfigError(
                f"hidden_features must be a non-empty sequence of ints, got {hidden_features!r}"
            )
        for width in hidden:
            check_positive_int("hidden_features entry", width)
        check_option("activation", activation, ACTIVATIONS)
        check_option("padding", padding, PADDINGS)
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.activation = activation
        self.padding = padding

        widths = (in_channels * patch_size**spatial_dims, *hidden)
        self.encoders = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.head = nn.Linear(hidden[-1], out_channels)
        self.constraints = InputConstraints.create(spatial_dims, in_channels, out_channels)

    def act(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder non-linearity."""
        return torch.sigmoid(x) if self.activation == "sigmoid" else torch.relu(x)

    def _check_patches(self, patches: torch.Tensor) -> None:
        expected = (self.in_channels,) + (self.patch_size,) * self.spatial_dims
        if patches.ndim != self.spatial_dims + 2 or tuple(patches.shape[1:]) != expected:
            raise ShapeError(
                f"patches must have shape (N, {', '.join(map(str, expected))}), got {tuple(patches.shape)}"
            )

    def encode(self, patches: torch.Tensor, n_layers: int | None = None) -> torch.Tensor:
        """Code of ``patches`` (``N, C, p, p``) after the first ``n_layers`` encoders (all by default).

        Returns ``N, hidden_features[n_layers - 1]``; ``n_layers=0`` returns the
        flattened patches.
        """
        self._check_patches(patches)
        h = patches.flatten(1)
        for encoder in self.encoders[: len(self.encoders) if n_layers is None else n_layers]:
            h = self.act(encoder(h))
        return h

    def classify_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """Logits ``N, K`` of the centre pixel of each patch ``N, C, p, p``."""
        return self.head(self.encode(patches))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dense logits ``N, K, *spatial``: the patch classifier at every pixel.

        The image is extended by ``patch_size // 2`` per side (``padding``), so the
        output has the input's spatial size.
        """
        self.constraints.check_input(x)
        half = self.patch_size // 2
        if self.padding == "reflect":
            x = mirror_pad(x, [(half, half)] * self.spatial_dims)
        else:
            x = F.pad(x, (half, half) * self.spatial_dims)
        first = self.encoders[0]
        kernel = first.weight.view(
            first.out_features, self.in_channels, *(self.patch_size,) * self.spatial_dims
        )
        conv = F.conv3d if self.spatial_dims == 3 else F.conv2d
        h = self.act(conv(x, kernel, first.bias)).movedim(1, -1)
        for encoder in self.encoders[1:]:
            h = self.act(encoder(h))
        return self.head(h).movedim(-1, 1)


def corrupt(
    x: torch.Tensor, corruption: str, noise_level: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Corrupt ``x`` for denoising training (Vincent et al. 2010, Sec. 4.1).

    ``'masking'`` sets a random fraction ``noise_level`` of the entries to 0;
    ``'gaussian'`` adds isotropic noise with standard deviation ``noise_level``.
    """
    check_option("corruption", corruption, CORRUPTIONS)
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
    model: StackedDenoisingAutoencoder,
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
    model : StackedDenoisingAutoencoder
        Model to pretrain in place.
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
    >>> model = StackedDenoisingAutoencoder(1, 2, patch_size=5, hidden_features=(16, 8))
    >>> losses = pretrain_layerwise(model, [torch.rand(2, 1, 16, 16)], steps_per_layer=3)
    >>> [len(layer) for layer in losses]
    [3, 3]
    """
    if not isinstance(model, StackedDenoisingAutoencoder):
        raise ConfigError(f"model must be a StackedDenoisingAutoencoder, got {type(model).__name__}")
    check_option("corruption", corruption, CORRUPTIONS)
    upper = 1.0 if corruption == "masking" else math.inf
    if (
        isinstance(noise_level, bool)
        or not isinstance(noise_level, int | float)
        or not 0 <= noise_level < upper
    ):
        raise ConfigError(
            f"noise_level must be in [0, {upper}) for {corruption!r} corruption, got {noise_level!r}"
        )
    check_positive_int("steps_per_layer", steps_per_layer)
    check_positive_int("patches_per_batch", patches_per_batch)
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
