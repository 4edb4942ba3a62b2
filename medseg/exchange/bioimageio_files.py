"""The files of a bioimage.io package besides its description: test tensors, TorchScript copy, cover."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from medseg.errors import ConfigError, ShapeError
from medseg.io import Volume
from medseg.models.constraints import InputConstraints, constraints_of

if TYPE_CHECKING:
    from medseg.exchange.bioimageio_export import CheckpointModel

__all__ = ["expected_output", "sample_crop", "smallest_size", "write_cover", "write_torchscript"]

logger = logging.getLogger(__name__)


def _valid_size(constraints: InputConstraints, axis: int, at_most: int) -> int:
    """The largest valid input size ``<= at_most`` along ``axis`` (raises when none is)."""
    divisor, remainder = constraints.divisor[axis], constraints.remainder[axis]
    size = at_most - ((at_most - remainder) % divisor)
    if size < constraints.min_size[axis]:
        raise ShapeError(
            f"the test image is {at_most} voxels along axis {axis}; the model needs at least "
            f"{constraints.min_size[axis]}: pass a larger --test-image"
        )
    return size


def smallest_size(constraints: InputConstraints, axis: int) -> int:
    size = constraints.min_size[axis]
    divisor, remainder = constraints.divisor[axis], constraints.remainder[axis]
    return size + (remainder - size) % divisor


def sample_crop(sample: Volume, trained: CheckpointModel, tile: Sequence[int]) -> np.ndarray:
    """``(1, C, *tile)`` float32 crop from the middle of the sample (a 2D model: its middle section)."""
    constraints = trained.constraints
    dims = constraints.spatial_dims
    array = np.asarray(sample.array)
    while array.ndim - 1 > dims:  # a 2D model on a stack: the middle section
        array = array[:, array.shape[1] // 2]
    if array.ndim - 1 != dims:
        raise ShapeError(f"the test image has {array.ndim - 1} spatial axes, the model is {dims}D")
    if array.shape[0] != constraints.in_channels:
        raise ShapeError(
            f"the test image has {array.shape[0]} channel(s), the model takes {constraints.in_channels}"
        )
    sizes = [
        _valid_size(constraints, a, min(t, s))
        for a, (t, s) in enumerate(zip(tile, array.shape[1:], strict=True))
    ]
    box = tuple(slice((s - n) // 2, (s - n) // 2 + n) for s, n in zip(array.shape[1:], sizes, strict=True))
    return np.ascontiguousarray(array[(slice(None), *box)][None], dtype=np.float32)


def expected_output(trained: CheckpointModel, test_input: np.ndarray) -> np.ndarray:
    """The package's output for ``test_input``: the network on z-scored input, softmax for class models."""
    mean = np.asarray(trained.normalization["mean"], dtype=np.float32)
    std = np.asarray(trained.normalization["std"], dtype=np.float32)
    shape = (1, -1) + (1,) * (test_input.ndim - 2)
    normalised = (test_input - mean.reshape(shape)) / std.reshape(shape)
    with torch.no_grad():
        output = trained.model(torch.from_numpy(normalised))
        if not trained.meta.targets.is_instances:
            output = torch.softmax(output, dim=1)
    return output.numpy().astype(np.float32)


def write_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path) -> bool:
    """Script the model (trace it when scripting fails), check it against eager, save it to ``path``.

    Returns whether the copy also holds for a larger input. A traced valid-convolution
    U-Net keeps its traced crop sizes, so it holds for the example's size only; the
    package then declares that one size.
    """
    model = model.eval()
    try:
        scripted = torch.jit.script(model)
    except Exception as err:  # noqa: BLE001 - TorchScript raises many types for Python it cannot compile
        logger.info("torch.jit.script failed (%s); tracing instead", str(err).splitlines()[0])
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # checked on two sizes below
            scripted = torch.jit.trace(model, example, check_trace=False)
    step = constraints_of(model).divisor
    larger = torch.nn.functional.pad(example, [p for d in reversed(step) for p in (0, d)], mode="reflect")
    with torch.no_grad():
        if not torch.allclose(scripted(example), model(example), rtol=1e-4, atol=1e-5):
            raise ConfigError(
                f"the TorchScript copy of {type(model).__name__} disagrees with it on a "
                f"{tuple(example.shape)} input; export needs a model that scripts or traces"
            )
        try:
            general = torch.allclose(scripted(larger), model(larger), rtol=1e-4, atol=1e-5)
        except RuntimeError:  # traced shapes baked in
            general = False
    if not general:
        logger.warning(
            "the TorchScript copy of %s holds for inputs of %s only; the package declares that size",
            type(model).__name__,
            tuple(example.shape[2:]),
        )
    torch.jit.save(scripted, str(path))
    return general


def write_cover(
    test_input: np.ndarray, test_output: np.ndarray, draw: Callable[..., np.ndarray], path: Path
) -> Path:
    """``draw(image, None, labels)`` of the test tile (middle section in 3D), as a PNG."""
    from PIL import Image

    image = test_input[0, 0]
    labels = test_output[0, : max(2, test_output.shape[1] - 1)].argmax(axis=0)
    while image.ndim > 2:
        image, labels = image[image.shape[0] // 2], labels[labels.shape[0] // 2]
    # a valid-convolution output covers the centre of the input
    image = image[
        tuple(slice((i - o) // 2, (i - o) // 2 + o) for i, o in zip(image.shape, labels.shape, strict=True))
    ]
    picture = draw(image, None, labels.astype(np.int64))
    Image.fromarray(picture).save(path)
    return path
