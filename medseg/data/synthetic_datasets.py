"""Synthetic stand-ins for the registered datasets, written in each dataset's real on-disk layout.

Each writer is ``write(folder, manifest, shape, n, seed)``: ``folder`` is the dataset
folder under the fetch root (the manifest's ``layout.folder``), ``shape`` the image
size and ``n`` the number of cases (sections for EM stacks). The dataset registry
(:mod:`medseg.data.registry`) names each dataset's writer and sizes, and ``medseg run
--data synthetic`` calls them, so the dataset's own loader reads the files back.
Synthetic numbers measure the pipeline, never the published benchmark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medseg.data.manifest import Manifest

__all__ = [
    "write_cremi",
    "write_ctc_dataset",
    "write_dental",
    "write_glas",
    "write_isbi2012",
    "write_lab_folder",
    "write_monuseg",
    "write_nnunet",
    "nnunet_classes",
]


def write_isbi2012(folder: Path, manifest: Manifest, shape: tuple[int, ...], n: int, seed: int) -> None:
    from medseg.data.synthetic.em import write_isbi2012 as write

    write(folder, shape=(n, shape[0], shape[1]), seed=seed, write_test_labels=False)


def write_dental(folder: Path, manifest: Manifest, shape: tuple[int, ...], n: int, seed: int) -> None:
    from medseg.data.synthetic.dental import write_isbi2015_dental

    write_isbi2015_dental(folder, n_images=n, shape=(shape[0], shape[1]), seed=seed)


def write_ctc_dataset(folder: Path, manifest: Manifest, shape: tuple[int, ...], n: int, seed: int) -> None:
    """Sequences 01 and 02 where the manifest's ``train_images`` puts them (``train/<CTC name>/``).

    Every frame is annotated (synthetic GT is free; short sequences keep enough frames).
    """
    from medseg.data.synthetic.cells import write_ctc

    write_ctc(
        folder.joinpath(*Path(manifest.layout.paths["train_images"]).parts[:2]),
        sequences=("01", "02"),
        n_frames=n,
        shape=(shape[0], shape[1]),
        annotate_every=1,
        seed=seed,
    )


def write_monuseg(folder: Path, manifest: Manifest, shape: tuple[int, ...], n: int, seed: int) -> None:
    from medseg.data.synthetic.histo import write_monuseg as write

    nuclei = max(8, shape[0] * shape[1] // 900)
    write(folder, n_images=n, shape=(shape[0], shape[1]), n_nuclei=nuclei, seed=seed)


def write_glas(folder: Path, manifest: Manifest, shape: tuple[int, ...], n: int, seed: int) -> None:
    from medseg.data.synthetic.histo import write_glas as write

    write(folder, n_train=n, n_test_a=1, n_test_b=1, shape=(shape[0], shape[1]), seed=seed)


def write_cremi(folder: Path, manifest: Manifest, shape: tuple[int, ...], n: int, seed: int) -> None:
    """Samples A, B and C as CREMI's HDF5 files: raw and neuron ids (membranes background), 40 x 4 x 4 nm."""
    import h5py

    from medseg.data.synthetic.em import make_em_stack

    for i, sample in enumerate(("A", "B", "C")):
        stack = make_em_stack((n, shape[0], shape[1]), cell_diameter=max(12.0, shape[0] / 5), seed=seed + i)
        ids = np.where(stack.labels > 0, stack.cell_ids, 0).astype(np.uint64)
        with h5py.File(folder / f"sample_{sample}_20160501.hdf", "w") as f:
            raw = f.create_dataset("volumes/raw", data=stack.image, chunks=True)
            raw.attrs["resolution"] = (40.0, 4.0, 4.0)
            labels = f.create_dataset("volumes/labels/neuron_ids", data=ids, chunks=True)
            labels.attrs["resolution"] = (40.0, 4.0, 4.0)


def write_nnunet(folder: Path, manifest: Manifest, shape: tuple[int, ...], n: int, seed: int) -> None:
    from medseg.data.synthetic.volume import write_nnunet_raw

    write_nnunet_raw(folder, n_train=n, n_test=1, shape=(shape[0], shape[1], shape[2]), seed=seed)


def nnunet_classes() -> list[str]:
    """The class names of the synthetic nnU-Net organs, in label order."""
    from medseg.data.synthetic.volume import ORGAN_LABELS

    return sorted(ORGAN_LABELS, key=lambda name: ORGAN_LABELS[name])


def write_lab_folder(folder: Path, manifest: Manifest, shape: tuple[int, ...], n: int, seed: int) -> None:
    """``images/case_TTT.tif`` and ``labels/case_TTT.tif`` (uint16 cell ids) from a moving-cell sequence.

    A 2D ``shape`` ``(Y, X)``: case ``t`` is frame ``t`` of one sequence. A 3D ``shape``
    ``(Z, Y, X)``: case ``t`` is a whole sequence of ``Z`` frames (seed ``seed + t``) read
    as a stack, each cell a slanted tube with one id.
    """
    import tifffile

    from medseg.data.synthetic.cells import make_cell_sequence

    plane = (shape[-2], shape[-1])
    cells = max(4, plane[0] * plane[1] // 1500)
    for d in ("images", "labels"):
        (folder / d).mkdir(parents=True, exist_ok=True)
    if len(shape) == 3:
        for t in range(n):
            stack = make_cell_sequence(shape[0], plane, n_cells=cells, seed=seed + t)
            tifffile.imwrite(folder / "images" / f"case_{t:03d}.tif", stack.frames)
            tifffile.imwrite(folder / "labels" / f"case_{t:03d}.tif", stack.masks.astype(np.uint16))
        return
    data = make_cell_sequence(n, plane, n_cells=cells, seed=seed)
    for t in range(n):
        tifffile.imwrite(folder / "images" / f"case_{t:03d}.tif", data.frames[t])
        tifffile.imwrite(folder / "labels" / f"case_{t:03d}.tif", data.masks[t].astype(np.uint16))
