"""Challenge submission formats: ISBI 2012, CTC, GlaS, MoNuSeg, dental, CREMI, generic label and instance maps.

Each format is a :class:`SubmissionFormat` with ``write`` (validating, atomic),
``read`` and ``case_files`` (case id -> file in a prediction or reference folder).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseg.errors import FormatError
from medseg.eval.formats._io import atomic_write, read_volume, stored_array
from medseg.io import Volume, write
from medseg.labels import CREMI_NEURON_IDS_KEY, DENTAL_CLASSES

__all__ = ["DENTAL_CLASSES", "SubmissionFormat", "FORMATS"]


@dataclass(frozen=True)
class SubmissionFormat:
    """One challenge file format.

    Attributes
    ----------
    name : str
        Registry name (``medseg predict/evaluate --format NAME``).
    kind : str
        What the files hold: ``"probability"``, ``"instances"`` or ``"classes"``.
    write : callable
        ``write(array, out_dir, case_id, **geometry) -> Path``.
    read : callable
        ``read(path) -> Volume``: the file's data as a one-channel ``(1, *spatial)``
        :class:`~medseg.io.Volume` with the geometry the file carries (spacing,
        origin, direction; defaults for files without any, such as BMP).
    pred_pattern, gt_pattern : str
        Regular expressions whose group ``case`` is the case id of a prediction /
        reference file name.
    """

    name: str
    kind: str
    description: str
    write: Callable[..., Path]
    read: Callable[[Path], Volume]
    pred_pattern: str
    gt_pattern: str

    def case_files(self, folder: Path, *, reference: bool = False) -> dict[str, Path]:
        pattern = re.compile(self.gt_pattern if reference else self.pred_pattern)
        out = {}
        for path in sorted(Path(folder).rglob("*") if reference else Path(folder).iterdir()):
            m = pattern.fullmatch(path.name)
            if m and (path.is_file() or (path.suffix == ".zarr" and path.is_dir())):
                out[m.group("case")] = path
        return out


def _check_integer(array: np.ndarray, name: str, *, max_value: int, what: str, fix: str) -> np.ndarray:
    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise FormatError(f"{name}: {what} must be integer labels, got dtype {arr.dtype}; {fix}")
    if arr.size and (arr.min() < 0 or arr.max() > max_value):
        raise FormatError(
            f"{name}: {what} values must be in [0, {max_value}], got [{arr.min()}, {arr.max()}]; {fix}"
        )
    return arr


def _safe_case(case_id: str) -> str:
    case = str(case_id)
    if not case or "/" in case or "\\" in case or case.startswith("."):
        raise FormatError(f"case id {case_id!r} cannot be a file name; use letters, digits, '_' or '-'")
    return case


# ----------------------------------------------------------------- ISBI 2012


def _isbi_write(array: np.ndarray, out_dir: Path, case_id: str, **geometry) -> Path:
    import tifffile

    arr = np.asarray(array)
    if arr.ndim not in (2, 3) or not np.issubdtype(arr.dtype, np.floating):
        raise FormatError(
            f"ISBI 2012 submission for {case_id!r} must be a float (Z, Y, X) membrane probability map, "
            f"got dtype {arr.dtype} shape {arr.shape}; pass probabilities, not labels"
        )
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise FormatError(
            f"ISBI 2012 submission for {case_id!r} must hold values in [0, 1] "
            "(0 = membrane, 1 = non-membrane); apply a sigmoid/softmax and invert a membrane head (1 - p)"
        )
    data = np.ascontiguousarray(arr.astype(np.float32))
    path = Path(out_dir) / f"{_safe_case(case_id)}.tif"
    return atomic_write(path, lambda tmp: tifffile.imwrite(tmp, data, photometric="minisblack"))


def _single_channel(volume: Volume, array: np.ndarray) -> Volume:
    return volume.with_array(np.asarray(array)[None])


def _isbi_read(path: Path) -> Volume:
    volume = read_volume(path, greyscale=True)
    return _single_channel(volume, stored_array(volume))


# ----------------------------------------------------------------- Cell Tracking Challenge


def _ctc_name(case_id: str | int, prefix: str) -> str:
    digits = re.sub(r"\D", "", str(case_id))
    if not digits:
        raise FormatError(f"CTC case id {case_id!r} must be a frame number such as 7, '007' or 't007'")
    t = int(digits)
    return f"{prefix}{t:03d}.tif" if t <= 999 else f"{prefix}{t:04d}.tif"


def _ctc_write(array: np.ndarray, out_dir: Path, case_id: str | int, **geometry) -> Path:
    import tifffile

    arr = _check_integer(
        array,
        f"CTC frame {case_id!r}",
        max_value=65535,
        what="instance masks",
        fix="relabel objects sequentially (at most 65535 per frame)",
    )
    data = np.ascontiguousarray(arr.astype(np.uint16))
    path = Path(out_dir) / _ctc_name(case_id, "mask")
    return atomic_write(path, lambda tmp: tifffile.imwrite(tmp, data))


def _ctc_read(path: Path) -> Volume:
    volume = read_volume(path, greyscale=True)
    if volume.array.dtype != np.uint16:
        raise FormatError(
            f"{path}: CTC masks must be uint16 TIFF, got {volume.array.dtype}; re-save as 16-bit"
        )
    if volume.num_channels > 1 and volume.ndim == 2:
        # a plain multi-page TIFF (no axis metadata) is read as pages x Y x X: CTC stacks are Z slices
        return Volume(volume.array[None], meta=volume.meta)
    return _single_channel(volume, stored_array(volume))


# ----------------------------------------------------------------- GlaS


def _glas_write(array: np.ndarray, out_dir: Path, case_id: str, **geometry) -> Path:
    from PIL import Image

    arr = _check_integer(
        array, f"GlaS image {case_id!r}", max_value=2**31 - 1, what="instance maps", fix="pass gland ids >= 0"
    )
    if arr.ndim != 2:
        raise FormatError(
            f"GlaS annotation {case_id!r} must be a 2D (Y, X) instance map, got shape {arr.shape}"
        )
    if arr.max(initial=0) > 255:
        ids = np.unique(arr[arr > 0])
        if ids.size > 255:
            raise FormatError(
                f"GlaS image {case_id!r} has {ids.size} objects; an 8-bit BMP holds at most 255"
            )
        arr = np.searchsorted(np.concatenate([[0], ids]), arr).astype(np.uint8)
    img = Image.fromarray(arr.astype(np.uint8))  # uint8 -> mode L
    path = Path(out_dir) / f"{_safe_case(case_id)}_anno.bmp"
    return atomic_write(path, lambda tmp: img.save(tmp, format="BMP"))


def _glas_read(path: Path) -> Volume:
    volume = read_volume(path)
    arr = stored_array(volume)
    if arr.ndim == 3:
        if np.all(arr[..., :1] == arr[..., :3]):
            arr = arr[..., 0]
        else:  # 24-bit colour-coded ids
            arr = arr[..., 0].astype(np.int64) + 256 * arr[..., 1].astype(np.int64) + 65536 * arr[..., 2]
    return _single_channel(volume, arr.astype(np.int32))


# ----------------------------------------------------------------- MoNuSeg / dental PNG


def _png16_write(array: np.ndarray, out_dir: Path, case_id: str, **geometry) -> Path:
    from PIL import Image

    arr = _check_integer(
        array,
        f"MoNuSeg image {case_id!r}",
        max_value=65535,
        what="nucleus instance maps",
        fix="relabel nuclei sequentially (16-bit PNG holds at most 65535)",
    )
    if arr.ndim != 2:
        raise FormatError(f"MoNuSeg map {case_id!r} must be 2D (Y, X), got shape {arr.shape}")
    img = Image.fromarray(np.ascontiguousarray(arr.astype(np.uint16)))  # uint16 -> mode I;16
    path = Path(out_dir) / f"{_safe_case(case_id)}.png"
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def _png16_read(path: Path) -> Volume:
    volume = read_volume(path)
    arr = stored_array(volume)
    if arr.ndim != 2:
        raise FormatError(f"{path}: expected a single-channel 16-bit PNG instance map, got shape {arr.shape}")
    return _single_channel(volume, arr.astype(np.int32))


def _dental_write(array: np.ndarray, out_dir: Path, case_id: str, **geometry) -> Path:
    from PIL import Image

    arr = _check_integer(
        array,
        f"dental image {case_id!r}",
        max_value=len(DENTAL_CLASSES) - 1,
        what=f"class maps (order {', '.join(DENTAL_CLASSES)})",
        fix="map predictions to medseg.eval.formats.DENTAL_CLASSES indices",
    )
    if arr.ndim != 2:
        raise FormatError(f"dental class map {case_id!r} must be 2D (Y, X), got shape {arr.shape}")
    img = Image.fromarray(arr.astype(np.uint8))  # uint8 -> mode L
    path = Path(out_dir) / f"{_safe_case(case_id)}.png"
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def _dental_read(path: Path) -> Volume:
    volume = read_volume(path)
    arr = stored_array(volume)
    if arr.ndim != 2 or arr.max(initial=0) >= len(DENTAL_CLASSES):
        raise FormatError(
            f"{path}: expected an 8-bit class map with values < {len(DENTAL_CLASSES)} ({', '.join(DENTAL_CLASSES)})"
        )
    return _single_channel(volume, arr.astype(np.uint8))


# ----------------------------------------------------------------- generic NIfTI / TIFF label maps


def _write_map(
    arr: np.ndarray,
    path: Path,
    *,
    suffixes: tuple[str, ...],
    what: str,
    spacing=None,
    origin=None,
    direction=None,
) -> Path:
    """Write a validated integer (Y, X) / (Z, Y, X) map with its geometry in the smallest dtype."""
    name = path.name
    suffix = next((s for s in suffixes if name.endswith(s)), None)
    if arr.ndim not in (2, 3):
        raise FormatError(f"{what} {path.stem!r} must be (Y, X) or (Z, Y, X), got shape {arr.shape}")
    if suffix is None:
        raise FormatError(f"{what} file {name!r}: suffix not supported; use one of {', '.join(suffixes)}")
    top = int(arr.max(initial=0))
    dtype = np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.uint32
    return write(Volume(arr.astype(dtype)[None], spacing=spacing, origin=origin, direction=direction), path)


def _read_single_channel(path: Path, what: str) -> Volume:
    volume = read_volume(path, greyscale=True)
    if volume.num_channels != 1:
        raise FormatError(
            f"{path}: a {what} has one channel, got {volume.num_channels}; save it as a single-channel image"
        )
    return volume


def _labelmap_write(
    array: np.ndarray, out_dir: Path, case_id: str, *, suffix: str = ".nii.gz", **geometry
) -> Path:
    arr = _check_integer(
        array, f"label map {case_id!r}", max_value=2**31 - 1, what="label maps", fix="pass class ids"
    )
    path = Path(out_dir) / f"{_safe_case(case_id)}{suffix}"
    return _write_map(arr, path, suffixes=(".nii.gz", ".nii", ".tif", ".tiff"), what="label map", **geometry)


def _labelmap_read(path: Path) -> Volume:
    return _read_single_channel(path, "label map")


# ----------------------------------------------------------------- generic instance label maps


def _instances_write(
    array: np.ndarray, out_dir: Path, case_id: str, *, suffix: str = ".tif", **geometry
) -> Path:
    arr = _check_integer(
        array,
        f"instance map {case_id!r}",
        max_value=2**32 - 1,
        what="instance maps",
        fix="pass one id > 0 per object, 0 for background",
    )
    path = Path(out_dir) / f"{_safe_case(case_id)}{suffix}"
    suffixes = (".tif", ".tiff", ".nii.gz", ".nii", ".zarr")
    return _write_map(arr, path, suffixes=suffixes, what="instance map", **geometry)


def _instances_read(path: Path) -> Volume:
    volume = _read_single_channel(path, "instance map")
    if not (np.issubdtype(volume.array.dtype, np.integer) or volume.array.dtype == bool):
        raise FormatError(f"{path}: instance maps hold integer ids, got dtype {volume.array.dtype}")
    return volume


# ----------------------------------------------------------------- CREMI neuron ids (HDF5)


def _cremi_write(
    array: np.ndarray, out_dir: Path, case_id: str, *, spacing=None, origin=None, direction=None
) -> Path:
    """``NAME.hdf`` with ``volumes/labels/neuron_ids`` (uint64) and ``resolution`` (nm), as CREMI's files."""
    arr = _check_integer(
        array,
        f"neuron ids {case_id!r}",
        max_value=np.iinfo(np.uint64).max,
        what="CREMI neuron ids",
        fix="pass one id per neuron (uint64)",
    )
    if arr.ndim != 3:
        raise FormatError(f"CREMI neuron ids {case_id!r} must be (Z, Y, X), got shape {arr.shape}")
    path = Path(out_dir) / f"{_safe_case(case_id)}.hdf"
    if path.exists():  # a fresh file: writing a key into an existing one would keep its other datasets
        path.unlink()
    volume = Volume(arr.astype(np.uint64)[None], spacing=spacing, origin=origin, direction=direction)
    write(volume, f"{path}:{CREMI_NEURON_IDS_KEY}")
    return path


