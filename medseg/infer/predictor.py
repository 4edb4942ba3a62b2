"""Turn a trained model into label maps: normalise, slide windows, argmax, keep geometry.

Labels are computed by the engine's row-by-row argmax unless probabilities are asked for
(``probabilities=True``) or the checkpoint was trained on instance targets, which need the
class probabilities (and the distance channel) for the seeded watershed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.errors import DataNotFoundError, FormatError, ShapeError
from medseg.infer.normalize import ZScore
from medseg.infer.postprocess import INSTANCE_TARGETS, PostProcessing, instances_from_maps
from medseg.infer.sliding_window import SlidingWindow, label_dtype
from medseg.io import Volume
from medseg.models import build_model

__all__ = ["Prediction", "Predictor", "checkpoint_path", "file_sha256", "load_trained_model"]

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


def load_trained_model(checkpoint: dict[str, Any]) -> torch.nn.Module:
    """Rebuild the model recorded in a checkpoint's metadata and load its weights."""
    spec = checkpoint["metadata"].get("model")
    if not spec or "name" not in spec:
        raise FormatError(
            "checkpoint metadata has no 'model' entry (name, params); it was not written by medseg train"
        )
    model = build_model(spec["name"], **spec.get("params", {}))
    model.load_state_dict(checkpoint["model"])
    return model.eval()


