"""Export a trained medseg model as a BioImage Model Zoo package (bioimage.io model format 0.5).

The package is what deepImageJ (Fiji), ilastik, napari and QuPath run: an ``rdf.yaml``
describing the tensors, the weights in two formats, a test input with its expected
output, pre- and post-processing in the specification's own terms, a cover picture and
a README. Written with :mod:`bioimageio.spec` and checked by it before anything is saved.

What a package holds
--------------------
- ``weights.pt``: the ``state_dict`` (``pytorch_state_dict``), rebuilt by
  ``medseg.models.build_model(name, **params)`` (the architecture ``kwargs``);
- ``weights.torchscript.pt``: the same network scripted (traced where scripting fails), so
  tools without medseg run it;
- ``test_input.npy`` / ``test_output.npy``: a crop of a training image and what the
  model returns for it (``batch, channel, [z,] y, x``);
- pre-processing ``ensure_dtype`` float32 + ``fixed_zero_mean_unit_variance`` with the
  training statistics; post-processing ``softmax`` over channels for class models. An
  instance model's output is kept raw (class logits and, for the ``distance`` target, a
  distance logit) because its seeded watershed has no counterpart in the specification;
  the README says how medseg turns it into objects, and ``config.medseg`` records it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch

from medseg.checkpoint_meta import CheckpointMeta, read_checkpoint
from medseg.errors import ConfigError
from medseg.exchange.bioimageio_files import (
    expected_output,
    sample_crop,
    smallest_size,
    write_cover,
    write_torchscript,
)
from medseg.infer.predictor import load_trained_model
from medseg.io import Volume, atomic_output
from medseg.models.constraints import InputConstraints, constraints_of
from medseg.options import InstanceTarget

__all__ = ["CheckpointModel", "PackageInfo", "export_bioimageio", "read_trained_model"]

logger = logging.getLogger(__name__)

#: medseg spacing units as the specification spells them.
SPEC_UNITS = {"nm": "nanometer", "um": "micrometer", "mm": "millimeter"}
#: Papers of the architectures medseg builds, cited in every package of that model.
MODEL_CITATIONS: dict[str, dict[str, str]] = {
    "unet": {
        "text": "Ronneberger O., Fischer P., Brox T. U-Net: Convolutional Networks for Biomedical Image "
        "Segmentation. MICCAI 2015.",
        "doi": "10.1007/978-3-319-24574-4_28",
    },
    "unet3d": {
        "text": "Çiçek Ö. et al. 3D U-Net: Learning Dense Volumetric Segmentation from Sparse Annotation. "
        "MICCAI 2016.",
        "doi": "10.1007/978-3-319-46723-8_49",
    },
    "fcn": {
        "text": "Long J., Shelhamer E., Darrell T. Fully Convolutional Networks for Semantic Segmentation. "
        "CVPR 2015.",
        "doi": "10.1109/CVPR.2015.7298965",
    },
}
INPUT_ID = "raw"
OUTPUT_ID = "prediction"


@dataclass(frozen=True)
class CheckpointModel:
    """A trained network and its checkpoint's :class:`~medseg.checkpoint_meta.CheckpointMeta` (what an export needs).

    The properties give the meta's entries as plain values (lists, dicts), as the
    package's ``rdf.yaml`` stores them.
    """

    model: torch.nn.Module
    meta: CheckpointMeta

    @property
    def constraints(self) -> InputConstraints:
        """The network's input size rules and channels (:class:`~medseg.models.InputConstraints`)."""
        return constraints_of(self.model)

    @property
    def name(self) -> str:
        """Registry name of the architecture (:func:`medseg.models.build_model`)."""
        return self.meta.model.name

    @property
    def params(self) -> dict[str, Any]:
        """Keyword arguments the architecture was built with."""
        return self.meta.model.kwargs()

    @property
    def normalization(self) -> dict[str, Any]:
        """The training z-score (``mean``, ``std`` per channel, ``nonfinite``...)."""
        return dict(self.meta.to_dict()["normalization"])

    @property
    def classes(self) -> list[str] | None:
        """Class names by class id, ``None`` when the checkpoint records none."""
        return list(self.meta.classes) or None

    @property
    def instance_target(self) -> InstanceTarget | None:
        """The instance target of an instance model, ``None`` for a class model."""
        return self.meta.targets.instance_target

    @property
    def config(self) -> dict[str, Any]:
        """The run's resolved pipeline config (empty when the checkpoint stores none)."""
        return dict(self.meta.to_dict().get("config") or {})


