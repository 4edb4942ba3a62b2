"""Building blocks shared by the medseg architectures (2D and 3D).

Layer factories pick ``Conv2d``/``Conv3d`` etc. from ``spatial_dims``; option
checks raise :class:`~medseg.errors.ConfigError` with a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence

import torch
from torch import nn

from medseg.errors import ConfigError, ShapeError

__all__ = [
    "NORMS",
    "ConvBlock",
    "center_crop",
    "check_dropout",
    "check_option",
    "check_positive_int",
    "check_spatial_dims",
    "conv_nd",
    "conv_transpose_nd",
    "dropout_nd",
    "he_init_",
    "max_pool_nd",
    "norm_nd",
]

NORMS = ("instance", "batch")


def check_option(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices`` (with a "did you mean")."""
    if value in choices:
        return
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
        if close:
            hint = f" Did you mean {close[0]!r}?"
    raise ConfigError(f"{name} must be one of {list(choices)}, got {value!r}.{hint}")


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """Raise ConfigError unless ``value`` is an int >= ``minimum``; return it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_spatial_dims(value: object, supported: Sequence[int] = (2, 3)) -> int:
    """Validate ``spatial_dims``."""
    check_option("spatial_dims", value, supported)
    return int(value)  # type: ignore[arg-type]


def check_dropout(value: object) -> float:
    """Validate a dropout probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ConfigError(f"dropout must be a float in [0, 1), got {value!r}")
    return float(value)


def conv_nd(spatial_dims: int) -> type[nn.Module]:
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    return nn.Conv3d if spatial_dims == 3 else nn.Conv2d


def conv_transpose_nd(spatial_dims: int) -> type[nn.Module]:
    """``nn.ConvTranspose2d`` or ``nn.ConvTranspose3d``."""
    return nn.ConvTranspose3d if spatial_dims == 3 else nn.ConvTranspose2d


def max_pool_nd(spatial_dims: int) -> type[nn.Module]:
    """``nn.MaxPool2d`` or ``nn.MaxPool3d``."""
    return nn.MaxPool3d if spatial_dims == 3 else nn.MaxPool2d


def dropout_nd(spatial_dims: int, p: float) -> nn.Module:
    """Channel dropout (``Dropout2d``/``Dropout3d``), or identity when ``p == 0``."""
    if p == 0:
        return nn.Identity()
    return nn.Dropout3d(p) if spatial_dims == 3 else nn.Dropout2d(p)


def norm_nd(norm: str | None, spatial_dims: int, channels: int) -> nn.Module:
    """Normalisation layer: ``'instance'`` (affine), ``'batch'`` or None (identity)."""
    if norm is None:
        return nn.Identity()
    if norm == "instance":
        cls = nn.InstanceNorm3d if spatial_dims == 3 else nn.InstanceNorm2d
        return cls(channels, affine=True)
    cls = nn.BatchNorm3d if spatial_dims == 3 else nn.BatchNorm2d
    return cls(channels)


class ConvBlock(nn.Module):
    """Two 3x3(x3) convolutions, each followed by optional normalisation and ReLU.

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    in_channels, mid_channels, out_channels : int
        Channels into the first conv, between the convs, and out of the second conv.
    padding : int
        1 for 'same' convolutions, 0 for 'valid' ones (shrink 2 voxels per side).
    norm : {'instance', 'batch', None}
        Normalisation after each convolution; biases are dropped when it is set.
    residual : bool
        Add the block input (projected by a 1x1 conv when channels differ, centre-cropped
        for valid convs) before the last ReLU (He et al. 2016).
    dropout : float
        Channel dropout after the block.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        *,
        padding: int = 1,
        norm: str | None = None,
        residual: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        conv = conv_nd(spatial_dims)
        bias = norm is None
        self.conv1 = conv(in_channels, mid_channels, 3, padding=padding, bias=bias)
        self.norm1 = norm_nd(norm, spatial_dims, mid_channels)
        self.conv2 = conv(mid_channels, out_channels, 3, padding=padding, bias=bias)
        self.norm2 = norm_nd(norm, spatial_dims, out_channels)
        self.act = nn.ReLU(inplace=True)
        self.skip: nn.Module | None = None
        if residual:
            self.skip = (
                nn.Identity()
                if in_channels == out_channels
                else conv(in_channels, out_channels, 1, bias=bias)
            )
        self.drop = dropout_nd(spatial_dims, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``N, C, *spatial``."""
        y = self.act(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        if self.skip is not None:
            y = y + center_crop(self.skip(x), y.shape[2:])
        return self.drop(self.act(y))


def center_crop(x: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    """Crop the spatial centre of ``x`` (``N, C, *spatial``) to ``spatial_shape``.

    Used for the U-Net "copy and crop" skip connections; when the size difference is
    odd, one more voxel is dropped at the high end.
    """
    spatial_shape = tuple(int(s) for s in spatial_shape)
    current = tuple(x.shape[2:])
    if current == spatial_shape:
        return x
    if len(current) != len(spatial_shape) or any(t > c for t, c in zip(spatial_shape, current, strict=True)):
        raise ShapeError(f"cannot crop spatial shape {current} to {spatial_shape}")
    index = tuple(slice((c - t) // 2, (c - t) // 2 + t) for c, t in zip(current, spatial_shape, strict=True))
    return x[(..., *index)]


def he_init_(module: nn.Module) -> None:
    """He (Kaiming) normal init, std = sqrt(2 / N) with N = fan-in, zero biases.

    Ronneberger et al. 2015 (Sec. 3): "standard deviation of sqrt(2/N), where N denotes
    the number of incoming nodes of one neuron".
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Conv3d | nn.ConvTranspose2d | nn.ConvTranspose3d | nn.Linear):
            if isinstance(m, nn.ConvTranspose2d | nn.ConvTranspose3d):
                # weight is (in, out, *k): each output receives in * prod(k) / stride^d inputs
                # on average; use the input-channel fan as the paper's N.
                fan_in = m.weight.shape[0] * math.prod(m.weight.shape[2:]) // math.prod(m.stride)
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / max(fan_in, 1)))
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
