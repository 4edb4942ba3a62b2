"""HTTP(S) download with resume, progress and sha256 verification.

Bytes go to ``<file>.incomplete``; an interrupted transfer is resumed with an HTTP
``Range`` request; the file is moved to its final name (``os.replace``) only once its
size and checksum are right.
"""

from __future__ import annotations

import http.client
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from medseg.errors import ChecksumError, ConfigError, DownloadError
from medseg.io.paths import file_sha256

__all__ = ["sha256sum", "check_url", "download_file", "verify_file", "INCOMPLETE_SUFFIX"]

logger = logging.getLogger(__name__)

INCOMPLETE_SUFFIX = ".incomplete"
_CHUNK = 1 << 20


def sha256sum(path: str | os.PathLike, *, progress: bool = False) -> str:
    """Hex sha256 of a file (:func:`medseg.io.paths.file_sha256`), with a progress bar when asked."""
    path = Path(path)
    bar = _bar(path.stat().st_size, f"sha256 {path.name}", progress)
    try:
        return file_sha256(path, on_chunk=None if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()


def verify_file(
    path: Path, *, sha256: str | None, size: int | None, what: str, progress: bool = False
) -> None:
    """Check size and sha256 of ``path`` (skipping the ones that are ``None``).

    Raises
    ------
    ChecksumError
        Size or checksum differ; the message names the file, both values and the fix.
    """
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ChecksumError(
            f"{what} {path} has {actual_size} bytes, expected {size}: the file is truncated or a different "
            "version; delete it and fetch it again"
        )
    if sha256 is not None:
        actual = sha256sum(path, progress=progress)
        if actual != sha256:
            raise ChecksumError(
                f"{what} {path} has sha256 {actual}, expected {sha256}: the file is corrupt or a different "
                "version; delete it and fetch it again (or fix the manifest if the source changed)"
            )


def _bar(total: int | None, desc: str, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024)


_SCHEMES = ("http", "https")


def check_url(url: str, *, what: str) -> None:
    """Refuse anything but an ``http``/``https`` URL with a host (``file://``, ``ftp://``, bare paths).

    Raises
    ------
    ConfigError
        The message names ``what`` and says to pass local files with ``--from``.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme.lower() not in _SCHEMES or not parsed.netloc:
        raise ConfigError(
            f"{what} is {url!r}: medseg fetch downloads http and https URLs only; for a file you already "
            "have, pass its folder with --from (from_path=...)"
        )


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http/https only (urllib also follows ftp://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl, what=f"the redirect from {req.full_url}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def _open(url: str, start: int, timeout: float) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": "medseg-fetch"})
    if start > 0:
        request.add_header("Range", f"bytes={start}-")
    return _OPENER.open(request, timeout=timeout)


def _too_large(url: str, part: Path, size: int, got: int) -> ChecksumError:
    part.unlink(missing_ok=True)
    return ChecksumError(
        f"download of {url} is larger than the {size} bytes the manifest declares (got {got}; stopped "
        "there, nothing kept): the source changed or serves something else; fix the manifest's size "
        "and sha256 if the new file is right"
    )


def _transfer(url: str, part: Path, timeout: float, progress: bool, size: int | None = None) -> None:
    """One attempt: append to ``part`` from where it ends. Raises OSError/HTTPException on failure.

    With a declared ``size``, no more than ``size + 1`` bytes are ever written (a server that
    sends no Content-Length, or a larger one, is stopped there) and a longer file is refused.
    """
    start = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start > 0:  # range not satisfiable: the partial file is bad or complete
            logger.info("server refused to resume %s at byte %d; starting again", url, start)
            part.unlink()
            start = 0
            response = _open(url, 0, timeout)
        else:
            raise
    with response:
        status = getattr(response, "status", 200)
        if start > 0 and status != 206:
            logger.info("server does not support resuming %s; downloading from the start", url)
            start = 0
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None and length.isdigit() else None
        total = None if expected is None else start + expected
        if size is not None and total is not None and total > size:
            raise _too_large(url, part, size, total)
        bar = _bar(total, part.name.removesuffix(INCOMPLETE_SUFFIX), progress)
        if bar is not None:
            bar.update(start)
        received = 0
        with open(part, "r+b" if start > 0 else "wb") as fh:
            fh.seek(start)
            fh.truncate()
            while chunk := response.read(
                _CHUNK if size is None else min(_CHUNK, size + 1 - start - received)
            ):
                fh.write(chunk)
                received += len(chunk)
                if size is not None and start + received > size:
                    break
                if bar is not None:
                    bar.update(len(chunk))
            fh.flush()
            os.fsync(fh.fileno())
        if bar is not None:
            bar.close()
        if size is not None and start + received > size:
            raise _too_large(url, part, size, start + received)
        if expected is not None and received != expected:
            raise http.client.IncompleteRead(b"", expected - received)


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None,
    size: int | None = None,
    timeout: float = 30.0,
    retries: int = 2,
    progress: bool = False,
) -> Path:
    """Download ``url`` to ``dest`` atomically, resuming a previous partial transfer.

    Parameters
    ----------
    url : str
        Source URL (http or https).
    dest : path
        Final path; bytes are written to ``dest + '.incomplete'`` first.
    sha256, size : str or None, int or None
        Expected checksum and size; ``None`` skips that check.
    timeout : float
        Seconds to wait for the server on connect and on each read.
    retries : int
        Extra attempts after a failed or interrupted transfer; each resumes where the
        previous one stopped.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        All attempts failed; the partial file is kept so that the next call resumes.
    ChecksumError
        The complete file has the wrong size or checksum; it is deleted.
    ConfigError
        ``url`` is not http(s), or ``retries`` is negative.
    """
    check_url(url, what="download URL")
    if retries < 0:
        raise ConfigError(f"retries must be >= 0 (extra attempts after the first), got {retries}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + INCOMPLETE_SUFFIX)
    last_error: BaseException | None = None
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, timeout, progress, size)
            break
        except (OSError, http.client.HTTPException) as err:
            last_error = err
            have = part.stat().st_size if part.exists() else 0
            logger.warning(
                "download of %s failed (attempt %d of %d, %d bytes so far): %s",
                url,
                attempt + 1,
                retries + 1,
                have,
                err,
            )
    else:
        have = part.stat().st_size if part.exists() else 0
        kept = (
            f"partial data ({have} bytes) kept in {part} and resumed next time"
            if have
            else "nothing was downloaded"
        )
        if not have:
            part.unlink(missing_ok=True)
        raise DownloadError(
            f"could not download {url} ({last_error}); {kept}. "
            f"If you are offline, download the file by hand and place it at {dest} "
            "(or pass its folder with --from)"
        ) from last_error
    try:
        verify_file(part, sha256=sha256, size=size, what=f"download of {url} to", progress=progress)
    except Exception:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest
