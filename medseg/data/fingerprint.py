"""A data fingerprint in the spirit of nnU-Net's: what the training data looks like, and what follows.

:func:`data_fingerprint` summarises labelled training samples: image sizes, spacing and
anisotropy, intensities (percentiles inside and outside the labelled objects), and, for
instance labels, the typical object (voxels and extent per axis). From these it derives:

- the **normalisation** the images call for: ``percentile`` (clip to the 1st-99.8th
  percentile, then scale; fluorescence: dark background, bright sparse objects) or
  ``zscore`` (EM, bright-field: objects not brighter than their surroundings);
- a **patch shape**: about eight typical objects across per axis (at least 64 voxels,
  at most the median image size and 256 in 2D / 128 in 3D), fewer sections along a
  coarse axis of an anisotropic volume;
- the post-processing **minimum object size** (a tenth of the typical object) and the
  object size that scales the post-processing search (:mod:`medseg.pipeline.tuning`).

``medseg train`` writes it to ``fingerprint.json`` in the run folder and prints
:func:`format_fingerprint`'s table.

References
----------
Isensee et al., "nnU-Net: a self-configuring method for deep learning-based biomedical
image segmentation", Nature Methods 18 (2021) 203-211 (dataset fingerprint, rule-based
parameters).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from medseg.data.sample import Sample
from medseg.options import LabelKind

__all__ = ["data_fingerprint", "format_fingerprint"]

#: Voxels sampled per image for the intensity statistics.
_SAMPLE_VOXELS = 1 << 20


def _array(x: Any) -> np.ndarray:
    return np.asarray(x.array if hasattr(x, "array") else x.read())


def _objects(label: np.ndarray) -> tuple[list[int], list[tuple[int, ...]]]:
    """Voxel counts and bounding-box extents of every object of an instance map ``(*spatial)``."""
    extents = [tuple(s.stop - s.start for s in box) for box in ndimage.find_objects(label) if box is not None]
    counts = np.unique(label[label > 0], return_counts=True)[1]
    return [int(c) for c in counts], extents


def _round_patch(size: float, limit: int, divisor: int) -> int:
    size = min(float(size), float(limit))
    return max(divisor, int(size // divisor) * divisor)


def data_fingerprint(
    samples: Sequence[Sample], *, label_kind: LabelKind | str = LabelKind.INSTANCES, divisor: int = 16
) -> dict[str, Any]:
    """Summarise labelled training samples and derive patch, normalisation and size defaults.

    Parameters
    ----------
    samples : sequence of Sample
        Training cases ``(C, [Z,] Y, X)`` with labels (lazy ones are read).
    label_kind : LabelKind or str
        ``instances`` (object statistics are gathered) or ``classes``.
    divisor : int
        The patch sizes are multiples of it (the model's downsampling factor).

    Returns
    -------
    dict
        JSON-ready: ``cases``, ``spatial_dims``, ``channels``, ``median_shape``,
        ``spacing``, ``unit``, ``anisotropy``, ``intensity`` (``p01``, ``p50``,
        ``p99_8``, ``mean``, ``std``, ``foreground_median``, ``background_median``),
        ``objects`` (``count``, ``median_voxels``, ``median_extent``; instances only),
        ``recommended`` (``normalization``, ``patch_shape``, ``min_size``).
    """
    instances = LabelKind.parse(label_kind, option="data.label_kind") is LabelKind.INSTANCES
    shapes, spacings, values, inside, outside = [], [], [], [], []
    sizes: list[int] = []
    extents: list[tuple[int, ...]] = []
    rng = np.random.default_rng(0)
    unit = None
    for sample in samples:
        image = _array(sample.image).astype(np.float32, copy=False)
        label = _array(sample.label)[0] if sample.label is not None else None
        shapes.append(image.shape[1:])
        spacings.append(tuple(float(s) for s in np.asarray(sample.image.spacing, dtype=float)))
        unit = unit or getattr(sample.image, "unit", None)
        flat = image[0].ravel()
        pick = rng.choice(flat.size, size=min(flat.size, _SAMPLE_VOXELS), replace=False)
        values.append(flat[pick])
        if label is not None:
            mask = label.ravel()[pick] > 0
            inside.append(flat[pick][mask])
            outside.append(flat[pick][~mask])
            if instances:
                s, e = _objects(label)
                sizes += s
                extents += e
    ndim = len(shapes[0])
    all_values = np.concatenate(values)
    finite = all_values[np.isfinite(all_values)]
    fg = np.concatenate(inside) if inside else np.empty(0)
    bg = np.concatenate(outside) if outside else np.empty(0)
    fg_median = float(np.median(fg)) if fg.size else None
    bg_median = float(np.median(bg)) if bg.size else None
    median_shape = [int(v) for v in np.median(np.array(shapes), axis=0)]
    spacing = [float(v) for v in np.median(np.array(spacings), axis=0)]
    anisotropy = float(max(spacing) / min(spacing))
    # fluorescence: objects brighter than a darker, larger background
    bright_objects = fg_median is not None and bg_median is not None and fg_median > bg_median
    normalization = "percentile" if bright_objects else "zscore"
    objects: dict[str, Any] | None = None
    extent = None
    if sizes:
        extent = [float(v) for v in np.median(np.array(extents), axis=0)]
        objects = {"count": len(sizes), "median_voxels": float(np.median(sizes)), "median_extent": extent}
    limit = 256 if ndim == 2 else 128
    patch = []
    for axis in range(ndim):
        wanted = 8 * extent[axis] if extent else limit
        wanted = max(wanted, 64)
        if ndim == 3 and spacing[axis] > 2 * min(spacing):  # a coarse axis: fewer sections
            wanted = wanted * min(spacing) / spacing[axis]
        upper = max(divisor, median_shape[axis])
        patch.append(_round_patch(min(wanted, upper), limit, divisor))
    return {
        "cases": len(samples),
        "spatial_dims": ndim,
        "channels": int(_array(samples[0].image).shape[0]),
        "median_shape": median_shape,
        "spacing": spacing,
        "unit": unit,
        "anisotropy": round(anisotropy, 3),
        "intensity": {
            "p01": float(np.percentile(finite, 1)),
            "p50": float(np.percentile(finite, 50)),
            "p99_8": float(np.percentile(finite, 99.8)),
            "mean": float(finite.mean()),
            "std": float(finite.std()),
            "foreground_median": fg_median,
            "background_median": bg_median,
        },
        "objects": objects,
        "recommended": {
            "normalization": normalization,
            "patch_shape": patch,
            "min_size": round(0.1 * objects["median_voxels"]) if objects else None,
        },
    }


def format_fingerprint(fingerprint: Mapping[str, Any], patch_shape: Sequence[int] | None = None) -> str:
    """A short two-column table of a fingerprint (what ``medseg train`` prints).

    ``patch_shape``: the patch the run trains on (``data.patch_shape``), shown beside the
    recommended one when they differ.
    """

    def axes(values: Sequence[float], fmt: str = "{:g}") -> str:
        return " x ".join(fmt.format(v) for v in values)

    intensity = fingerprint["intensity"]
    rec = fingerprint["recommended"]
    rows = [
        (
            "cases",
            f"{fingerprint['cases']} ({fingerprint['spatial_dims']}D, {fingerprint['channels']} channel(s))",
        ),
        ("median shape", axes(fingerprint["median_shape"])),
        (
            "spacing",
            f"{axes(fingerprint['spacing'])} {fingerprint['unit'] or 'px'} "
            f"(anisotropy {fingerprint['anisotropy']:g})",
        ),
        (
            "intensity",
            f"p1 {intensity['p01']:.4g}, median {intensity['p50']:.4g}, p99.8 {intensity['p99_8']:.4g}",
        ),
    ]
    objects = fingerprint.get("objects")
    if objects:
        rows.append(
            (
                "objects",
                f"{objects['count']}, median {objects['median_voxels']:g} voxels, "
                f"extent {axes(objects['median_extent'])}",
            )
        )
    rows.append(("normalisation", rec["normalization"]))
    recommended = axes(rec["patch_shape"])
    if patch_shape is None or list(patch_shape) == list(rec["patch_shape"]):
        rows.append(("patch", recommended))
    else:
        rows.append(("patch", f"{axes(patch_shape)} (data.patch_shape; recommended {recommended})"))
    if rec.get("min_size") is not None:
        rows.append(("min object size", f"{rec['min_size']} voxels"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
