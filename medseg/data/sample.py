"""The ``Sample`` type: one case of a dataset."""

from __future__ import annotations

from dataclasses import dataclass

from medseg.io.volume import Volume

__all__ = ["Sample"]


@dataclass(frozen=True)
class Sample:
    """An image, its label map if there is one, and where it came from.

    Parameters
    ----------
    image : Volume
        ``(C, [Z,] Y, X)`` image.
    label : Volume or None
        ``(1, [Z,] Y, X)`` integer label map on the image's grid (class ids or
        instance ids, as the dataset's manifest says), ``None`` for unlabelled cases.
    case_id : str
        Stable name of the case (used to match predictions and ground truth).
    modality : str
        ``"em"``, ``"histo"``, ``"dental"``, ``"volume"``, ``"cells"``...
    """

    image: Volume
    label: Volume | None
    case_id: str
    modality: str
