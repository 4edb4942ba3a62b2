"""Entry point of the ``medseg`` command: parses arguments and calls the library.

Each subcommand lives in its own module under ``medseg.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func=run`` where
``run(args) -> int`` returns the exit status.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
import traceback

import medseg
from medseg.errors import MedsegError

__all__ = ["main", "build_parser", "describe_error"]

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
    "export": "medseg.cli.export",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medseg",
        description="Biomedical image segmentation: train, predict and evaluate U-Net/FCN/sDAE segmenters.",
    )
    parser.add_argument("--version", action="version", version=f"medseg {medseg.__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument(
        "--debug",
        action="store_true",
        default=os.environ.get("MEDSEG_DEBUG", "") not in ("", "0"),
        help="print the Python traceback of an error (also MEDSEG_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        module.register(sub)
        if name not in sub.choices:
            raise RuntimeError(f"{module_name}.register did not add the '{name}' subcommand")
        # also accepted after the subcommand; SUPPRESS keeps the top-level value otherwise
        sub.choices[name].add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="print the traceback of an error"
        )
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


_MAX_DETAIL = 400  # characters of an internal error's message shown without --debug

# what to do about an OS error, by errno
_OS_FIXES = {
    errno.EEXIST: "it already exists; remove it or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "it is a folder; pass a file",
    errno.EACCES: "permission denied; choose a location you can access or fix its permissions",
    errno.EPERM: "operation not permitted; choose a location you can access or fix its permissions",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.ENOSPC: "no space left on the device; free some space or choose another output folder",
    errno.EDQUOT: "disk quota exceeded; free some space or choose another output folder",
    errno.ENOENT: "it does not exist; check the path",
    errno.ENAMETOOLONG: "the file name is too long; choose a shorter path",
}


def _os_message(err: OSError) -> str:
    where = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
    fix = _OS_FIXES.get(err.errno, "check the path and try again")
    what = err.strerror or str(err) or type(err).__name__
    return f"{where}: {what}: {fix}" if where else f"{what}: {fix}"


def describe_error(err: BaseException) -> str | None:
    """The one-line message for an error a user can fix (exit status 2), or ``None`` (an internal error).

    Covers :class:`~medseg.errors.MedsegError` and the pydantic, YAML and OS errors
    that escape from lower layers. Anything else is an internal error.
    """
    from pydantic import ValidationError
    from yaml import YAMLError

    from medseg.config import format_validation_error

    if isinstance(err, MedsegError):
        message = str(err)
    elif isinstance(err, ValidationError):
        message = f"invalid {err.title} value: {format_validation_error(err)}"
    elif isinstance(err, YAMLError):
        message = f"invalid YAML: {err}"
    elif isinstance(err, OSError):
        message = _os_message(err)
    elif isinstance(err, MemoryError):
        message = (
            "out of memory; use smaller inputs, predict block by block (medseg predict --block-shape) "
            "or read files lazily (medseg.io.open_array)"
        )
    else:
        return None
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if args.command is None:
        parser.print_help()
        return 0
    prefix = f"medseg {args.command}: error:"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"medseg {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the one place that turns any error into one line and a status
        if args.debug:
            traceback.print_exc()
        described = describe_error(err)
        if described is not None:
            print(f"{prefix} {described}", file=sys.stderr)
            return 2
        hint = "" if args.debug else " (run with --debug for the traceback)"
        detail = " ".join(str(err).split()) or "no message"
        if len(detail) > _MAX_DETAIL:
            detail = detail[:_MAX_DETAIL] + " ..."
        print(f"{prefix} internal error {type(err).__name__}: {detail}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
