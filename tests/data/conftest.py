"""Fixtures for tests/data: a loopback HTTP server serving fixture files, tiny manifests."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml


@dataclass
class ServerState:
    """What the fixture server serves and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    #: path -> number of bytes after which the *first* response is cut off
    cut_after: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    supports_range: bool = True


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        state = self.state
        range_header = self.headers.get("Range")
        state.requests.append((self.path, range_header))
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if range_header and state.supports_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = state.cut_after.pop(self.path, None)
        if cut is not None:
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


@dataclass
class FixtureServer:
    state: ServerState
    base_url: str

    def add(self, name: str, data: bytes) -> str:
        self.state.files[f"/{name}"] = data
        return f"{self.base_url}/{name}"


@pytest.fixture
def http_server() -> Iterator[FixtureServer]:
    """A threaded HTTP server on 127.0.0.1 (random port), shut down after the test."""
    state = ServerState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield FixtureServer(state, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_manifest(path: Path, files: list[dict], *, name: str = "toy", folder: str = "toy") -> Path:
    """A minimal valid manifest with the given ``files`` entries."""
    manifest = {
        "name": name,
        "title": "toy dataset for tests",
        "modality": "em",
        "citation": [{"text": "nobody"}],
        "licence": {"name": "CC0"},
        "files": files,
        "layout": {"folder": folder, "paths": {"images": "images/*"}},
        "labels": {"kind": "semantic", "classes": {"background": 0, "fg": 1}},
        "spacing": {"values": [1.0, 1.0], "unit": "px", "axes": "YX"},
        "split": {"train": {"pattern": "images/*"}},
    }
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


@pytest.fixture
def make_manifest():
    """``make_manifest(path, files, name=..., folder=...)`` writes a minimal manifest."""
    return write_manifest
