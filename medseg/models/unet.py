"""Modern U-Net: same-padding convolutions, instance/batch norm, optional residual blocks.

References
----------
.. [1] O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical
   Image Segmentation", MICCAI 2015, LNCS 9351:234-241, arXiv:1505.04597.
.. [2] Ö. Çiçek et al., "3D U-Net: Learning Dense Volumetric Segmentation from Sparse
   Annotation", MICCAI 2016, arXiv:1606.06650.
"""

from __future__ import annotations

import torch
from torch import nn

from medseg.models.blocks import (
    NORMS,
    ConvBlock,
    center_crop,
    check_dropout,
    check_option,
    check_positive_int,
    check_spatial_dims,
    conv_nd,
    conv_transpose_nd,
    max_pool_nd,
)
from medseg.models.constraints import InputConstraints

__all__ = ["UNet", "UNetBase"]


class UNetBase(nn.Module):
    """Encoder-decoder wiring shared by :class:`UNet` and :class:`~medseg.models.PaperUNet`.

    Subclasses fill ``encoder`` (``depth + 1`` blocks, the last one the bottleneck),
    ``upsamplers`` and ``decoder`` (``depth`` each, deepest first), ``bottleneck_dropout``,
    ``head`` and ``constraints``. Skip connections are centre-cropped to the decoder
    size ("copy and crop"), a no-op for same-padding convolutions.
    """

    encoder: nn.ModuleList
    upsamplers: nn.ModuleList
    decoder: nn.ModuleList
    bottleneck_dropout: nn.Module
    head: nn.Module
    pool: nn.Module
    constraints: InputConstraints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``N, C, *spatial`` to ``N, K, *out_spatial`` logits.

        ``out_spatial = spatial - 2 * constraints.margin``.

        Raises
        ------
        ShapeError
            If the input has the wrong rank, channel count or spatial size.
        """
        self.constraints.check_input(x)
        skips = []
        for block in self.encoder[:-1]:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck_dropout(self.encoder[-1](x))
        for up, block, skip in zip(self.upsamplers, self.decoder, reversed(skips), strict=True):
            x = up(x)
            x = block(torch.cat([center_crop(skip, x.shape[2:]), x], dim=1))
        return self.head(x)


class UNet(UNetBase):
    """U-Net with same-padding convolutions, in 2D or 3D.

    Output spatial size equals input size; each spatial size must be divisible by
    ``2 ** depth`` (see ``model.constraints``).

    Parameters
    ----------
    in_channels : int
        Input channels ``C``.
    out_channels : int
        Number of classes ``K`` (logits).
    spatial_dims : {2, 3}
        2 for ``N,C,Y,X`` input, 3 for ``N,C,Z,Y,X``.
    features : int
        Channels of the first level; doubled at each of the ``depth`` downsamplings.
    depth : int
        Number of 2x max-poolings.
    norm : {'instance', 'batch', None}
        Normalisation after each convolution.
    residual : bool
        Use residual conv blocks.
    dropout : float
        Channel dropout at the end of the contracting path (as in [1]_).

    References
    ----------
    .. [1] Ronneberger et al., MICCAI 2015, arXiv:1505.04597.
    .. [2] Çiçek et al., MICCAI 2016, arXiv:1606.06650.

    Examples
    --------
    >>> import torch
    >>> model = UNet(1, 3, features=8, depth=3)
    >>> model(torch.rand(2, 1, 64, 48)).shape
    torch.Size([2, 3, 64, 48])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        *,
        spatial_dims: int = 2,
        features: int = 32,
        depth: int = 4,
        norm: str | None = "instance",
        residual: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        spatial_dims = check_spatial_dims(spatial_dims)
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("features", features)
        check_positive_int("depth", depth)
        check_option("norm", norm, (*NORMS, None))
        dropout = check_dropout(dropout)

        widths = [features * 2**level for level in range(depth + 1)]
        self.encoder = nn.ModuleList()
        channels = in_channels
        for width in widths:
            self.encoder.append(ConvBlock(spatial_dims, channels, width, width, norm=norm, residual=residual))
            channels = width
        self.pool = max_pool_nd(spatial_dims)(2)
        self.bottleneck_dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.upsamplers = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.upsamplers.append(conv_transpose_nd(spatial_dims)(channels, width, 2, stride=2))
            self.decoder.append(
                ConvBlock(spatial_dims, 2 * width, width, width, norm=norm, residual=residual)
            )
            channels = width
        self.head = conv_nd(spatial_dims)(channels, out_channels, 1)
        divisor = 2**depth
        # instance norm needs more than one voxel at the bottleneck
        min_size = 2 * divisor if norm == "instance" else divisor
        self.constraints = InputConstraints.create(
            spatial_dims, in_channels, out_channels, divisor=divisor, min_size=min_size
        )
