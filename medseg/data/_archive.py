"""Safe extraction of zip and tar archives.

Every entry is checked before anything is written: absolute paths, ``..``
components, drive letters, device files, links whose target leaves the extraction
root, entries that would replace a protected path (another file of the manifest, the
archive itself) and archives that would expand beyond a size or compression-ratio
limit (a "zip bomb") raise :class:`~medseg.errors.UnsafeArchiveError`. The sizes come
from the archive's own index (zip central directory, tar headers); both readers never
write more than those declared sizes. Extraction goes to a temporary folder next to
the destination and is moved into place only when complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from medseg.errors import FormatError, UnsafeArchiveError
from medseg.io._limits import format_bytes

__all__ = ["DEFAULT_MAX_EXTRACTED_BYTES", "DEFAULT_MAX_RATIO", "check_member_name", "extract_archive"]

logger = logging.getLogger(__name__)

#: Largest total size an archive may expand to unless its manifest says otherwise (100 GiB).
DEFAULT_MAX_EXTRACTED_BYTES = 100 * 1024**3
#: Largest extracted/archive size ratio unless its manifest says otherwise. Images and label
#: maps compress 2-50x; 1 MB expanding to 1 GiB (1000x) is a decompression bomb.
DEFAULT_MAX_RATIO = 200.0


def check_member_name(name: str, archive: Path) -> PurePosixPath:
    """Return the entry name as a relative path, or raise if it could escape the root.

    Raises
    ------
    UnsafeArchiveError
        Absolute path, drive letter, backslash tricks or a ``..`` component.
    """
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        raise UnsafeArchiveError(
            f"archive {archive} has an entry with an absolute path {name!r}: refusing to extract it; "
            "the archive is corrupt or malicious, get it again from the dataset's source"
        )
    if ".." in path.parts:
        raise UnsafeArchiveError(
            f"archive {archive} has an entry {name!r} containing '..' that would escape the extraction "
            "folder: refusing to extract it; get the archive again from the dataset's source"
        )
    return path


def _link_target_ok(member_path: PurePosixPath, target: str) -> bool:
    """Whether a link at ``member_path`` pointing to ``target`` stays inside the root."""
    target = target.replace("\\", "/")
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        return False
    depth = 0
    for part in (member_path.parent / target).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in ("", "."):
            depth += 1
    return True


def _check_protected(path: PurePosixPath, dest: Path, protected: list[Path], archive: Path) -> None:
    """Refuse an entry that would be, contain or replace a protected path."""
    parts = [p for p in path.parts if p not in ("", ".")]
    if not protected or not parts:
        return
    target = dest.resolve().joinpath(*parts)
    for other in protected:
        if target == other or other in target.parents or target in other.parents:
            raise UnsafeArchiveError(
                f"archive {archive} has an entry {str(path)!r} that would overwrite {other} (another file of the "
                "dataset, or the archive itself): refusing to extract it; the archive or the manifest's "
                "extract_to is wrong"
            )


def _check_size(total: int, archive: Path, max_bytes: int, max_ratio: float) -> None:
    packed = max(archive.stat().st_size, 1)
    if total > max_bytes:
        raise UnsafeArchiveError(
            f"archive {archive} would expand to {format_bytes(total)}, more than the limit of "
            f"{format_bytes(max_bytes)}: refusing to extract it; if the dataset really is this large, raise "
            "max_extracted_bytes for this file in its manifest"
        )
    if total / packed > max_ratio:
        raise UnsafeArchiveError(
            f"archive {archive} ({format_bytes(packed)}) would expand to {format_bytes(total)}, "
            f"{total / packed:.0f} times its size (limit {max_ratio:g}): refusing to extract a likely "
            "decompression bomb; if the data really compresses this well, raise max_ratio for this file in "
            "its manifest"
        )


def _check_tar(tf: tarfile.TarFile, archive: Path, dest: Path, protected: list[Path]) -> int:
    """Check every entry; return the total bytes the regular files will take."""
    total = 0
    for member in tf.getmembers():
        path = check_member_name(member.name, archive)
        _check_protected(path, dest, protected, archive)
        if member.isfile():
            total += member.size
        if member.issym() or member.islnk():
            # hard-link names are relative to the archive root, symlinks to the link's folder
            base = PurePosixPath("x") if member.islnk() else path
            if not _link_target_ok(base, member.linkname):
                raise UnsafeArchiveError(
                    f"archive {archive} has a link {member.name!r} -> {member.linkname!r} pointing outside "
                    "the extraction folder: refusing to extract it; get the archive again from the source"
                )
        elif not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(
                f"archive {archive} has a special entry {member.name!r} (device, fifo...): refusing to extract it"
            )
    return total


def _check_zip(zf: zipfile.ZipFile, archive: Path, dest: Path, protected: list[Path]) -> int:
    """Check every entry; return the total bytes they will take (the central directory's sizes)."""
    total = 0
    for info in zf.infolist():
        path = check_member_name(info.filename, archive)
        _check_protected(path, dest, protected, archive)
        total += info.file_size
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(
                f"archive {archive} has a symbolic link entry {info.filename!r}: links in zip archives are "
                "not supported by medseg fetch; extract it by hand and use --from"
            )
    return total


def extract_archive(
    archive: str | os.PathLike,
    dest: str | os.PathLike,
    kind: str,
    *,
    protected: Sequence[str | os.PathLike] = (),
    max_bytes: int | None = None,
    max_ratio: float | None = None,
) -> list[Path]:
    """Extract ``archive`` into ``dest`` after checking every entry.

    Parameters
    ----------
    archive : path
        The ``.zip`` or tar (optionally compressed) file.
    dest : path
        Destination folder (created). Top-level entries already there with the same
        name are replaced.
    kind : {"zip", "tar"}
        Archive format.
    protected : sequence of path
        Paths no entry may be, contain or replace (the archive itself always is).
    max_bytes : int, optional
        Largest total extracted size (default :data:`DEFAULT_MAX_EXTRACTED_BYTES`).
    max_ratio : float, optional
        Largest extracted size / archive size (default :data:`DEFAULT_MAX_RATIO`).

    Returns
    -------
    list of Path
        The top-level paths created in ``dest``.

    Raises
    ------
    UnsafeArchiveError
        An entry would be written outside ``dest`` or over a protected path, or the
        archive would expand beyond the limits; nothing is extracted.
    FormatError
        The archive is corrupt or not of the given kind.
    """
    archive, dest = Path(archive), Path(dest)
    guarded = [Path(p).resolve() for p in (archive, *protected)]
    max_bytes = DEFAULT_MAX_EXTRACTED_BYTES if max_bytes is None else max_bytes
    max_ratio = DEFAULT_MAX_RATIO if max_ratio is None else max_ratio
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        try:
            if kind == "zip":
                with zipfile.ZipFile(archive) as zf:
                    _check_size(_check_zip(zf, archive, dest, guarded), archive, max_bytes, max_ratio)
                    zf.extractall(tmp)
            elif kind == "tar":
                with tarfile.open(archive) as tf:
                    _check_size(_check_tar(tf, archive, dest, guarded), archive, max_bytes, max_ratio)
                    tf.extractall(tmp, filter="tar")
            else:
                raise FormatError(f"unknown archive kind {kind!r} for {archive}: use 'zip' or 'tar'")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
            if isinstance(err, tarfile.FilterError):
                raise UnsafeArchiveError(f"archive {archive}: {err}; refusing to extract it") from err
            raise FormatError(
                f"archive {archive} is not a valid {kind} file ({err}): delete it and download it again"
            ) from err
        created = []
        for entry in sorted(tmp.iterdir()):
            target = dest / entry.name
            if target.is_dir() and not target.is_symlink():
                logger.warning("replacing %s with the copy from %s", target, archive.name)
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
            created.append(target)
        return created
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
