"""Turn a trained model into label maps: normalise, slide windows, argmax, keep geometry.

Labels are computed by the engine's row-by-row argmax unless probabilities are asked for
(``probabilities=True``) or the checkpoint was trained on instance targets, which need the
class probabilities (and the distance channel) for the seeded watershed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.checkpoint_meta import Checkpoint, CheckpointMeta, Targets, checkpoint_path, read_checkpoint
from medseg.errors import ConfigError, FormatError, ShapeError
from medseg.flows import FLOW_SCALE
from medseg.infer.normalize import Normalizer, ZScore
from medseg.infer.postprocess import PostProcessing, instances_from_maps
from medseg.infer.sliding_window import SlidingWindow, label_dtype
from medseg.io import Volume
from medseg.io.paths import file_sha256
from medseg.models import build_model
from medseg.options import LabelKind

__all__ = [
    "Prediction",
    "Predictor",
    "checkpoint_path",
    "file_sha256",
    "load_trained_model",
    "require_voxels",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """A predicted case on the input's grid (spacing, origin, direction kept).

    Attributes
    ----------
    labels : Volume
        ``(1, *spatial)`` class ids, uint8 up to 256 classes, wider above.
    probabilities : Volume or None
        ``(K, *spatial)`` float32 softmax, when asked for or needed for instances.
    instances : Volume or None
        ``(1, *spatial)`` uint32 object ids (0 background), for instance-trained checkpoints.
    """

    labels: Volume
    probabilities: Volume | None = None
    instances: Volume | None = None


def load_trained_model(
    checkpoint: Checkpoint | dict[str, Any], *, source: str | Path = "checkpoint"
) -> torch.nn.Module:
    """Rebuild the model a checkpoint records and load its weights, checking them first.

    The network is first built on PyTorch's ``meta`` device (no memory) and its tensor
    names and shapes compared with the checkpoint's, so parameters that do not fit the
    stored weights (another depth, a width that would allocate hundreds of GB) are
    refused before anything is allocated.

    Parameters
    ----------
    checkpoint : Checkpoint or dict
        From :func:`medseg.checkpoint_meta.read_checkpoint`, or a payload dict.
    source : str or path
        Names the file in errors (a :class:`Checkpoint` knows its own path).

    Raises
    ------
    FormatError
        The metadata is malformed, the model cannot be built from it, or the weights
        do not fit it; the message names the file.
    """
    if not isinstance(checkpoint, Checkpoint):
        meta = CheckpointMeta.from_dict(checkpoint.get("metadata"), source=source)
        checkpoint = Checkpoint(Path(str(source)), checkpoint, meta)
    spec, source = checkpoint.meta.model, checkpoint.path
    try:
        with torch.device("meta"):
            skeleton = build_model(spec.name, **spec.kwargs())
    except (ConfigError, TypeError, ValueError) as err:
        raise FormatError(
            f"{source}: the checkpoint's model {spec.to_dict()} cannot be built: {err}"
        ) from err
    except (NotImplementedError, RuntimeError):  # a model that cannot be built on 'meta'
        skeleton = None
    weights = checkpoint.weights
    if skeleton is not None:
        _check_weights(skeleton.state_dict(), weights, source, spec.to_dict())
    model = build_model(spec.name, **spec.kwargs())
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise FormatError(
            f"{source}: the checkpoint's weights do not fit its model {spec.to_dict()} "
            f"({str(err).splitlines()[0]}); the file is damaged or was edited"
        ) from err
    return model.eval()


def _check_weights(expected: dict[str, Any], weights: Any, source: Path, spec: dict[str, Any]) -> None:
    """Refuse weights whose names or shapes differ from the model's, naming the first differences."""
    want = {k: tuple(v.shape) for k, v in expected.items()}
    have = {k: tuple(v.shape) for k, v in weights.items()}
    if want == have:
        return
    problems = [f"missing {k}" for k in want if k not in have][:3]
    problems += [f"unexpected {k}" for k in have if k not in want][:3]
    problems += [
        f"{k}: stored {have[k]}, model needs {want[k]}" for k in want if k in have and want[k] != have[k]
    ][:3]
    raise FormatError(
        f"{source}: the checkpoint's weights do not match its model {spec} ({'; '.join(problems)}); "
        "the metadata (e.g. model.params.depth or features) or the weights were changed: use the "
        "checkpoint as medseg train wrote it"
    )


