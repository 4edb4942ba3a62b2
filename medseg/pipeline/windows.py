"""The :class:`~medseg.infer.sliding_window.SlidingWindow` a prediction runs with.

From a config's ``infer`` section, from a checkpoint's training ``infer`` section with the
options given on top (validated against the training run's config, so a window is checked
against the model), or from a bioimage.io package's tile.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medseg.checkpoint_meta import Checkpoint
from medseg.config import InferConfig, config_from_dict
from medseg.errors import ConfigError
from medseg.exchange.bioimageio_import import load_package
from medseg.infer.sliding_window import SlidingWindow

__all__ = ["package_infer_config", "sliding_window_from_infer", "window_for_checkpoint"]


def sliding_window_from_infer(
    infer: InferConfig, *, progress: bool = False, compile: bool | None = None
) -> SlidingWindow:
    """The :class:`SlidingWindow` of an :class:`InferConfig` (``compile`` overrides ``infer.compile``)."""
    return SlidingWindow(
        infer.roi_size,
        overlap=infer.overlap,
        blending=infer.blending,
        batch_size=infer.batch_size,
        device=infer.device,
        precision=infer.precision,
        mirror_axes=infer.mirror_axes,
        compile=infer.compile if compile is None else compile,
        progress=progress,
    )


def package_infer_config(package: str | Path, chosen: Mapping[str, Any]) -> InferConfig:
    """Sliding-window settings for a bioimage.io package: its tile (or test input size), no TTA, the options given.

    Flip TTA is off unless asked for, so that the output is the package's own.
    """
    given = {k: v for k, v in chosen.items() if v is not None}
    infer = {"roi_size": load_package(package).roi_size, "mirror_axes": [], **given}
    try:
        return InferConfig(**infer)
    except ValueError as err:
        raise ConfigError(f"medseg predict with package {package}: {err}") from None


def window_for_checkpoint(
    checkpoint: Checkpoint,
    options: Mapping[str, Any] | None = None,
    *,
    source: str = "infer options",
    progress: bool = False,
) -> SlidingWindow:
    """The :class:`SlidingWindow` of a checkpoint's training ``infer`` section, with ``options`` on top.

    ``options`` holds ``infer`` keys (``roi_size``, ``overlap``, ``batch_size``, ``device``,
    ``precision``, ``mirror_axes``, ``compile``...); ``None`` values keep training's. The
    result is validated with the training run's whole config (:mod:`medseg.config`), so a
    window is checked against the checkpoint's model (roi size vs its depth, 2D vs 3D).

    Raises
    ------
    ConfigError
        An option that is invalid or does not fit the model; the message starts with ``source``.
    """
    trained = checkpoint.meta.training_config()
    given = {k: v for k, v in (options or {}).items() if v is not None}
    # compiling is a choice of the machine that predicts, not of the model: never the training run's
    infer = {**{k: v for k, v in trained.get("infer", {}).items() if k != "compile"}, **given}
    data = dict(trained.get("data", {}))
    if "patch_shape" not in data and "roi_size" in infer:
        data["patch_shape"] = infer["roi_size"]  # not stored: there are no training patches to check
    config = config_from_dict({**trained, "data": data, "infer": infer}, source=source)
    return sliding_window_from_infer(config.infer, progress=progress)
