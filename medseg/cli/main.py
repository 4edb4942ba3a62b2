"""Entry point of the ``medseg`` command: parses arguments and calls the library.

Each subcommand lives in its own module under ``medseg.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func=run`` where
``run(args) -> int`` returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

import medseg
from medseg.errors import MedsegError

__all__ = ["main", "build_parser"]

logger = logging.getLogger("medseg")

# subcommand name -> module under medseg.cli that registers it
SUBCOMMANDS: dict[str, str] = {
    "demo": "medseg.cli.demo",
    "fetch": "medseg.cli.fetch",
    "train": "medseg.cli.train",
    "predict": "medseg.cli.predict",
    "evaluate": "medseg.cli.evaluate",
    "run": "medseg.cli.pipeline",
    "bench": "medseg.cli.bench",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medseg",
        description="Biomedical image segmentation: train, predict and evaluate U-Net/FCN/sDAE segmenters.",
    )
    parser.add_argument("--version", action="version", version=f"medseg {medseg.__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        module.register(sub)
        if name not in sub.choices:
            raise RuntimeError(f"{module_name}.register did not add the '{name}' subcommand")
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except MedsegError as err:
        print(f"medseg {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
