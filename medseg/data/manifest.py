"""Dataset manifests: what a dataset is, where its files come from and how they look on disk.

A manifest is a YAML file (shipped in ``data_manifests/``, or in a folder
named by ``$MEDSEG_MANIFESTS``) validated by :class:`Manifest`
(pydantic v2, unknown keys forbidden). Checksums and sizes that are not public are
``null`` with a ``note`` saying so; ``medseg fetch`` then refuses to trust the file
unless asked to (``--allow-unverified``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medseg.errors import ConfigError, DataNotFoundError
from medseg.resources import manifest_dir

__all__ = [
    "Manifest",
    "ManifestFile",
    "Citation",
    "Licence",
    "Layout",
    "LabelSpec",
    "SpacingSpec",
    "SplitPart",
    "Split",
    "MANIFEST_DIR_ENV",
    "manifest_dirs",
    "list_manifests",
    "find_manifest",
    "load_manifest",
]

#: Environment variable naming extra folders (``os.pathsep``-separated) searched for manifests.
MANIFEST_DIR_ENV = "MEDSEG_MANIFESTS"

_HEX = set("0123456789abcdef")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(_Strict):
    """A publication to cite when using the dataset."""

    text: str
    doi: str | None = None
    url: str | None = None


class Licence(_Strict):
    """Terms of use; ``name: unknown`` where no explicit licence was found."""

    name: str
    url: str | None = None
    note: str | None = None


class ManifestFile(_Strict):
    """One file to download (or place by hand) and how to unpack it.

    ``url``, ``size`` (bytes) and ``sha256`` are ``None`` where they are not public or
    not known; ``note`` then says why and what to do. ``sha256_source`` says where a
    checksum was taken from when it was not computed by medseg's maintainers.
    """

    name: str
    url: str | None = None
    size: int | None = Field(default=None, gt=0)
    sha256: str | None = None
    sha256_source: str | None = None
    archive: Literal["zip", "tar", "none"] = "none"
    extract_to: str = "."
    max_extracted_bytes: int | None = Field(default=None, gt=0)  # None: medseg.data._archive's default
    max_ratio: float | None = Field(default=None, gt=0)  # extracted / archive bytes; None: the default
    note: str | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value or "/" in value or "\\" in value or value in (".", ".."):
            raise ValueError(f"must be a plain file name without folders, got {value!r}")
        return value

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.lower()
        if len(value) != 64 or not set(value) <= _HEX:
            raise ValueError(f"must be 64 hex digits or null, got {value!r}")
        return value


class Layout(_Strict):
    """On-disk layout after extraction, relative to ``<root>/<folder>``.

    ``paths`` maps a role (``train_images``, ``train_labels``...) to a path or glob
    pattern; loaders' defaults follow these patterns.
    """

    folder: str
    paths: dict[str, str]
    description: str | None = None


class LabelSpec(_Strict):
    """Label conventions.

    ``kind`` is the word a pipeline's ``data.label_kind`` takes: ``classes`` (each
    value a class id, possibly after the loader's conversion, e.g. ISBI 2012 polarity or
    one binary mask per class merged), ``instances`` (one id per object, 0 =
    background) or ``none``. ``on_disk`` maps class names to the values stored in the
    dataset's files (raw polarity); ``classes`` maps class names to medseg's class ids
    after the loader's conversion. For instance maps ``classes`` is ``{background: 0}``.
    The older words ``semantic``, ``binary_masks`` (both ``classes``) and ``instance``
    are accepted.
    """

    kind: Literal["classes", "instances", "none"]
    classes: dict[str, int]
    on_disk: dict[str, int] | None = None
    polarity: str | None = None
    note: str | None = None

    @field_validator("kind", mode="before")
    @classmethod
    def _old_words(cls, value: object) -> object:
        return {"semantic": "classes", "binary_masks": "classes", "instance": "instances"}.get(value, value)  # type: ignore[call-overload]


class SpacingSpec(_Strict):
    """Pixel/voxel size in array axis order (``axes``), ``None`` where unknown."""

    values: list[float] | None = None
    unit: Literal["nm", "um", "mm", "px"] = "px"
    axes: str = "YX"
    note: str | None = None


class SplitPart(_Strict):
    """Cases of one split: explicit ``cases``, a ``pattern`` and/or a ``count``."""

    cases: list[str] | None = None
    pattern: str | None = None
    count: int | None = Field(default=None, ge=0)
    note: str | None = None


class Split(_Strict):
    train: SplitPart | None = None
    val: SplitPart | None = None
    test: SplitPart | None = None
    note: str | None = None


class Manifest(_Strict):
    """A validated dataset manifest (see ``data_manifests/*.yaml``)."""

    name: str
    title: str
    modality: Literal["em", "histo", "dental", "cells", "volume", "any"]
    homepage: str | None = None
    citation: list[Citation]
    licence: Licence
    files: list[ManifestFile]
    layout: Layout
    labels: LabelSpec
    spacing: SpacingSpec
    split: Split
    notes: list[str] = Field(default_factory=list)

    @field_validator("files")
    @classmethod
    def _unique_names(cls, files: list[ManifestFile]) -> list[ManifestFile]:
        names = [f.name for f in files]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"file names must be unique, repeated: {dupes}")
        return files

    @property
    def unverified_files(self) -> list[ManifestFile]:
        """Files without a sha256 in the manifest."""
        return [f for f in self.files if f.sha256 is None]


def _format_validation_error(path: Path, err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "<top level>"
        if item["type"] == "extra_forbidden":
            parent = ".".join(str(p) for p in item["loc"][:-1]) or "<top level>"
            lines.append(f"unknown key '{item['loc'][-1]}' in {parent}: remove it or fix its spelling")
        elif item["type"] == "missing":
            lines.append(f"missing key '{loc}'")
        else:
            lines.append(f"key '{loc}': {item['msg']} (got {item.get('input')!r})")
    return f"invalid manifest {path}:\n  " + "\n  ".join(lines)


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate one manifest file.

    Parameters
    ----------
    path : path
        A ``.yaml`` manifest.

    Returns
    -------
    Manifest

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    ConfigError
        The YAML is malformed, a key is unknown or missing, or a value is invalid;
        the message names the file and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(
            f"manifest {path} does not exist: check the path or use a name from list_manifests()"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"manifest {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(
            f"manifest {path} must be a YAML mapping at the top level, got {type(data).__name__}"
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(path, err)) from err


def manifest_dirs() -> list[Path]:
    """Folders searched for manifests: ``$MEDSEG_MANIFESTS`` entries, then the ones shipped in the package."""
    dirs = [Path(p) for p in os.environ.get(MANIFEST_DIR_ENV, "").split(os.pathsep) if p]
    dirs.append(manifest_dir())
    return [d for d in dirs if d.is_dir()]


def list_manifests() -> dict[str, Path]:
    """Name (file stem) to path of every manifest found in :func:`manifest_dirs`."""
    found: dict[str, Path] = {}
    for folder in manifest_dirs():
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def find_manifest(name_or_path: str | os.PathLike) -> Path:
    """Resolve a dataset name (``isbi2012``) or a manifest path to a manifest file.

    Raises
    ------
    DataNotFoundError
        Neither a file nor a known name; the message lists the known names.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise DataNotFoundError(f"manifest {candidate} does not exist: check the path")
        return candidate
    known = list_manifests()
    if str(name_or_path) in known:
        return known[str(name_or_path)]
    raise DataNotFoundError(
        f"unknown dataset '{name_or_path}': known names are {sorted(known)}; "
        "or pass the path to a manifest .yaml"
    )
