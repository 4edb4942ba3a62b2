"""medseg fetch against a loopback HTTP server: happy path, resume, checksum, unsafe archives, --from."""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest

from medseg.cli import fetch as fetch_cli
from medseg.data.fetch import fetch_dataset
from medseg.errors import ChecksumError, DownloadError, UnsafeArchiveError

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
