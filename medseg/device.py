"""Turn a device option (``cpu``, ``cuda``, ``cuda:1``, ``mps``) into a ``torch.device``, or a clear error.

Config validation (``train.device``, ``infer.device``) and the ``--device`` options call
:func:`check_device_name`; the code that runs models calls :func:`resolve_device`.
Both raise :class:`~medseg.errors.ConfigError` naming the option, the value and the
devices this machine has, so a typo or a CPU-only torch fails before any work.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from medseg.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["available_devices", "check_device_name", "resolve_device"]

logger = logging.getLogger(__name__)

_AUTO = ("auto", "")


def available_devices() -> list[str]:
    """Device names usable on this machine, e.g. ``["cpu", "cuda", "cuda:0", "cuda:1"]``."""
    import torch

    names = ["cpu"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        names += ["cuda"] + [f"cuda:{i}" for i in range(count)]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def resolve_device(name: str | None, *, option: str) -> torch.device:
    """The ``torch.device`` for a device option; ``None`` or ``"auto"``: CUDA when available, else CPU.

    Parameters
    ----------
    name : str or None
        ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto`` or ``None``.
    option : str
        How the user set it (``--device``, ``train.device``), named in the error.

    Raises
    ------
    ConfigError
        Unknown device name, or a device this machine does not have (CUDA on a
        CPU-only torch, ``cuda:3`` with two GPUs); the message lists the available ones.
    """
    import torch

    text = "" if name is None else str(name).strip().lower()
    if text in _AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    available = available_devices()
    hint = f"available on this machine: {', '.join(available)} (or auto)"
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(f"{option}: unknown device {name!r}; {hint}") from err
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"{option}: {name!r} asked for a GPU but this torch has no CUDA (a CPU-only build or no "
                f"driver); use cpu, or install a CUDA build of torch; {hint}"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"{option}: {name!r} but this machine has {torch.cuda.device_count()} GPU(s); {hint}"
            )
        return device
    if device.type == "mps" and "mps" in available:
        return device
    raise ConfigError(f"{option}: device {name!r} is not available; {hint}")


def check_device_name(name: str | None, *, option: str) -> None:
    """Validate a device option without keeping the device (see :func:`resolve_device`)."""
    if name is not None:
        resolve_device(name, option=option)
