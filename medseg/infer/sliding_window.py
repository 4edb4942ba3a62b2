"""Patch-based sliding-window inference with Gaussian blending and flip TTA.

One engine for 2D and 3D, same- and valid-convolution models:

1. the image is mirror-padded once (:func:`medseg.models.constraints.mirror_pad`, any width:
   the model's valid-convolution margin on every side, the window grid's excess at the end)
   and moved to the compute device when it fits;
2. the window grid and the importance map are computed once; windows are taken from the
   padded image by slicing, ``batch_size`` at a time across all images of the batch, and run
   through the model, optionally ``torch.compile``-d (then in channels-last memory format, see
   :mod:`medseg.infer.layout`), under fp32/bf16/fp16 autocast;
3. weighted outputs are added into float32 sums. For logits (:meth:`SlidingWindow.__call__`)
   the sums span the output and are divided by the summed weights at the end. For labels only
   (:meth:`SlidingWindow.predict_labels`) the output is cut into cells along its first two
   axes, at every window start and end; a cell's sums exist from its first window to its
   last and are then reduced by argmax, so the open sums span about one window overlap of
   the first axis and a band of the second, never a K-class buffer of the image.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from medseg.device import resolve_device
from medseg.errors import ConfigError, DataValueError, ShapeError
from medseg.infer.blending import Blender, LabelCells, weight_map
from medseg.infer.compile_policy import (
    _COMPILED_SPEEDUP,
    _PLANNED,
    compile_pays_off,
    decide_compile,
    is_compiled,
    network,
    planned,
)
from medseg.infer.tiling import BlendMode, aligned_size, window_starts
from medseg.infer.window_pass import forward_windows
from medseg.models.constraints import mirror_pad, reflect_index
from medseg.options import Precision

__all__ = ["SlidingWindow", "compile_pays_off", "label_dtype", "model_margin"]

logger = logging.getLogger(__name__)


def label_dtype(num_classes: int) -> np.dtype:
    """Smallest unsigned integer dtype holding class ids ``0 .. num_classes - 1``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if num_classes - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ShapeError(f"{num_classes} classes do not fit a uint32 label map")


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
        Windows per forward pass, counted across all images of the batch (as MONAI).
    device : str or None
        Where the network runs; ``None`` picks CUDA when available, else the CPU.
    output_device : str or None
        Where the blended output is accumulated; ``None`` is automatic: the compute device
        when the output fits there, else the CPU.
    precision : Precision or {"float32", "bfloat16", "float16"}
        Autocast dtype of the forward pass; accumulation is always float32.
    mirror_axes : tuple of int
        Spatial axes (0-based, in ``(Z,) Y, X`` order) flipped for test-time
        augmentation; every combination is predicted and the logits averaged.
    vector_start : int or None
        Output channel where a vector field starts, one component per spatial axis of the
        window (the ``flow`` target's flows from channel 1): a prediction on an image
        flipped along axis ``a`` has channel ``vector_start + a`` negated when it is
        flipped back, so the averaged vectors point the image's way. ``None``: no vectors.
    channels_last : bool or None
        Run the model in channels-last memory format through
        :func:`medseg.infer.layout.channels_last_view` (channels-last convolution weights,
        instance norms that keep the layout). ``None`` (automatic): when compiling, where
        the compiled 3D ``BasicUNet`` measured 1.5x faster on the CPU with it than without
        (1.8x MONAI), and compiled on an H200 it ran 1.2x MONAI compiled. Eager runs keep the
        model's own layout unless asked: no faster with the view on the CPU, 0.61-0.86x on
        an H200 (``benchmarks/README.md``).
    compile : bool or None
        ``torch.compile`` the model with inductor, weights frozen as constants (oneDNN weight
        prepacking and fused convolutions on the CPU). The first call compiles (tens of seconds on a CPU), later calls
        with the same model reuse it. One graph serves all batches: a last, partial batch is
        padded to ``batch_size`` windows, or runs uncompiled when it holds so few windows that
        padding costs more. Frozen weights make it a choice for prediction with a trained model,
        never for validation while the weights change. ``None`` (automatic, CPU only): the
        first two batches run uncompiled, and the model is compiled for the rest when the
        windows left repay the compile time (:func:`compile_pays_off`, logged at INFO level);
        a model compiled by an earlier call is used as it is.
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
    precision: Precision | str = Precision.FLOAT32
    mirror_axes: tuple[int, ...] = ()
    vector_start: int | None = None
    channels_last: bool | None = None
    compile: bool | None = False
    progress: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "roi_size", tuple(int(r) for r in self.roi_size))
        object.__setattr__(self, "mirror_axes", tuple(int(a) for a in self.mirror_axes))
        object.__setattr__(self, "blending", BlendMode.parse(self.blending))
        if not 0 <= self.overlap < 1:
            raise ConfigError(f"overlap must be >= 0 and < 1, got {self.overlap}")
        if any(r < 1 for r in self.roi_size):
            raise ConfigError(f"roi_size must be positive, got {self.roi_size}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        object.__setattr__(self, "precision", Precision.parse(self.precision, option="precision"))
        if any(a < 0 or a >= len(self.roi_size) for a in self.mirror_axes):
            raise ConfigError(
                f"mirror_axes must be spatial axes in [0, {len(self.roi_size) - 1}], got {self.mirror_axes}"
            )

    @property
    def compute_device(self) -> torch.device:
        """The device the network runs on."""
        return resolve_device(
            None if self.device is None else str(self.device), option="infer.device / --device"
        )

    def __call__(self, model: torch.nn.Module, image: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Blend the model's logits over the whole image.

        Parameters
        ----------
        model : torch.nn.Module
            Maps ``(B, C, *roi)`` to ``(B, K, *(roi - 2 * margin))`` logits.
        image : tensor or ndarray
            ``(N, C, *spatial)`` float image.

        Returns
        -------
        torch.Tensor
            ``(N, K, *spatial)`` float32 blended logits.
        """
        logits, size = self._run(model, image, labels_only=False)
        return logits[(slice(None), slice(None), *(slice(0, s) for s in size))]

    def predict_labels(self, model: torch.nn.Module, image: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Argmax class map, computed cell by cell (no full-size logits are held).

        Returns
        -------
        torch.Tensor
            ``(N, *spatial)`` class ids on the CPU: uint8 up to 256 classes, else int32.
        """
        labels, size = self._run(model, image, labels_only=True)
        return labels[(slice(None), *(slice(0, s) for s in size))]

    def _grid(
        self, model: torch.nn.Module, image: torch.Tensor
    ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """Check the inputs; return margin, output grid shape, output window and window alignment."""
        spatial_dims = len(self.roi_size)
        if image.ndim != spatial_dims + 2:
            raise ShapeError(
                f"image must have shape (N, C, *spatial) with {spatial_dims} spatial axes to match "
                f"roi_size {self.roi_size}, got shape {tuple(image.shape)}"
            )
        _check_roi(model, self.roi_size)
        margin = model_margin(model, spatial_dims)
        out_roi = tuple(r - 2 * m for r, m in zip(self.roi_size, margin, strict=True))
        if any(o < 1 for o in out_roi):
            raise ShapeError(
                f"roi_size {self.roi_size} is too small for the model's margin {margin} per side"
            )
        align = _window_alignment(model, spatial_dims) if any(margin) else (1,) * spatial_dims
        size = tuple(image.shape[2:])
        grid = tuple(aligned_size(s, o, a) for s, o, a in zip(size, out_roi, align, strict=True))
        return margin, grid, out_roi, align

    def _run(
        self, model: torch.nn.Module, image: torch.Tensor | np.ndarray, *, labels_only: bool
    ) -> tuple[torch.Tensor, tuple[int, ...]]:
        image = torch.as_tensor(np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image)
        margin, grid, out_roi, align = self._grid(model, image)
        size = tuple(image.shape[2:])
        pad = [(m, m + g - s) for s, g, m in zip(size, grid, margin, strict=True)]
        padded = _to_device(mirror_pad(image.float(), pad), self.compute_device)
        per_axis = [
            window_starts(g, o, self.overlap, align=a) for g, o, a in zip(grid, out_roi, align, strict=True)
        ]
        return self._blend(model, padded, per_axis, grid, out_roi, labels_only=labels_only), size

    def predict_labels_region(
        self,
        model: torch.nn.Module,
        read: Callable[[tuple[slice, ...]], np.ndarray],
        shape: tuple[int, ...],
        region: tuple[slice, ...],
        *,
        labels_only: bool = True,
    ) -> torch.Tensor:
        """Labels of ``region`` of an image, equal to :meth:`predict_labels` of the whole image.

        Only the windows of the whole image's grid that reach into ``region`` run, on the
        same mirror-padded input and with the same blending weights, so every voxel of the
        region sums the same window outputs in the same order as a whole-image pass: a large
        image predicted region by region (out of core) equals the in-memory result.

        Parameters
        ----------
        model : torch.nn.Module
            As for :meth:`__call__`.
        read : callable
            ``read(box)`` returns the image ``(N, C, *box-shape)`` inside ``box`` (one slice
            per spatial axis, within ``shape``); called once, with the box the windows need.
        shape : tuple of int
            Spatial shape of the whole image.
        region : tuple of slice
            The part of the output to predict (within ``shape``).
        labels_only : bool
            ``False``: the blended logits ``(N, K, *region-shape)`` instead, equal to
            :meth:`__call__`'s there.

        Returns
        -------
        torch.Tensor
            ``(N, *region-shape)`` class ids on the CPU, as :meth:`predict_labels`.
        """
        shape = tuple(int(s) for s in shape)
        probe = torch.empty((1, 1, *shape), device="meta")
        margin, grid, out_roi, align = self._grid(model, probe)
        picked, lows, highs = [], [], []
        for r, g, o, a in zip(region, grid, out_roi, align, strict=True):
            starts = [
                st for st in window_starts(g, o, self.overlap, align=a) if st < r.stop and st + o > r.start
            ]
            picked.append([st - starts[0] for st in starts])
            lows.append(starts[0])
            highs.append(starts[-1] + o)
        # padded-image index p holds image index reflect(p - margin): the whole image's mirror padding
        index = [
            reflect_index(torch.arange(lo - m, hi + m), size).numpy()
            for lo, hi, m, size in zip(lows, highs, margin, shape, strict=True)
        ]
        box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in index)
        data = np.asarray(read(box), dtype=np.float32)
        gather = np.ix_(*(i - b.start for i, b in zip(index, box, strict=True)))
        padded = _to_device(torch.from_numpy(data[(slice(None), slice(None), *gather)]), self.compute_device)
        grid = tuple(hi - lo for lo, hi in zip(lows, highs, strict=True))
        labels = self._blend(model, padded, picked, grid, out_roi, labels_only=labels_only)
        crop = tuple(slice(r.start - lo, r.stop - lo) for r, lo in zip(region, lows, strict=True))
        return labels[(slice(None), *crop)] if labels_only else labels[(slice(None), slice(None), *crop)]

    def _blend(
        self,
        model: torch.nn.Module,
        padded: torch.Tensor,
        per_axis: list[list[int]],
        grid: tuple[int, ...],
        out_roi: tuple[int, ...],
        *,
        labels_only: bool,
    ) -> torch.Tensor:
        """Run the windows ``product(per_axis)`` of ``padded``; blended logits or labels of the output ``grid``."""
        weights = weight_map(
            out_roi, self.blending, self.sigma_scale, str(self._output_device(self.compute_device))
        )
        n = padded.shape[0]
        # (image, window start) items in raster order of the window starts: cells finish early
        items = [(k, starts) for starts in itertools.product(*per_axis) for k in range(n)]
        model.eval()
        compiling = self._compiling(model, len(items))
        net = self._network(model, compiling)
        # windows the job runs after this call (planned: block-wise or many-image jobs)
        later = max(0, _PLANNED[model] - len(items)) if model in _PLANNED else 0
        if model in _PLANNED:
            _PLANNED[model] = later
        sums: Blender | LabelCells | None = None
        all_finite: torch.Tensor | None = None
        batches = range(0, len(items), self.batch_size)
        for index, first in enumerate(
            tqdm(batches, desc="predict", unit="batch", disable=not self.progress, leave=False)
        ):
            batch = items[first : first + self.batch_size]
            inputs = torch.stack(
                [
                    padded[
                        (k, slice(None), *(slice(s, s + r) for s, r in zip(st, self.roi_size, strict=True)))
                    ]
                    for k, st in batch
                ]
            )
            finite = torch.isfinite(inputs).all()  # per batch: no image-sized mask
            if inputs.device.type == "cpu":
                _check_finite(finite)
            else:  # checked once at the end: a check per batch makes the host wait for every batch
                all_finite = finite if all_finite is None else all_finite & finite
            runner, running = net, compiling
            if compiling and len(batch) < self.batch_size:  # one input shape: no recompilation
                if len(batch) * _COMPILED_SPEEDUP < self.batch_size:  # a few windows: cheaper uncompiled
                    runner, running = self._network(model, False), False
                else:
                    filler = inputs[:1].expand(self.batch_size - len(batch), *inputs.shape[1:])
                    inputs = torch.cat([inputs, filler])
            started = time.perf_counter()
            logits = forward_windows(
                runner,
                inputs,
                out_roi,
                device=self.compute_device,
                precision=self.precision,
                mirror_axes=self.mirror_axes,
                vector_start=self.vector_start,
                channels_last=self._channels_last(running),
            )
            if compiling is None and index == 1:  # the second eager batch: past first-call costs
                _sync(logits)
                compiling = self._decide(
                    model, len(items) - first - len(batch) + later, time.perf_counter() - started
                )
                net = self._network(model, compiling)
            logits = logits[: len(batch)]
            if sums is None:
                device = self._output_device(self.compute_device)
                channels = logits.shape[1]
                sums = (
                    LabelCells(n, channels, grid, per_axis, device, weights)
                    if labels_only
                    else Blender(n, channels, grid, device, weights)
                )
            sums.add(batch, logits)
            del inputs, logits  # not held through the next forward pass
        if all_finite is not None:
            _check_finite(all_finite)
        return sums.result()

    def count_windows(
        self, model: torch.nn.Module, shape: tuple[int, ...], region: tuple[slice, ...] | None = None
    ) -> int:
        """Windows one image of spatial ``shape`` runs through ``model`` (mirrored passes counted once).

        ``region``: only the windows :meth:`predict_labels_region` runs for that part of the image.
        """
        shape = tuple(int(s) for s in shape)
        probe = torch.empty((1, 1, *shape), device="meta")
        _, grid, out_roi, align = self._grid(model, probe)
        region = region or tuple(slice(0, s) for s in shape)
        return math.prod(
            sum(1 for st in window_starts(g, o, self.overlap, align=a) if st < r.stop and st + o > r.start)
            for g, o, a, r in zip(grid, out_roi, align, region, strict=True)
        )

    def planned(self, model: torch.nn.Module, windows: int) -> contextlib.AbstractContextManager[None]:
        """Inside it, the automatic compile decision counts the whole job's ``windows`` (:func:`planned`)."""
        return planned(model, windows)

    def _compiling(self, model: torch.nn.Module, windows: int) -> bool | None:
        """Whether to run compiled from the start; ``None``: decide after the second batch (automatic)."""
        if self.compile is not None:
            return self.compile
        if is_compiled(model, channels_last=self._channels_last(True)):
            return True  # compiled by an earlier call: nothing left to pay
        windows = max(windows, _PLANNED.get(model, 0))
        if self.compute_device.type != "cpu" or windows <= 2 * self.batch_size:
            return False  # compiled speed measured on the CPU only; a job this small never repays it
        return None

    def _decide(self, model: torch.nn.Module, windows: int, batch_seconds: float) -> bool:
        """Compile now when the ``windows`` left repay it, and say so (:func:`decide_compile`)."""
        return decide_compile(
            model, windows, batch_seconds / self.batch_size, spatial_dims=len(self.roi_size)
        )

    def _channels_last(self, compiling: bool | None) -> bool:
        return bool(compiling) if self.channels_last is None else self.channels_last

    def _network(self, model: torch.nn.Module, compiling: bool | None) -> Callable:
        """What runs the windows: the model, its channels-last view, compiled or not."""
        return network(model, compiled=bool(compiling), channels_last=self._channels_last(compiling))

    def _output_device(self, device: torch.device) -> torch.device:
        return torch.device(self.output_device) if self.output_device else device


def _check_finite(finite: torch.Tensor) -> None:
    if not finite:
        raise DataValueError("image contains NaN or infinite values; clean or mask them before inference")


def _sync(tensor: torch.Tensor) -> None:
    """Wait for the kernels that write ``tensor`` (a CUDA call returns before they finish)."""
    if tensor.device.type == "cuda":
        torch.cuda.synchronize(tensor.device)


def _to_device(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The padded image on the compute device when it fits, else in pinned host memory."""
    if device.type == "cpu":
        return image
    try:
        return image.to(device)
    except torch.OutOfMemoryError:
        logger.warning(
            "image of shape %s does not fit on %s; copying windows from the host", tuple(image.shape), device
        )
        return image.pin_memory()


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
