"""`medseg train`: train a segmenter from a pipeline config."""

from __future__ import annotations

import argparse

from medseg.cli._unavailable import register_unavailable


def register(subparsers: argparse._SubParsersAction) -> None:
    register_unavailable(subparsers, "train", "train a segmenter from a pipeline config")
