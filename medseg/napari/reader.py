"""napari reader: medseg's outputs open with their geometry (scale = spacing, translate = origin).

- ``.ome.zarr`` label images (``medseg predict --ome-zarr``): every pyramid level, as one
  multiscale labels layer, lazily (zarr arrays), scale/translation from the NGFF metadata;
- label maps and images in any format :func:`medseg.io.read` takes: integer maps open as
  labels layers, other arrays as image layers (channels split);
- a run or prediction folder: its label maps (``validation/predictions/``,
  ``predictions/`` or the folder itself) as labels layers.

Plain functions returning napari's layer-data tuples ``(data, kwargs, layer_type)``; napari
itself is not imported, so they are tested without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import MedsegError
from medseg.io import SUPPORTED_SUFFIXES, Volume, read, suffix_of

__all__ = ["get_reader", "layer_geometry", "read_layers"]

logger = logging.getLogger(__name__)

LayerData = tuple[Any, dict[str, Any], str]
_FOLDERS = ("validation/predictions", "predictions", ".")


def _ome_zarr_layers(path: Path) -> list[LayerData]:
    import zarr

    group = zarr.open_group(str(path), mode="r")
    ome: Any = group.attrs.get("ome") or {}  # NGFF metadata: JSON, read as the specification lays it out
    (multiscale,) = ome.get("multiscales") or [None]
    if multiscale is None:
        raise ValueError(f"{path} has no OME multiscales")
    levels: list[Any] = [group[d["path"]] for d in multiscale["datasets"]]
    transforms = {t["type"]: t for t in multiscale["datasets"][0].get("coordinateTransformations", [])}
    scale = transforms.get("scale", {}).get("scale", [1.0] * levels[0].ndim)
    translate = transforms.get("translation", {}).get("translation", [0.0] * levels[0].ndim)
    units = [a.get("unit") for a in multiscale.get("axes", [])]
    kwargs = {
        "name": path.name[: -len(".ome.zarr")],
        "scale": list(scale),
        "translate": list(translate),
        "multiscale": len(levels) > 1,
        "metadata": {"source": str(path), "units": units},
    }
    kind = "labels" if "image-label" in ome or np.issubdtype(levels[0].dtype, np.integer) else "image"
    return [(levels if len(levels) > 1 else levels[0], kwargs, kind)]


def layer_geometry(volume: Volume) -> dict[str, list[float]]:
    """napari's ``scale`` and ``translate`` of a volume: its spacing and origin (array axis order)."""
    spatial = len(volume.spatial_shape)  # Volume fills a missing spacing/origin with ones/zeros
    return {
        "scale": list(volume.spacing or (1.0,) * spatial),
        "translate": list(volume.origin or (0.0,) * spatial),
    }


def _volume_layers(volume: Volume, name: str) -> list[LayerData]:
    kwargs: dict[str, Any] = {
        "name": name,
        **layer_geometry(volume),
        "metadata": {
            "source": volume.meta.get("source"),
            "unit": volume.unit,
            "classes": volume.meta.get("classes"),
        },
    }
    integer = np.issubdtype(volume.dtype, np.integer) and volume.num_channels == 1
    # a uint8 map with few values is a label map; a uint8 grey picture is an image
    if integer and (volume.dtype != np.uint8 or int(volume.array.max(initial=0)) < 64):
        return [(volume.array[0], kwargs, "labels")]
    if volume.num_channels > 1:
        return [(volume.array, {**kwargs, "channel_axis": 0}, "image")]
    return [(volume.array[0], kwargs, "image")]


def _name(path: Path) -> str:
    try:
        return path.name[: -len(suffix_of(path))]
    except MedsegError:
        return path.name


def read_layers(path: str | Path) -> list[LayerData]:
    """Layer-data tuples of a medseg output file or folder (see the module docstring)."""
    path = Path(path)
    if path.name.lower().endswith(".ome.zarr"):
        return _ome_zarr_layers(path)
    if path.is_dir() and not path.name.lower().endswith(".zarr"):
        layers: list[LayerData] = []
        for folder in _FOLDERS:
            for file in sorted((path / folder).glob("*")) if (path / folder).is_dir() else []:
                if _readable(file) and not file.name.startswith("."):
                    layers += read_layers(file)
            if layers:
                return layers
        return layers
    return _volume_layers(read(path), _name(path))


def _readable(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(".ome.zarr"):
        return True
    return name.endswith(tuple(SUPPORTED_SUFFIXES)) and not name.endswith((".png", ".jpg", ".jpeg", ".bmp"))


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """napari's reader hook: a reader for medseg outputs, or ``None`` for paths it does not know."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    candidate = Path(path)
    if candidate.is_dir() and not candidate.name.lower().endswith(".zarr"):
        has_outputs = (
            any((candidate / f).is_dir() for f in _FOLDERS[:2]) or (candidate / "checkpoints").is_dir()
        )
        return _reader if has_outputs else None
    return _reader if _readable(candidate) else None


def _reader(path: str | list[str]) -> list[LayerData]:
    return read_layers(path[0] if isinstance(path, list) else path)
