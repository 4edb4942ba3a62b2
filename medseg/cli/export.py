"""`medseg export`: a trained run as a package other tools run (BioImage Model Zoo)."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained run as a BioImage Model Zoo package (deepImageJ, ilastik, napari, QuPath)",
        description=(
            "Write the run's best checkpoint as a bioimage.io model package (format 0.5): weights as "
            "pytorch_state_dict and torchscript, a test input and its expected output, the training "
            "normalisation as pre-processing, axes with the images' spacing, a cover and a README. "
            "Check it with `bioimageio test OUT.zip`."
        ),
    )
    parser.add_argument("run", type=Path, help="training run folder, its checkpoints/ folder or a .pt file")
    parser.add_argument("--bioimageio", type=Path, required=True, metavar="OUT.zip", help="package to write")
    parser.add_argument(
        "--author",
        action="append",
        default=None,
        help="author name (repeat for several; default: the user name)",
    )
    parser.add_argument(
        "--license", default="CC-BY-4.0", help="SPDX licence of the package (default CC-BY-4.0)"
    )
    parser.add_argument(
        "--test-image",
        type=Path,
        default=None,
        help="image the test input is cut from (default: the run's first validation image)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medseg.pipeline.exporting import export_run

    authors = args.author or [getpass.getuser()]
    out = export_run(
        args.run, args.bioimageio, authors=authors, license=args.license, test_image=args.test_image
    )
    print(f"bioimage.io package: {out} (check it with: bioimageio test {out})")
    return 0
