"""Check label values against what the pipeline declares, before any training step.

A label file whose values do not fit ``data.classes`` (an instance map trained as
classes, a mask saved as 0/255, a stray ``-1``) would otherwise train silently on
wrong targets or crash inside a one-hot encoding. :func:`check_labels` reads a sample
of each label file (evenly spaced slabs along the first spatial axis, at most
``max_voxels`` voxels, so large lazy stacks stay cheap) and raises a
:class:`~medseg.errors.LabelError` that lists the values found, names the file and says
what to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medseg.errors import LabelError
from medseg.options import LabelKind

__all__ = ["check_labels", "label_sample", "source_of"]


def source_of(array: Any) -> str:
    """The file an array was read from (``meta["source"]`` or a lazy array's ``path``)."""
    meta = getattr(array, "meta", None) or {}
    source = meta.get("source") or getattr(array, "path", None)
    return str(source) if source else "<in-memory label>"


def label_sample(label: Any, *, max_voxels: int = 4_000_000) -> np.ndarray:
    """Up to ``max_voxels`` voxels of a ``(C, *spatial)`` label: whole if small, else evenly spaced slabs."""
    shape = tuple(label.shape)
    total = int(np.prod(shape))
    data = label.array if hasattr(label, "array") else label
    if total <= max_voxels:
        return np.asarray(data[...])
    per_slab = total // shape[1]
    n_slabs = max(1, min(shape[1], max_voxels // max(per_slab, 1)))
    picks = np.unique(np.linspace(0, shape[1] - 1, n_slabs).round().astype(int))
    if per_slab > max_voxels:  # one slab is already too big: take a centred block of it
        sub = tuple(slice(max(0, (n - 1024) // 2), max(0, (n - 1024) // 2) + 1024) for n in shape[2:])
        return np.stack([np.asarray(data[(slice(None), int(z), *sub)]) for z in picks])
    return np.stack([np.asarray(data[:, int(z)]) for z in picks])


def check_labels(
    labels: Sequence[Any],
    *,
    label_kind: LabelKind | str,
    classes: Sequence[str] | None = None,
    max_voxels: int = 4_000_000,
) -> None:
    """Raise :class:`LabelError` when a label's sampled values do not fit the declared labels.

    Parameters
    ----------
    labels : sequence
        ``(1, *spatial)`` label maps: :class:`~medseg.io.Volume`, lazy arrays or arrays;
        ``None`` entries (unlabelled cases) are skipped.
    label_kind : {"classes", "instances"}
        ``classes``: values must be class ids ``0 .. len(classes) - 1``; ``instances``:
        non-negative integer ids (0 = background).
    classes : sequence of str
        Class names in id order (``data.classes``), for ``classes``.
    max_voxels : int
        Voxels read per file (see :func:`label_sample`).

    Raises
    ------
    LabelError
        Non-integer values, negative values, or class ids outside ``classes``; the message
        names the file, the values found and the fix.
    """
    for label in labels:
        if label is None:
            continue
        source = source_of(label)
        values = np.unique(label_sample(label, max_voxels=max_voxels))
        if values.dtype.kind == "b":
            values = values.astype(np.uint8)
        integral = values.dtype.kind in "iu" or (
            values.dtype.kind == "f" and np.array_equal(values, np.round(values))
        )
        if not integral:
            raise LabelError(
                f"label {source} holds non-integer values (e.g. {values[:10].tolist()}, dtype {values.dtype}): "
                "label maps hold integer class or instance ids; threshold or round the file"
            )
        if values.size and values.min() < 0:
            raise LabelError(
                f"label {source} holds negative values {values[values < 0][:10].tolist()}: class and instance "
                "ids are >= 0 (0 = background); fix the file"
            )
        if LabelKind.parse(label_kind, option="data.label_kind") is LabelKind.CLASSES:
            names = list(classes or ())
            bad = values[values >= len(names)]
            if bad.size:
                hint = (
                    "it looks like an instance label map (one id per object): set data.label_kind: instances"
                    if values.size > len(names) + 2
                    else "declare the missing classes in data.classes (in id order) or fix the file"
                )
                if set(values.tolist()) <= {0, 255} and len(names) == 2:
                    hint = "it looks like a 0/255 mask: save it as 0/1 (labels // 255)"
                raise LabelError(
                    f"label {source} holds values {bad[:10].tolist()} (all values found: "
                    f"{values[:12].tolist()}{' ...' if values.size > 12 else ''}) that are not class ids of "
                    f"data.classes {names} (0..{len(names) - 1}): {hint}"
                )
