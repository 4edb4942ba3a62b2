"""Synthetic bitewing X-rays with ground truth, written in the ISBI 2015 layout.

Teeth stand in a row on a dark background: dentin body with roots, an enamel cap on
the crown, a pulp chamber, and on some teeth a bright restoration or a darker caries
lesion in the enamel/dentin. Classes follow :data:`medseg.data.dental.DENTAL_CLASSES`
(medseg's assumed order); the label map is built with
:func:`medseg.data.dental.masks_to_label`, the same merge the loader uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from medseg.data.dental import DENTAL_CLASSES, masks_to_label
from medseg.data.synthetic._shapes import blob_polygon, fill_polygon, smooth_noise
from medseg.errors import ConfigError

__all__ = ["SyntheticBitewing", "make_bitewing", "write_isbi2015_dental"]

_INTENSITY = {
    "background": 25,
    "dentin": 135,
    "enamel": 205,
    "pulp": 75,
    "root_canal_treatment": 230,
    "crown": 245,
    "restoration": 250,
    "caries": 95,
}


@dataclass(frozen=True)
class SyntheticBitewing:
    """A synthetic bitewing: ``image`` ``(Y, X)`` uint8, ``label`` class ids, ``masks`` one bool map per class 1..7."""

    image: np.ndarray
    label: np.ndarray
    masks: list[np.ndarray]


def make_bitewing(
    shape: tuple[int, int] = (96, 160), *, n_teeth: int = 3, seed: int = 0
) -> SyntheticBitewing:
    """Generate a bitewing-like radiograph with its 7 class masks.

    Parameters
    ----------
    shape : (int, int)
        ``(Y, X)``; teeth of the lower jaw occupy the lower part, crowns at the top.
    n_teeth : int
        Teeth in the row.
    seed : int
        Same seed, same image. Every image has at least one restoration and one caries lesion.
    """
    if min(shape) < 48 or n_teeth < 1:
        raise ConfigError(f"need shape >= (48, 48) and n_teeth >= 1, got {shape}, {n_teeth}")
    rng = np.random.default_rng(seed)
    h, w = shape
    masks = {name: np.zeros(shape, dtype=bool) for name in DENTAL_CLASSES[1:]}
    width = w / n_teeth
    with_restoration = int(rng.integers(n_teeth))
    with_caries = int(rng.integers(n_teeth))
    for t in range(n_teeth):
        cx = (t + 0.5) * width + rng.uniform(-0.05, 0.05) * width
        crown_cy = h * 0.32
        crown = fill_polygon(
            shape, blob_polygon((crown_cy, cx), (h * 0.2, width * 0.4), 0.0, rng, jitter=0.04)
        )
        root = fill_polygon(
            shape,
            np.array(
                [
                    [cx - width * 0.28, crown_cy],
                    [cx + width * 0.28, crown_cy],
                    [cx + width * 0.1, h * 0.97],
                    [cx - width * 0.1, h * 0.97],
                ]
            ),
        )
        tooth = crown | root
        enamel = crown & ~ndimage.binary_erosion(crown, iterations=4)
        enamel[int(crown_cy) :] = False  # enamel caps the crown only
        pulp = fill_polygon(
            shape, blob_polygon((h * 0.45, cx), (h * 0.12, width * 0.12), 0.0, rng, jitter=0.05)
        )
        masks["dentin"] |= tooth & ~enamel & ~pulp
        masks["enamel"] |= enamel
        masks["pulp"] |= pulp & tooth
        if t == with_restoration:
            top = int(crown_cy - h * 0.2)
            masks["restoration"][
                top : top + int(h * 0.08), int(cx - width * 0.15) : int(cx + width * 0.15)
            ] = True
            masks["restoration"] &= tooth
        if t == with_caries:
            side = cx + (width * 0.36 if rng.random() < 0.5 else -width * 0.36)
            lesion = fill_polygon(shape, blob_polygon((crown_cy - h * 0.05, side), (4.0, 4.0), 0.0, rng))
            masks["caries"] |= lesion & tooth
    ordered = [masks[name] for name in DENTAL_CLASSES[1:]]
    label = masks_to_label([m.astype(np.uint8) for m in ordered])
    intensity = np.array([_INTENSITY[name] for name in DENTAL_CLASSES], dtype=np.float64)
    image = intensity[label]
    image += 8 * smooth_noise(shape, 3.0, rng) + rng.normal(0, 5, size=shape)
    image = ndimage.gaussian_filter(image, 1.0)
    return SyntheticBitewing(np.clip(np.rint(image), 0, 255).astype(np.uint8), label, ordered)


def write_isbi2015_dental(
    root: str | Path,
    *,
    n_images: int = 2,
    shape: tuple[int, int] = (96, 160),
    seed: int = 0,
    folder: str = "v2-TrainingData",
) -> list[tuple[Path, np.ndarray]]:
    """Write ``<root>/<folder>/<i>.bmp`` and ``<root>/<folder>/<i>/<i>_<k>.bmp`` (0/255 masks), i = 1..n.

    Returns
    -------
    list of (Path, np.ndarray)
        Image path and ground-truth label map per case.
    """
    from PIL import Image

    data = Path(root) / folder
    data.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(1, n_images + 1):
        xray = make_bitewing(shape, seed=seed + i)
        image_path = data / f"{i}.bmp"
        Image.fromarray(xray.image, mode="L").save(image_path)
        (data / str(i)).mkdir(exist_ok=True)
        for k, mask in enumerate(xray.masks, start=1):
            Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(data / str(i) / f"{i}_{k}.bmp")
        out.append((image_path, xray.label))
    return out
