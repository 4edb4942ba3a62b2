"""The checkpoint contract: what a trained model's ``.pt`` file says about itself.

A medseg checkpoint is a plain dict loaded with ``torch.load(weights_only=True)``::

    {"format": 1, "model": state_dict, "iteration": int, "metadata": {...}, "versions": {...},
     "optimizer": ..., "scheduler": ..., "scaler": ..., "history": ..., "rng": ...}

Its ``metadata`` is described by :class:`CheckpointMeta`, a frozen, validated and
versioned record that both :mod:`medseg.train` (writing, resuming, fine-tuning) and
:mod:`medseg.infer` (prediction) use, so the contract is written down once.
:meth:`CheckpointMeta.from_dict` migrates older versions (a checkpoint without a
``version`` is version 1, written before this module existed) and turns any malformed
entry into a :class:`~medseg.errors.FormatError` that names the file.
:func:`read_checkpoint` loads a file once and gives its payload and meta together.

This module sits below ``train`` and ``infer`` and imports only :mod:`medseg.errors`,
:mod:`medseg.options` and :mod:`medseg.io` (and torch for loading).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from medseg.errors import DataNotFoundError, FormatError
from medseg.io.paths import file_sha256
from medseg.options import InstanceTarget, LabelKind

__all__ = [
    "CHECKPOINT_FORMAT",
    "META_VERSION",
    "Checkpoint",
    "CheckpointMeta",
    "ModelSpec",
    "Targets",
    "checkpoint_path",
    "load_checkpoint",
    "read_checkpoint",
]

#: Layout version of the payload (top-level keys); a newer one is refused.
CHECKPOINT_FORMAT = 1
#: Version of the ``metadata`` entry written now; older ones are migrated on load.
META_VERSION = 2


def _freeze(value: Any) -> Any:
    """A read-only deep copy: mappings become ``MappingProxyType``, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    """Plain ``dict``/``list`` again (what ``torch.save``, JSON and YAML take)."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class ModelSpec:
    """A registry name of :func:`medseg.models.build_model` and the parameters it was built with."""

    name: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _freeze(self.params))

    def kwargs(self) -> dict[str, Any]:
        """The parameters as plain values (lists, dicts) for ``build_model(name, **kwargs)``."""
        return _thaw(self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.kwargs()}


@dataclass(frozen=True)
class Targets:
    """What the model was trained to output, interpreted once for every reader.

    Attributes
    ----------
    label_kind : LabelKind
        ``classes``: one output channel per class; ``instances``: an instance target.
    instance_target : InstanceTarget or None
        ``boundary``, ``distance``, ``both`` or ``flow`` for instance models, ``None`` for class models.
    """

    label_kind: LabelKind = LabelKind.CLASSES
    instance_target: InstanceTarget | None = None

    @classmethod
    def of(cls, label_kind: LabelKind | str, instance_target: InstanceTarget | str | None) -> Targets:
        """The targets of a data config: ``instance_target`` counts only for instance labels."""
        kind = LabelKind.parse(label_kind, option="data.label_kind")
        if kind is LabelKind.CLASSES or instance_target is None:
            return cls(kind, None)
        return cls(kind, InstanceTarget.parse(instance_target, option="data.instance_target"))

    @property
    def is_instances(self) -> bool:
        """Whether the model was trained on an instance target."""
        return self.instance_target is not None

    @property
    def has_distance_channel(self) -> bool:
        """Whether the last output channel is a distance map, not a class."""
        return self.instance_target is not None and self.instance_target.has_distance_channel

    @property
    def has_flows(self) -> bool:
        """Whether the outputs are a cell-probability logit and flow components (``flow`` target)."""
        return self.instance_target is not None and self.instance_target.has_flows

    def to_dict(self) -> dict[str, Any]:
        target = None if self.instance_target is None else self.instance_target.value
        return {"label_kind": self.label_kind.value, "instance_target": target}


@dataclass(frozen=True)
class CheckpointMeta:
    """Frozen, validated description of a trained model (a checkpoint's ``metadata``).

    Attributes
    ----------
    model : ModelSpec
        Registry name and parameters of the network.
    classes : tuple of str
        Class names, index = class id (may be empty for checkpoints written by hand).
    channels : int
        Input channels the model takes.
    normalization : mapping
        The intensity normalisation of training (:meth:`medseg.infer.normalize.ZScore.to_dict`):
        ``mean`` and ``std`` per channel, ``nonfinite``, ``fill``.
    targets : Targets
        Class labels or an instance target.
    postprocessing : mapping
        Settings of the post-processing that turns outputs into objects (e.g. tuned
        watershed thresholds); empty means the defaults.
    data_fingerprint : mapping or None
        Facts about the training data (spacing, intensities, object sizes), when recorded.
    config : mapping or None
        The resolved pipeline config of the run (``PipelineConfig.model_dump(mode="json")``).
    axis_order : str or None
        ``"C,Z,Y,X"`` or ``"C,Y,X"``.
    init : mapping or None
        Fine-tuning record (the checkpoint started from, tensors loaded).
    best_score : float or None
        Best validation score when the checkpoint was saved.
    version : int
        :data:`META_VERSION` of the layout.

    Examples
    --------
    >>> meta = CheckpointMeta.from_dict(
    ...     {"model": {"name": "unet", "params": {"in_channels": 1, "out_channels": 2}},
    ...      "normalization": {"mean": [0.5], "std": [0.25]}, "classes": ["bg", "cell"]})
    >>> meta.model.name, meta.channels, meta.targets.label_kind.value
    ('unet', 1, 'classes')
    """

    model: ModelSpec
    normalization: Mapping[str, Any]
    channels: int
    classes: tuple[str, ...] = ()
    targets: Targets = Targets()
    postprocessing: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    data_fingerprint: Mapping[str, Any] | None = None
    config: Mapping[str, Any] | None = None
    axis_order: str | None = None
    init: Mapping[str, Any] | None = None
    best_score: float | None = None
    version: int = META_VERSION

    def __post_init__(self) -> None:  # read-only all the way down, however it was built
        for name in ("normalization", "postprocessing", "data_fingerprint", "config", "init"):
            object.__setattr__(self, name, _freeze(getattr(self, name)))
        object.__setattr__(self, "classes", tuple(self.classes))

    @classmethod
    def from_dict(cls, raw: Any, *, source: str | Path = "checkpoint") -> CheckpointMeta:
        """Validate (and migrate) a checkpoint's ``metadata`` dict.

        Parameters
        ----------
        raw : dict
            The ``metadata`` entry of a checkpoint payload.
        source : str or path
            The checkpoint file, named in errors.

        Raises
        ------
        FormatError
            A missing or malformed entry, or a version newer than this medseg reads;
            the message names ``source``, the entry and what was expected.
        """
        if not isinstance(raw, Mapping):
            raise FormatError(f"{source}: checkpoint metadata must be a mapping, got {type(raw).__name__}")
        raw = _migrate(dict(raw), source)
        return cls(
            model=_model_spec(raw.get("model"), source),
            normalization=_freeze(_normalization(raw.get("normalization"), source)),
            channels=_channels(raw, source),
            classes=_classes(raw.get("classes"), source),
            targets=_targets(raw.get("targets"), source),
            postprocessing=_freeze(_optional_mapping(raw, "postprocessing", source) or {}),
            data_fingerprint=_freeze(_optional_mapping(raw, "data_fingerprint", source)),
            config=_freeze(_optional_mapping(raw, "config", source)),
            axis_order=_optional_str(raw, "axis_order", source),
            init=_freeze(_optional_mapping(raw, "init", source)),
            best_score=_optional_float(raw, "best_score", source),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-like ``metadata`` entry to store (plain dicts and lists)."""
        out: dict[str, Any] = {
            "version": self.version,
            "model": self.model.to_dict(),
            "normalization": _thaw(self.normalization),
            "channels": self.channels,
            "classes": list(self.classes),
            "targets": self.targets.to_dict(),
            "postprocessing": _thaw(self.postprocessing),
        }
        optional = {
            "data_fingerprint": self.data_fingerprint,
            "config": self.config,
            "axis_order": self.axis_order,
            "init": self.init,
            "best_score": self.best_score,
        }
        out.update({k: _thaw(v) for k, v in optional.items() if v is not None})
        return out

    @property
    def out_channels(self) -> int | None:
        """Output channels of the model (``model.params.out_channels``), when recorded."""
        value = self.model.params.get("out_channels")
        return int(value) if isinstance(value, int) else None

    def training_config(self) -> dict[str, Any]:
        """The training config stored with the model, completed from the model spec and classes.

        A checkpoint written outside ``medseg train`` may store only part of the config;
        the sections that prediction is checked against then come from what the
        checkpoint builds (its model spec and classes), not from config defaults (a 2D
        U-Net with two classes), which would refuse a 3D model's window for the wrong reason.
        """
        trained = _thaw(self.config) if self.config is not None else {}
        trained.setdefault("model", self.model.to_dict())
        if "data" not in trained and self.classes:
            trained["data"] = {"classes": list(self.classes)}
        return trained


def _migrate(raw: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """Bring ``raw`` to :data:`META_VERSION`, one version step at a time."""
    version = raw.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FormatError(
            f"{source}: checkpoint metadata version must be a whole number >= 1, got {version!r}"
        )
    if version > META_VERSION:
        raise FormatError(
            f"{source} has checkpoint metadata version {version}, this medseg reads up to {META_VERSION}; "
            "upgrade medseg"
        )
    if version == 1:  # before CheckpointMeta: no version, channels and targets optional
        raw.setdefault("targets", {"label_kind": "classes", "instance_target": None})
        if "fingerprint" in raw:  # issue 22's checkpoints written before CheckpointMeta
            raw.setdefault("data_fingerprint", raw.pop("fingerprint"))
        raw["version"] = 2
    return raw


def _model_spec(raw: Any, source: str | Path) -> ModelSpec:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise FormatError(
            f"{source}: checkpoint metadata has no valid 'model' entry (name, params), got {raw!r}; "
            "it was not written by medseg train"
        )
    params = raw.get("params", {})
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise FormatError(f"{source}: checkpoint metadata model.params must be a mapping, got {params!r}")
    return ModelSpec(raw["name"], _freeze(params))


def _numbers(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )


def _normalization(raw: Any, source: str | Path) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or "mean" not in raw or "std" not in raw:
        raise FormatError(
            f"{source}: checkpoint metadata has no 'normalization' (mean, std per channel); "
            "it was not written by medseg train"
        )
    mean, std = raw["mean"], raw["std"]
    if not (_numbers(mean) and _numbers(std)) or len(mean) != len(std) or not mean:
        raise FormatError(
            f"{source}: checkpoint normalization must hold one finite mean and std per channel, "
            f"got mean={mean!r}, std={std!r}"
        )
    if any(s <= 0 for s in std):
        raise FormatError(
            f"{source}: checkpoint normalization std must be > 0 per channel, got {list(std)}; the "
            "checkpoint is damaged (retrain, or fix metadata.normalization.std)"
        )
    return dict(raw)


def _channels(raw: Mapping[str, Any], source: str | Path) -> int:
    """Input channels: recorded, else the model's ``in_channels``, else the normalisation's."""
    params = raw["model"].get("params") or {}
    value = raw.get("channels", params.get("in_channels", len(raw["normalization"]["mean"])))
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise FormatError(
            f"{source}: checkpoint metadata channels must be a whole number >= 1, got {value!r}"
        )
    return value


def _classes(raw: Any, source: str | Path) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple) or not all(isinstance(c, str) for c in raw):
        raise FormatError(f"{source}: checkpoint metadata classes must be a list of names, got {raw!r}")
    return tuple(raw)


def _targets(raw: Any, source: str | Path) -> Targets:
    if not isinstance(raw, Mapping):
        raise FormatError(f"{source}: checkpoint metadata targets must be a mapping, got {raw!r}")
    try:
        return Targets.of(raw.get("label_kind", "classes"), raw.get("instance_target"))
    except ValueError as err:  # ConfigError: the option's choices
        raise FormatError(f"{source}: checkpoint metadata {err}") from err


def _optional_mapping(raw: Mapping[str, Any], key: str, source: str | Path) -> Mapping[str, Any] | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, Mapping):
        raise FormatError(
            f"{source}: checkpoint metadata {key} must be a mapping, got {type(value).__name__}"
        )
    return value


