"""Parser for a subcommand whose implementation has not landed yet."""

from __future__ import annotations

import argparse
import sys


def register_unavailable(subparsers: argparse._SubParsersAction, name: str, summary: str) -> None:
    parser = subparsers.add_parser(name, help=f"{summary} (not yet available)")
    parser.set_defaults(func=lambda args: _refuse(name))


def _refuse(name: str) -> int:
    print(f"medseg {name}: not yet available in this version of medseg", file=sys.stderr)
    return 2
