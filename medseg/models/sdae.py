"""Stacked denoising autoencoder (sDAE) patch classifier with a dense, sliding-window form.

An sDAE classifies the centre pixel of a ``patch_size``-wide patch with a stack of
fully connected encoder layers and a linear head. Each encoder layer is first trained
greedily, one at a time, to reconstruct its clean input from a corrupted copy (the
model declares ``supports_layerwise_pretraining``; the loop is the trainer's,
:func:`medseg.train.pretrain.pretrain_layerwise`); the whole stack plus head is then
fine-tuned with a segmentation loss. Because the first layer is a ``patch_size``-wide filter and the
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
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medseg.errors import ConfigError, ShapeError
from medseg.models.blocks import check_option, check_positive_int, check_spatial_dims
from medseg.models.constraints import InputConstraints, mirror_pad

__all__ = ["ACTIVATIONS", "StackedDenoisingAutoencoder"]

logger = logging.getLogger(__name__)

ACTIVATIONS = ("sigmoid", "relu")
PADDINGS = ("reflect", "zeros")


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

    #: The trainer may run greedy layer-wise denoising pre-training of ``encoders`` first.
    supports_layerwise_pretraining = True

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