def _optional_str(raw: Mapping[str, Any], key: str, source: str | Path) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise FormatError(f"{source}: checkpoint metadata {key} must be text, got {value!r}")
    return value


def _optional_float(raw: Mapping[str, Any], key: str, source: str | Path) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise FormatError(f"{source}: checkpoint metadata {key} must be a number, got {value!r}")
    return float(value)


def checkpoint_path(path: str | Path) -> Path:
    """The checkpoint file meant by ``path``: a ``.pt`` file, a ``checkpoints/`` folder or a training run folder.

    Raises
    ------
    DataNotFoundError
        Nothing usable at ``path``; the message lists what was looked for.
    """
    path = Path(path)
    candidates = [path] if path.is_file() else [path / "best.pt", path / "checkpoints" / "best.pt"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise DataNotFoundError(
        f"no checkpoint at {path} (looked for {looked}); pass the run folder that medseg train "
        "printed, its checkpoints/ folder or a .pt file"
    )


def load_checkpoint(path: str | Path, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint's payload dict with ``torch.load(weights_only=True)``.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    FormatError
        The file is not a medseg checkpoint, is corrupt or has a newer format.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(
            f"checkpoint {path} does not exist; train a model first or pass the right path"
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several unrelated types for corrupt files
        raise FormatError(
            f"cannot read checkpoint {path}: {err}; the file is corrupt or was not written by medseg"
        ) from err
    if not isinstance(payload, dict) or "model" not in payload or "format" not in payload:
        raise FormatError(f"{path} is not a medseg checkpoint (no 'model'/'format' entries)")
    if not isinstance(payload["format"], int) or payload["format"] > CHECKPOINT_FORMAT:
        raise FormatError(
            f"{path} has checkpoint format {payload['format']!r}, this medseg reads up to "
            f"{CHECKPOINT_FORMAT}; upgrade medseg"
        )
    weights = payload["model"]
    if not isinstance(weights, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        raise FormatError(f"{path}: the checkpoint's 'model' entry is not a state dict of named tensors")
    return payload


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file loaded once: its path, payload and validated meta.

    Examples
    --------
    >>> ckpt = read_checkpoint("run")                # doctest: +SKIP
    >>> ckpt.meta.classes, ckpt.path.name           # doctest: +SKIP
    (('background', 'membrane'), 'best.pt')
    """

    path: Path
    payload: Mapping[str, Any]
    meta: CheckpointMeta

    @property
    def weights(self) -> Mapping[str, Any]:
        """The model's ``state_dict``."""
        return self.payload["model"]

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the file (identifies the model of resumable outputs)."""
        return file_sha256(self.path)


def read_checkpoint(path: str | Path, *, map_location: Any = "cpu") -> Checkpoint:
    """Load the checkpoint at ``path`` (a ``.pt`` file, a ``checkpoints/`` folder or a run folder).

    Raises
    ------
    DataNotFoundError
        Nothing at ``path``.
    FormatError
        Not a medseg checkpoint, corrupt, or metadata that does not validate (named).
    """
    file = checkpoint_path(path)
    payload = load_checkpoint(file, map_location=map_location)
    return Checkpoint(file, payload, CheckpointMeta.from_dict(payload.get("metadata"), source=file))
