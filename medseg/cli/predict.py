"""`medseg predict`: sliding-window prediction."""

from __future__ import annotations

import argparse

from medseg.cli._unavailable import register_unavailable


def register(subparsers: argparse._SubParsersAction) -> None:
    register_unavailable(subparsers, "predict", "sliding-window prediction")
