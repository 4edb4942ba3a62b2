"""Patch-based sliding-window inference with Gaussian blending and flip TTA."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from medseg.errors import ConfigError, DataValueError, ShapeError
from medseg.infer.tiling import BlendMode, aligned_size, importance_map, iter_windows

__all__ = ["SlidingWindow", "model_margin"]

logger = logging.getLogger(__name__)

_PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def model_margin(model: torch.nn.Module, spatial_dims: int) -> tuple[int, ...]:
    """Pixels a model crops from each side of its input (valid convolutions), per axis.

    Read from ``model.constraints.margin`` when the model declares it; 0 otherwise.
    """
    constraints = getattr(model, "constraints", None)
    margin = getattr(constraints, "margin", None)
    if margin is None:
        return (0,) * spatial_dims
    margin = (int(margin),) * spatial_dims if np.isscalar(margin) else tuple(int(m) for m in margin)
    if len(margin) != spatial_dims:
        raise ShapeError(f"model declares a margin for {len(margin)} axes, the image has {spatial_dims}")
    return margin


@dataclass(frozen=True)
class SlidingWindow:
    """Predict an image larger than the network's input by blending overlapping windows.

    Parameters
    ----------
    roi_size : tuple of int
        Spatial size of the network input window, e.g. ``(256, 256)`` or ``(64, 128, 128)``.
        For valid-convolution models (``model.constraints.margin`` > 0) the image is first
        mirror-padded by the margin (the U-Net paper's overlap-tile strategy) and each
        window predicts its ``roi_size - 2 * margin`` centre.
    overlap : float
        Fraction of a window shared with its neighbour along each axis, ``[0, 1)``.
        0.5 is nnU-Net's default.
    blending : {"gaussian", "constant"}
        Weighting of overlapping outputs (Gaussian: ``sigma = sigma_scale * window``).
    sigma_scale : float
        See ``blending``; nnU-Net and MONAI use 0.125.
    batch_size : int
        Windows per forward pass.
    device : str or None
        Where the network runs; ``None`` picks CUDA when available, else the CPU.
    output_device : str or None
        Where the blended output is accumulated; ``None`` means ``device``. Use
        ``"cpu"`` for volumes whose logits do not fit in GPU memory (this also
        happens automatically when allocating on the GPU runs out of memory).
    precision : {"float32", "bfloat16", "float16"}
        Autocast dtype of the forward pass; accumulation is always float32.
    mirror_axes : tuple of int
        Spatial axes (0-based, in ``(Z,) Y, X`` order) flipped for test-time
        augmentation; every combination is predicted and the logits averaged.
    progress : bool
        Show a progress bar over window batches.
    """

    roi_size: tuple[int, ...]
    overlap: float = 0.5
    blending: BlendMode | str = BlendMode.GAUSSIAN
    sigma_scale: float = 0.125
    batch_size: int = 4
    device: str | None = None
    output_device: str | None = None
    precision: str = "float32"
    mirror_axes: tuple[int, ...] = ()
    progress: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "roi_size", tuple(int(r) for r in self.roi_size))
        object.__setattr__(self, "blending", BlendMode.parse(self.blending))
        if not 0 <= self.overlap < 1:
            raise ConfigError(f"overlap must be >= 0 and < 1, got {self.overlap}")
        if any(r < 1 for r in self.roi_size):
            raise ConfigError(f"roi_size must be positive, got {self.roi_size}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.precision not in _PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(_PRECISIONS)}, got {self.precision!r}")
        if any(a < 0 or a >= len(self.roi_size) for a in self.mirror_axes):
            raise ConfigError(
                f"mirror_axes must be spatial axes in [0, {len(self.roi_size) - 1}], got {self.mirror_axes}"
            )

    def __call__(self, model: torch.nn.Module, image: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Blend the model's logits over the whole image.

        Parameters
        ----------
        model : torch.nn.Module
            Maps ``(B, C, *roi)`` to ``(B, K, *(roi - 2 * margin))`` logits. Put in eval mode.
        image : tensor or ndarray
            ``(N, C, *spatial)`` float image.

        Returns
        -------
        torch.Tensor
            ``(N, K, *spatial)`` float32 blended logits on ``output_device``.
        """
        image = torch.as_tensor(np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image)
        spatial_dims = len(self.roi_size)
        if image.ndim != spatial_dims + 2:
            raise ShapeError(
                f"image must have shape (N, C, *spatial) with {spatial_dims} spatial axes to match "
                f"roi_size {self.roi_size}, got shape {tuple(image.shape)}"
            )
        if image.is_floating_point() and not torch.isfinite(image).all():
            raise DataValueError("image contains NaN or infinite values; clean or mask them before inference")
        device = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        _check_roi(model, self.roi_size)
        margin = model_margin(model, spatial_dims)
        out_roi = tuple(r - 2 * m for r, m in zip(self.roi_size, margin, strict=True))
        if any(o < 1 for o in out_roi):
            raise ShapeError(
                f"roi_size {self.roi_size} is too small for the model's margin {margin} per side"
            )
        size = tuple(image.shape[2:])
        align = _window_alignment(model, spatial_dims) if any(margin) else (1,) * spatial_dims
        padded, grid = _pad_for_windows(image.float(), margin, out_roi, align)
        windows = iter_windows(grid, out_roi, self.overlap, align=align)
        weight_map = torch.from_numpy(importance_map(out_roi, self.blending, sigma_scale=self.sigma_scale))

        model.eval()
        n = image.shape[0]
        # (image index, window) pairs, so that batch_size counts windows per forward pass as in MONAI
        items = [(k, window) for k in range(n) for window in windows]
        output, weights = None, None
        batches = list(_batched(items, self.batch_size))
        for batch in tqdm(batches, desc="predict", unit="batch", disable=not self.progress, leave=False):
            inputs = torch.stack(
                [padded[(k, slice(None), *_input_slices(w, self.roi_size))] for k, w in batch]
            )
            logits = self._predict(model, inputs.to(device), out_roi)
            if output is None:
                output, weights, weight_map = self._allocate(n, logits.shape[1], grid, device, weight_map)
            logits = logits.to(output.device) * weight_map
            for (k, window), window_logits in zip(batch, logits, strict=True):
                output[(k, slice(None), *window)] += window_logits
        # every image has the same windows: accumulate the weights once
        for window in windows:
            weights[window] += weight_map
        output /= weights
        return output[(slice(None), slice(None), *(slice(0, s) for s in size))]

    def _predict(
        self, model: torch.nn.Module, inputs: torch.Tensor, out_roi: tuple[int, ...]
    ) -> torch.Tensor:
        dtype = _PRECISIONS[self.precision]
        flips = [
            combo
            for k in range(len(self.mirror_axes) + 1)
            for combo in itertools.combinations(sorted(self.mirror_axes), k)
        ]
        total = None
        with (
            torch.inference_mode(),
            torch.autocast(inputs.device.type, dtype=dtype, enabled=dtype != torch.float32),
        ):
            for combo in flips:
                dims = tuple(a + 2 for a in combo)
                x = inputs.flip(dims) if dims else inputs
                y = model(x).float()
                if tuple(y.shape[2:]) != out_roi:
                    raise ShapeError(
                        f"model output spatial shape {tuple(y.shape[2:])} does not match the expected "
                        f"{out_roi} for input {tuple(inputs.shape[2:])}; check roi_size against the "
                        "model's constraints (divisor, margin)"
                    )
                y = y.flip(dims) if dims else y
                total = y if total is None else total + y
        return total / len(flips)

    def _allocate(
        self,
        n: int,
        channels: int,
        grid: tuple[int, ...],
        device: torch.device,
        weight_map: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out_device = torch.device(self.output_device) if self.output_device else device
        try:
            output = torch.zeros((n, channels, *grid), dtype=torch.float32, device=out_device)
            weights = torch.zeros(grid, dtype=torch.float32, device=out_device)
        except torch.OutOfMemoryError:
            logger.warning("output of shape %s does not fit on %s; accumulating on the CPU", grid, out_device)
            out_device = torch.device("cpu")
            output = torch.zeros((n, channels, *grid), dtype=torch.float32)
            weights = torch.zeros(grid, dtype=torch.float32)
        return output, weights, weight_map.to(out_device)


def _check_roi(model: torch.nn.Module, roi_size: tuple[int, ...]) -> None:
    """Fail before any work when the model declares it cannot take ``roi_size`` windows."""
    constraints = getattr(model, "constraints", None)
    is_valid = getattr(constraints, "is_valid", None)
    if is_valid is None or len(roi_size) != getattr(constraints, "spatial_dims", len(roi_size)):
        return
    if not is_valid(roi_size):
        raise ConfigError(
            f"roi_size {roi_size} is not a valid input size for this model; "
            f"use roi_size {constraints.padded_shape(roi_size)} (the next valid size)"
        )


def _window_alignment(model: torch.nn.Module, spatial_dims: int) -> tuple[int, ...]:
    """Pooling factor per axis (``constraints.divisor``) that window starts keep for valid-conv models."""
    divisor = getattr(getattr(model, "constraints", None), "divisor", None)
    if divisor is None:
        return (1,) * spatial_dims
    return tuple(int(d) for d in divisor) if len(divisor) == spatial_dims else (1,) * spatial_dims


def _pad_for_windows(
    image: torch.Tensor, margin: tuple[int, ...], out_roi: tuple[int, ...], align: tuple[int, ...]
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Mirror-pad by ``margin`` on each side and at the end up to the window grid.

    Returns the padded image and the output grid shape: the image shape, enlarged to
    at least ``out_roi`` and so that aligned windows can end exactly at its end.
    """
    size = image.shape[2:]
    grid = tuple(aligned_size(s, o, a) for s, o, a in zip(size, out_roi, align, strict=True))
    pads: list[int] = []
    for s, g, m in zip(reversed(size), reversed(grid), reversed(margin), strict=True):
        pads += [m, m + g - s]
    if not any(pads):
        return image, grid
    mirrorable = all(p < s for p, s in zip(pads, [d for d in reversed(size) for _ in range(2)], strict=True))
    mode = "reflect" if mirrorable else "replicate"
    return F.pad(image, pads, mode=mode), grid


def _input_slices(window: tuple[slice, ...], roi_size: tuple[int, ...]) -> tuple[slice, ...]:
    """Input window (in the margin-padded image) whose valid output is ``window``."""
    return tuple(slice(s.start, s.start + r) for s, r in zip(window, roi_size, strict=True))


def _batched(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
