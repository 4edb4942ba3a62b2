"""medseg fetch against a loopback HTTP server: happy path, resume, checksum, unsafe archives, --from."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import logging
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from medseg.cli import fetch as fetch_cli
from medseg.data.fetch import fetch_dataset
from medseg.errors import ChecksumError, ConfigError, DownloadError, UnsafeArchiveError

PAYLOAD = bytes(range(256)) * 64  # 16 KiB


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar_with_link(name: str, target: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("data/ok.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"ok"))
        link = tarfile.TarInfo(name)
        link.type = tarfile.SYMTYPE
        link.linkname = target
        tf.addfile(link)
    return buf.getvalue()


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def test_happy_path_then_idempotent(tmp_path, http_server, make_manifest):
    archive = _zip({"images/a.txt": b"A", "images/b.txt": b"B"})
    files = [
        {
            "name": "raw.bin",
            "url": http_server.add("raw.bin", PAYLOAD),
            "size": len(PAYLOAD),
            "sha256": _sha(PAYLOAD),
            "sha256_source": "test",
        },
        {
            "name": "images.zip",
            "url": http_server.add("images.zip", archive),
            "sha256": _sha(archive),
            "sha256_source": "test",
            "archive": "zip",
        },
    ]
    manifest = make_manifest(tmp_path / "toy.yaml", files)
    root = tmp_path / "root"
    result = fetch_dataset(manifest, root, timeout=5)
    assert result.downloaded == ["raw.bin", "images.zip"] and result.extracted == ["images.zip"]
    assert (root / "toy" / "raw.bin").read_bytes() == PAYLOAD
    assert (root / "toy" / "images" / "b.txt").read_bytes() == b"B"
    assert not list(root.rglob("*.incomplete")) and not list((root / "toy").glob(".extract-*"))
    n_requests = len(http_server.state.requests)

    again = fetch_dataset(manifest, root, timeout=5)
    assert again.unchanged == ["raw.bin", "images.zip"]
    assert again.downloaded == [] and again.extracted == []
    assert len(http_server.state.requests) == n_requests  # verified locally, nothing fetched


def test_resume_after_interrupted_transfer(tmp_path, http_server, make_manifest):
    url = http_server.add("raw.bin", PAYLOAD)
    http_server.state.cut_after["/raw.bin"] = 5000
    manifest = make_manifest(
        tmp_path / "toy.yaml",
        [{"name": "raw.bin", "url": url, "sha256": _sha(PAYLOAD), "sha256_source": "test"}],
    )
    root = tmp_path / "root"
    with pytest.raises(
        DownloadError, match=r"could not download http://127\.0\.0\.1:\d+/raw\.bin.*place it at"
    ):
        fetch_dataset(manifest, root, timeout=5, retries=0)
    partial = root / "toy" / "raw.bin.incomplete"
    assert partial.stat().st_size == 5000 and not (root / "toy" / "raw.bin").exists()

    result = fetch_dataset(manifest, root, timeout=5, retries=0)
    assert result.downloaded == ["raw.bin"]
    assert http_server.state.requests[-1] == ("/raw.bin", "bytes=5000-")
    assert (root / "toy" / "raw.bin").read_bytes() == PAYLOAD and not partial.exists()


def test_resume_within_one_call(tmp_path, http_server, make_manifest):
    url = http_server.add("raw.bin", PAYLOAD)
    http_server.state.cut_after["/raw.bin"] = 3000
    manifest = make_manifest(
        tmp_path / "toy.yaml",
        [{"name": "raw.bin", "url": url, "sha256": _sha(PAYLOAD), "sha256_source": "test"}],
    )
    fetch_dataset(manifest, tmp_path / "root", timeout=5, retries=1)
    assert [r for _, r in http_server.state.requests] == [None, "bytes=3000-"]
    assert (tmp_path / "root" / "toy" / "raw.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing(tmp_path, http_server, make_manifest):
    url = http_server.add("raw.bin", PAYLOAD)
    manifest = make_manifest(
        tmp_path / "toy.yaml", [{"name": "raw.bin", "url": url, "sha256": "0" * 64, "sha256_source": "test"}]
    )
    root = tmp_path / "root"
    with pytest.raises(ChecksumError, match=r"raw\.bin.*expected 0{64}"):
        fetch_dataset(manifest, root, timeout=5)
    assert [p for p in _tree(root / "toy") if not p.startswith(".")] == []


@pytest.mark.parametrize(
    ("archive", "kind", "message"),
    [
        (_zip({"ok.txt": b"x", "../evil.txt": b"x"}), "zip", "'..'"),
        (_zip({"ok.txt": b"x", "/tmp/abs_evil.txt": b"x"}), "zip", "absolute path"),
        (_tar_with_link("data/link", "../../../outside"), "tar", "link 'data/link' -> '../../../outside'"),
        (_tar_with_link("data/link", "/etc/passwd"), "tar", "pointing outside"),
    ],
)
def test_malicious_archives_are_rejected(tmp_path, http_server, make_manifest, archive, kind, message):
    url = http_server.add("evil.bin", archive)
    manifest = make_manifest(
        tmp_path / "toy.yaml",
        [{"name": "evil.bin", "url": url, "sha256": _sha(archive), "sha256_source": "test", "archive": kind}],
    )
    root = tmp_path / "root"
    with pytest.raises(UnsafeArchiveError, match=message):
        fetch_dataset(manifest, root, timeout=5)
    assert _tree(tmp_path) - {"toy.yaml"} == {"root", "root/toy", "root/toy/evil.bin"}
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/abs_evil.txt").exists()


def test_unverified_needs_flag_and_warns(tmp_path, http_server, make_manifest, caplog):
    url = http_server.add("raw.bin", PAYLOAD)
    manifest = make_manifest(tmp_path / "toy.yaml", [{"name": "raw.bin", "url": url, "note": "no checksum"}])
    with pytest.raises(ChecksumError, match=r"no sha256 for \['raw\.bin'\].*--allow-unverified"):
        fetch_dataset(manifest, tmp_path / "root", timeout=5)
    assert http_server.state.requests == []
    with caplog.at_level(logging.WARNING, logger="medseg.data.fetch"):
        result = fetch_dataset(manifest, tmp_path / "root", timeout=5, allow_unverified=True)
    assert result.unverified == ["raw.bin"]
    assert _sha(PAYLOAD) in caplog.text and "NOT verified" in caplog.text


def test_offline_names_url_and_place(tmp_path, make_manifest):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/raw.bin"
    manifest = make_manifest(
        tmp_path / "toy.yaml",
        [{"name": "raw.bin", "url": url, "sha256": _sha(PAYLOAD), "sha256_source": "test"}],
    )
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match=rf"{url}.*place it at {root / 'toy' / 'raw.bin'}"):
        fetch_dataset(manifest, root, timeout=2, retries=0)


def test_no_url_asks_for_manual_download(tmp_path, make_manifest):
    manifest = make_manifest(
        tmp_path / "toy.yaml",
        [
            {
                "name": "raw.bin",
                "sha256": _sha(PAYLOAD),
                "sha256_source": "test",
                "note": "registration needed",
            }
        ],
    )
    with pytest.raises(DownloadError, match=r"no public download URL.*--from.*registration needed"):
        fetch_dataset(manifest, tmp_path / "root")


def test_from_path_registers_and_verifies(tmp_path, make_manifest):
    have = tmp_path / "have"
    have.mkdir()
    (have / "raw.bin").write_bytes(PAYLOAD)
    manifest = make_manifest(
        tmp_path / "toy.yaml",
        [
            {
                "name": "raw.bin",
                "url": "http://127.0.0.1:9/x",
                "sha256": _sha(PAYLOAD),
                "sha256_source": "test",
            }
        ],
    )
    result = fetch_dataset(manifest, tmp_path / "root", from_path=have)
    assert result.registered == ["raw.bin"]
    assert (tmp_path / "root" / "toy" / "raw.bin").read_bytes() == PAYLOAD

    (have / "raw.bin").write_bytes(PAYLOAD[:-1] + b"\x00")
    with pytest.raises(ChecksumError, match=r"--from for 'raw\.bin'.*sha256"):
        fetch_dataset(manifest, tmp_path / "other", from_path=have)
    assert not (tmp_path / "other" / "toy" / "raw.bin").exists()


def test_cli_run(tmp_path, http_server, make_manifest, capsys):
    url = http_server.add("raw.bin", PAYLOAD)
    manifest = make_manifest(
        tmp_path / "toy.yaml",
        [{"name": "raw.bin", "url": url, "sha256": _sha(PAYLOAD), "sha256_source": "test"}],
    )
    parser = argparse.ArgumentParser()
    fetch_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["fetch", str(manifest), "--root", str(tmp_path / "root"), "--no-progress", "--timeout", "5"]
    )
    assert args.func(args) == 0
    assert "downloaded: raw.bin" in capsys.readouterr().out
    assert fetch_cli.run(args) == 0
    assert "already present and verified: raw.bin" in capsys.readouterr().out


def _tar_gz(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _deflated_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _archive_spec(http_server, name: str, data: bytes, kind: str, **extra) -> dict:
    spec = {"name": name, "url": http_server.add(name, data), "sha256": _sha(data), "sha256_source": "test"}
    return {**spec, "archive": kind, **extra}


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_a_decompression_bomb_is_refused_before_writing(tmp_path, http_server, make_manifest, kind):
    zeros = b"\x00" * (64 * 1024 * 1024)  # 64 MiB of zeros packs into ~64 KiB: ratio ~1000
    data = _deflated_zip({"big.raw": zeros}) if kind == "zip" else _tar_gz({"big.raw": zeros})
    assert len(data) < 1024 * 1024
    manifest = make_manifest(tmp_path / "toy.yaml", [_archive_spec(http_server, "bomb.bin", data, kind)])
    root = tmp_path / "root"
    with pytest.raises(
        UnsafeArchiveError, match=r"would expand to 64\.0 MiB, \d+ times its size \(limit 200\)"
    ):
        fetch_dataset(manifest, root, timeout=5)
    assert _tree(root) == {"toy", "toy/bomb.bin"}


def test_manifest_limits_raise_or_lower_the_defaults(tmp_path, http_server, make_manifest):
    data = _deflated_zip({"a.raw": b"\x00" * 1_000_000})
    lenient = make_manifest(
        tmp_path / "ok.yaml", [_archive_spec(http_server, "a.zip", data, "zip", max_ratio=5000)]
    )
    assert fetch_dataset(lenient, tmp_path / "root", timeout=5).extracted == ["a.zip"]
    assert (tmp_path / "root" / "toy" / "a.raw").stat().st_size == 1_000_000
    strict = make_manifest(
        tmp_path / "strict.yaml",
        [_archive_spec(http_server, "a.zip", data, "zip", max_ratio=5000, max_extracted_bytes=999_999)],
    )
    with pytest.raises(UnsafeArchiveError, match=r"more than the limit of 976\.6 KiB.*max_extracted_bytes"):
        fetch_dataset(strict, tmp_path / "other", timeout=5)


@pytest.mark.parametrize("entry", ["raw.bin", "images.zip", ".medseg/images.zip.json", "raw.bin/inner.txt"])
def test_an_entry_may_not_overwrite_another_manifest_file_or_the_archive(
    tmp_path, http_server, make_manifest, entry
):
    archive = _zip({"images/a.txt": b"A", entry: b"EVIL"})
    files = [
        {"name": "raw.bin", "url": http_server.add("raw.bin", PAYLOAD), "sha256": _sha(PAYLOAD)},
        _archive_spec(http_server, "images.zip", archive, "zip"),
    ]
    manifest = make_manifest(tmp_path / "toy.yaml", files)
    root = tmp_path / "root"
    with pytest.raises(UnsafeArchiveError, match=rf"entry '{entry}' that would overwrite"):
        fetch_dataset(manifest, root, timeout=5)
    assert (root / "toy" / "raw.bin").read_bytes() == PAYLOAD
    assert (root / "toy" / "images.zip").read_bytes() == archive
    assert not (root / "toy" / "images").exists()


@pytest.mark.parametrize("url", ["file:///etc/hostname", "ftp://example.org/a.bin", "/etc/hostname"])
def test_only_http_urls_are_fetched(tmp_path, make_manifest, url):
    manifest = make_manifest(tmp_path / "toy.yaml", [{"name": "a.bin", "url": url, "sha256": "0" * 64}])
    with pytest.raises(ConfigError, match=r"url of 'a\.bin' is .*http and https URLs only.*--from"):
        fetch_dataset(manifest, tmp_path / "root")
    assert not (tmp_path / "root").exists()


class _RedirectToFile(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "ftp://127.0.0.1/hostname")  # urllib follows ftp by itself
        self.end_headers()


def test_a_redirect_to_another_scheme_is_refused(tmp_path, make_manifest):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RedirectToFile)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.bin"
        manifest = make_manifest(tmp_path / "toy.yaml", [{"name": "a.bin", "url": url, "sha256": "0" * 64}])
        with pytest.raises(ConfigError, match=r"redirect from .*/a\.bin is 'ftp://127\.0\.0\.1/hostname'"):
            fetch_dataset(manifest, tmp_path / "root", timeout=5, retries=0)
    finally:
        server.shutdown()
        server.server_close()
    assert not (tmp_path / "root" / "toy" / "a.bin").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": -1}, "timeout must be a positive number"),
        ({"timeout": float("nan")}, "timeout must be a positive number"),
        ({"retries": -1}, "retries must be a whole number >= 0"),
    ],
)
def test_option_values_are_checked_before_any_work(tmp_path, make_manifest, options, message):
    manifest = make_manifest(
        tmp_path / "toy.yaml", [{"name": "a.bin", "url": "http://127.0.0.1:9/a", "sha256": "0" * 64}]
    )
    with pytest.raises(ConfigError, match=message):
        fetch_dataset(manifest, tmp_path / "root", **options)
    assert not (tmp_path / "root").exists()


def test_a_root_that_is_a_file_is_refused(tmp_path, make_manifest):
    manifest = make_manifest(
        tmp_path / "toy.yaml", [{"name": "a.bin", "url": "http://127.0.0.1:9/a", "sha256": "0" * 64}]
    )
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"afile is an existing file, not a folder"):
        fetch_dataset(manifest, tmp_path / "afile")


class _EndlessStream(http.server.BaseHTTPRequestHandler):
    """Answers with a body and no Content-Length (ends when the connection closes), 8 MiB at most."""

    sent = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        chunk = b"\x00" * 65536
        try:
            for _ in range(128):
                self.wfile.write(chunk)
                type(self).sent += len(chunk)
        except OSError:
            pass  # the client stopped reading


def test_a_stream_without_content_length_stops_at_the_declared_size(tmp_path, make_manifest):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EndlessStream)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.bin"
        entry = {"name": "a.bin", "url": url, "sha256": _sha(PAYLOAD), "size": len(PAYLOAD)}
        manifest = make_manifest(tmp_path / "toy.yaml", [entry])
        with pytest.raises(
            ChecksumError, match=r"larger than the 16384 bytes the manifest declares \(got 16385"
        ):
            fetch_dataset(manifest, tmp_path / "root", timeout=5, retries=0)
    finally:
        server.shutdown()
        server.server_close()
    assert _tree(tmp_path / "root" / "toy") <= set()  # nothing kept, not even the partial file
    assert _EndlessStream.sent < 4 * 1024 * 1024  # the client stopped reading (socket buffers aside)


def test_a_failed_download_with_no_data_does_not_claim_partial_data(tmp_path, make_manifest):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/raw.bin"
    manifest = make_manifest(
        tmp_path / "toy.yaml",
        [{"name": "raw.bin", "url": url, "sha256": _sha(PAYLOAD), "sha256_source": "test"}],
    )
    with pytest.raises(DownloadError, match="nothing was downloaded") as info:
        fetch_dataset(manifest, tmp_path / "root", timeout=2, retries=0)
    assert ".incomplete" not in str(info.value)
    assert not any(p.name.endswith(".incomplete") for p in (tmp_path / "root").rglob("*"))
