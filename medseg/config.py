"""Typed pipeline configuration loaded from ``pipelines/*.yaml`` (or any path).

A pipeline file has the sections ``data``, ``model``, ``train`` and ``infer`` (all
optional; defaults below). Unknown keys are errors that name the file, the key and
the allowed keys. ``--set train.iterations=500``-style overrides are applied on top
(:func:`apply_overrides`). The configuration is unpacked at the CLI/pipeline edge;
library functions take plain arguments.
"""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from medseg.errors import ConfigError, DataNotFoundError
from medseg.options import InstanceTarget, LabelKind, Precision

__all__ = [
    "DataConfig",
    "InferConfig",
    "ModelConfig",
    "PipelineConfig",
    "PostProcessingConfig",
    "TrainConfig",
    "apply_overrides",
    "config_defaults",
    "config_from_dict",
    "expected_out_channels",
    "format_validation_error",
    "load_config",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _not_empty(shape: tuple[int, ...]) -> tuple[int, ...]:
    if not shape:
        raise ValueError("needs one size per spatial axis, got none")
    return shape


#: A patch or window size: at least one axis, every size a whole number >= 1.
Shape = Annotated[tuple[PositiveInt, ...], AfterValidator(_not_empty)]


class DataConfig(_Section):
    """Where the images are, what their labels mean and how patches are drawn from them.

    ``dataset`` is a manifest name (``medseg fetch --list``), the same name ``medseg
    fetch`` takes; ``root`` is the folder given to ``medseg fetch --root``.
    ``label_kind`` says whether label files hold class ids (``classes``) or one id per
    object (``instances``, trained through ``instance_target``: ``boundary`` =
    background/inside/boundary classes, ``distance`` = foreground plus a normalised
    distance map, ``both`` = the three classes plus the distance map, ``flow`` =
    Cellpose's cell probability plus flow fields, :mod:`medseg.flows`). ``nonfinite`` says what NaN/inf image voxels become
    (:mod:`medseg.infer.normalize`). ``patch_border`` lets training patches reach that
    fraction of a patch past the image's faces, mirrored as inference pads (``0``: patches stay
    inside, so face voxels are only seen at patch edges; ``0.5``: patch centres anywhere, as
    nnU-Net samples). ``validation_slices`` cases are held out for
    validation; with no more cases than that, the last ``validation_fraction`` of each
    case along its longest axis is held out instead, predicted with as much of the part
    before it as context and scored alone (:mod:`medseg.data.holdout`).
    """

    dataset: str = "isbi2012"
    root: Path | None = None
    classes: tuple[str, ...] = ("cell", "membrane")
    label_kind: LabelKind = LabelKind.CLASSES
    instance_target: InstanceTarget = InstanceTarget.BOUNDARY
    nonfinite: Literal["error", "zero", "min"] = "error"
    patch_shape: Shape = (128, 128)
    patch_border: float = Field(0.0, ge=0, le=0.5)
    batch_size: int = Field(8, ge=1)
    validation_slices: int = Field(2, ge=0)
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    num_workers: int = Field(0, ge=0)


class ModelConfig(_Section):
    """A registry name of :func:`medseg.models.build_model` and its parameters."""

    name: str = "unet"
    params: dict[str, Any] = Field(default_factory=lambda: {"features": 16, "depth": 4})


class TrainConfig(_Section):
    """Optimisation settings.

    ``loss``: ``ce``, ``dice``, ``dice_ce`` or ``unet_weighted_ce`` (U-Net border weight
    map); ``ignore_label``: a label value the loss ignores. ``precision``: autocast dtype
    (``float16`` scales gradients); ``grad_clip``: maximum gradient norm.
    ``max_minutes``: wall-clock budget; ``early_stopping_patience``: validations without a
    better score before stopping. ``final_model``: the model ``best.pt`` holds (what
    ``predict`` uses, and what instance post-processing is tuned on): the ``best``
    validation score, or the ``last`` iteration (nnU-Net's final checkpoint; on one-image
    nuclei runs it was no better than ``best``, benchmarks/README.md). ``deterministic``:
    seeded, deterministic kernels.
    ``pretrain: layerwise``: greedy denoising pre-training of models that declare it
    (sDAE), ``pretrain_steps`` per layer. ``init``: fine-tune from a checkpoint (tensors
    matching by name and shape are loaded; ``label_map`` maps this config's class names
    to the checkpoint's), ``freeze_encoder_stages``, ``pretrained_lr_factor`` for the
    loaded tensors. On ``--resume`` only budgets, intervals, device, precision and the
    learning rate may change (:mod:`medseg.train.resume`).
    """

    iterations: int = Field(300, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    loss: Literal["dice_ce", "ce", "dice", "unet_weighted_ce"] = "dice_ce"
    ignore_label: int | None = None
    validate_every: int = Field(100, ge=1)
    checkpoint_every: int = Field(100, ge=1)
    seed: int = 0
    device: str | None = None
    deterministic: bool = False
    precision: Precision = Precision.FLOAT32
    grad_clip: float | None = Field(None, gt=0)
    max_minutes: float | None = Field(None, gt=0)
    early_stopping_patience: int | None = Field(None, ge=1)
    final_model: Literal["best", "last"] = "best"
    pretrain: Literal["none", "layerwise"] = "none"
    pretrain_steps: int = Field(200, ge=1)
    init: Path | None = None
    label_map: dict[str, str] = Field(default_factory=dict)
    freeze_encoder_stages: int = Field(0, ge=0)
    pretrained_lr_factor: float = Field(1.0, gt=0, le=1)


class PostProcessingConfig(_Section):
    """Thresholds of the instance watershed (:class:`medseg.infer.postprocess.PostProcessing`).

    Unset values (``null``) are chosen by ``medseg train`` on the held-out data (a grid
    search on validation AJI, ``tune: true``) and stored in the checkpoint; a value set
    here is kept as it is. ``flow_threshold`` is the ``flow`` target's (Cellpose's flow
    error threshold); ``seed_threshold`` does not apply to it. ``split_size``: objects of
    more voxels are split at their distance-transform peaks, scaled by the training
    labels' typical object (``medseg.infer.split_objects``; searched between 1.5 times the
    median object and 0, off).
    """

    seed_threshold: float | None = Field(None, gt=0, lt=1)
    foreground_threshold: float | None = Field(None, gt=0, lt=1)
    min_size: int | None = Field(None, ge=0)
    flow_threshold: float | None = Field(None, gt=0, le=4)
    split_size: int | None = Field(None, ge=0)
    tune: bool = True


class InferConfig(_Section):
    """Sliding-window settings (see :class:`medseg.infer.SlidingWindow`).

    ``compile``: ``torch.compile`` the trained model with frozen weights for prediction
    (faster on many windows; the first prediction compiles; validation during training
    never compiles). ``null`` (default): compile on the CPU when the windows of an image
    repay the compile time (see :func:`medseg.infer.sliding_window.compile_pays_off`).
    ``postprocessing``: instance watershed thresholds (:class:`PostProcessingConfig`).
    """

    roi_size: Shape = (128, 128)
    overlap: float = Field(0.5, ge=0, lt=1)
    blending: Literal["gaussian", "constant"] = "gaussian"
    batch_size: int = Field(8, ge=1)
    mirror_axes: tuple[int, ...] = (0, 1)
    precision: Precision = Precision.FLOAT32
    device: str | None = None
    compile: bool | None = None
    postprocessing: PostProcessingConfig = PostProcessingConfig()


class PipelineConfig(_Section):
    """A whole pipeline: data → model → training → inference."""

    name: str = "pipeline"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    infer: InferConfig = InferConfig()

    @model_validator(mode="after")
    def _check_fields_fit_together(self) -> PipelineConfig:
        problems = _cross_field_problems(self)
        if problems:
            raise ValidationError.from_exception_data(
                "PipelineConfig",
                [
                    InitErrorDetails(type=PydanticCustomError("cross_field", message), loc=loc, input=value)
                    for loc, message, value in problems
                ],
            )
        return self


def config_defaults() -> dict[str, Any]:
    """Every setting's default, as ``PipelineConfig.model_dump(mode="json")`` lays them out.

    ``model.params`` is left empty: its keys are the model's, with no default here (the
    ``features``/``depth`` of :class:`ModelConfig` replace the whole mapping when unset).
    Resuming uses it for keys a checkpoint's config lacks because they were added since.
    """
    defaults = PipelineConfig.model_construct().model_dump(mode="json")
    defaults["model"]["params"] = {}
    return defaults


def expected_out_channels(data: DataConfig, spatial_dims: int = 2) -> int:
    """Output channels a model needs for ``data``: one per class, or the instance target's.

    Instance maps train a 3-class target (background, inside, boundary) or 2 classes
    plus 1 distance regression channel (3 output channels each), or both: 3 classes plus
    the distance channel (4); the ``flow`` target has a cell-probability channel and one
    flow component per spatial axis of the ``spatial_dims``-D model (3 in 2D, 4 in 3D);
    :meth:`medseg.options.InstanceTarget.model_channels`.
    """
    if data.label_kind is LabelKind.INSTANCES:
        return data.instance_target.model_channels(spatial_dims)
    return len(data.classes)


def _cross_field_problems(config: PipelineConfig) -> list[tuple[tuple[str, ...], str, Any]]:
    """(location, message, value) for every pair of settings that cannot work together.

    The model is built on PyTorch's ``meta`` device (no memory is allocated) to read
    its input constraints, so a network too deep for the patch fails here.
    """
    import torch

    from medseg.models import build_model, model_params
    from medseg.models.constraints import constraints_of

    try:
        params = {**model_params(config.model.name), **config.model.params}
    except ConfigError as err:
        return [(("model", "name"), str(err), config.model.name)]
    problems: list[tuple[tuple[str, ...], str, Any]] = []
    expected = expected_out_channels(config.data, int(params.get("spatial_dims", 2)))
    if params.get("out_channels") != expected:
        given = "is not set: the model's default is" if "out_channels" not in config.model.params else "is"
        why = (
            f"data.label_kind: instances ({config.data.instance_target.value} target)"
            if config.data.label_kind is LabelKind.INSTANCES
            else f"data.classes has {len(config.data.classes)} classes {list(config.data.classes)}"
        )
        problems.append(
            (
                ("model", "params", "out_channels"),
                f"model.params.out_channels {given} {params.get('out_channels')} but {why}: set "
                f"model.params.out_channels: {expected}",
                params.get("out_channels"),
            )
        )
    dims = int(params.get("spatial_dims", 2))
    shapes = (
        (("data", "patch_shape"), config.data.patch_shape),
        (("infer", "roi_size"), config.infer.roi_size),
    )
    for loc, shape in shapes:
        if len(shape) != dims:
            problems.append(
                (
                    loc,
                    f"{'.'.join(loc)} has {len(shape)} axes but model {config.model.name!r} is {dims}D "
                    f"(model.params.spatial_dims: {dims}): give {dims} sizes or change spatial_dims",
                    list(shape),
                )
            )
    axes = config.infer.mirror_axes
    if any(not 0 <= a < dims for a in axes) or len(set(axes)) != len(axes):
        problems.append(
            (
                ("infer", "mirror_axes"),
                f"infer.mirror_axes must be distinct spatial axes in 0..{dims - 1} of the {dims}D model "
                "(array axis order), or [] for no flip test-time augmentation",
                list(axes),
            )
        )
    if problems:
        return problems
    try:
        with torch.device("meta"):
            constraints = constraints_of(build_model(config.model.name, **config.model.params))
    except ConfigError as err:
        return [(("model", "params"), str(err), dict(config.model.params))]
    except (NotImplementedError, RuntimeError):  # a model that cannot be built on 'meta': checked when built
        return problems
    for loc, shape in shapes:
        if not constraints.is_valid(shape):
            rule = ", ".join(
                dict.fromkeys(
                    f"a multiple of {d}" + (f" plus {r}" if r else "") + f" and >= {m}"
                    for d, r, m in zip(
                        constraints.divisor, constraints.remainder, constraints.min_size, strict=True
                    )
                )
            )
            problems.append(
                (
                    loc,
                    f"{'.'.join(loc)} {list(shape)} does not fit model {config.model.name!r} with "
                    f"{_describe(config.model.params)} (each size must be {rule}): use "
                    f"{list(constraints.padded_shape(shape))} or a smaller model.params.depth",
                    list(shape),
                )
            )
    return problems


def _describe(params: dict[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if k in ("depth", "features", "spatial_dims")}
    return ", ".join(f"model.params.{k}: {v}" for k, v in shown.items()) or "its default parameters"


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate mapping keys instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, typing.Hashable) and key in seen:
                raise ConfigError(
                    f"duplicate key {key!r} on line {line} (first on line {seen[key]}); "
                    "keep one of them (YAML would silently use the last)"
                )
            if isinstance(key, typing.Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, source: str) -> Any:
    """Parse YAML safely (no ``!!python`` tags, no duplicate keys); errors name ``source``."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary tags
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from err
    except yaml.constructor.ConstructorError as err:
        raise ConfigError(
            f"{source}: unsupported YAML tag ({' '.join(str(err).split())}); pipeline configs hold plain "
            "values, lists and mappings only (tags such as !!python/... are never run)"
        ) from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{source} is not valid YAML: {' '.join(str(err).split())}") from err


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


def format_validation_error(err: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line per problem of a pydantic error, joined by ``; ``: the key, what is wrong, the value.

    With ``model`` (the validated class), unknown keys list the keys allowed there.
    """
    problems = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "value"
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(model, e["loc"])) if model is not None else ""
            problems.append(f"unknown key '{where}'" + (f" (allowed here: {allowed})" if allowed else ""))
        else:
            problems.append(f"'{where}': {e['msg']} (got {e.get('input')!r})")
    return "; ".join(problems)


def _require_mapping(raw: Any, source: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: a pipeline config must be a mapping of sections (data:, model:, train:, infer:), "
            f"got a {type(raw).__name__}"
        )
    return raw


def _validate(raw: Any, source: str) -> PipelineConfig:
    raw = _require_mapping(raw, source)
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{source}: {format_validation_error(err, PipelineConfig)}") from err
    from medseg.device import check_device_name

    for option, name in (("train.device", config.train.device), ("infer.device", config.infer.device)):
        check_device_name(name, option=f"{source}: {option}")
    return config


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
    if path.is_dir():
        raise ConfigError(
            f"pipeline config {path} is a folder; pass a YAML file such as pipelines/isbi2012.yaml"
        )
    if not path.is_file():
        raise DataNotFoundError(f"pipeline config {path} does not exist; see the examples in pipelines/")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {err.start}, line {line}); save it as UTF-8"
        ) from err
    except OSError as err:
        raise ConfigError(f"cannot read pipeline config {path}: {err.strerror or err}") from err
    raw = _parse_yaml(text, str(path))
    raw = _require_mapping({} if raw is None else raw, str(path))
    raw = apply_overrides(raw, overrides or [])
    return _validate(raw, str(path))


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set ``a.b.c=value`` entries (value parsed as YAML) in a nested dict, returning a copy."""
    out = copy.deepcopy(_require_mapping(raw, "config")) if raw else {}
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(
                f"override {item!r} must look like section.key=value, e.g. train.iterations=500"
            )
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{part}' is not a section but a value")
        node[parts[-1]] = _parse_yaml(value, f"--set {key.strip()}")
    return out


def config_from_dict(raw: dict[str, Any], *, source: str = "config") -> PipelineConfig:
    """Validate an in-memory config (e.g. the demo's defaults with overrides)."""
    return _validate(raw, source)
