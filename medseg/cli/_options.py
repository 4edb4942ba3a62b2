"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["add_overrides", "add_progress", "device_name", "output_path"]


def add_overrides(parser: argparse.ArgumentParser, example: str) -> None:
    """``--set KEY=VALUE`` (repeatable), collected in ``args.overrides``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config value, e.g. --set {example} (repeatable)",
    )


def add_progress(parser: argparse.ArgumentParser) -> None:
    """``--no-progress`` to hide progress bars (``args.no_progress``)."""
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def output_path(value: str) -> Path:
    """argparse ``type=`` for an output folder: refuse, before any work, one that cannot be written.

    Refused: an existing file, a path under a file, and a folder (or its nearest
    existing parent) that this user cannot write to. The folder itself is created later,
    by the command.
    """
    path = Path(value)
    if not value.strip():
        raise argparse.ArgumentTypeError("an output folder is required, got an empty string")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{path} is an existing file, not a folder; choose a folder (it is created if missing)"
        )
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            raise argparse.ArgumentTypeError(
                f"{existing} is a broken symbolic link; remove it or choose another folder"
            )
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(
            f"{path} lies under {existing}, which is a file, not a folder; choose another output folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"{existing} is not writable by this user, so {path} cannot be written; choose another folder "
            "or fix its permissions"
        )
    return path


def device_name(value: str) -> str:
    """argparse ``type=`` for ``--device``: an unknown or unavailable device is refused before any work."""
    from medseg.device import check_device_name
    from medseg.errors import ConfigError

    try:
        check_device_name(value, option="--device")
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--device: ")) from err
    return value
