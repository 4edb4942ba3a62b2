"""The U-Net paper's pixel weight map, computed per patch in the data-loader workers.

``w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))**2 / (2 * sigma**2))`` on background
pixels, where ``d1``/``d2`` are the distances to the nearest and second-nearest
object and ``w_c`` balances class frequencies (Ronneberger et al. 2015, eq. 2). The
distance to each object is a Euclidean distance transform of a crop around the
object, grown by the distance beyond which the border term falls under
``w0 * 1e-6``; pixels outside that crop are farther away and get no border term from
that object. Inside the crop the distance is exact (the object lies wholly inside it).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from medseg.errors import ConfigError, ShapeError

__all__ = ["WeightMap", "unet_weight_map"]

#: The border term is dropped where it is below ``w0 * _CUTOFF``.
_CUTOFF = 1e-6


def unet_weight_map(
    instances: np.ndarray,
    *,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: tuple[float, float] | None = None,
) -> np.ndarray:
    """Weight map of the U-Net paper that stresses thin borders between touching objects.

    Parameters
    ----------
    instances : np.ndarray
        2D ``(Y, X)`` or 3D ``(Z, Y, X)`` instance label map, 0 = background/border.
    w0, sigma : float
        Border weight and width in pixels; the paper uses ``w0 = 10``, ``sigma ~= 5``.
    class_weights : (float, float) or None
        ``w_c`` for background and foreground; ``None`` uses inverse frequencies
        normalised so that the more frequent class weighs 1.

    Returns
    -------
    np.ndarray
        float32 weights of the same shape.

    References
    ----------
    Ronneberger, Fischer, Brox. U-Net: Convolutional Networks for Biomedical Image
    Segmentation. MICCAI 2015, eq. 2.
    """
    instances = np.asarray(instances)
    if instances.ndim not in (2, 3):
        raise ShapeError(f"unet_weight_map takes a 2D or 3D instance map, got shape {instances.shape}")
    if w0 < 0 or sigma <= 0:
        raise ConfigError(f"w0 must be >= 0 and sigma > 0, got w0={w0}, sigma={sigma}")
    foreground = instances > 0
    if class_weights is None:
        n_fg = max(int(foreground.sum()), 1)
        n_bg = max(int((~foreground).sum()), 1)
        class_weights = (n_fg / n_bg if n_bg > n_fg else 1.0, 1.0 if n_bg > n_fg else n_bg / n_fg)
    weights = np.where(foreground, class_weights[1], class_weights[0]).astype(np.float64)
    boxes = ndimage.find_objects(instances.astype(np.int64, copy=False))
    objects = [(i + 1, box) for i, box in enumerate(boxes) if box is not None]
    if len(objects) < 2 or w0 == 0:
        return weights.astype(np.float32)
    reach = math.ceil(sigma * math.sqrt(2 * math.log(1 / _CUTOFF)))
    nearest = np.full((2, *instances.shape), np.inf)
    for obj, box in objects:
        crop = tuple(
            slice(max(0, s.start - reach), min(n, s.stop + reach))
            for s, n in zip(box, instances.shape, strict=True)
        )
        d = ndimage.distance_transform_edt(instances[crop] != obj)
        first, second = nearest[0][crop], nearest[1][crop]
        closer = d < first
        second[...] = np.where(closer, first, np.minimum(second, d))
        first[...] = np.where(closer, d, first)
    border = w0 * np.exp(-((nearest[0] + nearest[1]) ** 2) / (2 * sigma**2))
    weights += np.where(foreground, 0.0, border)
    return weights.astype(np.float32)


class WeightMap:
    """Picklable ``instances -> weight map`` for data-loader workers (see :func:`unet_weight_map`).

    Parameters
    ----------
    objects_from_classes : bool
        The label is a class map: objects are the connected components of each
        foreground class (``label >= 1``). Otherwise the label is an instance map.
    w0, sigma : float
        As in :func:`unet_weight_map`.
    """

    def __init__(self, *, objects_from_classes: bool, w0: float = 10.0, sigma: float = 5.0) -> None:
        self.objects_from_classes = objects_from_classes
        self.w0 = w0
        self.sigma = sigma

    def __call__(self, label: np.ndarray) -> np.ndarray:
        """``(1, *P)`` label -> ``(1, *P)`` float32 weights."""
        label = np.asarray(label)[0]
        if self.objects_from_classes:
            objects = np.zeros(label.shape, dtype=np.int64)
            count = 0
            for value in np.unique(label[label > 0]):
                components, n = ndimage.label(label == value)
                objects[components > 0] = components[components > 0] + count
                count += n
            label = objects
        return unet_weight_map(label, w0=self.w0, sigma=self.sigma)[None]
