"""Input-size contract every medseg model declares, and the overlap-tile mirror padding.

Every model built by :func:`medseg.models.build_model` carries a frozen
:class:`InputConstraints` as ``model.constraints``. The sliding-window engine reads it
to choose window sizes, to pad inputs and to crop outputs:

* an input size ``s`` (per spatial axis) is valid when ``s >= min_size`` and
  ``s % divisor == remainder``;
* the model returns ``s - 2 * margin`` voxels along that axis (``margin`` is the
  per-side shrink of valid convolutions; 0 for same-padding models), and output voxel
  ``i`` is aligned with input voxel ``i + margin``.

For the paper U-Net (Ronneberger et al. 2015): ``divisor=16, remainder=12,
margin=92, min_size=188``, so a 572x572 tile gives a 388x388 output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from medseg.borders import reflect_index
from medseg.errors import ShapeError

__all__ = ["InputConstraints", "constraints_of", "mirror_pad", "overlap_tile_pad", "reflect_index"]


def _as_tuple(value: int | Sequence[int], spatial_dims: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * spatial_dims
    out = tuple(int(v) for v in value)
    if len(out) != spatial_dims:
        raise ShapeError(f"{name} must have {spatial_dims} entries (one per spatial axis), got {out}")
    return out


@dataclass(frozen=True)
class InputConstraints:
    """Spatial input sizes a model accepts and how its output relates to its input.

    Parameters
    ----------
    spatial_dims : int
        2 (input ``N,C,Y,X``) or 3 (input ``N,C,Z,Y,X``).
    in_channels, out_channels : int
        ``C`` of the input and ``K`` (number of classes) of the logits.
    divisor, remainder : tuple of int
        A valid input size ``s`` satisfies ``s % divisor == remainder`` on each axis
        (``divisor=16, remainder=0`` for a same-padding U-Net of depth 4).
    margin : tuple of int
        Voxels cropped per side by valid convolutions: ``out = in - 2 * margin``.
    min_size : tuple of int
        Smallest valid input size per axis.

    Examples
    --------
    >>> import torch
    >>> c = InputConstraints(2, 1, 2, divisor=(16, 16), remainder=(12, 12),
    ...                      margin=(92, 92), min_size=(188, 188))
    >>> c.output_shape((572, 572)), c.required_input_shape((388, 388))
    ((388, 388), (572, 572))
    """

    spatial_dims: int
    in_channels: int
    out_channels: int
    divisor: tuple[int, ...]
    remainder: tuple[int, ...]
    margin: tuple[int, ...]
    min_size: tuple[int, ...]

    @classmethod
    def create(
        cls,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        *,
        divisor: int | Sequence[int] = 1,
        remainder: int | Sequence[int] = 0,
        margin: int | Sequence[int] = 0,
        min_size: int | Sequence[int] = 1,
    ) -> InputConstraints:
        """Build constraints, broadcasting scalars to every spatial axis."""
        return cls(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            divisor=_as_tuple(divisor, spatial_dims, "divisor"),
            remainder=_as_tuple(remainder, spatial_dims, "remainder"),
            margin=_as_tuple(margin, spatial_dims, "margin"),
            min_size=_as_tuple(min_size, spatial_dims, "min_size"),
        )

    def _spatial(self, shape: Sequence[int], name: str) -> tuple[int, ...]:
        shape = tuple(int(s) for s in shape)
        if len(shape) != self.spatial_dims:
            raise ShapeError(
                f"{name} must have {self.spatial_dims} spatial sizes, got {shape}; "
                "pass only the spatial part (no batch/channel axes)"
            )
        return shape

    def is_valid(self, spatial_shape: Sequence[int]) -> bool:
        """Return True when ``spatial_shape`` is an accepted input size."""
        shape = self._spatial(spatial_shape, "spatial_shape")
        return all(
            s >= m and s % d == r
            for s, d, r, m in zip(shape, self.divisor, self.remainder, self.min_size, strict=True)
        )

    def padded_shape(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        """Smallest valid input size that is >= ``spatial_shape`` on every axis."""
        shape = self._spatial(spatial_shape, "spatial_shape")
        out = []
        for s, d, r, m in zip(shape, self.divisor, self.remainder, self.min_size, strict=True):
            s = max(s, m)
            out.append(s + (r - s) % d)
        return tuple(out)

    def output_shape(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        """Spatial output size for a valid input size.

        Raises
        ------
        ShapeError
            If ``spatial_shape`` is not a valid input size; the message gives the size
            to pad to.
        """
        shape = self._spatial(spatial_shape, "spatial_shape")
        self._raise_if_invalid(shape)
        return tuple(s - 2 * m for s, m in zip(shape, self.margin, strict=True))

    def required_input_shape(self, output_shape: Sequence[int]) -> tuple[int, ...]:
        """Smallest valid input whose output covers ``output_shape`` (e.g. 388 -> 572)."""
        shape = self._spatial(output_shape, "output_shape")
        if any(s < 1 for s in shape):
            raise ShapeError(f"output_shape must be positive, got {shape}")
        return self.padded_shape(tuple(s + 2 * m for s, m in zip(shape, self.margin, strict=True)))

    def _raise_if_invalid(self, shape: tuple[int, ...]) -> None:
        if not self.is_valid(shape):
            rule = ", ".join(
                f"s % {d} == {r} and s >= {m}"
                for d, r, m in zip(self.divisor, self.remainder, self.min_size, strict=True)
            )
            raise ShapeError(
                f"input spatial size {shape} is not accepted by this model (needs per axis: {rule}); "
                f"pad the input to {self.padded_shape(shape)}"
            )

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ShapeError unless ``x`` is ``N, in_channels, *spatial`` with a valid size."""
        if x.ndim != self.spatial_dims + 2:
            axes = "N,C,Z,Y,X" if self.spatial_dims == 3 else "N,C,Y,X"
            raise ShapeError(
                f"expected a {self.spatial_dims + 2}D input ({axes}), got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ShapeError(
                f"expected {self.in_channels} input channel(s), got {x.shape[1]} (input shape {tuple(x.shape)})"
            )
        self._raise_if_invalid(tuple(x.shape[2:]))


