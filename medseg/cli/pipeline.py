"""`medseg run`: run a pipeline YAML end to end."""

from __future__ import annotations

import argparse

from medseg.cli._unavailable import register_unavailable


def register(subparsers: argparse._SubParsersAction) -> None:
    register_unavailable(subparsers, "run", "run a pipeline YAML end to end")
