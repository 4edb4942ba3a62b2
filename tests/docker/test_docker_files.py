"""The Docker engine is not available here: check what can be checked without it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_copies_files_that_exist():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    copied = []
    for line in dockerfile.splitlines():
        match = re.match(r"COPY\s+(?!--)(.+)\s+\S+$", line.strip())
        if match:
            copied += match.group(1).split()
    assert copied, "Dockerfile copies nothing"
    missing = [p for p in copied if not (ROOT / p).exists()]
    assert not missing, f"Dockerfile copies missing paths: {missing}"
    assert 'ENTRYPOINT ["medseg-entrypoint"]' in dockerfile


def test_entrypoint_runs_the_medseg_command(tmp_path):
    # put a `medseg` shim on PATH that runs this interpreter's medseg
    shim = tmp_path / "medseg"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m medseg "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["sh", str(ROOT / "docker" / "entrypoint.sh"), "--version"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("medseg ")
    shell = subprocess.run(
        ["sh", str(ROOT / "docker" / "entrypoint.sh"), "shell", "-c", "echo inside"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert shell.stdout.strip() == "inside"