class Predictor:
    """Predict label maps for whole images with a trained model.

    Parameters
    ----------
    model : torch.nn.Module
        2D or 3D segmenter; a 2D model applied to a ``(C, Z, Y, X)`` stack predicts
        section by section (EM stacks, slide tiles).
    window : SlidingWindow
        Tiling, blending, TTA and device settings.
    normalization : ZScore or Normalizer
        The intensity normalisation used in training, or any callable with
        :class:`ZScore`'s signature (a bioimage.io package's pre-processing).
    classes : sequence of str, optional
        Class names, index = class id (recorded in the output's ``meta``).
    targets : Targets or dict, optional
        What the model outputs (:class:`~medseg.checkpoint_meta.Targets`, or the
        checkpoint's ``targets`` dict); default class labels.
    postprocessing : PostProcessing, optional
        Thresholds of the instance watershed (the checkpoint's tuned ones,
        ``CheckpointMeta.postprocessing``); default :class:`PostProcessing()`.
    identity : dict, optional
        What identifies the model for resumable outputs (e.g. the checkpoint's hash).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        window: SlidingWindow,
        normalization: Normalizer,
        *,
        classes: Sequence[str] | None = None,
        targets: Targets | dict[str, Any] | None = None,
        postprocessing: PostProcessing | None = None,
        identity: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.eval()
        if not isinstance(targets, Targets):
            raw = targets or {}
            try:
                targets = Targets.of(raw.get("label_kind", LabelKind.CLASSES), raw.get("instance_target"))
            except ConfigError as err:
                raise FormatError(f"checkpoint targets: {err}") from err
        if targets.has_flows and window.vector_start is None:  # flip TTA negates the flipped flow component
            window = replace(window, vector_start=1)
        self.window = window
        self.normalization = normalization
        self.classes = tuple(classes) if classes is not None else None
        self.targets = targets
        self.instance_target = targets.instance_target
        self.postprocessing = postprocessing or PostProcessing()
        self.identity = dict(identity or {})
        self.model.to(window.compute_device)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Checkpoint | str | Path | dict[str, Any],
        window: SlidingWindow,
        *,
        identity: dict[str, Any] | None = None,
    ) -> Predictor:
        """Build from a checkpoint: a loaded :class:`Checkpoint`, a path (run folder, ``checkpoints/``, ``.pt``) or a payload dict.

        Raises
        ------
        DataNotFoundError
            No checkpoint at the path.
        FormatError
            Not a medseg checkpoint, malformed metadata or weights that do not fit
            (:func:`load_trained_model`); the message names the file.

        Examples
        --------
        >>> from medseg.infer import Predictor, SlidingWindow
        >>> predictor = Predictor.from_checkpoint("run", SlidingWindow((128, 128)))   # doctest: +SKIP
        >>> labels = predictor.predict(medseg.read("image.tif")).labels                # doctest: +SKIP
        """
        if isinstance(checkpoint, str | Path):
            checkpoint = read_checkpoint(checkpoint)
            identity = {"checkpoint_sha256": checkpoint.sha256, **(identity or {})}
        elif not isinstance(checkpoint, Checkpoint):
            meta = CheckpointMeta.from_dict(checkpoint.get("metadata"), source="checkpoint")
            checkpoint = Checkpoint(Path("checkpoint"), checkpoint, meta)
        meta = checkpoint.meta
        return cls(
            load_trained_model(checkpoint),
            window,
            ZScore.from_dict(dict(meta.normalization)),
            classes=meta.classes or None,
            targets=meta.targets,
            postprocessing=PostProcessing.from_dict(meta.postprocessing, source=checkpoint.path),
            identity={"model": meta.model.to_dict(), **(identity or {})},
        )

    @property
    def num_classes(self) -> int:
        """Classes of the label map (the class names, else the model's output channels)."""
        if self.classes:
            return len(self.classes)
        if self.instance_target is not None:
            return self.instance_target.num_classes
        return int(getattr(getattr(self.model, "constraints", None), "out_channels", 256))

    @property
    def is_instance_model(self) -> bool:
        """True when the checkpoint was trained on instance targets (boundary, distance, both or flow)."""
        return self.instance_target is not None

    def _batched(
        self, image: np.ndarray, run, *, channel_axis: bool = True, source: str | None = None
    ) -> torch.Tensor:
        """Apply ``run(model, (N, C, *roi-dims))`` to an image, 2D models section by section.

        ``run`` returns ``(N, K, ...)`` (``channel_axis``) or ``(N, ...)``; the result has the
        image's spatial axes, with the ``K`` axis first when there is one.
        """
        image = self.normalization(image, source=source)
        window_dims = len(self.window.roi_size)
        spatial_dims = image.ndim - 1
        if spatial_dims == window_dims:
            return run(self.model, image[None])[0]
        if spatial_dims == 3 and window_dims == 2:
            sections = np.moveaxis(image, 1, 0)  # (Z, C, Y, X): sections as a batch
            out = run(self.model, sections)
            return out.movedim(0, 1) if channel_axis else out
        raise ShapeError(
            f"image has {spatial_dims} spatial axes but the window has {window_dims} (roi_size "
            f"{self.window.roi_size}); use a 2D or 3D roi matching the model"
        )

    def count_windows(self, shape: tuple[int, ...], region: tuple[slice, ...] | None = None) -> int:
        """Windows a ``(C, *shape)`` image (or its ``region``) runs, a 2D model's sections counted."""
        window_dims = len(self.window.roi_size)
        if len(shape) == window_dims:
            return self.window.count_windows(self.model, shape, region)
        sections = (region[0] if region else slice(0, shape[0])).indices(shape[0])
        inner = region[1:] if region else None
        return len(range(*sections)) * self.window.count_windows(self.model, shape[1:], inner)

    def predict_logits(self, image: np.ndarray, *, source: str | None = None) -> torch.Tensor:
        """Blended logits ``(K, *spatial)`` for a ``(C, *spatial)`` image (``source`` names it in errors)."""
        return self._batched(image, self.window, source=source)

    def predict_label_array(self, image: np.ndarray, *, source: str | None = None) -> np.ndarray:
        """Class ids ``(*spatial)`` of a ``(C, *spatial)`` image, without a full-size probability buffer."""
        if self.targets.has_distance_channel or self.targets.has_flows:  # not only class channels
            probabilities = self.class_probabilities(self.predict_logits(image, source=source))
            return probabilities.argmax(dim=0).cpu().numpy().astype(np.uint8)
        labels = self._batched(image, self.window.predict_labels, channel_axis=False, source=source)
        return labels.numpy().astype(label_dtype(self.num_classes), copy=False)

    def predict_label_region(
        self, image: Any, region: tuple[slice, ...], *, source: str | None = None, probabilities: bool = False
    ) -> Any:
        """Class ids of ``region`` of a ``(C, *spatial)`` image, equal to :meth:`predict_label_array`'s there.

        ``image`` is read lazily (only what the region's windows need, mirror padding at the
        image border included), so a volume larger than memory can be predicted region by
        region with the same windows, weights and result as one whole-image pass.
        ``probabilities``: return ``(labels, probabilities)``, the softmax ``(K, *region)``
        float32 and its argmax, as :meth:`predict` with ``probabilities=True``.
        """
        if self.is_instance_model:
            raise FormatError("region-wise labels are for class-label models; instance models predict blocks")
        window_dims = len(self.window.roi_size)
        spatial = tuple(int(s) for s in image.shape[1:])
        if len(spatial) == window_dims:

            def read(box: tuple[slice, ...]) -> np.ndarray:
                return self.normalization(np.asarray(image[(slice(None), *box)]), source=source)[None]

            labels = self.window.predict_labels_region(
                self.model, read, spatial, region, labels_only=not probabilities
            )[0]
        elif len(spatial) == 3 and window_dims == 2:  # sections as a batch, as predict_label_array

            def read(box: tuple[slice, ...]) -> np.ndarray:
                block = np.asarray(image[(slice(None), region[0], *box)])
                return np.moveaxis(self.normalization(block, source=source), 1, 0)

            labels = self.window.predict_labels_region(
                self.model, read, spatial[1:], region[1:], labels_only=not probabilities
            )
            labels = labels.movedim(0, 1) if probabilities else labels
        else:
            raise ShapeError(
                f"image has {len(spatial)} spatial axes but the window has {window_dims} (roi_size "
                f"{self.window.roi_size}); use a 2D or 3D roi matching the model"
            )
        if probabilities:  # ``labels`` holds the logits (K, *region)
            probs = torch.softmax(labels.float(), dim=0)
            classes = probs.argmax(dim=0).numpy().astype(label_dtype(probs.shape[0]))
            return classes, probs.numpy().astype(np.float32)
        return labels.numpy().astype(label_dtype(self.num_classes), copy=False)

    def class_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(K, *spatial)`` from the logits: the softmax of the class channels.

        A ``flow`` model's background / foreground pair is ``1 - p, p`` of its cell probability.
        """
        if self.targets.has_flows:
            cell = torch.sigmoid(logits[:1].float())
            return torch.cat([1 - cell, cell])
        return torch.softmax(logits[:-1] if self.targets.has_distance_channel else logits, dim=0)

    def instance_maps(self, logits: torch.Tensor) -> np.ndarray:
        """The maps :func:`~medseg.infer.postprocess.instances_from_maps` takes, from an instance model's logits.

        ``flow``: the cell probability and the flow channels divided by :data:`~medseg.flows.FLOW_SCALE`.
        """
        target = self.instance_target
        if target is None:
            raise FormatError("this checkpoint was trained on class labels, not instances")
        if target.has_flows:
            logits = logits.float()
            return torch.cat([torch.sigmoid(logits[:1]), logits[1:] / FLOW_SCALE]).cpu().numpy()
        if not target.has_distance_channel:
            return torch.softmax(logits, dim=0).cpu().numpy()
        probabilities = torch.softmax(logits[:-1], dim=0)
        if not target.has_boundary_class:  # distance: the foreground probability and the distance
            probabilities = probabilities[1:]
        return torch.cat([probabilities, torch.sigmoid(logits[-1:])]).cpu().numpy()

    def instances_from_logits(self, logits: torch.Tensor, params: PostProcessing | None = None) -> np.ndarray:
        """Instance ids ``(*spatial)`` from the logits of an instance-trained model (``params``: default own)."""
        target = self.instance_target
        if target is None:
            raise FormatError("this checkpoint was trained on class labels, not instances")
        return instances_from_maps(self.instance_maps(logits), target, params or self.postprocessing)

    def predict(self, image: Volume, *, probabilities: bool = False) -> Prediction:
        """Labels (and probabilities or instances when asked or needed) on ``image``'s grid."""
        source = image.meta.get("source")
        meta = {"classes": list(self.classes) if self.classes else None, "source": source}
        require_voxels(image.array.shape, source)
        if not probabilities and not self.is_instance_model:
            labels = self.predict_label_array(image.array, source=source)
            return Prediction(labels=image.with_array(labels[None], **meta))
        logits = self.predict_logits(image.array, source=source)
        probs = self.class_probabilities(logits)
        labels = probs.argmax(dim=0, keepdim=True).cpu().numpy().astype(label_dtype(probs.shape[0]))
        instances = None
        if self.is_instance_model:
            instances = image.with_array(self.instances_from_logits(logits)[None], **meta)
        return Prediction(
            labels=image.with_array(labels, **meta),
            probabilities=image.with_array(probs.cpu().numpy().astype(np.float32), **meta)
            if probabilities
            else None,
            instances=instances,
        )


def require_voxels(shape: tuple[int, ...], source: str | None) -> None:
    """Refuse an image with no voxels (a zero-length axis) before any window is planned."""
    if 0 in tuple(shape)[1:]:
        raise ShapeError(
            f"{source or 'the image'} has no voxels (shape {tuple(shape)[1:]}); there is nothing to "
            "predict: remove it from the inputs or export it again"
        )
