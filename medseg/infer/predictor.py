"""Turn a trained model into label maps: normalise, slide windows, argmax, keep geometry."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.errors import FormatError, ShapeError
from medseg.infer.normalize import ZScore
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import Volume
from medseg.models import build_model

__all__ = ["Prediction", "Predictor", "load_trained_model"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """Labels ``(1, *spatial)`` uint8/uint16 and class probabilities ``(K, *spatial)`` float32, on the input's grid."""

    labels: Volume
    probabilities: Volume


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
    """

    def __init__(
        self,
        model: torch.nn.Module,
        window: SlidingWindow,
        normalization: ZScore,
        *,
        classes: Sequence[str] | None = None,
    ) -> None:
        self.model = model.eval()
        self.window = window
        self.normalization = normalization
        self.classes = tuple(classes) if classes is not None else None
        device = torch.device(window.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(device)

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any], window: SlidingWindow) -> Predictor:
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
        )

    def predict_logits(self, image: np.ndarray) -> torch.Tensor:
        """Blended logits ``(K, *spatial)`` for a ``(C, *spatial)`` image."""
        image = self.normalization(image)
        window_dims = len(self.window.roi_size)
        spatial_dims = image.ndim - 1
        if spatial_dims == window_dims:
            return self.window(self.model, image[None])[0]
        if spatial_dims == 3 and window_dims == 2:
            sections = np.moveaxis(image, 1, 0)  # (Z, C, Y, X): sections as a batch
            return self.window(self.model, sections).movedim(0, 1)
        raise ShapeError(
            f"image has {spatial_dims} spatial axes but the window has {window_dims} (roi_size "
            f"{self.window.roi_size}); use a 2D or 3D roi matching the model"
        )

    def predict(self, image: Volume) -> Prediction:
        """Labels and probabilities on ``image``'s grid (spacing, origin, direction kept)."""
        logits = self.predict_logits(image.array)
        probabilities = torch.softmax(logits, dim=0)
        labels = probabilities.argmax(dim=0, keepdim=True).cpu().numpy()
        dtype = np.uint8 if probabilities.shape[0] <= 256 else np.uint16
        meta = {"classes": list(self.classes) if self.classes else None, "source": image.meta.get("source")}
        return Prediction(
            labels=image.with_array(labels.astype(dtype), **meta),
            probabilities=image.with_array(probabilities.cpu().numpy().astype(np.float32), **meta),
        )


def checkpoint_path(path: str | Path) -> Path:
    """``best.pt`` inside a training folder, or the file itself."""
    path = Path(path)
    return path / "best.pt" if path.is_dir() else path
