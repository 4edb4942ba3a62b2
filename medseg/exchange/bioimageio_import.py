"""Run a BioImage Model Zoo package with medseg's sliding window (``medseg predict -m PACKAGE.zip``).

A package (``.zip``, its ``rdf.yaml``/``bioimageio.yaml`` or an unpacked folder) is read
with :mod:`bioimageio.spec`. Its network becomes a module that medseg's engine drives like
its own models:

- axes: the package's input order (channel first or last, ``z, y, x``) is permuted from
  and to medseg's ``(N, C, *spatial)``; input size rules (``min + n * step``) and an
  output that is smaller than the input (a negative size offset: valid convolutions)
  become the module's :class:`~medseg.models.InputConstraints`, so windows are valid
  sizes and outputs are placed where they belong;
- pre-processing runs once per image in numpy, with statistics over the whole image as
  bioimage.io computes them per sample: ``ensure_dtype``, ``fixed_zero_mean_unit_variance``,
  ``zero_mean_unit_variance``, ``scale_linear``, ``scale_range``, ``clip``, ``sigmoid``,
  ``binarize``;
- post-processing that acts voxel by voxel runs on each window's output inside the
  module (``sigmoid``, ``softmax``, ``clip``, ``scale_linear``, ``binarize``,
  ``ensure_dtype``); operations that need statistics of the whole output are refused.

Labels are the argmax over the output channels; a one-channel output is a foreground
score, labelled foreground above 0.5 after ``sigmoid``/``softmax``, above 0 otherwise.
Packages that medseg exported (``config.medseg``) keep their class names and instance
post-processing (seeded watershed).

Weights: ``pytorch_state_dict`` (architecture from the package's source file or an
installed library; the state dict is read with ``weights_only=True``) or, when absent,
``torchscript``.
"""

from __future__ import annotations

import importlib
import io
import logging
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.errors import ConfigError, DataNotFoundError, FormatError
from medseg.models.constraints import InputConstraints

__all__ = ["LoadedPackage", "PackageModel", "PackageNormalization", "is_bioimageio_package", "load_package"]

logger = logging.getLogger(__name__)

_RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
_SPACE = ("z", "y", "x")


def is_bioimageio_package(path: str | Path) -> bool:
    """True for a ``.zip`` package, its ``rdf.yaml``/``*.bioimageio.yaml`` or a folder holding one."""
    path = Path(path)
    if path.is_dir():
        return any((path / n).is_file() for n in _RDF_NAMES)
    return path.suffix == ".zip" or path.name in _RDF_NAMES or path.name.endswith(".bioimageio.yaml")


def _axis_kind(axis: Any) -> str:
    return str(getattr(axis, "type", ""))


def _kwargs(op: Any) -> dict[str, Any]:
    kwargs = getattr(op, "kwargs", None)
    return dict(kwargs.model_dump()) if kwargs is not None else {}


def _along(values: Any, axis: Any, axis_ids: Sequence[str], ndim: int, xp: Any = np) -> Any:
    """``values`` shaped to broadcast along ``axis`` of an array whose axes are ``axis_ids``."""
    if axis is None or not isinstance(values, (list, tuple)):
        return values
    shape = [1] * ndim
    shape[list(axis_ids).index(str(axis))] = len(values)
    return xp.asarray(values, dtype=xp.float32).reshape(shape)


def _reduce_axes(kwargs: dict[str, Any], axis_ids: Sequence[str]) -> tuple[int, ...] | None:
    """Axes to reduce statistics over: ``kwargs['axes']`` (ids), default all but batch."""
    axes = kwargs.get("axes")
    if axes is None:
        return None
    return tuple(list(axis_ids).index(str(a)) for a in axes if str(a) in axis_ids)


