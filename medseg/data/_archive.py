"""Safe extraction of zip and tar archives.

Every entry is checked before anything is written: absolute paths, ``..``
components, drive letters, device files and links whose target leaves the
extraction root raise :class:`~medseg.errors.UnsafeArchiveError`. Extraction goes to
a temporary folder next to the destination and is moved into place only when
complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from medseg.errors import FormatError, UnsafeArchiveError

__all__ = ["check_member_name", "extract_archive"]

logger = logging.getLogger(__name__)


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


def _check_tar(tf: tarfile.TarFile, archive: Path) -> None:
    for member in tf.getmembers():
        path = check_member_name(member.name, archive)
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


def _check_zip(zf: zipfile.ZipFile, archive: Path) -> None:
    for info in zf.infolist():
        check_member_name(info.filename, archive)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(
                f"archive {archive} has a symbolic link entry {info.filename!r}: links in zip archives are "
                "not supported by medseg fetch; extract it by hand and use --from"
            )


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike, kind: str) -> list[Path]:
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

    Returns
    -------
    list of Path
        The top-level paths created in ``dest``.

    Raises
    ------
    UnsafeArchiveError
        An entry would be written outside ``dest``; nothing is extracted.
    FormatError
        The archive is corrupt or not of the given kind.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        try:
            if kind == "zip":
                with zipfile.ZipFile(archive) as zf:
                    _check_zip(zf, archive)
                    zf.extractall(tmp)
            elif kind == "tar":
                with tarfile.open(archive) as tf:
                    _check_tar(tf, archive)
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
