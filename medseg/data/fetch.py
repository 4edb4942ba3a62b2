"""Fetch a dataset described by a manifest: download or register, verify, extract.

``fetch_dataset("isbi2012", root)`` puts every file of the manifest at
``<root>/<layout.folder>/<name>`` and unpacks archives into
``<root>/<layout.folder>/<extract_to>``. It is idempotent: a second call re-verifies
the files and does nothing else. State (the sha256 each archive was extracted from)
is kept in ``<root>/<layout.folder>/.medseg/``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from medseg.data._archive import extract_archive
from medseg.data._download import INCOMPLETE_SUFFIX, check_url, download_file, sha256sum, verify_file
from medseg.data.manifest import Manifest, ManifestFile, find_manifest, load_manifest
from medseg.errors import ChecksumError, ConfigError, DataNotFoundError, DownloadError, UnsafeArchiveError

__all__ = ["FetchResult", "fetch_dataset", "resolve_manifest"]

logger = logging.getLogger(__name__)

_STATE_DIR = ".medseg"


@dataclass
class FetchResult:
    """What :func:`fetch_dataset` did.

    Attributes
    ----------
    dataset_dir : Path
        ``<root>/<layout.folder>``.
    downloaded, registered, extracted, unchanged : list of str
        Manifest file names per action (``unchanged``: present and verified).
    unverified : list of str
        Files accepted without a checksum (``allow_unverified=True``).
    """

    dataset_dir: Path
    downloaded: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    extracted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)


def resolve_manifest(manifest: Manifest | str | os.PathLike) -> tuple[Manifest, str]:
    """Accept a :class:`Manifest`, a dataset name or a manifest path; return it and its origin."""
    if isinstance(manifest, Manifest):
        return manifest, f"manifest '{manifest.name}'"
    path = find_manifest(manifest)
    return load_manifest(path), str(path)


def _inside(base: Path, sub: str, origin: str, key: str) -> Path:
    target = (base / sub).resolve()
    if target != base.resolve() and base.resolve() not in target.parents:
        raise ConfigError(
            f"{origin}: {key} {sub!r} points outside the dataset folder {base}: use a relative path"
        )
    return target


def _state_path(dataset_dir: Path, spec: ManifestFile) -> Path:
    return dataset_dir / _STATE_DIR / f"{spec.name}.json"


def _read_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + INCOMPLETE_SUFFIX)
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, path)


def _source_in(from_path: Path, spec: ManifestFile, n_files: int) -> Path | None:
    if from_path.is_dir():
        candidate = from_path / spec.name
        return candidate if candidate.is_file() else None
    if from_path.name == spec.name or n_files == 1:
        return from_path
    return None


def _register(source: Path, dest: Path, spec: ManifestFile, progress: bool) -> None:
    """Verify a user's copy, then copy it into place atomically."""
    verify_file(
        source,
        sha256=spec.sha256,
        size=spec.size,
        what=f"file given with --from for '{spec.name}':",
        progress=progress,
    )
    if source.resolve() == dest.resolve():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + INCOMPLETE_SUFFIX)
    shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


def _obtain(
    spec: ManifestFile,
    dest: Path,
    manifest: Manifest,
    *,
    from_path: Path | None,
    result: FetchResult,
    progress: bool,
    timeout: float,
    retries: int,
) -> str:
    """Make sure ``dest`` holds the verified file; return its sha256 (computed or from the manifest)."""
    source = None if from_path is None else _source_in(from_path, spec, len(manifest.files))
    if dest.is_file() and (source is None or source.resolve() == dest.resolve()):
        verify_file(dest, sha256=spec.sha256, size=spec.size, what="existing file", progress=progress)
        result.unchanged.append(spec.name)
    elif source is not None:
        _register(source, dest, spec, progress)
        result.registered.append(spec.name)
    elif spec.url is None:
        where = f" ({manifest.homepage})" if manifest.homepage else ""
        raise DownloadError(
            f"'{spec.name}' of dataset '{manifest.name}' has no public download URL: get it from the dataset's "
            f"site{where} and place it at {dest}, or pass its folder with --from"
            + (f". Note: {spec.note}" if spec.note else "")
        )
    else:
        try:
            download_file(
                spec.url,
                dest,
                sha256=spec.sha256,
                size=spec.size,
                timeout=timeout,
                retries=retries,
                progress=progress,
            )
        except DownloadError as err:
            raise DownloadError(f"{err} [dataset '{manifest.name}', file '{spec.name}']") from err
        result.downloaded.append(spec.name)
    if spec.sha256 is not None:
        return spec.sha256
    digest = sha256sum(dest, progress=progress)
    logger.warning(
        "'%s' of dataset '%s' is NOT verified (the manifest has no sha256); its sha256 is %s - "
        "add it to the manifest once you trust the file",
        spec.name,
        manifest.name,
        digest,
    )
    result.unverified.append(spec.name)
    return digest