@dataclass(frozen=True)
class PackageNormalization:
    """The package's input pre-processing on a ``(C, *spatial)`` image (whole-image statistics).

    Callable like :class:`medseg.infer.normalize.ZScore` (``image, *, source``), so the
    :class:`~medseg.infer.Predictor` applies it in place of medseg's own normalisation.
    """

    ops: tuple[tuple[str, dict[str, Any]], ...]
    axis_ids: tuple[str, ...]

    def __call__(self, image: np.ndarray, *, channel_axis: int = 0, source: str | None = None) -> np.ndarray:
        x: np.ndarray = np.array(image, dtype=np.float32)
        if channel_axis != 0:
            x = np.moveaxis(x, channel_axis, 0)
        ids, ndim = self.axis_ids, x.ndim
        for name, kw in self.ops:
            if name == "ensure_dtype":
                x = x.astype(kw["dtype"]).astype(np.float32)
            elif name == "fixed_zero_mean_unit_variance":
                mean, std = (_along(kw[k], kw.get("axis"), ids, ndim) for k in ("mean", "std"))
                x = (x - mean) / (std + 1e-6)  # bioimageio.core's epsilon
            elif name == "zero_mean_unit_variance":
                axes = _reduce_axes(kw, ids)
                x = (x - x.mean(axis=axes, keepdims=True)) / (
                    x.std(axis=axes, keepdims=True) + kw.get("eps", 1e-6)
                )
            elif name == "scale_linear":
                gain, offset = (
                    _along(kw.get(k, d), kw.get("axis"), ids, ndim)
                    for k, d in (("gain", 1.0), ("offset", 0.0))
                )
                x = x * gain + offset
            elif name == "scale_range":
                if kw.get("reference_tensor"):
                    raise FormatError(
                        "scale_range with a reference_tensor is not supported by medseg predict"
                    )
                axes = _reduce_axes(kw, ids)
                low = np.percentile(x, kw.get("min_percentile", 0.0), axis=axes, keepdims=True)
                high = np.percentile(x, kw.get("max_percentile", 100.0), axis=axes, keepdims=True)
                x = (x - low) / (high - low + kw.get("eps", 1e-6))
            elif name == "clip":
                x = np.clip(x, kw.get("min"), kw.get("max"))
            elif name == "sigmoid":
                x = 1.0 / (1.0 + np.exp(-x))
            elif name == "binarize":
                x = (x > _along(kw["threshold"], kw.get("axis"), ids, ndim)).astype(np.float32)
            else:
                raise FormatError(
                    f"pre-processing {name!r} of the package is not supported by medseg predict"
                )
        x = np.asarray(x, dtype=np.float32)
        return np.moveaxis(x, 0, channel_axis) if channel_axis != 0 else x


def _postprocess(
    x: torch.Tensor, ops: Sequence[tuple[str, dict[str, Any]]], axis_ids: Sequence[str]
) -> torch.Tensor:
    """Voxel-wise post-processing on ``(N, K, *spatial)`` window outputs (``axis_ids`` without batch)."""
    ids = ["batch", *axis_ids]
    for name, kw in ops:
        if name == "ensure_dtype":
            x = x.float()
        elif name == "sigmoid":
            x = torch.sigmoid(x)
        elif name == "softmax":
            x = torch.softmax(x, dim=ids.index(str(kw.get("axis", "channel"))))
        elif name == "clip":
            x = torch.clamp(x, kw.get("min"), kw.get("max"))
        elif name == "scale_linear":
            gain, offset = (
                _along(kw.get(k, d), kw.get("axis"), ids, x.ndim, xp=np)
                for k, d in (("gain", 1.0), ("offset", 0.0))
            )
            x = x * torch.as_tensor(gain, dtype=x.dtype) + torch.as_tensor(offset, dtype=x.dtype)
        elif name == "binarize":
            threshold = _along(kw["threshold"], kw.get("axis"), ids, x.ndim, xp=np)
            x = (x > torch.as_tensor(threshold, dtype=x.dtype)).float()
        else:
            raise FormatError(
                f"post-processing {name!r} of the package needs whole-output statistics; medseg predict "
                "runs per-window post-processing only"
            )
    return x


class PackageModel(torch.nn.Module):
    """The package's network as a medseg model: ``(N, C, *spatial)`` in, ``(N, K, *spatial)`` out.

    Permutes to the package's axis order, runs the network, applies the voxel-wise
    post-processing and permutes back. ``constraints`` carries the size rules.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        *,
        in_order: Sequence[str],
        out_order: Sequence[str],
        post: Sequence[tuple[str, dict[str, Any]]],
        constraints: InputConstraints,
        threshold: float | None = None,
    ) -> None:
        super().__init__()
        self.network = network.eval()
        self.in_order, self.out_order, self.post = tuple(in_order), tuple(out_order), tuple(post)
        self.constraints = constraints
        self.threshold = threshold
        self._medseg_in = ("batch", "channel", *[a for a in _SPACE if a in in_order])
        self._medseg_out = ("batch", "channel", *[a for a in _SPACE if a in out_order])
        # a trailing softmax over channels is left to the Predictor, which applies one itself
        # (ensure_dtype float32, which bioimageio.spec appends, changes nothing here)
        steps = [op for op in self.post if op[0] != "ensure_dtype"]
        softmax_last = (
            bool(steps) and steps[-1][0] == "softmax" and steps[-1][1].get("axis", "channel") == "channel"
        )
        self._window_post = tuple(steps[:-1]) if softmax_last else self.post

    def _to(self, x: torch.Tensor, src: Sequence[str], dst: Sequence[str]) -> torch.Tensor:
        present = list(src)
        if "channel" not in dst:  # package without a channel axis: drop ours (one channel)
            x = x.squeeze(present.index("channel"))
            present.remove("channel")
        return x.permute([present.index(a) for a in dst])

    def package_output(
        self, x: torch.Tensor, *, _post: Sequence[tuple[str, dict[str, Any]]] | None = None
    ) -> torch.Tensor:
        """What the package itself returns for ``x`` (``(N, C, *spatial)``), in medseg's axis order."""
        y = self.network(self._to(x, self._medseg_in, self.in_order))
        post = self.post if _post is None else _post
        y = _postprocess(y, post, [a for a in self.out_order if a != "batch"])
        if "channel" not in self.out_order:
            y = y.unsqueeze(1)
            order = ["batch", "channel", *[a for a in self.out_order if a != "batch"]]
        else:
            order = list(self.out_order)
        return y.permute([order.index(a) for a in self._medseg_out])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.package_output(x, _post=self._window_post)
        if self.threshold is not None:  # one-channel score: label = score > threshold
            y = torch.cat([torch.full_like(y, self.threshold), y], dim=1)
        return y