class Predictor:
    """Predict label maps for whole images with a trained model.

    Parameters
    ----------
    model : torch.nn.Module
        2D or 3D segmenter; a 2D model applied to a ``(C, Z, Y, X)`` stack predicts
        section by section (EM stacks, slide tiles).
    window : SlidingWindow
        Tiling, blending, TTA and device settings.
    normalization : ZScore
        The intensity normalisation used in training.
    classes : sequence of str, optional
        Class names, index = class id (recorded in the output's ``meta``).
    targets : dict, optional
        The checkpoint's ``targets`` metadata: ``{"label_kind": "classes" | "instances",
        "instance_target": None | "boundary" | "distance" | "both"}``; default class labels.
    postprocessing : PostProcessing, optional
        Thresholds of the instance watershed (the checkpoint's tuned ones); default
        :class:`PostProcessing()`.
    identity : dict, optional
        What identifies the model for resumable outputs (e.g. the checkpoint's hash).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        window: SlidingWindow,
        normalization: ZScore,
        *,
        classes: Sequence[str] | None = None,
        targets: dict[str, Any] | None = None,
        postprocessing: PostProcessing | None = None,
        identity: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.eval()
        self.window = window
        self.normalization = normalization
        self.classes = tuple(classes) if classes is not None else None
        targets = targets or {}
        self.instance_target = (
            targets.get("instance_target") if targets.get("label_kind") == "instances" else None
        )
        if self.instance_target is not None and self.instance_target not in INSTANCE_TARGETS:
            raise FormatError(
                f"checkpoint targets.instance_target is {self.instance_target!r}; expected one of "
                f"{', '.join(INSTANCE_TARGETS)}"
            )
        self.postprocessing = postprocessing or PostProcessing()
        self.identity = dict(identity or {})
        self.model.to(window.compute_device)

    @classmethod
    def from_checkpoint(
        cls, checkpoint: dict[str, Any], window: SlidingWindow, *, identity: dict[str, Any] | None = None
    ) -> Predictor:
        """Build from a payload of :func:`medseg.train.checkpoint.load_checkpoint`-style dict."""
        metadata = checkpoint["metadata"]
        if "normalization" not in metadata:
            raise FormatError(
                "checkpoint metadata has no 'normalization'; it was not written by medseg train"
            )
        return cls(
            load_trained_model(checkpoint),
            window,
            ZScore.from_dict(metadata["normalization"]),
            classes=metadata.get("classes"),
            targets=metadata.get("targets"),
            postprocessing=PostProcessing.from_dict(metadata.get("postprocessing")),
            identity={"model": metadata.get("model"), **(identity or {})},
        )

    @property
    def num_classes(self) -> int:
        """Classes of the label map (the class names, else the model's output channels)."""
        if self.classes:
            return len(self.classes)
        if self.instance_target == "distance":
            return 2
        if self.instance_target == "both":
            return 3
        return int(getattr(getattr(self.model, "constraints", None), "out_channels", 256))

    @property
    def is_instance_model(self) -> bool:
        """True when the checkpoint was trained on instance targets (boundary or distance)."""
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

    def predict_logits(self, image: np.ndarray, *, source: str | None = None) -> torch.Tensor:
        """Blended logits ``(K, *spatial)`` for a ``(C, *spatial)`` image (``source`` names it in errors)."""
        return self._batched(image, self.window, source=source)

    def predict_label_array(self, image: np.ndarray, *, source: str | None = None) -> np.ndarray:
        """Class ids ``(*spatial)`` of a ``(C, *spatial)`` image, without a full-size probability buffer."""
        if self.instance_target in ("distance", "both"):  # the last channel is a distance, not a class
            logits = self.predict_logits(image, source=source)
            return logits[: self.num_classes].argmax(dim=0).cpu().numpy().astype(np.uint8)
        labels = self._batched(image, self.window.predict_labels, channel_axis=False, source=source)
        return labels.numpy().astype(label_dtype(self.num_classes), copy=False)

    def predict_label_region(
        self, image: Any, region: tuple[slice, ...], *, source: str | None = None
    ) -> np.ndarray:
        """Class ids of ``region`` of a ``(C, *spatial)`` image, equal to :meth:`predict_label_array`'s there.

        ``image`` is read lazily (only what the region's windows need, mirror padding at the
        image border included), so a volume larger than memory can be predicted region by
        region with the same windows, weights and result as one whole-image pass.
        """
        if self.is_instance_model:
            raise FormatError("region-wise labels are for class-label models; instance models predict blocks")
        window_dims = len(self.window.roi_size)
        spatial = tuple(int(s) for s in image.shape[1:])
        if len(spatial) == window_dims:

            def read(box: tuple[slice, ...]) -> np.ndarray:
                return self.normalization(np.asarray(image[(slice(None), *box)]), source=source)[None]

            labels = self.window.predict_labels_region(self.model, read, spatial, region)[0]
        elif len(spatial) == 3 and window_dims == 2:  # sections as a batch, as predict_label_array

            def read(box: tuple[slice, ...]) -> np.ndarray:
                block = np.asarray(image[(slice(None), region[0], *box)])
                return np.moveaxis(self.normalization(block, source=source), 1, 0)

            labels = self.window.predict_labels_region(self.model, read, spatial[1:], region[1:])
        else:
            raise ShapeError(
                f"image has {len(spatial)} spatial axes but the window has {window_dims} (roi_size "
                f"{self.window.roi_size}); use a 2D or 3D roi matching the model"
            )
        return labels.numpy().astype(label_dtype(self.num_classes), copy=False)

    def instance_maps(self, logits: torch.Tensor) -> np.ndarray:
        """The maps :func:`~medseg.infer.postprocess.instances_from_maps` takes, from an instance model's logits."""
        if self.instance_target == "boundary":
            return torch.softmax(logits, dim=0).cpu().numpy()
        if self.instance_target == "distance":
            foreground = torch.softmax(logits[:2], dim=0)[1]
            return torch.stack([foreground, torch.sigmoid(logits[2])]).cpu().numpy()
        if self.instance_target == "both":
            return torch.cat([torch.softmax(logits[:3], dim=0), torch.sigmoid(logits[3:4])]).cpu().numpy()
        raise FormatError("this checkpoint was trained on class labels, not instances")

    def instances_from_logits(self, logits: torch.Tensor, params: PostProcessing | None = None) -> np.ndarray:
        """Instance ids ``(*spatial)`` from the logits of an instance-trained model (``params``: default own)."""
        maps = self.instance_maps(logits)
        return instances_from_maps(maps, self.instance_target, params or self.postprocessing)

    def predict(self, image: Volume, *, probabilities: bool = False) -> Prediction:
        """Labels (and probabilities or instances when asked or needed) on ``image``'s grid."""
        meta = {"classes": list(self.classes) if self.classes else None, "source": image.meta.get("source")}
        if not probabilities and not self.is_instance_model:
            labels = self.predict_label_array(image.array, source=meta["source"])
            return Prediction(labels=image.with_array(labels[None], **meta))
        logits = self.predict_logits(image.array, source=meta["source"])
        classes = logits[: self.num_classes] if self.instance_target in ("distance", "both") else logits
        probs = torch.softmax(classes, dim=0)
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


def checkpoint_path(path: str | Path) -> Path:
    """The checkpoint file meant by ``path``: a ``.pt`` file, a ``checkpoints/`` folder or a training run folder.

    Raises
    ------
    DataNotFoundError
        Nothing usable at ``path``; the message lists what was looked for.
    """
    path = Path(path)
    candidates = [path] if path.is_file() else [path / "best.pt", path / "checkpoints" / "best.pt"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise DataNotFoundError(
        f"no checkpoint at {path} (looked for {looked}); pass the run folder that medseg train "
        "printed, its checkpoints/ folder or a .pt file"
    )


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(2**20), b""):
            digest.update(piece)
    return digest.hexdigest()