def read_trained_model(checkpoint: str | Path) -> CheckpointModel:
    """The model and meta of a medseg checkpoint (a ``.pt`` file, ``checkpoints/`` or run folder), read once."""
    loaded = read_checkpoint(checkpoint)
    return CheckpointModel(load_trained_model(loaded), loaded.meta)


@dataclass(frozen=True)
class PackageInfo:
    """What the package says about itself beyond the weights.

    Parameters
    ----------
    name : str
        Human-readable model name (the run's ``name``).
    description : str
        One or two sentences.
    authors : sequence of str
        At least one name.
    license : str
        SPDX identifier of the package (weights and test data).
    cite : sequence of dict
        ``{"text": ..., "doi": ...}`` or ``{"text": ..., "url": ...}``; the architecture's
        paper is added.
    documentation : str
        Extra Markdown for the README (dataset, licence notes).
    tags : sequence of str
        Extra tags (modality, dataset).
    """

    name: str
    description: str
    authors: Sequence[str]
    license: str = "CC-BY-4.0"
    cite: Sequence[dict[str, str]] = field(default_factory=tuple)
    documentation: str = ""
    tags: Sequence[str] = field(default_factory=tuple)


def _is_instance(trained: CheckpointModel) -> bool:
    return trained.meta.targets.is_instances


def _channel_names(trained: CheckpointModel) -> list[str]:
    out_channels = trained.constraints.out_channels
    classes = trained.classes or []
    target = trained.instance_target
    if target is not None and target.has_flows:  # Cellpose: cell probability logit, then one flow per axis
        return ["cellprob_logit"] + [f"flow_{a}" for a in ("z", "y", "x")[-(out_channels - 1) :]]
    if target is not None and target.has_distance_channel and len(classes) == 2 and out_channels == 3:
        return [f"{c}_logit" for c in classes] + ["distance_logit"]
    if len(classes) == out_channels:
        return [f"{c}_logit" if target is not None else c for c in classes]
    return [f"channel{k}" for k in range(out_channels)]


def _axes(
    sample: Volume, trained: CheckpointModel, *, output: bool, fixed: Sequence[int] | None = None
) -> list[Any]:
    """The tensor's axes; ``fixed`` declares one input size instead of ``min + n * step``."""
    from bioimageio.spec.model import v0_5

    constraints = trained.constraints
    dims = constraints.spatial_dims
    spacing = (sample.spacing or (1.0,) * len(sample.spatial_shape))[
        -dims:
    ]  # Volume sets it: ones by default
    unit = SPEC_UNITS.get(sample.unit) if sample.unit else None
    ids = ("z", "y", "x")[-dims:]
    if output:
        axes: list[Any] = [
            v0_5.BatchAxis(),
            v0_5.ChannelAxis(channel_names=[v0_5.Identifier(n) for n in _channel_names(trained)]),
        ]
    else:
        axes = [
            v0_5.BatchAxis(),
            v0_5.ChannelAxis(
                channel_names=[v0_5.Identifier(f"channel{c}") for c in range(constraints.in_channels)]
            ),
        ]
    for a, (axis_id, scale) in enumerate(zip(ids, spacing, strict=True)):
        if output:
            size: Any = v0_5.SizeReference(
                tensor_id=v0_5.TensorId(INPUT_ID),
                axis_id=v0_5.AxisId(axis_id),
                offset=-2 * constraints.margin[a],
            )
            axes.append(
                v0_5.SpaceOutputAxis(id=v0_5.AxisId(axis_id), size=size, scale=float(scale), unit=unit)
            )
        else:
            size = (
                int(fixed[a])
                if fixed is not None
                else v0_5.ParameterizedSize(min=smallest_size(constraints, a), step=constraints.divisor[a])
            )
            axes.append(
                v0_5.SpaceInputAxis(id=v0_5.AxisId(axis_id), size=size, scale=float(scale), unit=unit)
            )
    return axes


def _preprocessing(trained: CheckpointModel) -> list[Any]:
    from bioimageio.spec.model import v0_5

    mean = [float(m) for m in trained.normalization["mean"]]
    std = [float(s) for s in trained.normalization["std"]]
    if len(mean) == 1:
        kwargs: Any = v0_5.FixedZeroMeanUnitVarianceKwargs(mean=mean[0], std=std[0])
    else:
        kwargs = v0_5.FixedZeroMeanUnitVarianceAlongAxisKwargs(
            mean=mean, std=std, axis=v0_5.AxisId("channel")
        )
    return [
        v0_5.EnsureDtypeDescr(kwargs=v0_5.EnsureDtypeKwargs(dtype="float32")),
        v0_5.FixedZeroMeanUnitVarianceDescr(kwargs=kwargs),
    ]