def _check_options(timeout: float, retries: int) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf:
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}; e.g. --timeout 30")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(
            f"retries must be a whole number >= 0 (extra attempts after the first), got {retries!r}; "
            "e.g. --retries 2"
        )


def fetch_dataset(
    manifest: Manifest | str | os.PathLike,
    root: str | os.PathLike,
    *,
    from_path: str | os.PathLike | None = None,
    allow_unverified: bool = False,
    progress: bool = False,
    timeout: float = 30.0,
    retries: int = 2,
) -> FetchResult:
    """Download (or register), verify and extract every file of a dataset's manifest.

    Parameters
    ----------
    manifest : Manifest, str or path
        A loaded manifest, a dataset name (``"isbi2012"``) or a manifest ``.yaml``.
    root : path
        Data root; the dataset goes to ``<root>/<layout.folder>``.
    from_path : path, optional
        A folder holding files named as in the manifest (or a single file, for a
        one-file manifest) that the user already has. They are verified the same way
        as downloads, then copied into place.
    allow_unverified : bool
        Accept files whose manifest sha256 is ``null``. Without it such manifests are
        refused before anything is downloaded.
    progress : bool
        tqdm progress bars for downloads and hashing.
    timeout : float
        Network timeout in seconds per connect/read (> 0).
    retries : int
        Extra download attempts (each resumes the partial file), >= 0.

    Returns
    -------
    FetchResult

    Raises
    ------
    ChecksumError
        A file has the wrong checksum/size (a bad download is deleted), or the manifest
        has files without sha256 and ``allow_unverified`` is false.
    DownloadError
        A download failed or a file has no URL; the message names the URL and where to
        put the file by hand.
    UnsafeArchiveError
        An archive entry would escape the dataset folder; nothing is extracted.
    """
    _check_options(timeout, retries)
    manifest, origin = resolve_manifest(manifest)
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"data root {root} is an existing file, not a folder; choose a folder for --root")
    dataset_dir = _inside(root, manifest.layout.folder, origin, "layout.folder")
    for spec in manifest.files:
        if spec.url is not None:
            check_url(spec.url, what=f"{origin}: url of '{spec.name}'")
    if from_path is not None:
        from_path = Path(from_path)
        if not from_path.exists():
            raise DataNotFoundError(
                f"--from path {from_path} does not exist: pass the folder holding the files"
            )
    unverified = [f.name for f in manifest.unverified_files]
    if unverified and not allow_unverified:
        raise ChecksumError(
            f"{origin} has no sha256 for {unverified}, so medseg cannot verify them: pass --allow-unverified "
            "(allow_unverified=True) to accept them anyway, or add their sha256 to the manifest"
        )
    targets = [
        _inside(dataset_dir, spec.extract_to, origin, f"extract_to of '{spec.name}'")
        for spec in manifest.files
    ]
    result = FetchResult(dataset_dir=dataset_dir)
    if not manifest.files:
        logger.warning(
            "%s lists no files to fetch: place the data under %s as its layout says", origin, dataset_dir
        )
        return result
    dataset_dir.mkdir(parents=True, exist_ok=True)
    for spec, target in zip(manifest.files, targets, strict=True):
        dest = dataset_dir / spec.name
        digest = _obtain(
            spec,
            dest,
            manifest,
            from_path=from_path,
            result=result,
            progress=progress,
            timeout=timeout,
            retries=retries,
        )
        if spec.archive == "none":
            continue
        state_path = _state_path(dataset_dir, spec)
        if _read_state(state_path).get("extracted_sha256") == digest:
            continue
        logger.info("extracting %s into %s", dest, target)
        try:
            created = extract_archive(
                dest,
                target,
                spec.archive,
                protected=[dataset_dir / other.name for other in manifest.files] + [dataset_dir / _STATE_DIR],
                max_bytes=spec.max_extracted_bytes,
                max_ratio=spec.max_ratio,
            )
        except UnsafeArchiveError as err:
            raise UnsafeArchiveError(f"{err} (nothing was extracted; the verified {dest} is kept)") from err
        _write_state(state_path, {"extracted_sha256": digest, "entries": [p.name for p in created]})
        result.extracted.append(spec.name)
    return result
