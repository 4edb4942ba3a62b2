"""One batch of windows through the network: precision, memory layout and flip test-time augmentation.

:class:`medseg.infer.sliding_window.SlidingWindow` gathers the windows and blends what
:func:`forward_windows` returns.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

from medseg.errors import ShapeError
from medseg.infer.layout import channels_last_format
from medseg.options import Precision

__all__ = ["forward_windows"]


def forward_windows(
    model: Callable,
    inputs: torch.Tensor,
    out_roi: tuple[int, ...],
    *,
    device: torch.device,
    precision: Precision,
    mirror_axes: tuple[int, ...] = (),
    vector_start: int | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """Float32 outputs ``(B, K, *out_roi)`` of a batch of windows ``inputs`` ``(B, C, *roi)``.

    With ``mirror_axes``, the mean over every combination of flips along those spatial axes,
    each flipped back; a flipped output's vector channels ``vector_start + axis`` (flow
    fields) are negated so that they point the image's way. ``channels_last`` gives the
    inputs the channels-last memory format (for a model wrapped by
    :func:`medseg.infer.layout.channels_last_view`).

    Raises
    ------
    ShapeError
        The model's output is not ``out_roi`` (a roi that does not fit the model's constraints).
    """
    dtype = precision.torch_dtype()
    inputs = inputs.to(device, non_blocking=True)
    fmt = channels_last_format(inputs.ndim)
    if fmt is not None and channels_last:
        inputs = inputs.contiguous(memory_format=fmt)
    flips = [
        combo for k in range(len(mirror_axes) + 1) for combo in itertools.combinations(sorted(mirror_axes), k)
    ]

    def one_pass(combo: tuple[int, ...]) -> torch.Tensor:
        dims = tuple(a + 2 for a in combo)
        y = model(inputs.flip(dims) if dims else inputs).float()
        if tuple(y.shape[2:]) != out_roi:
            raise ShapeError(
                f"model output spatial shape {tuple(y.shape[2:])} does not match the expected "
                f"{out_roi} for input {tuple(inputs.shape[2:])}; check roi_size against the "
                "model's constraints (divisor, margin)"
            )
        if not combo:
            return y
        y = y.flip(dims)
        if vector_start is not None:
            sign = torch.ones(y.shape[1], device=y.device, dtype=y.dtype)
            sign[[vector_start + a for a in combo]] = -1
            y = y * sign.reshape(1, -1, *(1,) * len(out_roi))
        return y

    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=precision.is_mixed):
        total = one_pass(flips[0])  # no flip
        for combo in flips[1:]:
            total = total + one_pass(combo)
    return total / len(flips) if len(flips) > 1 else total