def _readme(trained: CheckpointModel, info: PackageInfo, tile: tuple[int, ...]) -> str:
    target = trained.instance_target
    if target is not None and target.has_flows:
        output = (
            f"Raw outputs of a Cellpose-style flow model (target `flow`, Stringer et al. 2021): channels "
            f"{', '.join(_channel_names(trained))}, the flows 5x unit vectors towards each object's centre. "
            "medseg follows the flows into objects (`medseg predict -m PACKAGE.zip`); other tools can "
            "threshold the cell probability logit at 0."
        )
    elif target is not None:
        output = (
            f"Raw logits of an instance model (target `{target.value}`): channels {', '.join(_channel_names(trained))}. "
            "medseg turns them into objects with a seeded watershed (`medseg predict -m PACKAGE.zip`); "
            "other tools get the class logits and can threshold the foreground."
        )
    else:
        output = f"Class probabilities (softmax over channels): {', '.join(_channel_names(trained))}."
    return "\n".join(
        [
            f"# {info.name}",
            "",
            info.description,
            "",
            "## Model",
            f"- architecture: medseg `{trained.name}` with {trained.params}",
            f"- input: z-scored with the training statistics (mean {trained.normalization['mean']}, "
            f"std {trained.normalization['std']}); non-finite voxels: policy `{trained.normalization.get('nonfinite', 'error')}`"
            " (medseg only; the specification has no counterpart, so give other tools finite images)",
            f"- output: {output}",
            f"- tile used in training/inference: {list(tile)}",
            "",
            "## Use",
            "- medseg: `medseg predict -m THIS.zip -i IMAGE -o OUT`",
            "- any bioimage.io consumer (deepImageJ, ilastik, napari, QuPath): the torchscript weights need no medseg;"
            " the pytorch_state_dict weights need `pip install medseg`.",
            "",
            info.documentation,
            "",
            "## Validation",
            "The test input is a crop of a training-set image; its expected output was computed by medseg "
            "and is reproduced by `bioimageio test` for both weight formats. This checks the package, not the "
            "model's accuracy: see the training run's validation scores.",
            "",
        ]
    )


def _citations(trained: CheckpointModel, info: PackageInfo) -> list[Any]:
    from bioimageio.spec.model import v0_5

    family = "fcn" if trained.name.startswith("fcn") else "unet3d" if trained.name == "unet3d" else "unet"
    entries = [MODEL_CITATIONS[family], *info.cite]
    cites = []
    for entry in entries:
        if entry.get("doi"):
            cites.append(v0_5.CiteEntry(text=entry["text"], doi=v0_5.Doi(entry["doi"])))
        elif entry.get("url"):
            cites.append(v0_5.CiteEntry(text=entry["text"], url=entry["url"]))
    return cites


def _validated(descr_class: Any, **fields: Any) -> Any:
    """``descr_class(**fields)``, a validation failure as a :class:`ConfigError` listing the fields."""
    import pydantic

    try:
        return descr_class(**fields)
    except pydantic.ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:5])
        raise ConfigError(f"the bioimage.io description does not validate: {problems}") from err


