"""medseg.io is the only code that decodes image files: the dataset loaders import no format library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import medseg.data

FORMAT_LIBRARIES = {
    "tifffile",
    "tiffslide",
    "openslide",
    "PIL",
    "h5py",
    "nibabel",
    "SimpleITK",
    "zarr",
    "imageio",
}
LOADERS = (
    "cells",
    "dental",
    "em",
    "histo",
    "volumes",
    "sample",
    "manifest",
    "registry",
    "label_check",
    "targets",
)


@pytest.mark.parametrize("module", LOADERS)
def test_loader_imports_no_format_library(module):
    path = Path(medseg.data.__file__).parent / f"{module}.py"
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORMAT_LIBRARIES, f"{path.name} decodes files itself: {imported & FORMAT_LIBRARIES}"


def test_private_file_helpers_are_gone():
    assert not (Path(medseg.data.__file__).parent / "_files.py").exists()
