"""Histopathology tile datasets: MoNuSeg 2018 (nuclei) and GlaS 2015 (glands).

MoNuSeg tiles are RGB TIFFs with Aperio ImageScope XML annotations (one polygon per
nucleus); :func:`rasterize_aperio_xml` turns them into an int32 instance label map
(region ``k`` of the file, 1-based, gets id ``k``; where polygons overlap the later
region wins). GlaS images are RGB BMPs with an ``_anno`` BMP instance map (one
integer per gland, 0 = background). Whole-slide images live in :mod:`medseg.data.wsi`.

References
----------
Kumar et al., IEEE TMI 36(7), 2017 and 39(5), 2020 (MoNuSeg).
Sirinukunwattana et al., Medical Image Analysis 35, 2017 (GlaS).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from skimage.draw import polygon as draw_polygon

from medseg.data.sample import Sample
from medseg.errors import ConfigError, DataNotFoundError, FormatError, LabelError
from medseg.io import Volume, read
from medseg.io.paths import check_same_grid, natural_key, require_dir

__all__ = [
    "GLAS_MPP",
    "read_aperio_polygons",
    "rasterize_aperio_xml",
    "get_monuseg_paths",
    "load_monuseg_samples",
    "get_glas_paths",
    "load_glas_samples",
]

logger = logging.getLogger(__name__)

#: GlaS pixel size, microns per pixel (20x).
GLAS_MPP = 0.62005
_GLAS_SPLITS = {
    "train": ("train_",),
    "testA": ("testA_",),
    "testB": ("testB_",),
    "test": ("testA_", "testB_"),
}


def read_aperio_polygons(path: str | Path) -> tuple[list[tuple[str, np.ndarray]], float | None]:
    """Read the polygons of an Aperio ImageScope XML file.

    Returns
    -------
    regions : list of (str, np.ndarray)
        Region ``Id`` attribute and its ``(N, 2)`` float vertices as ``(x, y)``, in file order.
    microns_per_pixel : float or None
        The root's ``MicronsPerPixel`` attribute, if present and positive.

    Raises
    ------
    FormatError
        Not well-formed XML, or a vertex without numeric ``X``/``Y`` (names the region).
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise FormatError(
            f"annotation {path} is not valid XML ({err}): the file is truncated or corrupt"
        ) from err
    except FileNotFoundError as err:
        raise DataNotFoundError(f"annotation {path} does not exist") from err
    regions = []
    for i, region in enumerate(root.iter("Region"), start=1):
        region_id = region.get("Id", str(i))
        try:
            vertices = np.array(
                [(float(v.get("X")), float(v.get("Y"))) for v in region.iter("Vertex")], dtype=np.float64
            ).reshape(-1, 2)
        except (TypeError, ValueError) as err:
            raise FormatError(
                f"annotation {path}, region Id={region_id}: a vertex lacks numeric X/Y ({err})"
            ) from err
        regions.append((region_id, vertices))
    mpp = root.get("MicronsPerPixel")
    try:
        mpp_value = float(mpp) if mpp else None
    except ValueError:
        mpp_value = None
    return regions, (mpp_value if mpp_value and mpp_value > 0 else None)


def rasterize_aperio_xml(
    path: str | Path, shape: tuple[int, int], *, tolerance: float = 1.0, clip: bool = False
) -> np.ndarray:
    """Rasterise an Aperio XML annotation into an instance label map.

    Parameters
    ----------
    path : path
        The ``.xml`` file.
    shape : (int, int)
        ``(Y, X)`` of the tile the annotation belongs to.
    tolerance : float
        Vertices may lie up to this many pixels outside the tile (polygons traced
        along the border) without error.
    clip : bool
        Clip polygons reaching further out instead of raising.

    Returns
    -------
    np.ndarray
        ``(Y, X)`` int32; 0 background, region ``k`` (1-based, file order) has id ``k``.
        Regions with fewer than 3 vertices are skipped with a warning.

    Raises
    ------
    FormatError
        A polygon lies outside the tile (message names the file and the region Id).
    """
    path = Path(path)
    regions, _ = read_aperio_polygons(path)
    height, width = shape
    label = np.zeros(shape, dtype=np.int32)
    for k, (region_id, xy) in enumerate(regions, start=1):
        if len(xy) < 3:
            logger.warning("%s: region Id=%s has %d vertices; skipped", path, region_id, len(xy))
            continue
        x, y = xy[:, 0], xy[:, 1]
        outside = (
            (x < -tolerance) | (y < -tolerance) | (x > width - 1 + tolerance) | (y > height - 1 + tolerance)
        )
        if outside.any() and not clip:
            bad = xy[np.argmax(outside)]
            raise FormatError(
                f"annotation {path}, region Id={region_id}: vertex (x={bad[0]:.1f}, y={bad[1]:.1f}) lies outside "
                f"the {width} x {height} tile: the XML belongs to another image, or pass clip=True"
            )
        rr, cc = draw_polygon(y, x, shape=shape)
        label[rr, cc] = k
    return label


def _find_dir(root: Path, name: str) -> Path:
    if (root / name).is_dir():
        return root / name
    hits = sorted(p for p in root.glob(f"*/{name}") if p.is_dir())
    if not hits:
        raise DataNotFoundError(
            f"no '{name}' folder in {root} or its sub-folders: run `medseg fetch monuseg2018 --root DIR` "
            "or point root at the extracted MoNuSeg folder"
        )
    return hits[0]


