"""Typed pipeline configuration loaded from ``medseg/resources/pipelines/*.yaml`` (or any path).

A pipeline file has the sections ``data``, ``model``, ``train`` and ``infer`` (all
optional; defaults below). Unknown keys are errors that name the file, the key and
the allowed keys. ``--set train.iterations=500``-style overrides are applied on top
(:func:`apply_overrides`). The configuration is unpacked at the CLI/pipeline edge;
library functions take plain arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medseg.errors import ConfigError, DataNotFoundError

__all__ = [
    "DataConfig",
    "InferConfig",
    "ModelConfig",
    "PipelineConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "load_config",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """Where the images are, what their labels mean and how patches are drawn from them.

    ``dataset`` is a manifest name (``medseg fetch --list``), the same name ``medseg
    fetch`` takes; ``root`` is the folder given to ``medseg fetch --root``.
    ``label_kind`` says whether label files hold class ids (``classes``) or one id per
    object (``instances``, trained through ``instance_target``: ``boundary`` =
    background/inside/boundary classes, ``distance`` = foreground plus a normalised
    distance map). ``nonfinite`` says what NaN/inf image voxels become
    (:mod:`medseg.infer.normalize`).
    """

    dataset: str = "isbi2012"
    root: Path | None = None
    classes: tuple[str, ...] = ("cell", "membrane")
    label_kind: Literal["classes", "instances"] = "classes"
    instance_target: Literal["boundary", "distance"] = "boundary"
    nonfinite: Literal["error", "zero", "min"] = "error"
    patch_shape: tuple[int, ...] = (128, 128)
    batch_size: int = Field(8, ge=1)
    validation_slices: int = Field(2, ge=0)
    seed: int = 0


class ModelConfig(_Section):
    """A registry name of :func:`medseg.models.build_model` and its parameters."""

    name: str = "unet"
    params: dict[str, Any] = Field(default_factory=lambda: {"features": 16, "depth": 4})


class TrainConfig(_Section):
    """Optimisation settings."""

    iterations: int = Field(300, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    loss: Literal["dice_ce", "ce"] = "dice_ce"
    validate_every: int = Field(100, ge=1)
    checkpoint_every: int = Field(100, ge=1)
    seed: int = 0
    device: str | None = None


class InferConfig(_Section):
    """Sliding-window settings (see :class:`medseg.infer.SlidingWindow`)."""

    roi_size: tuple[int, ...] = (128, 128)
    overlap: float = Field(0.5, ge=0, lt=1)
    blending: Literal["gaussian", "constant"] = "gaussian"
    batch_size: int = Field(8, ge=1)
    mirror_axes: tuple[int, ...] = (0, 1)
    precision: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str | None = None


class PipelineConfig(_Section):
    """A whole pipeline: data → model → training → inference."""

    name: str = "pipeline"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    infer: InferConfig = InferConfig()


def _allowed_keys(model: type[BaseModel], location: tuple) -> list[str]:
    for part in location[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _validate(raw: Any, source: str) -> PipelineConfig:
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: a pipeline config must be a mapping of sections, got {type(raw).__name__}"
        )
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                allowed = ", ".join(_allowed_keys(PipelineConfig, e["loc"]))
                problems.append(f"unknown key '{where}' (allowed here: {allowed})")
            else:
                problems.append(f"'{where}': {e['msg']} (got {e.get('input')!r})")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from err


def load_config(path: str | Path, overrides: list[str] | None = None) -> PipelineConfig:
    """Read a pipeline YAML file, apply ``key.path=value`` overrides and validate it.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    ConfigError
        Invalid YAML, an unknown key (named, with the allowed keys) or a bad value.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(
            f"pipeline config {path} does not exist; see the examples in medseg/resources/pipelines/"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    raw = apply_overrides(raw, overrides or [])
    return _validate(raw, str(path))


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set ``a.b.c=value`` entries (value parsed as YAML) in a nested dict, returning a copy."""
    out = yaml.safe_load(yaml.safe_dump(raw)) if raw else {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"override {item!r} must look like section.key=value, e.g. train.iterations=500"
            )
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{part}' is not a section")
        node[parts[-1]] = yaml.safe_load(value)
    return out


def config_from_dict(raw: dict[str, Any], *, source: str = "config") -> PipelineConfig:
    """Validate an in-memory config (e.g. the demo's defaults with overrides)."""
    return _validate(raw, source)