def constraints_of(model: torch.nn.Module) -> InputConstraints:
    """The :class:`InputConstraints` a registry model declares (``model.constraints``), typed.

    Raises
    ------
    TypeError
        ``model`` declares none (not built by :func:`medseg.models.build_model`); an internal error.
    """
    constraints = getattr(model, "constraints", None)
    if not isinstance(constraints, InputConstraints):
        raise TypeError(f"{type(model).__name__} declares no InputConstraints (model.constraints)")
    return constraints


def _mirror_index(size: int, lo: int, hi: int, device: torch.device) -> torch.Tensor:
    """Indices of a reflect ('mirror without repeating the edge') padding of any width."""
    return reflect_index(torch.arange(-lo, size + hi, device=device), size)


def mirror_pad(x: torch.Tensor, pad: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Mirror-pad the spatial axes of ``x`` by any width (repeats the reflection).

    Unlike ``torch.nn.functional.pad(mode='reflect')`` the padding may exceed the input
    size, as needed when a 92-pixel margin surrounds a small image.

    Parameters
    ----------
    x : torch.Tensor
        ``N, C, *spatial``.
    pad : sequence of (int, int)
        ``(before, after)`` per spatial axis, in axis order.

    Returns
    -------
    torch.Tensor
        The padded tensor.
    """
    if len(pad) != x.ndim - 2:
        raise ShapeError(
            f"pad needs one (before, after) pair per spatial axis of {tuple(x.shape)}, got {pad}"
        )
    for axis, (lo, hi) in enumerate(pad, start=2):
        if lo < 0 or hi < 0:
            raise ShapeError(f"padding must be >= 0, got {(lo, hi)} for axis {axis}")
        if lo or hi:
            x = x.index_select(axis, _mirror_index(x.shape[axis], lo, hi, x.device))
    return x


def overlap_tile_pad(
    image: torch.Tensor, constraints: InputConstraints
) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Mirror-pad an image for a valid-convolution model (the U-Net overlap-tile strategy).

    The border context that valid convolutions consume is extrapolated by mirroring
    (Ronneberger et al. 2015, Fig. 2); extra padding at the high end makes the size
    valid. ``model(padded)[(..., *slices)]`` then has exactly the image's spatial size.

    Parameters
    ----------
    image : torch.Tensor
        ``N, C, *spatial`` with any spatial size.
    constraints : InputConstraints
        The model's ``constraints``.

    Returns
    -------
    padded : torch.Tensor
        Valid model input.
    slices : tuple of slice
        Crop of the model output back to the image's spatial size.

    Examples
    --------
    >>> import torch
    >>> from medseg.models import build_model
    >>> model = build_model("unet-paper", features=4, depth=2)
    >>> image = torch.rand(1, 1, 50, 61)
    >>> padded, crop = overlap_tile_pad(image, model.constraints)
    >>> model(padded)[(..., *crop)].shape
    torch.Size([1, 2, 50, 61])
    """
    spatial = tuple(image.shape[2:])
    needed = constraints.required_input_shape(spatial)
    pad = [(m, n - s - m) for s, n, m in zip(spatial, needed, constraints.margin, strict=True)]
    return mirror_pad(image, pad), tuple(slice(0, s) for s in spatial)
