"""A wheel-installed medseg (not editable) ships its manifests and pipelines and fetches from them.

The YAMLs live in the top-level ``pipelines/`` and ``data_manifests/`` folders; the wheel
carries them as ``medseg/resources/{pipelines,manifests}`` (``setup.py``'s build hook), and
every shipped file must arrive there.

The wheel is built from a copy of the sources and installed with ``--no-deps`` into a
fresh virtual environment; the dependencies come from the test environment through a
``.pth`` line (its own ``.pth`` files, e.g. the editable install, are not processed), so
the test needs no network and takes a few seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import yaml

import medseg

REPO = Path(medseg.__file__).resolve().parents[1]


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_wheel_install_lists_manifests_and_fetches(tmp_path, http_server):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "setup.py", "MANIFEST.in", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for folder in ("medseg", "pipelines", "data_manifests"):  # the shipped YAMLs live at the top level
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        ".",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        tmp_path / "dist",
        cwd=source,
    )
    [wheel] = (tmp_path / "dist").glob("medseg-*.whl")

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--no-deps",
        "--no-index",
        "-q",
        wheel,
        cwd=tmp_path,
    )
    site = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).strip()
    )
    (site / "test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEDSEG_MANIFESTS")}

    where = _run(python, "-c", "import medseg; print(medseg.__file__)", cwd=tmp_path, env=env)
    assert Path(where.strip()).is_relative_to(site), "the wheel's medseg must be imported, not the checkout"
    shipped = _run(
        python,
        "-c",
        "from medseg.data import list_manifests; from medseg.resources import list_pipelines; "
        "print(' '.join(sorted(list_manifests()))); print(' '.join(sorted(list_pipelines())))",
        cwd=tmp_path,
        env=env,
    ).split("\n")
    assert shipped[0].split() == [
        "cremi",
        "ctc_dic_hela",
        "ctc_phc_u373",
        "dental_isbi2015",
        "glas2015",
        "isbi2012",
        "lab_folder",
        "monuseg2018",
        "nnunet_raw",
    ]
    assert shipped[1].split() == [
        "cremi",
        "ctc_dic_hela",
        "ctc_phc_u373",
        "dental_isbi2015",
        "finetune_lab",
        "glas_fcn8s",
        "glas_unet",
        "isbi2012",
        "isbi2012_unet_paper",
        "lab_folder",
        "lab_folder_3d",
        "monuseg_sdae",
        "monuseg_unet",
        "nnunet_3d",
    ]
    assert shipped[0].split() == sorted(p.stem for p in (REPO / "data_manifests").glob("*.yaml"))
    assert shipped[1].split() == sorted(p.stem for p in (REPO / "pipelines").glob("*.yaml"))
    help_text = _run(venv / "bin" / "medseg", "fetch", "--help", cwd=tmp_path, env=env)
    assert "isbi2012" in help_text and "known names are []" not in help_text

    # the installed ISBI 2012 manifest, pointed at a loopback copy of its file
    installed = site / "medseg" / "resources" / "manifests" / "isbi2012.yaml"
    manifest = yaml.safe_load(installed.read_text())
    assert (
        manifest["files"][0]["sha256"] == "0e10fe909a1243084d91773470856993b7d40126a12e85f0f1345a7a9e512f29"
    )
    payload = b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8
    manifest["files"][0].update(
        url=http_server.add("isbi.h5", payload), sha256=hashlib.sha256(payload).hexdigest(), size=len(payload)
    )
    local = tmp_path / "isbi2012.yaml"
    local.write_text(yaml.safe_dump(manifest))
    _run(venv / "bin" / "medseg", "fetch", local, "--root", tmp_path / "data", cwd=tmp_path, env=env)
    assert (tmp_path / "data" / "isbi2012" / "isbi.h5").read_bytes() == payload
