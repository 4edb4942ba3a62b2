"""Build hook: the wheel carries the top-level ``pipelines/`` and ``data_manifests/`` YAMLs.

They stay at the top of the source tree (where users read and copy them) and are copied
into the built package as ``medseg/resources/pipelines`` and ``medseg/resources/manifests``,
where :mod:`medseg.resources` finds them in an installed wheel. Everything else is in
``setup.cfg``.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

#: Top-level folder -> folder inside the built ``medseg/resources`` package.
SHIPPED = {"pipelines": "pipelines", "data_manifests": "manifests"}


class BuildWithShippedYaml(build_py):
    """``build_py`` that also copies the shipped YAMLs into ``medseg/resources``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads them from the checkout
            return
        here = Path(__file__).resolve().parent
        for source, target in SHIPPED.items():
            destination = Path(self.build_lib, "medseg", "resources", target)
            self.mkpath(str(destination))
            for path in sorted((here / source).glob("*.yaml")):
                self.copy_file(str(path), str(destination / path.name))


setup(cmdclass={"build_py": BuildWithShippedYaml})
