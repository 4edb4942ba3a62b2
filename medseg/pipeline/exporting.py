"""``medseg export``: a training run folder to a BioImage Model Zoo package.

Finds what the package needs around the checkpoint: a test image (given, else the
run's first validation image, else its first training image), the dataset manifest's
citations, licence note and modality, and draws the cover with the run's overlay.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from medseg.config import config_from_dict
from medseg.data.manifest import find_manifest, load_manifest
from medseg.data.registry import resolve_name
from medseg.errors import ConfigError, MedsegError
from medseg.exchange.bioimageio_export import (
    CheckpointModel,
    PackageInfo,
    export_bioimageio,
    read_trained_model,
)
from medseg.io import Volume, read
from medseg.pipeline.datasets import load_training_samples
from medseg.pipeline.overlay import overlay_panels

__all__ = ["export_run"]

logger = logging.getLogger(__name__)


def _run_image(trained: CheckpointModel) -> Volume:
    """An image of the run's own data: the first validation sample, else the first training one."""
    if not trained.config.get("data"):
        raise ConfigError("the checkpoint stores no data config; pass a test image with --test-image IMAGE")
    data = config_from_dict(trained.config, source="the run's config").data
    try:
        training, validation = load_training_samples(data)
    except MedsegError as err:
        raise ConfigError(
            f"cannot read the run's data for a test image ({err}); pass --test-image IMAGE"
        ) from err
    image = (validation or training)[0].image
    return image if isinstance(image, Volume) else read(image.path)  # a lazily opened stack: read it


def _package_info(trained: CheckpointModel, authors: Sequence[str], license: str) -> PackageInfo:
    """Name, description, citations and documentation from the run's config and its dataset manifest."""
    data = trained.config.get("data") or {}
    name = re.sub(r"[^A-Za-z0-9 _().-]+", " ", str(trained.config.get("name") or trained.name)).strip()
    name = name if len(name) >= 5 else f"medseg {name}"  # the specification wants 5-128 characters
    kind = "instance" if trained.meta.targets.is_instances else "semantic"
    description = f"medseg {trained.name} for {kind} segmentation"
    cite: list[dict[str, str]] = []
    notes = []
    tags = [f"{kind}-segmentation"]
    dataset = data.get("dataset")
    if dataset:
        try:
            manifest = load_manifest(find_manifest(resolve_name(str(dataset))))
        except MedsegError:
            logger.info("no manifest for dataset %s: the package cites the architecture only", dataset)
        else:
            description += f", trained on {manifest.title}"
            cite = [c.model_dump(exclude_none=True) for c in manifest.citation if c.doi or c.url]
            tags += [manifest.modality, manifest.name]
            notes += [
                "## Training data",
                f"- {manifest.title}" + (f" ({manifest.homepage})" if manifest.homepage else ""),
                f"- data licence: {manifest.licence.name}"
                + (f" ({manifest.licence.url})" if manifest.licence.url else "")
                + (f"; {manifest.licence.note}" if manifest.licence.note else ""),
                *(f"- cite: {c.text}" for c in manifest.citation),
            ]
    if trained.classes:
        description += f" (classes: {', '.join(trained.classes)})"
    return PackageInfo(
        name=name,
        description=description + ".",
        authors=tuple(authors),
        license=license,
        cite=tuple(cite),
        documentation="\n".join(notes),
        tags=tuple(tags),
    )


def export_run(
    run: str | Path,
    out: str | Path,
    *,
    authors: Sequence[str],
    license: str = "CC-BY-4.0",
    test_image: str | Path | None = None,
) -> Path:
    """Export the best checkpoint of ``run`` as a bioimage.io model package ``out`` (``.zip``).

    Parameters
    ----------
    run : path
        Training run folder, its ``checkpoints/`` folder or a ``.pt`` file.
    out : path
        The package to write.
    authors : sequence of str
        Author names (at least one).
    license : str
        SPDX licence identifier of the package.
    test_image : path, optional
        Image the test input is cropped from (default: the run's own data).

    Returns
    -------
    Path
        ``out``.
    """
    trained = read_trained_model(run)
    sample = read(test_image) if test_image is not None else _run_image(trained)
    info = _package_info(trained, authors, license)
    return export_bioimageio(trained, sample, out, info=info, draw_cover=overlay_panels)
