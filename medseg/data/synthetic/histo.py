"""Synthetic H&E tiles with ground truth, written in MoNuSeg and GlaS layouts.

A tile has pink eosin-stained stroma, glands (a ring of purple epithelium around a
pale lumen) and dark-purple nuclei that touch and overlap. Nuclei are polygons,
rasterised in order (later ones on top), exactly as
:func:`medseg.data.histo.rasterize_aperio_xml` does, so a written MoNuSeg XML
round-trips to the same instance map.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from medseg.data.synthetic._shapes import blob_polygon, fill_polygon, smooth_noise
from medseg.errors import ConfigError

__all__ = ["SyntheticHisto", "make_histo_tile", "aperio_xml", "write_monuseg", "write_glas"]

_STROMA = np.array([226, 160, 196], dtype=np.float64)
_BACKGROUND = np.array([244, 236, 242], dtype=np.float64)
_EPITHELIUM = np.array([178, 118, 178], dtype=np.float64)
_LUMEN = np.array([240, 226, 236], dtype=np.float64)
_NUCLEUS = np.array([82, 48, 128], dtype=np.float64)


@dataclass(frozen=True)
class SyntheticHisto:
    """A synthetic H&E tile.

    Attributes
    ----------
    image : np.ndarray
        ``(Y, X, 3)`` uint8 RGB.
    nuclei : np.ndarray
        ``(Y, X)`` int32 nucleus instance ids (0 background), id ``k`` = polygon ``k-1``.
    glands : np.ndarray
        ``(Y, X)`` int32 gland instance ids.
    nucleus_polygons : list of np.ndarray
        ``(N, 2)`` ``(x, y)`` vertices per nucleus, in id order.
    """

    image: np.ndarray
    nuclei: np.ndarray
    glands: np.ndarray
    nucleus_polygons: list[np.ndarray]


def make_histo_tile(
    shape: tuple[int, int] = (256, 256),
    *,
    n_nuclei: int = 60,
    n_glands: int = 2,
    nucleus_radius: float = 6.0,
    seed: int = 0,
) -> SyntheticHisto:
    """Generate one H&E-like tile with touching nuclei and glands.

    Parameters
    ----------
    shape : (int, int)
        ``(Y, X)``.
    n_nuclei : int
        Nuclei to place (about a third are seeded next to an earlier one so they touch).
    n_glands : int
        Glands (elliptic rings of epithelium around a lumen).
    nucleus_radius : float
        Mean nucleus radius in pixels.
    seed : int
        Same seed, same tile.
    """
    if len(shape) != 2 or min(shape) < 16:
        raise ConfigError(f"shape must be (Y, X) with sizes >= 16, got {shape}")
    rng = np.random.default_rng(seed)
    h, w = shape
    glands = np.zeros(shape, dtype=np.int32)
    lumen = np.zeros(shape, dtype=bool)
    for g in range(1, n_glands + 1):
        center = (rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w)
        radii = (rng.uniform(0.12, 0.2) * h, rng.uniform(0.12, 0.2) * w)
        angle = rng.uniform(0, np.pi)
        outer = fill_polygon(shape, blob_polygon(center, radii, angle, rng, n_vertices=32, jitter=0.06))
        inner = fill_polygon(
            shape,
            blob_polygon(center, (radii[0] * 0.55, radii[1] * 0.55), angle, rng, n_vertices=32, jitter=0.06),
        )
        glands[outer & (glands == 0)] = g
        lumen |= inner & (glands == g)

    polygons: list[np.ndarray] = []
    centers: list[tuple[float, float]] = []
    nuclei = np.zeros(shape, dtype=np.int32)
    for k in range(1, n_nuclei + 1):
        r = nucleus_radius * rng.uniform(0.7, 1.3)
        if centers and rng.random() < 0.35:  # touch a previous nucleus
            cy, cx = centers[int(rng.integers(len(centers)))]
            a = rng.uniform(0, 2 * np.pi)
            center = (cy + 1.7 * r * np.sin(a), cx + 1.7 * r * np.cos(a))
        else:
            center = (rng.uniform(r, h - r), rng.uniform(r, w - r))
        center = (float(np.clip(center[0], r + 1, h - r - 2)), float(np.clip(center[1], r + 1, w - r - 2)))
        xy = blob_polygon(center, (r, r * rng.uniform(0.7, 1.0)), rng.uniform(0, np.pi), rng, n_vertices=18)
        xy = np.round(np.clip(xy, 0, [w - 1, h - 1]), 3)  # as written to XML, so it round-trips exactly
        polygons.append(xy)
        centers.append(center)
        nuclei[fill_polygon(shape, xy)] = k

    image = np.empty((*shape, 3), dtype=np.float64)
    image[:] = _STROMA
    image[glands > 0] = _EPITHELIUM
    image[lumen] = _LUMEN
    image[nuclei > 0] = _NUCLEUS
    texture = smooth_noise(shape, 2.0, rng)[..., None]
    image += 10 * texture + rng.normal(0, 4, size=image.shape)
    image = ndimage.gaussian_filter(image, sigma=(0.7, 0.7, 0))
    corner = fill_polygon(shape, blob_polygon((0, 0), (h * 0.18, w * 0.18), 0.0, rng))
    image[corner & (glands == 0) & (nuclei == 0)] = _BACKGROUND  # a bit of glass, as at tissue edges
    return SyntheticHisto(
        image=np.clip(np.rint(image), 0, 255).astype(np.uint8),
        nuclei=nuclei,
        glands=glands,
        nucleus_polygons=polygons,
    )


def aperio_xml(polygons: list[np.ndarray], *, microns_per_pixel: float | None = 0.25) -> str:
    """Aperio ImageScope XML with one ``Region`` per polygon (``Id`` 1, 2, ...)."""
    root = ET.Element("Annotations")
    if microns_per_pixel:
        root.set("MicronsPerPixel", f"{microns_per_pixel:.6f}")
    annotation = ET.SubElement(root, "Annotation", Id="1", Name="", ReadOnly="0", LineColor="65280")
    regions = ET.SubElement(annotation, "Regions")
    ET.SubElement(regions, "RegionAttributeHeaders")
    for i, xy in enumerate(polygons, start=1):
        region = ET.SubElement(regions, "Region", Id=str(i), Type="0", Zoom="1", Selected="0")
        ET.SubElement(region, "Attributes")
        vertices = ET.SubElement(region, "Vertices")
        for x, y in xy:
            ET.SubElement(vertices, "Vertex", X=f"{x:.3f}", Y=f"{y:.3f}", Z="0")
    ET.SubElement(annotation, "Plots")
    return ET.tostring(root, encoding="unicode")


def write_monuseg(
    root: str | Path,
    *,
    n_images: int = 2,
    shape: tuple[int, int] = (128, 128),
    n_nuclei: int = 40,
    seed: int = 0,
    split: str = "train",
) -> list[tuple[Path, Path, np.ndarray]]:
    """Write tiles in MoNuSeg's layout.

    ``train``: ``<root>/MoNuSeg 2018 Training Data/Tissue Images/<case>.tif`` and
    ``.../Annotations/<case>.xml``; ``test``: ``<root>/MoNuSegTestData/<case>.tif`` + ``.xml``.

    Returns
    -------
    list of (Path, Path, np.ndarray)
        Image path, XML path and the ground-truth instance map per case.
    """
    import tifffile

    root = Path(root)
    if split == "train":
        image_dir = root / "MoNuSeg 2018 Training Data" / "Tissue Images"
        xml_dir = image_dir.parent / "Annotations"
    elif split == "test":
        image_dir = xml_dir = root / "MoNuSegTestData"
    else:
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    image_dir.mkdir(parents=True, exist_ok=True)
    xml_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n_images):
        tile = make_histo_tile(shape, n_nuclei=n_nuclei, n_glands=0, seed=seed + i)
        case = f"TCGA-SY-{seed + i:04d}-01Z-00-DX1"
        image_path, xml_path = image_dir / f"{case}.tif", xml_dir / f"{case}.xml"
        tifffile.imwrite(image_path, tile.image, photometric="rgb")
        xml_path.write_text(aperio_xml(tile.nucleus_polygons))
        out.append((image_path, xml_path, tile.nuclei))
    return out


def write_glas(
    root: str | Path,
    *,
    n_train: int = 2,
    n_test_a: int = 1,
    n_test_b: int = 0,
    shape: tuple[int, int] = (96, 128),
    seed: int = 0,
) -> list[tuple[Path, Path, np.ndarray]]:
    """Write tiles in GlaS's layout: ``train_N.bmp`` + ``train_N_anno.bmp`` (8-bit gland ids), ``testA_N``...

    Files go to ``<root>/Warwick QU Dataset (Released 2016_07_08)/``.

    Returns
    -------
    list of (Path, Path, np.ndarray)
        Image, annotation and the gland instance map per case.
    """
    from PIL import Image

    folder = Path(root) / "Warwick QU Dataset (Released 2016_07_08)"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    k = 0
    for prefix, count in (("train", n_train), ("testA", n_test_a), ("testB", n_test_b)):
        for i in range(1, count + 1):
            tile = make_histo_tile(shape, n_nuclei=25, n_glands=3, seed=seed + k)
            k += 1
            image_path, anno_path = folder / f"{prefix}_{i}.bmp", folder / f"{prefix}_{i}_anno.bmp"
            Image.fromarray(tile.image, mode="RGB").save(image_path)
            Image.fromarray(tile.glands.astype(np.uint8), mode="L").save(anno_path)
            out.append((image_path, anno_path, tile.glands))
    return out