@dataclass(frozen=True)
class LoadedPackage:
    """A package ready for :class:`medseg.infer.Predictor`."""

    model: PackageModel
    normalization: PackageNormalization
    classes: list[str] | None
    targets: dict[str, Any]
    postprocessing: dict[str, Any]
    roi_size: tuple[int, ...]
    name: str


def _load_description(path: Path) -> Any:
    try:
        from bioimageio.spec import InvalidDescr, load_model_description
    except ImportError as err:
        raise ConfigError(
            "running a bioimage.io package needs bioimageio.spec: pip install 'medseg[bioimageio]'"
        ) from err
    if not path.exists():
        raise DataNotFoundError(f"bioimage.io package {path} does not exist; check the path")
    source = next((path / n for n in _RDF_NAMES if (path / n).is_file()), path) if path.is_dir() else path
    try:
        description = load_model_description(source, format_version="latest", perform_io_checks=False)
    except (ValueError, OSError) as err:  # invalid or non-model resources, unreadable archives
        raise FormatError(f"{path} is not a bioimage.io model package this medseg can read: {err}") from err
    if isinstance(description, InvalidDescr):
        raise FormatError(
            f"{path} is not a valid bioimage.io model: {description.validation_summary.format()[:800]}"
        )
    if description.type != "model":
        raise FormatError(f"{path} describes a {description.type}, not a model")
    return description


def _read_bytes(file_descr: Any) -> bytes:
    from bioimageio.spec.utils import download

    return download(file_descr).read()


def _network(description: Any) -> torch.nn.Module:
    weights = description.weights
    if weights.pytorch_state_dict is not None:
        entry = weights.pytorch_state_dict
        architecture = entry.architecture
        if hasattr(architecture, "import_from"):
            factory: Callable[..., Any] = getattr(
                importlib.import_module(architecture.import_from), architecture.callable
            )
        else:  # the package's own source file: executed as bioimageio.core does
            module = types.ModuleType(f"bioimageio_architecture_{description.id or 'package'}")
            exec(compile(_read_bytes(architecture), str(architecture.source), "exec"), module.__dict__)
            factory = getattr(module, architecture.callable)
        network = factory(**dict(architecture.kwargs))
        state = torch.load(io.BytesIO(_read_bytes(entry)), map_location="cpu", weights_only=True)
        network.load_state_dict(state)
        return network.eval()
    if weights.torchscript is not None:
        return torch.jit.load(io.BytesIO(_read_bytes(weights.torchscript)), map_location="cpu").eval()
    raise FormatError(
        "the package has no pytorch_state_dict or torchscript weights; medseg predict runs PyTorch weights only"
    )


