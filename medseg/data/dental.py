"""ISBI 2015 bitewing radiographs (caries challenge): images plus one binary mask per class.

Layout (from public loaders; see ``data_manifests/dental_isbi2015.yaml``)::

    v2-TrainingData/1.bmp ... 40.bmp
    v2-TrainingData/1/1_1.bmp ... 1_7.bmp      # mask k = class k

The mask index -> class mapping is **not confirmed** by any primary source.
:data:`DENTAL_CLASSES` (defined once, in :mod:`medseg.labels`) is medseg's assumption:
mask ``i_k.bmp`` is class ``k`` with name ``DENTAL_CLASSES[k]`` (index 0 is
background). Masks may overlap; they are merged into one label map by painting
them in :data:`PAINT_ORDER`, so a later class wins (caries on top of enamel or
dentin, restoration on top of the tooth).

References
----------
Wang et al., Medical Image Analysis 31:63-76, 2016.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from medseg.data.sample import Sample
from medseg.errors import DataNotFoundError, LabelError
from medseg.io import Volume, read
from medseg.io.paths import check_same_grid, natural_key, require_dir
from medseg.labels import DENTAL_CLASSES

__all__ = ["DENTAL_CLASSES", "PAINT_ORDER", "get_dental_paths", "masks_to_label", "load_dental_samples"]

logger = logging.getLogger(__name__)

#: Class ids in painting order where masks overlap (last wins): tooth tissue first, lesions last.
PAINT_ORDER: tuple[int, ...] = (
    DENTAL_CLASSES.index("dentin"),
    DENTAL_CLASSES.index("enamel"),
    DENTAL_CLASSES.index("pulp"),
    DENTAL_CLASSES.index("root_canal_treatment"),
    DENTAL_CLASSES.index("crown"),
    DENTAL_CLASSES.index("restoration"),
    DENTAL_CLASSES.index("caries"),
)
_N_MASKS = len(DENTAL_CLASSES) - 1


def get_dental_paths(root: str | Path, *, folder: str = "v2-TrainingData") -> list[tuple[Path, list[Path]]]:
    """Images and their 7 class masks.

    Parameters
    ----------
    root : path
        Folder containing ``folder`` (or ``folder`` itself).
    folder : str
        ``v2-TrainingData`` for the training set.

    Returns
    -------
    list of (Path, list of Path)
        ``(i.bmp, [i/i_1.bmp, ..., i/i_7.bmp])`` in natural order.

    Raises
    ------
    DataNotFoundError
        No images, or an image without its mask folder or one of its 7 masks.
    """
    root = Path(root)
    data = root if root.name == folder else root / folder
    require_dir(data, "ISBI 2015 dental folder", "run `medseg fetch dental_isbi2015 --root DIR --from ...`")
    images = sorted(data.glob("*.bmp"), key=natural_key)
    if not images:
        raise DataNotFoundError(f"no .bmp images in {data}")
    pairs = []
    for image in images:
        case = image.stem
        masks = [data / case / f"{case}_{k}.bmp" for k in range(1, _N_MASKS + 1)]
        missing = [m for m in masks if not m.is_file()]
        if missing:
            raise DataNotFoundError(
                f"no label for case '{case}' (expected {len(masks)} masks {data / case}/{case}_1.bmp ... "
                f"{case}_{_N_MASKS}.bmp, missing {[m.name for m in missing]}): add them or remove {image.name}"
            )
        pairs.append((image, masks))
    return pairs


def _binary(mask: np.ndarray, path: Path) -> np.ndarray:
    if mask.ndim == 3:  # (C, Y, X) as read: an RGB mask repeats the value in every channel
        mask = mask[0]
    values = np.unique(mask)
    if len(values) > 2 or (len(values) == 2 and values[0] != 0):
        raise LabelError(
            f"mask {path} holds values {values[:10].tolist()}: expected a binary mask (0 and one foreground value)"
        )
    return mask != 0


def masks_to_label(masks: list[np.ndarray], *, sources: list[Path] | None = None) -> np.ndarray:
    """Merge per-class binary masks (mask ``k-1`` = class ``k``) into one uint8 label map.

    Overlaps are resolved by :data:`PAINT_ORDER`. Raises LabelError for non-binary masks.
    """
    if len(masks) != _N_MASKS:
        raise LabelError(f"expected {_N_MASKS} masks (one per class of DENTAL_CLASSES), got {len(masks)}")
    sources = sources or [Path(f"<mask {k}>") for k in range(1, _N_MASKS + 1)]
    binary = [_binary(m, s) for m, s in zip(masks, sources, strict=True)]
    label = np.zeros(binary[0].shape, dtype=np.uint8)
    for class_id in PAINT_ORDER:
        label[binary[class_id - 1]] = class_id
    return label


def load_dental_samples(root: str | Path, *, folder: str = "v2-TrainingData") -> list[Sample]:
    """Bitewing samples: image ``(1, Y, X)`` (grey; RGB BMPs are averaged), label ``(1, Y, X)`` uint8 class ids.

    Class ids follow :data:`DENTAL_CLASSES` (medseg's assumption, see module docs).
    """
    samples = []
    for image_path, mask_paths in get_dental_paths(root, folder=folder):
        image = read(image_path).array
        image = image[0] if image.shape[0] == 1 else image[:3].mean(axis=0).round().astype(image.dtype)
        masks = [read(p).array for p in mask_paths]
        for m, p in zip(masks, mask_paths, strict=True):
            check_same_grid(image.shape, m.shape[1:], image_path, p)
        label = masks_to_label(masks, sources=mask_paths)
        meta = {"source": str(image_path), "classes": DENTAL_CLASSES}
        samples.append(
            Sample(
                image=Volume(image[None], meta=meta),
                label=Volume(label[None], meta={**meta, "source": str(mask_paths[0].parent)}),
                case_id=image_path.stem,
                modality="dental",
            )
        )
    return samples