def get_monuseg_paths(root: str | Path, split: str = "train") -> list[tuple[Path, Path]]:
    """Pairs ``(image.tif, annotation.xml)`` of MoNuSeg.

    Parameters
    ----------
    root : path
        Folder holding the training folder (with ``Tissue Images/`` and
        ``Annotations/``) and/or ``MoNuSegTestData/``, or one of those folders itself.
    split : {"train", "test"}

    Raises
    ------
    DataNotFoundError
        No images, or an image without its XML (names both).
    """
    root = Path(root)
    if split == "train":
        image_dir = _find_dir(root, "Tissue Images")
        label_dir = image_dir.parent / "Annotations"
    elif split == "test":
        image_dir = root if root.name == "MoNuSegTestData" else _find_dir(root, "MoNuSegTestData")
        label_dir = image_dir
    else:
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    images = sorted(image_dir.glob("*.tif"), key=natural_key)
    if not images:
        raise DataNotFoundError(f"no .tif images in {image_dir}")
    pairs = []
    for image in images:
        xml = label_dir / f"{image.stem}.xml"
        if not xml.is_file():
            raise DataNotFoundError(
                f"no label for case '{image.stem}' (expected {xml}): add the annotation or remove the image"
            )
        pairs.append((image, xml))
    return pairs


def _rgb_volume(path: Path, spacing: tuple[float, float] | None, unit: str | None) -> Volume:
    """An RGB tile ``(3, Y, X)`` (grey repeated, alpha dropped) with the dataset's pixel size."""
    volume = read(path)
    image = volume.array
    if volume.ndim != 2 or image.shape[0] not in (1, 3, 4):
        raise FormatError(f"{path} has shape {image.shape}, expected an RGB image (3, Y, X)")
    image = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image[:3]
    return Volume(image, spacing=spacing, meta=volume.meta, unit=unit)


def load_monuseg_samples(root: str | Path, split: str = "train", *, clip: bool = False) -> list[Sample]:
    """MoNuSeg tiles as samples: image ``(3, Y, X)`` uint8, label ``(1, Y, X)`` int32 instance ids.

    Spacing is the XML's ``MicronsPerPixel`` (unit ``um`` in ``meta``) when present,
    else 1 pixel.
    """
    samples = []
    for image_path, xml_path in get_monuseg_paths(root, split):
        _, mpp = read_aperio_polygons(xml_path)
        spacing = None if mpp is None else (mpp, mpp)
        unit = "um" if mpp else None
        image = _rgb_volume(image_path, spacing, unit)
        label = rasterize_aperio_xml(xml_path, image.spatial_shape, clip=clip)
        samples.append(
            Sample(
                image=image,
                label=Volume(
                    label[None],
                    spacing=spacing,
                    meta={"source": str(xml_path), "kind": "instance"},
                    unit=unit,
                ),
                case_id=image_path.stem,
                modality="histo",
            )
        )
    return samples


def get_glas_paths(root: str | Path, split: str = "train") -> list[tuple[Path, Path]]:
    """Pairs ``(image.bmp, image_anno.bmp)`` of GlaS.

    Parameters
    ----------
    root : path
        Folder with ``train_N.bmp``/``train_N_anno.bmp``... or a folder containing it.
    split : {"train", "testA", "testB", "test"}
        ``test`` = Test A and Test B.
    """
    if split not in _GLAS_SPLITS:
        raise ConfigError(f"split must be one of {sorted(_GLAS_SPLITS)}, got {split!r}")
    root = require_dir(Path(root), "GlaS folder", "run `medseg fetch glas2015 --root DIR`")
    folders = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    images: list[Path] = []
    for folder in folders:
        for prefix in _GLAS_SPLITS[split]:
            images += [p for p in folder.glob(f"{prefix}*.bmp") if not p.stem.endswith("_anno")]
        if images:
            break
    if not images:
        raise DataNotFoundError(f"no GlaS {split} images ({'/'.join(_GLAS_SPLITS[split])}*.bmp) in {root}")
    pairs = []
    for image in sorted(images, key=natural_key):
        anno = image.with_name(f"{image.stem}_anno.bmp")
        if not anno.is_file():
            raise DataNotFoundError(
                f"no label for case '{image.stem}' (expected {anno}): add it or drop the case"
            )
        pairs.append((image, anno))
    return pairs


def _instance_map(path: Path) -> np.ndarray:
    """The ``(Y, X)`` int32 gland ids of a GlaS annotation (greyscale, indexed, or RGB with equal channels)."""
    array = read(path).array
    if not all(np.array_equal(array[0], array[c]) for c in range(1, array.shape[0])):
        raise LabelError(
            f"annotation {path} is a colour image with different channels: expected a greyscale/indexed "
            "instance map (one integer per gland)"
        )
    array = array[0]
    if not np.issubdtype(array.dtype, np.integer):
        raise LabelError(f"annotation {path} has dtype {array.dtype}, expected integer instance ids")
    return array.astype(np.int32)


def load_glas_samples(root: str | Path, split: str = "train") -> list[Sample]:
    """GlaS images as samples: image ``(3, Y, X)`` uint8, label ``(1, Y, X)`` int32 gland ids; spacing in um."""
    spacing = (GLAS_MPP, GLAS_MPP)
    samples = []
    for image_path, anno_path in get_glas_paths(root, split):
        image = _rgb_volume(image_path, spacing, "um")
        label = _instance_map(anno_path)
        check_same_grid(image.spatial_shape, label.shape, image_path, anno_path)
        samples.append(
            Sample(
                image=image,
                label=Volume(
                    label[None],
                    spacing=spacing,
                    meta={"source": str(anno_path), "kind": "instance"},
                    unit="um",
                ),
                case_id=image_path.stem,
                modality="histo",
            )
        )
    return samples
