"""The original U-Net (valid convolutions, crop-and-concatenate) and the 3D U-Net.

Ronneberger et al. 2015: a 572x572 input tile gives a 388x388 output map; 23
convolutional layers (18 3x3 convs, 4 2x2 up-convolutions, one 1x1 head), 64 to 1024
channels, 31,030,658 parameters for 1 input channel and 2 classes. Çiçek et al. 2016
(``variant='cicek'``): 3x3x3 valid convs with batch norm, channels doubled *before*
each max-pool, 3 poolings, 132x132x116 -> 44x44x28.

References
----------
.. [1] O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical
   Image Segmentation", MICCAI 2015, LNCS 9351:234-241, arXiv:1505.04597.
.. [2] Ö. Çiçek, A. Abdulkadir, S. S. Lienkamp, T. Brox, O. Ronneberger, "3D U-Net:
   Learning Dense Volumetric Segmentation from Sparse Annotation", MICCAI 2016,
   arXiv:1606.06650.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from medseg.models.blocks import (
    NORMS,
    ConvBlock,
    check_dropout,
    check_option,
    check_positive_int,
    check_spatial_dims,
    conv_nd,
    conv_transpose_nd,
    he_init_,
    max_pool_nd,
)
from medseg.models.constraints import InputConstraints
from medseg.models.unet import UNetBase

__all__ = ["VARIANTS", "PaperUNet", "valid_unet_geometry"]

VARIANTS = ("ronneberger", "cicek")


def valid_unet_geometry(depth: int) -> tuple[int, int, int, int]:
    """Input-size rule of a valid-convolution U-Net with ``depth`` 2x poolings.

    Two unpadded 3x3 convs per level shrink by 4; pooling needs even sizes.

    Returns
    -------
    divisor, remainder, margin, min_size : int
        Valid inputs are ``s % divisor == remainder`` and ``s >= min_size``; the output
        is ``s - 2 * margin``. Depth 4 gives ``(16, 12, 92, 188)``.
    """
    check_positive_int("depth", depth)

    def sizes(bottom: int) -> tuple[int, list[int]]:
        size = bottom + 4  # bottleneck input
        for _ in range(depth):
            size = 2 * size + 4
        decoder = [bottom]
        for _ in range(depth):
            decoder.append(2 * decoder[-1] - 4)
        return size, decoder

    bottom = 1
    while min(sizes(bottom)[1]) < 1:
        bottom += 1
    min_size, decoder = sizes(bottom)
    divisor = 2**depth
    return divisor, min_size % divisor, (min_size - decoder[-1]) // 2, min_size


class PaperUNet(UNetBase):
    """U-Net as published: valid 3x3 convs, 2x2 max-pool, 2x2 up-conv, copy-and-crop.

    The output is smaller than the input by ``constraints.margin`` voxels per side
    (92 for depth 4: 572 -> 388). Use :meth:`required_input_shape` to size tiles and
    :func:`~medseg.models.overlap_tile_pad` to mirror-pad a whole image.

    Parameters
    ----------
    in_channels : int
        Input channels ``C``.
    out_channels : int
        Number of classes ``K``.
    spatial_dims : {2, 3}
        2 for ``N,C,Y,X`` input, 3 for ``N,C,Z,Y,X`` (3D U-Net).
    features : int
        Channels of the first level (64 in [1]_, 32 in [2]_).
    depth : int
        Number of max-poolings (4 in [1]_, 3 in [2]_).
    norm : {'instance', 'batch', None}
        None in [1]_; 'batch' in [2]_.
    dropout : float
        Drop-out at the end of the contracting path ([1]_ uses drop-out there but does
        not state the rate).
    variant : {'ronneberger', 'cicek'}
        'ronneberger': channels double in the first conv of each level, up-convs halve
        them. 'cicek': channels double in the second conv, before pooling, and up-convs
        keep them ([2]_, Fig. 1).

    Notes
    -----
    Weights use He init (std sqrt(2/N), N = fan-in), as in [1]_, Sec. 3.
    Parameter counts: 31,030,658 for ``PaperUNet(1, 2)``; 19,073,187 for the 3D U-Net
    of [2]_ (``build_model('unet3d', in_channels=3, out_channels=3)``). [2]_ reports
    19,069,955: convolutions with biases, up-convolutions without, no batch-norm
    parameters. Here convs followed by batch norm drop their bias (-2,336), and the
    up-conv biases (+896) and batch-norm affine parameters (+4,672) are counted.

    References
    ----------
    .. [1] Ronneberger et al., MICCAI 2015, arXiv:1505.04597.
    .. [2] Çiçek et al., MICCAI 2016, arXiv:1606.06650.

    Examples
    --------
    >>> import torch
    >>> model = PaperUNet(1, 2, features=4)
    >>> model.required_input_shape((388, 388))
    (572, 572)
    >>> model(torch.rand(1, 1, 188, 188)).shape
    torch.Size([1, 2, 4, 4])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        *,
        spatial_dims: int = 2,
        features: int = 64,
        depth: int = 4,
        norm: str | None = None,
        dropout: float = 0.0,
        variant: str = "ronneberger",
    ) -> None:
        super().__init__()
        spatial_dims = check_spatial_dims(spatial_dims)
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("features", features)
        check_positive_int("depth", depth)
        check_option("norm", norm, (*NORMS, None))
        check_option("variant", variant, VARIANTS)
        dropout = check_dropout(dropout)
        cicek = variant == "cicek"

        self.encoder = nn.ModuleList()
        skip_widths = []
        channels = in_channels
        for level in range(depth + 1):
            mid = features * 2**level
            out = 2 * mid if cicek else mid
            self.encoder.append(ConvBlock(spatial_dims, channels, mid, out, padding=0, norm=norm))
            skip_widths.append(out)
            channels = out
        self.pool = max_pool_nd(spatial_dims)(2)
        self.bottleneck_dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.upsamplers = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for skip in reversed(skip_widths[:-1]):
            up = channels if cicek else skip
            self.upsamplers.append(conv_transpose_nd(spatial_dims)(channels, up, 2, stride=2))
            self.decoder.append(ConvBlock(spatial_dims, up + skip, skip, skip, padding=0, norm=norm))
            channels = skip
        self.head = conv_nd(spatial_dims)(channels, out_channels, 1)
        he_init_(self)

        divisor, remainder, margin, min_size = valid_unet_geometry(depth)
        self.constraints = InputConstraints.create(
            spatial_dims,
            in_channels,
            out_channels,
            divisor=divisor,
            remainder=remainder,
            margin=margin,
            min_size=min_size,
        )

    def valid_output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """Spatial output size for a valid spatial input size (572 -> 388).

        Raises
        ------
        ShapeError
            If ``input_shape`` is not valid; the message gives the size to pad to.
        """
        return self.constraints.output_shape(input_shape)

    def required_input_shape(self, output_shape: Sequence[int]) -> tuple[int, ...]:
        """Smallest valid spatial input whose output covers ``output_shape`` (388 -> 572)."""
        return self.constraints.required_input_shape(output_shape)