def export_bioimageio(
    trained: CheckpointModel,
    sample: Volume,
    out: str | Path,
    *,
    info: PackageInfo,
    tile: Sequence[int] | None = None,
    draw_cover: Callable[..., np.ndarray],
) -> Path:
    """Write ``trained`` as a bioimage.io model package (a ``.zip``), validated by bioimageio.spec.

    Parameters
    ----------
    trained : CheckpointModel
        From :func:`read_trained_model`.
    sample : Volume
        An image like the training images (``(C, *spatial)``, geometry kept): the test
        input is a crop of it, and its spacing/unit become the axes' scale/unit.
    out : path
        The ``.zip`` to write (atomically).
    info : PackageInfo
        Name, description, authors, licence, citations, documentation.
    tile : sequence of int, optional
        Test input size (default: the run's ``infer.roi_size``), shrunk to the image.
    draw_cover : callable
        ``draw_cover(image, None, labels) -> (Y, X, 3) uint8`` picture of the test tile.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ConfigError
        The description does not validate (the message carries bioimageio.spec's summary).
    ShapeError
        The sample does not fit the model.
    """
    from bioimageio.spec import ValidationContext, save_bioimageio_package
    from bioimageio.spec.model import v0_5

    out = Path(out)
    if out.suffix != ".zip":
        raise ConfigError(f"the package must be a .zip file, got {out}; e.g. --bioimageio model.zip")
    if not info.authors:
        raise ConfigError("a bioimage.io package needs at least one author: pass --author NAME")
    constraints = trained.constraints
    tile = tuple(tile or trained.config.get("infer", {}).get("roi_size") or sample.spatial_shape)
    tile = tile[-constraints.spatial_dims :]
    test_input = sample_crop(sample, trained, tile)
    test_output = expected_output(trained, test_input)
    import bioimageio.spec
    import torch as _torch

    with tempfile.TemporaryDirectory(prefix="medseg-bioimageio-") as tmp:
        folder = Path(tmp)
        np.save(folder / "test_input.npy", test_input)
        np.save(folder / "test_output.npy", test_output)
        # human-viewable copies of the test tensors (FAIR "sample_tensor": readable by imageio)
        tifffile.imwrite(folder / "sample_input.tif", test_input)
        tifffile.imwrite(folder / "sample_output.tif", test_output)
        _torch.save(trained.model.state_dict(), folder / "weights.pt")
        general = write_torchscript(
            trained.model, torch.from_numpy(test_input), folder / "weights.torchscript.pt"
        )
        fixed = None if general else test_input.shape[2:]
        write_cover(test_input, test_output, draw_cover, folder / "cover.png")
        (folder / "README.md").write_text(_readme(trained, info, tile), encoding="utf-8")
        torch_version = v0_5.Version(_torch.__version__.split("+")[0])
        medseg_config = {
            "model": {"name": trained.name, "params": trained.params},
            "classes": trained.classes,
            "targets": trained.meta.targets.to_dict(),
            "postprocessing": dict(trained.meta.postprocessing),
            "normalization": trained.normalization,
            "tile": list(tile),
        }
        with ValidationContext(root=folder, perform_io_checks=True):
            description = _validated(
                v0_5.ModelDescr,
                name=info.name,
                description=info.description,
                authors=[v0_5.Author(name=a) for a in info.authors],
                cite=_citations(trained, info),
                license=v0_5.LicenseId(info.license),
                documentation=v0_5.FileDescr(source=folder / "README.md"),
                covers=[v0_5.FileDescr(source=folder / "cover.png")],
                tags=sorted({"medseg", "segmentation", f"{constraints.spatial_dims}d", *info.tags}),
                inputs=[
                    v0_5.InputTensorDescr(
                        id=v0_5.TensorId(INPUT_ID),
                        axes=_axes(sample, trained, output=False, fixed=fixed),
                        test_tensor=v0_5.FileDescr(source=folder / "test_input.npy"),
                        sample_tensor=v0_5.FileDescr(source=folder / "sample_input.tif"),
                        preprocessing=_preprocessing(trained),
                    )
                ],
                outputs=[
                    v0_5.OutputTensorDescr(
                        id=v0_5.TensorId(OUTPUT_ID),
                        axes=_axes(sample, trained, output=True),
                        test_tensor=v0_5.FileDescr(source=folder / "test_output.npy"),
                        sample_tensor=v0_5.FileDescr(source=folder / "sample_output.tif"),
                        postprocessing=[]
                        if _is_instance(trained)
                        else [v0_5.SoftmaxDescr(kwargs=v0_5.SoftmaxKwargs(axis=v0_5.AxisId("channel")))],
                    )
                ],
                weights=v0_5.WeightsDescr(
                    pytorch_state_dict=v0_5.PytorchStateDictWeightsDescr(
                        source=folder / "weights.pt",
                        architecture=v0_5.ArchitectureFromLibraryDescr(
                            callable=v0_5.Identifier("build_model"),
                            import_from="medseg.models",
                            kwargs={"name": trained.name, **trained.params},
                        ),
                        pytorch_version=torch_version,
                    ),
                    torchscript=v0_5.TorchscriptWeightsDescr(
                        source=folder / "weights.torchscript.pt",
                        pytorch_version=torch_version,
                        parent="pytorch_state_dict",
                    ),
                ),
                config=v0_5.Config(**{"medseg": medseg_config}),
            )
        logger.info("bioimageio.spec %s validated the description", bioimageio.spec.__version__)
        with atomic_output(out) as target:
            written = save_bioimageio_package(description, output_path=target)
            if Path(written) != target:
                shutil.move(str(written), target)
    return out
