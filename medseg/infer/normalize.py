"""Intensity normalisation shared by training and inference, and its policy for NaN/inf voxels.

Files are read as stored, NaN and inf included (:func:`medseg.io.read`). This is the
place that consumes intensities, so it decides what non-finite voxels mean, by the
pipeline option ``data.nonfinite``:

- ``error`` (default): stop, naming the file and the option;
- ``zero``: non-finite voxels become 0 before the statistics and the normalisation;
- ``min``: they become the smallest finite value of their channel in the training images.

The choice and the fill values are stored with the statistics in the checkpoint, so
prediction treats its images exactly as training did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from medseg.errors import ConfigError, DataValueError

__all__ = ["NONFINITE_POLICIES", "ZScore"]

logger = logging.getLogger(__name__)

NonFinite = Literal["error", "zero", "min"]
#: Values of ``data.nonfinite``.
NONFINITE_POLICIES: tuple[str, ...] = ("error", "zero", "min")


def _name(image: Any, index: int) -> str:
    meta = getattr(image, "meta", None) or {}
    source = meta.get("source") or getattr(image, "path", None)
    if isinstance(source, (list, tuple)):
        source = ", ".join(map(str, source))
    return str(source) if source else f"training image {index}"


def _as_array(image: Any) -> np.ndarray:
    """The ``(C, *spatial)`` data of an array, a :class:`~medseg.io.Volume` or a lazy array."""
    if hasattr(image, "array"):
        return np.asarray(image.array)
    if hasattr(image, "read"):
        return np.asarray(image.read())
    return np.asarray(image)


def _nonfinite_error(count: int, total: int, source: str) -> DataValueError:
    return DataValueError(
        f"{source} holds {count} non-finite value(s) (NaN or inf) out of {total}: set the pipeline "
        "option data.nonfinite to 'zero' or 'min' to replace them (e.g. --set data.nonfinite=zero), "
        "or clean the file"
    )


@dataclass(frozen=True)
class ZScore:
    """``(x - mean) / std`` with statistics of the training images (per channel).

    Stored in checkpoints (:meth:`to_dict`) so that prediction normalises exactly as training did.

    Parameters
    ----------
    mean, std : tuple of float
        Per-channel statistics.
    nonfinite : {"error", "zero", "min"}
        What NaN/inf voxels become (see the module docstring).
    fill : tuple of float or None
        Per-channel replacement for non-finite voxels (``None`` with ``error``).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    nonfinite: NonFinite = "error"
    fill: tuple[float, ...] | None = None

    @classmethod
    def fit(cls, images: Iterable[Any], *, nonfinite: str = "error") -> ZScore:
        """Statistics over ``(C, *spatial)`` images (all voxels of all images, per channel).

        Parameters
        ----------
        images : iterable
            Arrays, :class:`~medseg.io.Volume` s or lazy arrays; the latter two are named by
            their source file in errors and warnings.
        nonfinite : {"error", "zero", "min"}
            The ``data.nonfinite`` policy.

        Raises
        ------
        DataValueError
            NaN/inf with ``nonfinite="error"`` (names the file and the option), no images,
            or every image constant in a channel (names the files: nothing to learn from).
        ConfigError
            Unknown ``nonfinite`` value.
        """
        if nonfinite not in NONFINITE_POLICIES:
            raise ConfigError(
                f"data.nonfinite must be one of {', '.join(NONFINITE_POLICIES)}, got {nonfinite!r}"
            )
        total = count = squares = None
        lowest: np.ndarray | None = None
        names: list[str] = []
        pending: list[tuple[int, np.ndarray]] = []  # images whose non-finite voxels await the min fill
        for index, image in enumerate(images):
            name = _name(image, index)
            names.append(name)
            array = _as_array(image)
            flat = array.astype(np.float64).reshape(array.shape[0], -1)
            finite = np.isfinite(flat)
            if not finite.all():
                if nonfinite == "error":
                    raise _nonfinite_error(int(flat.size - finite.sum()), flat.size, name)
                logger.info(
                    "%s: %d non-finite voxel(s) set by data.nonfinite=%s", name, (~finite).sum(), nonfinite
                )
            with np.errstate(invalid="ignore"):
                low = np.where(finite, flat, np.inf).min(axis=1)
            lowest = low if lowest is None else np.minimum(lowest, low)
            if nonfinite == "min" and not finite.all():
                pending.append((flat.shape[1], np.where(finite, flat, np.nan)))
                continue
            flat = np.where(finite, flat, 0.0)
            if flat.shape[1] and np.all(flat.max(axis=1) == flat.min(axis=1)):
                logger.warning("%s is constant (value %s): it carries no contrast", name, flat[:, 0].tolist())
            s, q, n = flat.sum(1), (flat**2).sum(1), flat.shape[1]
            total, squares, count = (s, q, n) if total is None else (total + s, squares + q, count + n)
        if lowest is None:
            raise DataValueError("cannot fit a normalisation on zero images")
        lowest = np.where(np.isfinite(lowest), lowest, 0.0)
        for n, flat in pending:
            flat = np.where(np.isnan(flat), lowest[:, None], flat)
            s, q = flat.sum(1), (flat**2).sum(1)
            total, squares, count = (s, q, n) if total is None else (total + s, squares + q, count + n)
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        flat_channels = [c for c, s in enumerate(std) if s <= 1e-12 * max(1.0, abs(mean[c]))]
        if flat_channels:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise DataValueError(
                f"every training image is constant in channel(s) {flat_channels} (value "
                f"{[float(mean[c]) for c in flat_channels]}): {shown}; the images are blank or "
                "were saved wrongly (e.g. all zero), check the files"
            )
        fill = None
        if nonfinite == "zero":
            fill = (0.0,) * len(mean)
        elif nonfinite == "min":
            fill = tuple(float(v) for v in lowest)
        return cls(tuple(float(m) for m in mean), tuple(float(max(s, 1e-8)) for s in std), nonfinite, fill)  # type: ignore[arg-type]

    def __call__(self, image: np.ndarray, *, channel_axis: int = 0, source: str | None = None) -> np.ndarray:
        """Normalise an array whose ``channel_axis`` holds the channels (0 for ``(C, *spatial)``) to float32.

        Non-finite voxels are replaced by the fitted ``fill``; with ``nonfinite="error"``
        they raise :class:`DataValueError` naming ``source`` (the image's file) and the option.
        """
        image = np.array(image, dtype=np.float32)  # one float32 copy, normalised in place below
        if image.shape[channel_axis] != len(self.mean):
            got, want = image.shape[channel_axis], len(self.mean)
            raise DataValueError(
                f"{source or 'the image'} has {got} channel(s) but the model was trained on {want} (its "
                f"normalisation and input layer): pass images with {want} channel(s) (split or convert "
                f"them), or a checkpoint trained on {got}-channel images"
            )
        shape = [1] * image.ndim
        shape[channel_axis] = len(self.mean)
        finite = np.isfinite(image)
        if not finite.all():
            if self.fill is None:
                raise _nonfinite_error(int(image.size - finite.sum()), image.size, source or "the image")
            image = np.where(finite, image, np.asarray(self.fill, dtype=np.float32).reshape(shape))
        image -= np.asarray(self.mean, dtype=np.float32).reshape(shape)
        image /= np.asarray(self.std, dtype=np.float32).reshape(shape)
        return image

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "nonfinite": self.nonfinite,
            "fill": None if self.fill is None else list(self.fill),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ZScore:
        """The normalisation a checkpoint stores (:meth:`to_dict`).

        Validated (finite mean, finite positive std) by :class:`~medseg.checkpoint_meta.CheckpointMeta`.
        """
        fill = data.get("fill")
        return cls(
            tuple(data["mean"]),
            tuple(data["std"]),
            data.get("nonfinite", "error"),
            None if fill is None else tuple(fill),
        )
