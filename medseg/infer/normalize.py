"""Intensity normalisation shared by training and inference."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from medseg.errors import DataValueError

__all__ = ["ZScore"]


@dataclass(frozen=True)
class ZScore:
    """``(x - mean) / std`` with statistics of the training images (per channel).

    Stored in checkpoints (:meth:`to_dict`) so that prediction normalises exactly as training did.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, images: Iterable[np.ndarray]) -> ZScore:
        """Statistics over ``(C, *spatial)`` arrays (all voxels of all images, per channel)."""
        total = count = squares = None
        for image in images:
            flat = np.asarray(image, dtype=np.float64).reshape(image.shape[0], -1)
            if not np.isfinite(flat).all():
                raise DataValueError(
                    "training image contains NaN or infinite values; clean it before training"
                )
            s, q, n = flat.sum(1), (flat**2).sum(1), flat.shape[1]
            total, squares, count = (s, q, n) if total is None else (total + s, squares + q, count + n)
        if total is None:
            raise DataValueError("cannot fit a normalisation on zero images")
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        return cls(tuple(float(m) for m in mean), tuple(float(max(s, 1e-8)) for s in std))

    def __call__(self, image: np.ndarray, *, channel_axis: int = 0) -> np.ndarray:
        """Normalise an array whose ``channel_axis`` holds the channels (0 for ``(C, *spatial)``) to float32."""
        image = np.asarray(image, dtype=np.float32)
        if image.shape[channel_axis] != len(self.mean):
            raise DataValueError(
                f"image has {image.shape[channel_axis]} channels on axis {channel_axis}, the normalisation "
                f"was fitted on {len(self.mean)}"
            )
        shape = [1] * image.ndim
        shape[channel_axis] = len(self.mean)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.std, dtype=np.float32).reshape(shape)
        return (image - mean) / std

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> ZScore:
        return cls(tuple(data["mean"]), tuple(data["std"]))