def _cremi_read(path: Path) -> Volume:
    """The neuron ids of a CREMI file (a submission, or a sample file that also holds raw and clefts)."""
    return _read_single_channel(Path(f"{path}:{CREMI_NEURON_IDS_KEY}"), "CREMI neuron-id volume")


_CASE = r"(?P<case>.+?)"
FORMATS: dict[str, SubmissionFormat] = {
    f.name: f
    for f in (
        SubmissionFormat(
            "isbi2012",
            "probability",
            "ISBI 2012 EM: float32 multipage TIFF, 0 = membrane, 1 = non-membrane",
            _isbi_write,
            _isbi_read,
            rf"{_CASE}\.tiff?",
            rf"{_CASE}\.tiff?",
        ),
        SubmissionFormat(
            "ctc",
            "instances",
            "Cell Tracking Challenge: XX_RES/maskTTT.tif uint16 vs XX_GT/SEG/man_segTTT.tif",
            _ctc_write,
            _ctc_read,
            r"mask(?P<case>\d{3,4})\.tif",
            r"man_seg(?P<case>\d{3,4})\.tif",
        ),
        SubmissionFormat(
            "glas",
            "instances",
            "GlaS: 8-bit BMP instance maps NAME_anno.bmp",
            _glas_write,
            _glas_read,
            rf"{_CASE}_anno\.bmp",
            rf"{_CASE}_anno\.bmp",
        ),
        SubmissionFormat(
            "monuseg",
            "instances",
            "MoNuSeg: 16-bit PNG nucleus instance maps NAME.png (references: NAME.png or a lab's NAME.tif)",
            _png16_write,
            _png16_read,
            rf"{_CASE}\.png",
            rf"{_CASE}\.(?:png|tiff?)",
        ),
        SubmissionFormat(
            "dental",
            "classes",
            f"dental bitewing: 8-bit PNG class maps ({', '.join(DENTAL_CLASSES)})",
            _dental_write,
            _dental_read,
            rf"{_CASE}\.png",
            rf"{_CASE}\.png",
        ),
        SubmissionFormat(
            "cremi",
            "instances",
            f"CREMI: HDF5 NAME.hdf / NAME.h5 with {CREMI_NEURON_IDS_KEY} (uint64, resolution in nm)",
            _cremi_write,
            _cremi_read,
            rf"{_CASE}\.(?:hdf|h5|hdf5)",
            rf"{_CASE}\.(?:hdf|h5|hdf5)",
        ),
        SubmissionFormat(
            "instances",
            "instances",
            "generic instance label maps, 2D or 3D: NAME.tif / NAME.nii.gz / NAME.nii / NAME.zarr / NAME.ome.zarr",
            _instances_write,
            _instances_read,
            rf"{_CASE}\.(?:nii\.gz|nii|tiff?|ome\.zarr|zarr)",
            rf"{_CASE}\.(?:nii\.gz|nii|tiff?|ome\.zarr|zarr)",
        ),
        SubmissionFormat(
            "labelmap",
            "classes",
            "generic class label maps: NAME.nii.gz / NAME.nii / NAME.tif; block-wise predictions NAME.zarr / "
            "NAME.ome.zarr",
            _labelmap_write,
            _labelmap_read,
            rf"{_CASE}\.(?:nii\.gz|nii|tiff?|ome\.zarr|zarr)",
            rf"{_CASE}\.(?:nii\.gz|nii|tiff?|ome\.zarr|zarr)",
        ),
    )
}
