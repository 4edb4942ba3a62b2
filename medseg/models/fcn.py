"""Fully convolutional networks FCN-32s, FCN-16s and FCN-8s on a VGG-16 encoder.

Follows the reference Caffe models (github.com/shelhamer/fcn.berkeleyvision.org,
``voc-fcn{32,16,8}s/net.py``): conv1_1 pads 100 pixels, pooling rounds up (Caffe
``ceil`` mode), fc6/fc7 are 7x7 and 1x1 convolutions, scores are upsampled by
bilinear-initialised transposed convolutions and aligned by fixed crop offsets
(19 for 32s; 5 and 27 for 16s; 5, 9 and 31 for 8s). With these offsets the output
has exactly the input's spatial size for every H, W >= 1, so FCNs declare no input
constraint.

References
----------
.. [1] J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic
   Segmentation", CVPR 2015; E. Shelhamer et al., TPAMI 39(4):640-651, 2017.
.. [2] K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale
   Image Recognition", ICLR 2015 (VGG-16).
"""

from __future__ import annotations

import torch
from torch import nn

from medseg.models.blocks import check_dropout, check_option, check_positive_int, he_init_
from medseg.models.constraints import InputConstraints

__all__ = ["FCN", "FCN_VARIANTS", "bilinear_kernel"]

FCN_VARIANTS = ("32s", "16s", "8s")

# VGG-16 configuration D: convs per block; widths are features * multiplier.
_VGG16_BLOCKS = ((2, 1), (2, 2), (3, 4), (3, 8), (3, 8))

# Caffe crop offsets of the reference models (net.py of each variant).
_CROP = {"32s": 19, "16s": 27, "8s": 31}
_CROP_POOL4 = 5
_CROP_POOL3 = 9


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Weight ``(channels, channels, k, k)`` of a per-channel bilinear upsampling.

    Same as the Caffe FCN ``upsample_filt`` surgery: channel ``i`` maps to channel ``i``
    with a separable triangle filter, other channel pairs are 0.
    """
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float64)
    filt1d = 1 - (og - center).abs() / factor
    filt = torch.outer(filt1d, filt1d).to(torch.float32)
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    weight[range(channels), range(channels)] = filt
    return weight


def _upsampler(channels: int, factor: int, learnable: bool) -> nn.ConvTranspose2d:
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, 2 * factor))
    up.weight.requires_grad_(learnable)
    return up


def _crop(x: torch.Tensor, offset: int, size: tuple[int, ...]) -> torch.Tensor:
    return x[..., offset : offset + size[0], offset : offset + size[1]]


class FCN(nn.Module):
    """FCN-32s/16s/8s semantic segmentation network on a VGG-16 encoder (2D only).

    Parameters
    ----------
    in_channels : int
        Input channels ``C`` (3 for RGB H&E, 1 for EM or X-ray).
    out_channels : int
        Number of classes ``K`` (21 for PASCAL VOC).
    variant : {'32s', '16s', '8s'}
        Output stride of the finest fused prediction: '32s' upsamples the fc7 scores
        only; '16s' also fuses pool4; '8s' fuses pool4 and pool3 ([1]_, Sec. 4.2).
    features : int
        Width of VGG block 1 (64 in VGG-16); blocks use 1, 2, 4, 8, 8 times it.
    fc_features : int
        Width of fc6/fc7 (4096 in VGG-16).
    dropout : float
        Drop-out after fc6 and fc7 (0.5 in [1]_).
    learnable_upsampling : bool
        Train the bilinear-initialised transposed convolutions (True) or keep them
        fixed (False; [1]_ found both work as well).

    Notes
    -----
    Without pretrained VGG weights (none are downloaded) convolutions get He init; the
    score layers start at zero, as in the reference models, so that the skip fusion
    starts from the coarser net. ``FCN(3, 21, variant='8s')`` has 134,489,759 parameters
    (VGG-16's 138,357,544 minus its 1000-way fc8, plus score and upsampling layers);
    [1]_, Table 1, gives 134M for FCN-VGG16.

    References
    ----------
    .. [1] Long, Shelhamer, Darrell, CVPR 2015; Shelhamer et al., TPAMI 2017.

    Examples
    --------
    >>> import torch
    >>> model = FCN(1, 2, variant="8s", features=8, fc_features=32)
    >>> model(torch.rand(1, 1, 37, 53)).shape
    torch.Size([1, 2, 37, 53])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 21,
        *,
        variant: str = "8s",
        features: int = 64,
        fc_features: int = 4096,
        dropout: float = 0.5,
        learnable_upsampling: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("features", features)
        check_positive_int("fc_features", fc_features)
        check_option("variant", variant, FCN_VARIANTS)
        dropout = check_dropout(dropout)
        self.variant = variant

        self.stages = nn.ModuleList()
        channels = in_channels
        widths = []
        for index, (n_convs, mult) in enumerate(_VGG16_BLOCKS):
            width = features * mult
            layers: list[nn.Module] = []
            for conv_index in range(n_convs):
                pad = 100 if index == 0 and conv_index == 0 else 1
                layers += [nn.Conv2d(channels, width, 3, padding=pad), nn.ReLU(inplace=True)]
                channels = width
            layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
            self.stages.append(nn.Sequential(*layers))
            widths.append(width)
        self.fc = nn.Sequential(
            nn.Conv2d(channels, fc_features, 7),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout) if dropout else nn.Identity(),
            nn.Conv2d(fc_features, fc_features, 1),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout) if dropout else nn.Identity(),
        )
        he_init_(self)
        self.score_fr = nn.Conv2d(fc_features, out_channels, 1)
        scores = [self.score_fr]
        if variant in ("16s", "8s"):
            self.score_pool4 = nn.Conv2d(widths[3], out_channels, 1)
            self.upscore2 = _upsampler(out_channels, 2, learnable_upsampling)
            scores.append(self.score_pool4)
        if variant == "8s":
            self.score_pool3 = nn.Conv2d(widths[2], out_channels, 1)
            self.upscore_pool4 = _upsampler(out_channels, 2, learnable_upsampling)
            scores.append(self.score_pool3)
        final_factor = {"32s": 32, "16s": 16, "8s": 8}[variant]
        self.upscore = _upsampler(out_channels, final_factor, learnable_upsampling)
        for score in scores:
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
        self.constraints = InputConstraints.create(2, in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``N, C, H, W`` to ``N, K, H, W`` logits for any ``H, W >= 1``.

        Raises
        ------
        ShapeError
            If the input is not 4D or has the wrong channel count.
        """
        self.constraints.check_input(x)
        size = tuple(x.shape[2:])
        pools = []
        for stage in self.stages:
            x = stage(x)
            pools.append(x)
        score = self.score_fr(self.fc(x))
        if self.variant in ("16s", "8s"):
            score = self.upscore2(score)
            score = score + _crop(self.score_pool4(pools[3]), _CROP_POOL4, tuple(score.shape[2:]))
        if self.variant == "8s":
            score = self.upscore_pool4(score)
            score = score + _crop(self.score_pool3(pools[2]), _CROP_POOL3, tuple(score.shape[2:]))
        return _crop(self.upscore(score), _CROP[self.variant], size)
