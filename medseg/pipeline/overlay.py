"""Side-by-side overlay pictures: image, ground truth, prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medseg.errors import ShapeError
from medseg.io import Volume, write

__all__ = ["overlay_panels", "write_overlay"]

#: RGB colour per class id (class 0 is left uncoloured).
_PALETTE = np.array(
    [[0, 0, 0], [255, 64, 64], [64, 200, 64], [64, 128, 255], [255, 200, 0], [200, 64, 255], [0, 220, 220]],
    dtype=np.float32,
)


def _grey_to_rgb(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float32)
    lo, hi = np.percentile(image, (0.5, 99.5))
    grey = np.clip((image - lo) / max(hi - lo, 1e-8), 0, 1) * 255
    return np.repeat(grey[..., None], 3, axis=-1)


def _tint(rgb: np.ndarray, labels: np.ndarray, alpha: float) -> np.ndarray:
    out = rgb.copy()
    for cls in np.unique(labels):
        if cls == 0:
            continue
        mask = labels == cls
        out[mask] = (1 - alpha) * out[mask] + alpha * _PALETTE[int(cls) % len(_PALETTE)]
    return out


def overlay_panels(
    image: np.ndarray,
    truth: np.ndarray | None,
    prediction: np.ndarray,
    *,
    alpha: float = 0.5,
    titles: bool = False,
) -> np.ndarray:
    """``(Y, 3 * X + 2 * gap, 3)`` uint8 picture: image | ground truth overlay | prediction overlay.

    With ``titles=True`` a 16-px white band naming the panels is added on top.

    Parameters
    ----------
    image : np.ndarray
        ``(Y, X)`` grey image.
    truth, prediction : np.ndarray
        ``(Y, X)`` class label maps (class 0 uncoloured); ``truth=None`` leaves that panel plain.
    """
    if (
        image.ndim != 2
        or prediction.shape != image.shape
        or (truth is not None and truth.shape != image.shape)
    ):
        raise ShapeError(
            f"overlay needs 2D image, truth and prediction of one shape, got {image.shape}, "
            f"{None if truth is None else truth.shape}, {prediction.shape}"
        )
    rgb = _grey_to_rgb(image)
    gap = np.full((image.shape[0], 4, 3), 255, dtype=np.float32)
    panels = [
        rgb,
        gap,
        rgb if truth is None else _tint(rgb, truth, alpha),
        gap,
        _tint(rgb, prediction, alpha),
    ]
    picture = np.concatenate(panels, axis=1).round().astype(np.uint8)
    return _with_titles(picture, image.shape[1] + gap.shape[1]) if titles else picture


def _with_titles(picture: np.ndarray, step: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    band = Image.new("RGB", (picture.shape[1], 16), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    for k, title in enumerate(("image", "ground truth", "prediction")):
        draw.text((k * step + 3, 2), title, fill=(0, 0, 0))
    return np.concatenate([np.asarray(band), picture], axis=0)


def write_overlay(
    path: str | Path, image: np.ndarray, truth: np.ndarray | None, prediction: np.ndarray
) -> Path:
    """Write :func:`overlay_panels` as an RGB PNG (atomically)."""
    picture = overlay_panels(image, truth, prediction, titles=True)
    return write(Volume(np.moveaxis(picture, -1, 0)), path)