def _size_rules(
    axes: Sequence[Any], out_axes: Sequence[Any], test_shape: Sequence[int]
) -> tuple[list[int], list[int], list[int], list[int], tuple[int, ...]]:
    """Divisor, remainder, minimum size, margin and a default window (the test input's size), z-y-x order."""
    from bioimageio.spec.model import v0_5

    by_id = {str(a.id): a for a in axes if _axis_kind(a) == "space"}
    space = [by_id[a] for a in _SPACE if a in by_id]
    ids = [str(getattr(a, "id", _axis_kind(a))) for a in axes]
    divisor, remainder, min_size, margin, roi = [], [], [], [], []
    offsets = {
        str(a.size.axis_id): a.size.offset
        for a in out_axes
        if isinstance(getattr(a, "size", None), v0_5.SizeReference)
    }
    for axis in space:
        size = axis.size
        if isinstance(size, v0_5.ParameterizedSize):
            divisor.append(int(size.step))
            remainder.append(int(size.min) % int(size.step))
            min_size.append(int(size.min))
        elif isinstance(size, int):
            divisor.append(size)
            remainder.append(0)
            min_size.append(size)
        else:
            raise FormatError(f"input axis {axis.id} takes its size from another tensor; not supported")
        offset = int(offsets.get(str(axis.id), 0))
        if offset > 0 or offset % 2:
            raise FormatError(
                f"output axis {axis.id} is {offset:+d} voxels from the input; medseg needs an even shrink"
            )
        margin.append(-offset // 2)
        roi.append(int(test_shape[ids.index(str(axis.id))]))
    return divisor, remainder, min_size, margin, tuple(roi)


def load_package(path: str | Path) -> LoadedPackage:
    """Read a bioimage.io model package for prediction.

    Raises
    ------
    FormatError
        Not a valid model, several inputs/outputs, axes other than batch/channel/space,
        processing medseg cannot reproduce, or no PyTorch weights.
    """
    path = Path(path)
    description = _load_description(path)
    if len(description.inputs) != 1 or len(description.outputs) != 1:
        raise FormatError(
            f"{path} has {len(description.inputs)} inputs and {len(description.outputs)} outputs; medseg predict "
            "runs one-input, one-output models"
        )
    tensor_in, tensor_out = description.inputs[0], description.outputs[0]
    for tensor in (tensor_in, tensor_out):
        others = [str(a.id) for a in tensor.axes if _axis_kind(a) not in ("batch", "channel", "space")]
        if others:
            raise FormatError(
                f"tensor {tensor.id} of {path} has axes {others}; medseg predicts space axes only"
            )
    in_order = ["batch" if _axis_kind(a) == "batch" else str(a.id) for a in tensor_in.axes]
    out_order = ["batch" if _axis_kind(a) == "batch" else str(a.id) for a in tensor_out.axes]
    space_ids = {str(a.id) for t in (tensor_in, tensor_out) for a in t.axes if _axis_kind(a) == "space"}
    if "batch" not in in_order or "batch" not in out_order or not space_ids <= set(_SPACE):
        raise FormatError(
            f"{path}: medseg predict needs a batch axis and space axes named z, y, x; got inputs {in_order}, "
            f"outputs {out_order}"
        )
    channel_in = next((a for a in tensor_in.axes if _axis_kind(a) == "channel"), None)
    channel_out = next((a for a in tensor_out.axes if _axis_kind(a) == "channel"), None)
    in_channels = len(channel_in.channel_names) if channel_in is not None else 1
    out_channels = len(channel_out.channel_names) if channel_out is not None else 1
    test_input = np.load(io.BytesIO(_read_bytes(tensor_in.test_tensor)))
    divisor, remainder, min_size, margin, roi = _size_rules(tensor_in.axes, tensor_out.axes, test_input.shape)
    spatial = [a for a in _SPACE if a in in_order]  # medseg's images are (C, [Z,] Y, X)
    constraints = InputConstraints.create(
        len(spatial),
        in_channels,
        out_channels if out_channels > 1 else 2,
        divisor=divisor,
        remainder=remainder,
        margin=margin,
        min_size=min_size,
    )
    pre = tuple((op.id, _kwargs(op)) for op in tensor_in.preprocessing)
    post = tuple((op.id, _kwargs(op)) for op in tensor_out.postprocessing)
    threshold = None
    if out_channels == 1:
        threshold = 0.5 if any(name in ("sigmoid", "softmax", "binarize") for name, _ in post) else 0.0
    model = PackageModel(
        _network(description),
        in_order=in_order,
        out_order=out_order,
        post=post,
        constraints=constraints,
        threshold=threshold,
    )
    medseg = dict((description.config.model_dump() if description.config else {}).get("medseg") or {})
    channel_names = [str(c) for c in channel_out.channel_names] if channel_out is not None else None
    classes: list[str] = list(medseg.get("classes") or [])
    if not classes:  # a foreign package: its channel names, a one-channel score as background/foreground
        names = channel_names or [f"channel{k}" for k in range(out_channels)]
        classes = names if out_channels > 1 else ["background", "foreground"]
    norm_axes = tuple(["channel", *spatial])
    logger.info(
        "bioimage.io package %s: %dD, %d -> %d channels, window %s",
        description.name,
        len(spatial),
        in_channels,
        out_channels,
        roi,
    )
    return LoadedPackage(
        model=model,
        normalization=PackageNormalization(pre, norm_axes),
        classes=classes,
        targets=dict(medseg.get("targets") or {}),
        postprocessing=dict(medseg.get("postprocessing") or {}),  # the run's tuned watershed thresholds
        roi_size=tuple(medseg.get("tile") or roi),
        name=str(description.name),
    )
