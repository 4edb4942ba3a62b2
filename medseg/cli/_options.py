"""Options shared by several subcommands."""

from __future__ import annotations

import argparse


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
