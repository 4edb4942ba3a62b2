"""The Docker engine is not available here: check what can be checked without it."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


DOCKERFILES = ["Dockerfile", "Dockerfile.cuda"]


def _instructions(dockerfile: Path) -> list[str]:
    """Instructions with backslash continuations joined."""
    return re.sub(r"\\\n", " ", dockerfile.read_text()).splitlines()


def _copied(dockerfile: Path) -> list[str]:
    copied = []
    for line in _instructions(dockerfile):
        match = re.match(r"COPY\s+(?!--)(.+)\s+\S+$", line.strip())
        if match:
            copied += match.group(1).split()
    return copied


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_copies_files_that_exist_and_runs_the_medseg_entrypoint(name):
    dockerfile = ROOT / "docker" / name
    copied = _copied(dockerfile)
    assert {"setup.cfg", "pyproject.toml", "medseg", "docker/entrypoint.sh"} <= set(copied)
    missing = [p for p in copied if not (ROOT / p).exists()]
    assert not missing, f"{name} copies missing paths: {missing}"
    text = dockerfile.read_text()
    assert 'ENTRYPOINT ["medseg-entrypoint"]' in text
    assert 'VOLUME ["/data", "/out"]' in text


def _pins(path: Path) -> dict[str, Version]:
    """``name -> version`` of a constraints file; every line must be an exact ``==`` pin."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


@pytest.mark.parametrize("name", DOCKERFILES)
def test_image_constraints_pin_a_torch_that_setup_cfg_accepts(name):
    """The constraints each image installs with parse, pin torch, and satisfy install_requires."""
    constraint_file = next(p for p in _copied(ROOT / "docker" / name) if "constraints" in p)
    pins = _pins(ROOT / constraint_file)
    assert "torch" in pins
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    required = [Requirement(r) for r in parser["options"]["install_requires"].split("\n") if r.strip()]
    for req in required:
        if canonicalize_name(req.name) in pins:
            assert req.specifier.contains(pins[canonicalize_name(req.name)]), (req, pins)
    # both images and CI run the same torch release
    assert pins["torch"] == _pins(ROOT / ".ci" / "constraints-cpu.txt")["torch"]


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
