"""`medseg fetch NAME|MANIFEST.yaml --root DIR`: download, verify and extract a dataset."""

from __future__ import annotations

import argparse

from medseg.cli._options import add_progress, output_path
from medseg.data.fetch import fetch_dataset
from medseg.data.manifest import list_manifests

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    known = ", ".join(sorted(list_manifests())) or "none found"
    parser = subparsers.add_parser(
        "fetch",
        help="download, verify (sha256) and extract a dataset",
        description=(
            "Download the files of a dataset manifest with resume, verify their sha256 and extract archives "
            f"safely. Known datasets: {known}. A second run only re-verifies."
        ),
    )
    parser.add_argument("dataset", metavar="NAME|MANIFEST.yaml", help="dataset name or path to a manifest")
    parser.add_argument(
        "--root", type=output_path, required=True, help="data root; the dataset goes to ROOT/<layout.folder>"
    )
    parser.add_argument(
        "--from",
        dest="from_path",
        metavar="PATH",
        default=None,
        help="folder (or single file) holding files you already have; verified like downloads",
    )
    parser.add_argument(
        "--allow-unverified",
        action="store_true",
        help="accept files whose manifest has no sha256 (a warning gives their computed sha256)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds (default 30)")
    parser.add_argument("--retries", type=int, default=2, help="extra attempts per download, each resuming")
    add_progress(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = fetch_dataset(
        args.dataset,
        args.root,
        from_path=args.from_path,
        allow_unverified=args.allow_unverified,
        progress=not args.no_progress,
        timeout=args.timeout,
        retries=args.retries,
    )
    for label, names in (
        ("downloaded", result.downloaded),
        ("registered", result.registered),
        ("extracted", result.extracted),
        ("already present and verified", result.unchanged),
        ("NOT verified (no sha256 in manifest)", result.unverified),
    ):
        if names:
            print(f"{label}: {', '.join(names)}")
    print(f"dataset ready in {result.dataset_dir}")
    return 0
