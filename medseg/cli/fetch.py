"""`medseg fetch`: download and verify a dataset."""

from __future__ import annotations

import argparse

from medseg.cli._unavailable import register_unavailable


def register(subparsers: argparse._SubParsersAction) -> None:
    register_unavailable(subparsers, "fetch", "download and verify a dataset")
